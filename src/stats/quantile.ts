// One rule for every quantile sloserve computes from samples (latencies, cold starts, per-seed figures):
// linear interpolation between order statistics, the "R-7" rule numpy and R use by default, so a p99 or a
// median reported here means what it means there. (Histogram quantiles are a different kind: they read
// bucket bounds, see the simulator's and the dashboard's histograms.)

/** Quantile of an ascending array (NaN when empty). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = (n - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Quantile of samples in any order (NaN when empty). */
export function quantile(xs: ArrayLike<number>, q: number): number {
  return quantileSorted(Float64Array.from(xs).sort(), q);
}

export function median(xs: ArrayLike<number>): number {
  return quantile(xs, 0.5);
}
