// Synthetic arrival traces: a rate shape (constant, step, ramp, diurnal, or any series) combined
// with a burstiness (CV² of inter-arrival times: 1 = Poisson, > 1 burstier, < 1 smoother), all
// from one seed. One mechanism serves every shape: a gamma renewal process with unit mean is laid
// out in "operational time" Λ(t) = ∫ rate, and each point is mapped back to wall time through
// Λ⁻¹. For CV² = 1 this is exactly a (non-homogeneous) Poisson process; for other CV² it is the
// standard time-changed renewal process, so a ramp keeps its burstiness all along the ramp.
import { Float64Builder, newMeta, rateSeries, type ArrivalTrace, type RateSeries } from "./arrival-trace.js";
import { Mulberry32 } from "../stats/random.js";

/** Requests per second at time t (seconds since the trace start). */
export type RateFn = ((tS: number) => number) & { label?: string };

function labelled(fn: (tS: number) => number, label: string): RateFn {
  return Object.assign(fn, { label });
}

export function constantRate(rate: number): RateFn {
  return labelled(() => rate, `constant ${rate}/s`);
}

/** `before` until atS, then `after`. */
export function stepRate(o: { before: number; after: number; atS: number }): RateFn {
  return labelled((t) => (t < o.atS ? o.before : o.after), `step ${o.before}→${o.after}/s at ${o.atS} s`);
}

/** Piecewise constant: each level holds from its fromS until the next one (levels sorted by fromS, the first at 0). */
export function piecewiseRate(levels: ReadonlyArray<{ fromS: number; rate: number }>): RateFn {
  if (levels.length === 0) throw new Error("piecewiseRate needs at least one level");
  const from = levels.map((l) => l.fromS);
  const rates = levels.map((l) => l.rate);
  return labelled(
    (t) => {
      let i = 0;
      while (i + 1 < from.length && t >= from[i + 1]!) i++;
      return rates[i]!;
    },
    `piecewise ${levels.map((l) => `${l.rate}@${l.fromS}s`).join(" ")}`,
  );
}

/** `from` until startS, linear to `to` at endS, then `to`. */
export function rampRate(o: { from: number; to: number; startS: number; endS: number }): RateFn {
  if (!(o.endS > o.startS)) throw new Error("ramp needs endS > startS");
  const slope = (o.to - o.from) / (o.endS - o.startS);
  return labelled(
    (t) => (t <= o.startS ? o.from : t >= o.endS ? o.to : o.from + slope * (t - o.startS)),
    `ramp ${o.from}→${o.to}/s over ${o.startS}–${o.endS} s`,
  );
}

/** mean·(1 + amplitude·cos(2π(t − peakS)/periodS)): a daily cycle peaking at peakS (default: mid-period). */
export function diurnalRate(o: { mean: number; amplitude: number; periodS?: number; peakS?: number }): RateFn {
  const period = o.periodS ?? 86_400;
  const peak = o.peakS ?? period / 2;
  if (!(o.amplitude >= 0 && o.amplitude <= 1))
    throw new Error(`diurnal amplitude must be in [0, 1], got ${o.amplitude}`);
  const w = (2 * Math.PI) / period;
  return labelled(
    (t) => o.mean * (1 + o.amplitude * Math.cos(w * (t - peak))),
    `diurnal mean ${o.mean}/s ±${o.amplitude * 100}% period ${period} s`,
  );
}

/** The rate a count series records, constant within each bin. */
export function seriesRate(series: RateSeries): RateFn {
  const binS = series.binMs / 1000;
  const n = series.counts.length;
  return labelled((t) => {
    const i = Math.floor(t / binS);
    return i >= 0 && i < n ? series.counts[i]! / binS : 0;
  }, `rate of ${series.meta.source}`);
}

