// Azure Functions Trace 2019 (shared/traces/azure-functions-2019, see its SOURCE.md): invocation
// counts per function per minute over one day. The papers replay one function, the N busiest, or
// the sum over all of them, spreading each minute's count within the minute (see convert.ts).
// The invocation file is streamed row by row; only the rows selected and the minutes of the
// window are parsed into numbers, so a full upstream day (~46k functions, ~130 MB) reads in one
// pass in bounded memory. The header decides the layout, so both this sample (HashFunction,
// HashOwner, HashApp, minute_1…) and the upstream files (HashOwner, HashApp, HashFunction,
// Trigger, 1…1440) load.
import { derivedMeta, newMeta, rateSeries, type RateSeries } from "./arrival-trace.js";
import { COMMA, forEachLine, parseNumber, splitFields } from "./line-reader.js";

export const MINUTE_MS = 60_000;

export interface AzureFunction {
  /** HashFunction of the row. */
  hash: string;
  /** 0-based data row in the file. */
  row: number;
  /** Invocations per minute over the loaded window. */
  counts: Int32Array;
  /** Sum of `counts`. */
  total: number;
}

export interface AzureFunctionsTrace {
  file: string;
  /** First loaded minute, 0-based (minute_1 of the file is 0). */
  firstMinute: number;
  /** Minutes loaded per function. */
  minutes: number;
  /** Data rows in the file. */
  rows: number;
  /** The selected functions: busiest first for `top`, in the order asked for `hashes`/`rows`, else file order. */
  functions: AzureFunction[];
}

export interface AzureWindow {
  /** 0-based first minute (default 0). */
  firstMinute?: number;
  /** Number of minutes (default: to the end of the file). */
  minutes?: number;
}

export interface AzureSelectOptions extends AzureWindow {
  /** Functions by HashFunction, or by a prefix that names exactly one function. */
  hashes?: string[];
  /** Functions by 0-based data row. */
  rows?: number[];
  /** The N functions with the most invocations in the window (ties: earlier row first). */
  top?: number;
}

interface Layout {
  hashCol: number;
  minuteCol: number;
  minuteCount: number;
}

function parseHeader(fields: string[], file: string): Layout {
  const isMinute = (f: string) => /^(minute_)?\d+$/.test(f);
  const minuteCol = fields.findIndex(isMinute);
  if (minuteCol < 0) throw new Error(`${file}: no minute columns in the header (expected minute_1… or 1…)`);
  let minuteCount = 0;
  while (minuteCol + minuteCount < fields.length && isMinute(fields[minuteCol + minuteCount]!)) minuteCount++;
  const hashCol = fields.indexOf("HashFunction");
  return { hashCol: hashCol >= 0 ? hashCol : 0, minuteCol, minuteCount };
}

/**
 * One pass over the invocation file. `want(hash, row)` says whether a row's minutes are needed;
 * `onRow` gets the parsed window in a scratch array that is reused for the next row.
 */
