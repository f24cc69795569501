// The simple forecaster: the maximum of the last `maxWindow` seconds plus a non-negative linear
// trend term. Defaults and why:
// - maxWindow = 10 s = the forecast horizon. On a stationary series the max of the last 10 s has
//   the same distribution as the max of the next 10 s, so it is an unbiased guess of the target;
//   a shorter window systematically under-predicts the max, a longer one over-provisions.
// - trend = least-squares slope over the whole history (up to 60 s) × horizonShift, clipped at
//   ≥ 0: a rising load raises the forecast by how much the rate grows between the last 10 s and
//   the next 10 s (their midpoints are horizonShift = 10 s apart); a falling load is not
//   extrapolated downwards, so the forecaster never scales in ahead of the data.
import { HISTORY_SECONDS, HORIZON_SECONDS, type Forecaster } from "./types.js";

export interface MaxTrendOptions {
  /** Seconds whose maximum is the base of the forecast (default 10). */
  maxWindow?: number;
  /** Seconds of history the slope is fitted on (default 60). */
  trendWindow?: number;
  /** The slope (per s) is multiplied by this many seconds (default 10, the horizon). */
  horizonShift?: number;
}

export class MaxTrendForecaster implements Forecaster {
  readonly name = "max-trend";
  readonly maxWindow: number;
  readonly trendWindow: number;
  readonly horizonShift: number;

  constructor(opts: MaxTrendOptions = {}) {
    this.maxWindow = opts.maxWindow ?? HORIZON_SECONDS;
    this.trendWindow = opts.trendWindow ?? HISTORY_SECONDS;
    this.horizonShift = opts.horizonShift ?? HORIZON_SECONDS;
    if (!(this.maxWindow >= 1 && this.trendWindow >= 2 && this.horizonShift >= 0)) {
      throw new Error(`max-trend: need maxWindow ≥ 1, trendWindow ≥ 2, horizonShift ≥ 0`);
    }
  }

  predict(history: readonly number[]): Promise<number> {
    return Promise.resolve(this.forecast(history));
  }

  /**
   * With every count in [0, M]: the maximum term is at most M, and the least-squares slope over m points is at
   * most M·Σ⁺(x − x̄)/Σ(x − x̄)² (the counts at 0 where x < x̄, at M where x > x̄), so no forecast exceeds
   * M·(1 + horizonShift·Σ⁺(x − x̄)/Σ(x − x̄)²).
   */
  ceiling(maxCount: number): number {
    const m = Math.max(0, maxCount);
    if (m === 0) return 0;
    const points = Math.min(HISTORY_SECONDS, this.trendWindow);
    if (points < 2) return m;
    const mean = (points - 1) / 2;
    let up = 0;
    let den = 0;
    for (let i = 0; i < points; i++) {
      const dx = i - mean;
      if (dx > 0) up += dx;
      den += dx * dx;
    }
    // a relative margin for the rounding of the forecast's own arithmetic
    return m * (1 + (this.horizonShift * up) / den) * (1 + 1e-9);
  }

  /** The synchronous computation behind predict(). */
  forecast(history: ArrayLike<number>): number {
    const n = history.length;
    if (n === 0) return 0;
    let max = 0;
    for (let i = Math.max(0, n - this.maxWindow); i < n; i++) max = Math.max(max, finite(history[i]!));
    return max + Math.max(0, leastSquaresSlope(history, Math.max(0, n - this.trendWindow), n)) * this.horizonShift;
  }
}

/** Slope (per index) of the least-squares line through history[from..to); 0 with fewer than 2 points. */
export function leastSquaresSlope(history: ArrayLike<number>, from: number, to: number): number {
  const m = to - from;
  if (m < 2) return 0;
  const xMean = (m - 1) / 2;
  let yMean = 0;
  for (let i = from; i < to; i++) yMean += finite(history[i]!);
  yMean /= m;
  let num = 0;
  let den = 0;
  for (let i = 0; i < m; i++) {
    const dx = i - xMean;
    num += dx * (finite(history[from + i]!) - yMean);
    den += dx * dx;
  }
  return num / den;
}

function finite(v: number): number {
  return Number.isFinite(v) && v > 0 ? v : 0;
}
