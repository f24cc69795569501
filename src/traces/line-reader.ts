// Reading big text traces line by line straight from the bytes, in fixed-size chunks: the Azure
// Functions daily files are ~130 MB upstream, so nothing here holds a whole file or builds a
// string per field. Callers parse fields in place with the helpers below.
import { closeSync, openSync, readSync } from "node:fs";

export const COMMA = 44;
const LF = 10;
const CR = 13;

/**
 * Calls `onLine(buf, start, end, lineNo)` for each line (without its CR/LF; lineNo from 0) until
 * the file ends or onLine returns false. `buf` is reused: copy out what must outlive the call.
 */
export function forEachLine(
  file: string,
  onLine: (buf: Buffer, start: number, end: number, lineNo: number) => boolean | void,
  chunkBytes = 1 << 20,
): void {
  const fd = openSync(file, "r");
  try {
    let buf = Buffer.allocUnsafe(chunkBytes);
    let filled = 0;
    let scanFrom = 0;
    let lineNo = 0;
    for (;;) {
      if (filled === buf.length) {
        // A line longer than the buffer: grow it rather than split the line.
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, filled);
        buf = bigger;
      }
      const n = readSync(fd, buf, filled, buf.length - filled, null);
      const eof = n === 0;
      filled += n;
      const view = buf.subarray(0, filled);
      let lineStart = 0;
      let nl: number;
      while ((nl = view.indexOf(LF, scanFrom)) !== -1) {
        const end = nl > lineStart && buf[nl - 1] === CR ? nl - 1 : nl;
        if (onLine(buf, lineStart, end, lineNo++) === false) return;
        lineStart = nl + 1;
        scanFrom = lineStart;
      }
      if (eof) {
        if (lineStart < filled) {
          const end = buf[filled - 1] === CR ? filled - 1 : filled;
          onLine(buf, lineStart, end, lineNo);
        }
        return;
      }
      buf.copy(buf, 0, lineStart, filled);
      filled -= lineStart;
      scanFrom = filled;
    }
  } finally {
    closeSync(fd);
  }
}

/** Splits the line [start, end) at `sep` and returns the field strings (for headers and small files). */
export function splitFields(buf: Buffer, start: number, end: number, sep = COMMA): string[] {
  const out: string[] = [];
  let s = start;
  for (let i = start; i <= end; i++) {
    if (i === end || buf[i] === sep) {
      out.push(buf.toString("latin1", s, i).trim());
      s = i + 1;
    }
  }
  return out;
}

/** A decimal number (optional sign, fraction, exponent) from bytes [start, end); NaN if malformed or empty. */
export function parseNumber(buf: Uint8Array, start: number, end: number): number {
  while (start < end && (buf[start] === 32 || buf[start] === 9)) start++;
  while (end > start && (buf[end - 1] === 32 || buf[end - 1] === 9)) end--;
  if (start === end) return NaN;
  let i = start;
  let neg = false;
  if (buf[i] === 45 || buf[i] === 43) {
    neg = buf[i] === 45;
    i++;
  }
  let value = 0;
  let digits = 0;
  for (; i < end && buf[i]! >= 48 && buf[i]! <= 57; i++, digits++) value = value * 10 + (buf[i]! - 48);
  if (i < end && buf[i] === 46) {
    i++;
    let scale = 0.1;
    // Summing digit·10^-k drifts in the last bits; fractions with many digits go through the
    // platform parser so that "51.0638457375333" reads exactly as JavaScript would read it.
    const fracStart = i;
    for (; i < end && buf[i]! >= 48 && buf[i]! <= 57; i++, digits++) {
      value += (buf[i]! - 48) * scale;
      scale /= 10;
    }
    if (i - fracStart > 3) return exactParse(buf, start, end);
  }
  if (digits === 0) return NaN;
  if (i < end && (buf[i] === 101 || buf[i] === 69)) return exactParse(buf, start, end);
  if (i !== end) return NaN;
  return neg ? -value : value;
}

function exactParse(buf: Uint8Array, start: number, end: number): number {
  const s = Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString("latin1");
  return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s) ? Number(s) : NaN;
}