export interface GenerateOptions {
  /** Requests per second: a constant or a shape. */
  rate: number | RateFn;
  durationS: number;
  seed: number;
  /** Squared coefficient of variation of the inter-arrival times (1 = Poisson). */
  cv2?: number;
  /** Width of the cells over which a time-varying rate is taken as constant (its value at the cell's middle); default 10 ms. */
  resolutionMs?: number;
}

export function generateArrivals(o: GenerateOptions): ArrivalTrace {
  const cv2 = o.cv2 ?? 1;
  if (!(cv2 > 0)) throw new Error(`cv2 must be > 0, got ${cv2}`);
  if (!(o.durationS >= 0)) throw new Error(`durationS must be >= 0, got ${o.durationS}`);
  const rng = new Mulberry32(o.seed);
  const shape = 1 / cv2;
  // Unit-mean gaps in operational time; CV² = 1 takes the exponential directly (same law, cheaper).
  const gap = cv2 === 1 ? () => rng.exponential() : () => rng.gamma(shape) * cv2;
  // The first point from the renewal process's equilibrium law (U·Gamma(k+1)·θ), so that the
  // stream is stationary from t = 0 rather than starting with a fresh gap.
  let u = rng.next() * rng.gamma(shape + 1) * cv2;
  const durationMs = o.durationS * 1000;
  const label = typeof o.rate === "number" ? `constant ${o.rate}/s` : (o.rate.label ?? "custom rate");
  let out: Float64Builder;
  if (typeof o.rate === "number") {
    const perMs = o.rate / 1000;
    if (!(perMs >= 0)) throw new Error(`rate must be >= 0, got ${o.rate}`);
    out = new Float64Builder(perMs * durationMs * 1.05 + 64);
    if (perMs > 0) {
      for (let t = u / perMs; t < durationMs; u += gap(), t = u / perMs) out.push(t);
    }
  } else {
    const rate = o.rate;
    const dt = o.resolutionMs ?? 10;
    if (!(dt > 0)) throw new Error(`resolutionMs must be > 0, got ${dt}`);
    out = new Float64Builder(1024);
    let cum = 0; // Λ at the start of the current cell
    for (let start = 0; start < durationMs; start += dt) {
      const end = Math.min(durationMs, start + dt);
      const perMs = rate((start + end) / 2000) / 1000;
      if (!(perMs >= 0) || !Number.isFinite(perMs))
        throw new Error(`rate at ${(start + end) / 2000} s is ${perMs * 1000}; rates must be finite and >= 0`);
      const next = cum + perMs * (end - start);
      while (u < next) {
        out.push(start + (u - cum) / perMs);
        u += gap();
      }
      cum = next;
    }
  }
  return {
    times: out.finish(),
    durationMs,
    meta: newMeta(`synthetic: ${label}, CV² ${cv2}, ${o.durationS} s, seed ${o.seed}`),
  };
}

export function poissonArrivals(ratePerS: number, durationS: number, seed: number): ArrivalTrace {
  return generateArrivals({ rate: ratePerS, durationS, seed });
}

export function gammaArrivals(ratePerS: number, cv2: number, durationS: number, seed: number): ArrivalTrace {
  return generateArrivals({ rate: ratePerS, durationS, seed, cv2 });
}

/** The expected count per bin of a rate shape (no randomness): what a chart of the shape shows. */
export function expectedCounts(rate: number | RateFn, durationS: number, binS = 1, resolutionMs = 10): RateSeries {
  const fn = typeof rate === "number" ? constantRate(rate) : rate;
  const bins = Math.ceil(durationS / binS - 1e-9);
  const counts = new Float64Array(bins);
  const durationMs = durationS * 1000;
  for (let start = 0; start < durationMs; start += resolutionMs) {
    const end = Math.min(durationMs, start + resolutionMs);
    const b = Math.min(bins - 1, Math.floor(start / (binS * 1000)));
    counts[b]! += (fn((start + end) / 2000) * (end - start)) / 1000;
  }
  return rateSeries(counts, binS * 1000, newMeta(`expected counts: ${fn.label ?? "custom rate"}`));
}
