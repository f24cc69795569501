// Summary numbers of traces, for tests, result tables and choosing a rescale factor. Gaps
// (missing data) are left out everywhere: an unrecorded half hour is not an idle half hour.
import { inGap, type ArrivalTrace, type RateSeries } from "./arrival-trace.js";

/** Mean arrival rate (requests/s) over the trace's duration, gaps excluded. */
export function arrivalMeanRate(trace: ArrivalTrace): number {
  let gapMs = 0;
  for (const [s, e] of trace.gaps ?? []) gapMs += e - s;
  const spanMs = trace.durationMs - gapMs;
  return spanMs > 0 ? trace.times.length / (spanMs / 1000) : 0;
}

/** Mean events per second over the bins that are not gaps. */
export function seriesMeanRate(series: RateSeries): number {
  const s = seriesStats(series);
  return s.bins === 0 ? 0 : s.mean / (series.binMs / 1000);
}

export interface SeriesStats {
  /** Bins counted (gaps excluded). */
  bins: number;
  total: number;
  /** Mean count per bin. */
  mean: number;
  /** Coefficient of variation of the counts per bin. */
  cv: number;
  peak: number;
}

export function seriesStats(series: RateSeries): SeriesStats {
  let n = 0;
  let sum = 0;
  let sq = 0;
  let peak = 0;
  for (let i = 0; i < series.counts.length; i++) {
    if (inGap(series.gaps, i)) continue;
    const c = series.counts[i]!;
    n++;
    sum += c;
    sq += c * c;
    if (c > peak) peak = c;
  }
  const mean = n ? sum / n : 0;
  const variance = n > 1 ? (sq - n * mean * mean) / (n - 1) : 0;
  return { bins: n, total: sum, mean, cv: mean > 0 ? Math.sqrt(Math.max(0, variance)) / mean : 0, peak };
}

/** Squared coefficient of variation of the gaps between consecutive arrivals (1 for Poisson). */
export function interArrivalCv2(times: ArrayLike<number>): number {
  const n = times.length - 1;
  if (n < 2) return NaN;
  let sum = 0;
  let sq = 0;
  for (let i = 1; i < times.length; i++) {
    const d = times[i]! - times[i - 1]!;
    sum += d;
    sq += d * d;
  }
  const mean = sum / n;
  const variance = (sq - n * mean * mean) / (n - 1);
  return variance / (mean * mean);
}