function scanInvocations(
  file: string,
  window: AzureWindow,
  want: (hash: string, row: number) => boolean,
  onRow: (hash: string, row: number, counts: Int32Array, total: number) => void,
): { layout: Layout; first: number; minutes: number; rows: number } {
  let layout: Layout | undefined;
  let first = 0;
  let minutes = 0;
  let scratch = new Int32Array(0);
  let rows = 0;
  forEachLine(file, (buf, start, end, lineNo) => {
    if (lineNo === 0) {
      layout = parseHeader(splitFields(buf, start, end), file);
      first = window.firstMinute ?? 0;
      minutes = window.minutes ?? layout.minuteCount - first;
      if (!(
        Number.isInteger(first) &&
        first >= 0 &&
        Number.isInteger(minutes) &&
        minutes >= 0 &&
        first + minutes <= layout.minuteCount
      )) {
        throw new Error(`${file}: minute window ${first}+${minutes} outside the file's ${layout.minuteCount} minutes`);
      }
      scratch = new Int32Array(minutes);
      return;
    }
    if (end === start) return;
    const L = layout!;
    const row = rows++;
    const colA = L.minuteCol + first;
    const colB = colA + minutes;
    let hash = "";
    let field = 0;
    let fs = start;
    let total = 0;
    let wanted: boolean | undefined;
    for (let i = start; i <= end; i++) {
      if (i < end && buf[i] !== COMMA) continue;
      if (field === L.hashCol) {
        hash = buf.toString("latin1", fs, i);
        wanted = want(hash, row);
        if (!wanted) return;
      } else if (field >= colA && field < colB) {
        let v = 0;
        let ok = i > fs;
        for (let j = fs; j < i; j++) {
          const c = buf[j]!;
          if (c >= 48 && c <= 57) v = v * 10 + (c - 48);
          else {
            ok = false;
            break;
          }
        }
        if (!ok) {
          v = parseNumber(buf, fs, i);
          if (!Number.isInteger(v) || v < 0)
            throw new Error(
              `${file}: row ${row + 1}, minute ${field - L.minuteCol + 1}: not a count: "${buf.toString("latin1", fs, i)}"`,
            );
        }
        scratch[field - colA] = v;
        total += v;
      }
      field++;
      fs = i + 1;
      if (field >= colB && wanted !== undefined) break;
    }
    if (field < colB) throw new Error(`${file}: row ${row + 1} has ${field} fields, needs ${colB}`);
    onRow(hash, row, scratch, total);
  });
  if (!layout) throw new Error(`${file}: empty file`);
  return { layout, first, minutes, rows };
}

/** Selected functions' per-minute counts (all functions when nothing is selected). */
export function loadAzureFunctions(file: string, opts: AzureSelectOptions = {}): AzureFunctionsTrace {
  const { hashes, rows, top } = opts;
  const modes = [hashes, rows, top].filter((x) => x !== undefined).length;
  if (modes > 1) throw new Error("select functions by one of hashes, rows or top");
  if (top !== undefined && !(Number.isInteger(top) && top >= 0))
    throw new Error(`top must be an integer >= 0, got ${top}`);
  const rowSet = rows ? new Set(rows) : undefined;
  const matches = new Map<string, AzureFunction[]>();
  const picked: AzureFunction[] = [];
  let minIdx = -1;
  const keep = (hash: string, row: number, counts: Int32Array, total: number): AzureFunction => ({
    hash,
    row,
    counts: counts.slice(),
    total,
  });
  const want = (hash: string, row: number) =>
    hashes ? hashes.some((h) => hash.startsWith(h)) : rowSet ? rowSet.has(row) : true;
  const scan = scanInvocations(file, opts, want, (hash, row, counts, total) => {
    if (hashes) {
      const fn = keep(hash, row, counts, total);
      for (const h of hashes) if (hash.startsWith(h)) matches.set(h, [...(matches.get(h) ?? []), fn]);
    } else if (top !== undefined) {
      if (top === 0) return;
      // Bounded selection: replace the current minimum only when strictly busier (earlier rows win ties).
      if (picked.length < top) {
        picked.push(keep(hash, row, counts, total));
        if (picked.length === top) minIdx = argMin(picked);
      } else if (total > picked[minIdx]!.total) {
        picked[minIdx] = keep(hash, row, counts, total);
        minIdx = argMin(picked);
      }
    } else picked.push(keep(hash, row, counts, total));
  });
  let functions: AzureFunction[];
  if (hashes) {
    functions = hashes.map((h) => {
      const m = matches.get(h) ?? [];
      if (m.length !== 1)
        throw new Error(`${file}: "${h}" matches ${m.length} functions; give a longer prefix or the full hash`);
      return m[0]!;
    });
  } else if (rows) {
    const byRow = new Map(picked.map((f) => [f.row, f]));
    functions = rows.map((r) => {
      const f = byRow.get(r);
      if (!f) throw new Error(`${file}: no data row ${r} (the file has ${scan.rows})`);
      return f;
    });
  } else if (top !== undefined) functions = picked.sort((a, b) => b.total - a.total || a.row - b.row);
  else functions = picked;
  return { file, firstMinute: scan.first, minutes: scan.minutes, rows: scan.rows, functions };
}

function argMin(fns: AzureFunction[]): number {
  let m = 0;
  for (let i = 1; i < fns.length; i++) {
    const a = fns[i]!;
    const b = fns[m]!;
    if (a.total < b.total || (a.total === b.total && a.row > b.row)) m = i;
  }
  return m;
}

