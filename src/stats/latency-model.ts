// Least-squares fits of profiled latency: the Amdahl-form model of Themis/Sponge,
// l(b,c) = α·b/c + β·b + γ/c + ζ, and INFaaS's per-core-count linear batch model.
import { median } from "./quantile.js";

/** l(b,c) = α·b/c + β·b + γ/c + ζ in ms. */
export interface LatencyParams {
  alpha: number;
  beta: number;
  gamma: number;
  zeta: number;
}

/** Fitted parameters with how well they fit the points they came from. */
export interface LatencyFit extends LatencyParams {
  median_rel_error: number;
  max_rel_error: number;
  rmse_ms: number;
}

/** INFaaS' per-core-count batch model: lat(b) = slope·b + intercept. */
export interface LinearFit {
  slope: number;
  intercept: number;
  max_rel_error: number;
}

/** One profiled (batch, cores) point's latency statistics. */
export interface MeasuredPoint {
  batch: number;
  cores: number;
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
}

/**
 * Solves min ‖X·w − y‖₂ by Householder QR (stable where the normal equations are not: the
 * features b/c and b are strongly correlated on small core grids).
 */
export function leastSquares(X: number[][], y: number[]): number[] {
  const m = X.length;
  const n = X[0]?.length ?? 0;
  if (m < n) throw new Error(`least squares needs at least ${n} points, got ${m}`);
  const A = X.map((row) => row.slice());
  const b = y.slice();
  for (let k = 0; k < n; k++) {
    let norm = 0;
    for (let i = k; i < m; i++) norm += A[i]![k]! ** 2;
    norm = Math.sqrt(norm);
    if (norm === 0)
      throw new Error(`feature ${k} is constant zero or linearly dependent on the others; widen the profiling grid`);
    const alpha = A[k]![k]! > 0 ? -norm : norm;
    const v = new Array<number>(m).fill(0);
    for (let i = k; i < m; i++) v[i] = A[i]![k]!;
    v[k]! -= alpha;
    let vv = 0;
    for (let i = k; i < m; i++) vv += v[i]! ** 2;
    if (vv === 0) continue;
    for (let j = k; j < n; j++) {
      let dot = 0;
      for (let i = k; i < m; i++) dot += v[i]! * A[i]![j]!;
      const f = (2 * dot) / vv;
      for (let i = k; i < m; i++) A[i]![j]! -= f * v[i]!;
    }
    let dot = 0;
    for (let i = k; i < m; i++) dot += v[i]! * b[i]!;
    const f = (2 * dot) / vv;
    for (let i = k; i < m; i++) b[i]! -= f * v[i]!;
  }
  const w = new Array<number>(n).fill(0);
  for (let k = n - 1; k >= 0; k--) {
    let s = b[k]!;
    for (let j = k + 1; j < n; j++) s -= A[k]![j]! * w[j]!;
    const d = A[k]![k]!;
    if (Math.abs(d) < 1e-12 * Math.max(1, Math.abs(s))) {
      throw new Error(
        `the profiling grid cannot separate feature ${k} from the others; profile more batch sizes and core counts`,
      );
    }
    w[k] = s / d;
  }
  return w;
}

export type Statistic = "p50" | "p99" | "mean";

const valueOf = (p: MeasuredPoint, stat: Statistic) =>
  stat === "p50" ? p.p50_ms : stat === "p99" ? p.p99_ms : p.mean_ms;

/** l(b,c) in ms for fitted parameters. */
export function latencyOf(f: LatencyParams, b: number, c: number): number {
  return (f.alpha * b) / c + f.beta * b + f.gamma / c + f.zeta;
}

export function fitLatency(points: MeasuredPoint[], stat: Statistic): LatencyFit {
  const X = points.map((p) => [p.batch / p.cores, p.batch, 1 / p.cores, 1]);
  const y = points.map((p) => valueOf(p, stat));
  const [alpha, beta, gamma, zeta] = leastSquares(X, y) as [number, number, number, number];
  const fit = { alpha, beta, gamma, zeta };
  const rel = points.map((p, i) => Math.abs(latencyOf(fit, p.batch, p.cores) - y[i]!) / Math.max(y[i]!, 1e-9));
  const sq = points.map((p, i) => (latencyOf(fit, p.batch, p.cores) - y[i]!) ** 2);
  return {
    ...fit,
    median_rel_error: median(rel),
    max_rel_error: Math.max(...rel),
    rmse_ms: Math.sqrt(sq.reduce((a, b) => a + b, 0) / sq.length),
  };
}

/** INFaaS: for every core count, lat(b) = slope·b + intercept on the chosen percentile. */
export function fitInfaas(points: MeasuredPoint[], stat: Statistic = "p99"): Record<string, LinearFit> {
  const byCores = new Map<number, MeasuredPoint[]>();
  for (const p of points) byCores.set(p.cores, [...(byCores.get(p.cores) ?? []), p]);
  const out: Record<string, LinearFit> = {};
  for (const [c, pts] of [...byCores].sort((a, b) => a[0] - b[0])) {
    if (new Set(pts.map((p) => p.batch)).size < 2) continue;
    const [slope, intercept] = leastSquares(
      pts.map((p) => [p.batch, 1]),
      pts.map((p) => valueOf(p, stat)),
    ) as [number, number];
    const rel = pts.map(
      (p) => Math.abs(slope * p.batch + intercept - valueOf(p, stat)) / Math.max(valueOf(p, stat), 1e-9),
    );
    out[String(c)] = { slope, intercept, max_rel_error: Math.max(...rel) };
  }
  return out;
}
