// Forecast windows, targets and error metrics over the Twitter trace: what the LSTM trains on and what
// the held-out evaluation (tests, experiments) scores every forecaster with.
import { overlapsGap, SECONDS_PER_DAY } from "../../src/traces/twitter.js";
import { futureMax, HISTORY_SECONDS, HORIZON_SECONDS } from "../../src/autoscaler/forecast/types.js";

/**
 * Forecast points t (the window is counts[t−60, t), the target max(counts[t, t+10))) in
 * [start, end), every `stride` seconds, skipping those whose 70 s touch a gap.
 */
export function forecastPoints(
  counts: ArrayLike<number>,
  gaps: ReadonlyArray<readonly [number, number]>,
  start: number,
  end: number,
  stride: number,
): Int32Array {
  const pts: number[] = [];
  const hi = Math.min(end, counts.length);
  for (let t = Math.max(start, 0) + HISTORY_SECONDS; t + HORIZON_SECONDS <= hi; t += stride) {
    if (!overlapsGap(gaps, t - HISTORY_SECONDS, t + HORIZON_SECONDS)) pts.push(t);
  }
  return Int32Array.from(pts);
}

/** Forecast points of days firstDay..lastDay (1-based, inclusive). */
export function dayPoints(
  counts: ArrayLike<number>,
  gaps: ReadonlyArray<readonly [number, number]>,
  days: readonly [number, number],
  stride: number,
): Int32Array {
  return forecastPoints(counts, gaps, (days[0] - 1) * SECONDS_PER_DAY, days[1] * SECONDS_PER_DAY, stride);
}

export interface ForecastMetrics {
  n: number;
  /** Mean |forecast − actual max| in events/s. */
  mae: number;
  rmse: number;
  /** Share of points with forecast < actual max. */
  underRate: number;
  /** Mean (actual − forecast) over all points where the forecast was too low, per point (events/s). */
  meanShortfall: number;
  /** Mean forecast − mean actual (events/s). */
  bias: number;
}

export function forecastMetrics(pred: ArrayLike<number>, actual: ArrayLike<number>): ForecastMetrics {
  const n = actual.length;
  if (pred.length !== n || n === 0) throw new Error(`metrics need equal, non-empty arrays (${pred.length} vs ${n})`);
  let ae = 0;
  let se = 0;
  let under = 0;
  let shortfall = 0;
  let bias = 0;
  for (let i = 0; i < n; i++) {
    const d = pred[i]! - actual[i]!;
    ae += Math.abs(d);
    se += d * d;
    bias += d;
    if (d < 0) {
      under++;
      shortfall -= d;
    }
  }
  return {
    n,
    mae: ae / n,
    rmse: Math.sqrt(se / n),
    underRate: under / n,
    meanShortfall: shortfall / n,
    bias: bias / n,
  };
}

/** Targets max(counts[t, t+10)) of the points. */
export function targetsAt(counts: ArrayLike<number>, points: ArrayLike<number>): Float32Array {
  const y = new Float32Array(points.length);
  for (let i = 0; i < points.length; i++) y[i] = futureMax(counts, points[i]!);
  return y;
}

/** The 60-s histories of the points, row-major [points, 60] (the ONNX model's input). */
export function historiesAt(counts: ArrayLike<number>, points: ArrayLike<number>): Float32Array {
  const out = new Float32Array(points.length * HISTORY_SECONDS);
  for (let i = 0; i < points.length; i++) {
    const t = points[i]!;
    for (let j = 0; j < HISTORY_SECONDS; j++) out[i * HISTORY_SECONDS + j] = counts[t - HISTORY_SECONDS + j]!;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Features (the JS twin of the ONNX preprocessing)