/** Invocations per minute summed over every function of the file, in one streaming pass. */
export function azureAggregateSeries(file: string, window: AzureWindow = {}): RateSeries {
  let sum = new Float64Array(0);
  const scan = scanInvocations(
    file,
    window,
    () => true,
    (_h, _r, counts) => {
      if (sum.length !== counts.length) sum = new Float64Array(counts.length);
      for (let i = 0; i < counts.length; i++) sum[i]! += counts[i]!;
    },
  );
  if (sum.length !== scan.minutes) sum = new Float64Array(scan.minutes);
  return rateSeries(
    sum,
    MINUTE_MS,
    newMeta(file, {
      offsetS: scan.first * 60,
      history: [`sum of ${scan.rows} functions, minutes ${scan.first}+${scan.minutes}`],
    }),
  );
}

/** One function's (or several functions' summed) per-minute counts as a series. */
export function azureFunctionSeries(
  trace: AzureFunctionsTrace,
  fns: AzureFunction | ReadonlyArray<AzureFunction>,
): RateSeries {
  const list = Array.isArray(fns) ? (fns as ReadonlyArray<AzureFunction>) : [fns as AzureFunction];
  const counts = new Float64Array(trace.minutes);
  for (const f of list) for (let i = 0; i < counts.length; i++) counts[i]! += f.counts[i]!;
  const what =
    list.length === 1
      ? `function ${list[0]!.hash.slice(0, 12)} (row ${list[0]!.row})`
      : `sum of ${list.length} functions`;
  return rateSeries(counts, MINUTE_MS, derivedMeta(newMeta(trace.file, { offsetS: trace.firstMinute * 60 }), what));
}

/** The derived `aggregate_per_minute_*.csv` (minute, total_invocations, active_functions). */
export function loadAzureAggregate(file: string): { series: RateSeries; activeFunctions: Int32Array } {
  const totals: number[] = [];
  const active: number[] = [];
  let cols: string[] = [];
  forEachLine(file, (buf, start, end, lineNo) => {
    if (lineNo === 0) {
      cols = splitFields(buf, start, end);
      if (cols.indexOf("total_invocations") < 0) throw new Error(`${file}: no total_invocations column`);
      return;
    }
    if (end === start) return;
    const f = splitFields(buf, start, end);
    totals.push(Number(f[cols.indexOf("total_invocations")]));
    active.push(Number(f[cols.indexOf("active_functions")] ?? NaN));
  });
  if (totals.some((x) => !(x >= 0))) throw new Error(`${file}: a total_invocations value is not a count`);
  return { series: rateSeries(totals, MINUTE_MS, newMeta(file)), activeFunctions: Int32Array.from(active) };
}

/**
 * A small keyed CSV (the durations and memory files) as key → numeric columns. Durations are keyed
 * by HashFunction (ms: Average, Count, Minimum, Maximum, percentile_Average_*); memory by HashApp
 * (MB: SampleCount, AverageAllocatedMb, AverageAllocatedMb_pct*). Non-numeric columns are dropped.
 */
export function loadAzureKeyedCsv(
  file: string,
  keyColumn: "HashFunction" | "HashApp" | "HashOwner",
): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  let cols: string[] = [];
  let key = -1;
  forEachLine(file, (buf, start, end, lineNo) => {
    if (lineNo === 0) {
      cols = splitFields(buf, start, end);
      key = cols.indexOf(keyColumn);
      if (key < 0) throw new Error(`${file}: no ${keyColumn} column`);
      return;
    }
    if (end === start) return;
    const f = splitFields(buf, start, end);
    const rec: Record<string, number> = {};
    cols.forEach((c, i) => {
      if (c.startsWith("Hash") || c === "Trigger") return;
      rec[c] = Number(f[i]);
    });
    out.set(f[key]!, rec);
  });
  return out;
}

export const loadAzureDurations = (file: string) => loadAzureKeyedCsv(file, "HashFunction");
export const loadAzureMemory = (file: string) => loadAzureKeyedCsv(file, "HashApp");
