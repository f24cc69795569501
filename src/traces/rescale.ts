// Fitting a trace's load to the capacity under test. The papers divide each per-second count by a
// constant (IPA: integer division by 8; Themis: ÷4.384 etc., at least 1 req/s), which keeps the
// trace's shape; the alternative is a target mean rate. Series are rescaled per bin; arrival
// traces by independent thinning (keeps a Poisson stream Poisson) or by stretching time.
import { derivedMeta, inGap, type ArrivalTrace, type Column, type RateSeries } from "./arrival-trace.js";
import { Mulberry32 } from "../stats/random.js";
import { arrivalMeanRate, seriesMeanRate } from "./stats.js";

export type Rounding = "floor" | "round" | "none";

export interface DivideOptions {
  /** floor = the papers' integer division (default); none keeps fractional rates. */
  rounding?: Rounding;
  /** Lower bound on the rate after scaling, in events per second (Themis: 1). Gap bins stay 0. */
  minRate?: number;
}

/** Every bin divided by `k` (÷k like the papers). */
export function divideCounts(series: RateSeries, k: number, opts: DivideOptions = {}): RateSeries {
  if (!(k > 0)) throw new Error(`divisor must be > 0, got ${k}`);
  return scaleBins(series, (c) => c / k, opts.rounding ?? "floor", opts.minRate, `÷${k}`);
}

export interface TargetRateOptions {
  rounding?: Rounding;
  minRate?: number;
}

/**
 * The series multiplied so that its mean rate (events/s over the bins that are not gaps) becomes
 * `ratePerS` before rounding. With rounding the mean lands near, not exactly on, the target.
 */
export function scaleToMeanRate(series: RateSeries, ratePerS: number, opts: TargetRateOptions = {}): RateSeries {
  if (!(ratePerS >= 0)) throw new Error(`target rate must be >= 0, got ${ratePerS}`);
  const mean = seriesMeanRate(series);
  if (!(mean > 0)) throw new Error("cannot rescale a series with no events to a positive rate");
  const factor = ratePerS / mean;
  return scaleBins(series, (c) => c * factor, opts.rounding ?? "none", opts.minRate, `→ mean ${ratePerS}/s`);
}

function scaleBins(
  series: RateSeries,
  scale: (count: number) => number,
  rounding: Rounding,
  minRate: number | undefined,
  label: string,
): RateSeries {
  const minPerBin = minRate === undefined ? -Infinity : (minRate * series.binMs) / 1000;
  const out = new Float64Array(series.counts.length);
  const roundFn = rounding === "floor" ? Math.floor : rounding === "round" ? Math.round : (x: number) => x;
  for (let i = 0; i < out.length; i++) {
    if (inGap(series.gaps, i)) continue;
    // Division, not multiplication by 1/k: int(x / k) is what the papers' Python computed.
    const v = roundFn(scale(series.counts[i]!));
    out[i] = Math.max(v, minPerBin);
  }
  const parts = [label, rounding === "none" ? "" : rounding, minRate === undefined ? "" : `min ${minRate}/s`].filter(
    Boolean,
  );
  const result: RateSeries = { counts: out, binMs: series.binMs, meta: derivedMeta(series.meta, parts.join(" ")) };
  if (series.gaps) result.gaps = series.gaps.map(([s, e]) => [s, e]);
  return result;
}

/** Each request kept independently with probability `keep` (seeded). */
export function thinArrivals(trace: ArrivalTrace, keep: number, seed = 1): ArrivalTrace {
  if (!(keep >= 0 && keep <= 1)) throw new Error(`keep probability must be in [0, 1], got ${keep}`);
  const rng = new Mulberry32(seed);
  const idx: number[] = [];
  for (let i = 0; i < trace.times.length; i++) if (rng.next() < keep) idx.push(i);
  const pick = <T extends Column>(src: T, make: (n: number) => T): T => {
    const out = make(idx.length);
    for (let j = 0; j < idx.length; j++) out[j] = src[idx[j]!]!;
    return out;
  };
  const out: ArrivalTrace = {
    times: pick(trace.times, (n) => new Float64Array(n)),
    durationMs: trace.durationMs,
    meta: derivedMeta(trace.meta, `thinned to ${keep} (seed ${seed})`),
  };
  if (trace.budgetsMs) out.budgetsMs = pick(trace.budgetsMs, (n) => new Float64Array(n));
  if (trace.columns) {
    const cols: Record<string, Column> = {};
    for (const [k, v] of Object.entries(trace.columns))
      cols[k] = pick(v, (n) => (v instanceof Int32Array ? new Int32Array(n) : new Float64Array(n)) as Column);
    out.columns = cols;
  }
  if (trace.gaps) out.gaps = trace.gaps.map(([s, e]) => [s, e]);
  return out;
}

/** Time multiplied by `factor`: rate ÷ factor, the same requests in the same order, a longer trace. */
export function stretchTime(trace: ArrivalTrace, factor: number): ArrivalTrace {
  if (!(factor > 0)) throw new Error(`stretch factor must be > 0, got ${factor}`);
  const times = new Float64Array(trace.times.length);
  for (let i = 0; i < times.length; i++) times[i] = trace.times[i]! * factor;
  const out: ArrivalTrace = {
    ...trace,
    times,
    durationMs: trace.durationMs * factor,
    meta: derivedMeta(trace.meta, `time ×${factor}`),
  };
  if (trace.gaps) out.gaps = trace.gaps.map(([s, e]) => [s * factor, e * factor]);
  return out;
}

export interface RescaleArrivalsOptions {
  /** Thin (default; can only lower the rate, keeps the duration) or stretch time (either way, changes the duration). */
  method?: "thin" | "time";
  seed?: number;
}

/** Arrivals rescaled to a target mean rate (requests/s). */
export function rescaleArrivals(
  trace: ArrivalTrace,
  ratePerS: number,
  opts: RescaleArrivalsOptions = {},
): ArrivalTrace {
  const mean = arrivalMeanRate(trace);
  if (!(mean > 0)) throw new Error("cannot rescale a trace with no arrivals");
  const method = opts.method ?? "thin";
  if (method === "time") return stretchTime(trace, mean / ratePerS);
  if (ratePerS > mean)
    throw new Error(`thinning cannot raise the rate from ${mean.toFixed(3)}/s to ${ratePerS}/s; use method "time"`);
  return thinArrivals(trace, ratePerS / mean, opts.seed);
}
