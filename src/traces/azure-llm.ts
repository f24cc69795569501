// Azure LLM Inference Trace 2023 (shared/traces/azure-llm-2023, see its SOURCE.md): one row per
// request, `TIMESTAMP,ContextTokens,GeneratedTokens`, the timestamp as `YYYY-MM-DD HH:MM:SS.fffffff`
// (UTC, sorted). Loaded as an ArrivalTrace whose time 0 is the first request (or a given instant),
// with the token counts as per-request columns. Because the file is sorted, a window stops the
// read at its end.
import { Float64Builder, newMeta, type ArrivalTrace } from "./arrival-trace.js";
import { COMMA, forEachLine, splitFields } from "./line-reader.js";

export interface AzureLlmOptions {
  /** Keep requests from this many seconds after time 0 (default 0)… */
  startS?: number;
  /** …until this many seconds after time 0 (exclusive; default: all). */
  endS?: number;
  /** Time 0 as ms since the epoch (default: the first request of the file). */
  originEpochMs?: number;
}

/** Requests with context/generated token counts (-1 where a column is missing); times in ms from time 0 (window start rebased to 0). */
export function loadAzureLlmTrace(file: string, opts: AzureLlmOptions = {}): ArrivalTrace {
  const startMs = (opts.startS ?? 0) * 1000;
  const endMs = opts.endS === undefined ? Infinity : opts.endS * 1000;
  if (!(endMs >= startMs)) throw new Error(`bad window ${opts.startS}..${opts.endS} s`);
  let origin: SplitTime | undefined =
    opts.originEpochMs === undefined
      ? undefined
      : { wholeMs: Math.floor(opts.originEpochMs), fracMs: opts.originEpochMs - Math.floor(opts.originEpochMs) };
  const split: SplitTime = { wholeMs: 0, fracMs: 0 };
  const times = new Float64Builder(1 << 14);
  const ctx: number[] = [];
  const gen: number[] = [];
  let cols = { ts: 0, ctx: 1, gen: 2 };
  let prev = -Infinity;
  let lastRel = -1;
  const dayCache = { key: "", ms: 0 };
  forEachLine(file, (buf, start, end, lineNo) => {
    if (lineNo === 0) {
      const h = splitFields(buf, start, end);
      cols = { ts: h.indexOf("TIMESTAMP"), ctx: h.indexOf("ContextTokens"), gen: h.indexOf("GeneratedTokens") };
      if (cols.ts < 0) throw new Error(`${file}: no TIMESTAMP column in the header`);
      return;
    }
    if (end === start) return;
    let field = 0;
    let fs = start;
    let t = NaN;
    let c = -1;
    let g = -1;
    for (let i = start; i <= end; i++) {
      if (i < end && buf[i] !== COMMA) continue;
      if (field === cols.ts) t = parseTimestampMs(buf, fs, i, dayCache, split);
      else if (field === cols.ctx) c = parseUint(buf, fs, i);
      else if (field === cols.gen) g = parseUint(buf, fs, i);
      field++;
      fs = i + 1;
    }
    if (Number.isNaN(t))
      throw new Error(`${file}: line ${lineNo + 1}: bad timestamp "${buf.toString("latin1", start, end)}"`);
    if (t < prev) throw new Error(`${file}: line ${lineNo + 1}: timestamps are not sorted`);
    prev = t;
    origin ??= { ...split };
    const rel = split.wholeMs - origin.wholeMs + (split.fracMs - origin.fracMs);
    lastRel = rel;
    if (rel >= endMs) return false;
    if (rel < startMs) return;
    times.push(rel - startMs);
    ctx.push(c);
    gen.push(g);
  });
  // Without an explicit end, the trace runs to the end of the second of its last request.
  const lastMs = times.length ? lastRel - startMs : -1;
  const durationMs = Number.isFinite(endMs) ? endMs - startMs : (Math.floor(lastMs / 1000) + 1) * 1000;
  const history = opts.startS || opts.endS !== undefined ? [`window ${opts.startS ?? 0}–${opts.endS ?? "end"} s`] : [];
  const trace: ArrivalTrace = {
    times: times.finish(),
    durationMs,
    columns: { contextTokens: Int32Array.from(ctx), generatedTokens: Int32Array.from(gen) },
    meta: newMeta(file, {
      offsetS: opts.startS ?? 0,
      history,
      ...(origin !== undefined ? { startEpochMs: origin.wholeMs + origin.fracMs + startMs } : {}),
    }),
  };
  return trace;
}

function parseUint(buf: Uint8Array, start: number, end: number): number {
  let v = 0;
  if (start === end) return -1;
  for (let i = start; i < end; i++) {
    const c = buf[i]! - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** Whole ms since the epoch and the sub-ms rest, kept apart: at ~1.7e12 ms a double cannot hold the trace's 100-ns digits. */
export interface SplitTime {
  wholeMs: number;
  fracMs: number;
}

/** `YYYY-MM-DD HH:MM:SS[.f…]` (or with a `T`) as ms since the epoch, UTC; NaN if malformed. */
export function parseTimestampMs(
  buf: Uint8Array,
  start: number,
  end: number,
  cache = { key: "", ms: 0 },
  split?: SplitTime,
): number {
  if (end - start < 19) return NaN;
  const d = (i: number) => {
    const c = buf[start + i]! - 48;
    return c >= 0 && c <= 9 ? c : NaN;
  };
  const key = String.fromCharCode(...buf.subarray(start, start + 10));
  if (key !== cache.key) {
    const y = d(0) * 1000 + d(1) * 100 + d(2) * 10 + d(3);
    const mo = d(5) * 10 + d(6);
    const day = d(8) * 10 + d(9);
    cache.key = key;
    cache.ms = Date.UTC(y, mo - 1, day);
  }
  const h = d(11) * 10 + d(12);
  const mi = d(14) * 10 + d(15);
  const s = d(17) * 10 + d(18);
  let frac = 0;
  let scale = 1;
  if (end - start > 19) {
    if (buf[start + 19] !== 46) return NaN;
    for (let i = start + 20; i < end; i++) {
      const c = buf[i]! - 48;
      if (c < 0 || c > 9) return NaN;
      frac = frac * 10 + c;
      scale *= 10;
    }
  }
  const wholeSecMs = cache.ms + ((h * 60 + mi) * 60 + s) * 1000;
  const fracMs = (frac / scale) * 1000;
  if (split) {
    const ms = Math.floor(fracMs);
    split.wholeMs = wholeSecMs + ms;
    split.fracMs = fracMs - ms;
  }
  return wholeSecMs + fracMs;
}
