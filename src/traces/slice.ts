// Time windows of traces. Windows are named in seconds of the trace being sliced (the papers name
// theirs that way: "Twitter seconds 1,301,160–1,302,360"); the result starts at time 0 again and
// its meta.offsetS says where it came from.
import { derivedMeta, type ArrivalTrace, type Column, type RateSeries } from "./arrival-trace.js";

export interface Window {
  startS: number;
  /** End of the window (exclusive); give this or durationS; neither = to the end. */
  endS?: number;
  durationS?: number;
}

function windowEndS(w: Window, totalS: number): number {
  if (w.endS !== undefined && w.durationS !== undefined) throw new Error("give endS or durationS, not both");
  const end = w.endS ?? (w.durationS !== undefined ? w.startS + w.durationS : totalS);
  if (!(w.startS >= 0) || !(end >= w.startS)) throw new Error(`bad window ${w.startS}..${end} s`);
  return Math.min(end, totalS);
}

/** Bins of [startS, endS), as a view of the counts (no copy). Window edges must fall on bin edges. */
export function sliceSeries(series: RateSeries, w: Window): RateSeries {
  const binS = series.binMs / 1000;
  const totalS = series.counts.length * binS;
  const endS = windowEndS(w, totalS);
  const first = w.startS / binS;
  const last = endS / binS;
  const eps = 1e-9;
  if (Math.abs(first - Math.round(first)) > eps || (endS < totalS && Math.abs(last - Math.round(last)) > eps)) {
    throw new Error(`window ${w.startS}..${endS} s does not fall on ${binS}-s bin edges; slice the arrivals instead`);
  }
  const a = Math.min(series.counts.length, Math.round(first));
  const b = Math.min(series.counts.length, Math.max(a, Math.ceil(last - eps)));
  const out: RateSeries = {
    counts: series.counts.subarray(a, b),
    binMs: series.binMs,
    meta: derivedMeta(series.meta, `slice ${w.startS}+${endS - w.startS} s`, {
      offsetS: series.meta.offsetS + w.startS,
    }),
  };
  const gaps = clip(series.gaps, a, b);
  if (gaps.length) out.gaps = gaps;
  return out;
}

/** Arrivals in [startS, endS), times shifted so that startS becomes 0; per-request columns follow. */
export function sliceArrivals(trace: ArrivalTrace, w: Window): ArrivalTrace {
  const endS = windowEndS(w, Math.max(trace.durationMs / 1000, w.startS));
  const startMs = w.startS * 1000;
  const endMs = endS * 1000;
  const a = lowerBound(trace.times, startMs);
  const b = lowerBound(trace.times, endMs);
  const times = new Float64Array(b - a);
  for (let i = a; i < b; i++) times[i - a] = trace.times[i]! - startMs;
  const out: ArrivalTrace = {
    times,
    durationMs: endMs - startMs,
    meta: derivedMeta(trace.meta, `slice ${w.startS}+${endS - w.startS} s`, { offsetS: trace.meta.offsetS + w.startS }),
  };
  if (trace.budgetsMs) out.budgetsMs = trace.budgetsMs.slice(a, b);
  if (trace.columns) {
    const cols: Record<string, Column> = {};
    for (const [k, v] of Object.entries(trace.columns)) cols[k] = v.slice(a, b);
    out.columns = cols;
  }
  const gaps = clip(trace.gaps, startMs, endMs);
  if (gaps.length) out.gaps = gaps;
  return out;
}

/** Index of the first element >= x in an ascending array. */
export function lowerBound(sorted: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Ranges intersected with [a, b) and shifted by −a. */
function clip(
  ranges: ReadonlyArray<readonly [number, number]> | undefined,
  a: number,
  b: number,
): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [s, e] of ranges ?? []) {
    const s2 = Math.max(s, a);
    const e2 = Math.min(e, b);
    if (e2 > s2) out.push([s2 - a, e2 - a]);
  }
  return out;
}
