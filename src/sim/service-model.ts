// How long a simulated batch runs: a lognormal whose median and 99th percentile are the profile's
// p50 and p99 for that (batch, cores), so a simulated instance shows the spread that was measured,
// not just the fitted mean.
//
// Between profiled points the latency is interpolated (linearly in batch, linearly in 1/cores: the
// Amdahl form l = A + B/c), because the fitted model l(b,c) can be far off on a real grid (its
// max relative error is in the profile) while the points are measurements. Off the grid, the
// pessimistic side: fewer cores or a larger batch than profiled scale proportionally (as if the
// profiled ones enjoyed a perfect speed-up or batching gain), more cores follow the Amdahl curve
// through the two largest profiled core counts, never faster than a perfect speed-up and never
// slower than the largest profiled count.
import type { LatencyParams } from "../stats/latency-model.js";
import { latencyOf } from "../stats/latency-model.js";
import { median, quantileSorted } from "../stats/quantile.js";
import type { ProfilePoint } from "../repository/schema.js";
import { Z99, type Xoshiro128 } from "../stats/random.js";

export interface ServiceModel {
  /** Median latency (ms) of a batch of `rows` rows on `cores` cores. */
  median(rows: number, cores: number): number;
  /** 99th percentile (ms). */
  p99(rows: number, cores: number): number;
  /** One draw (ms). */
  sample(rows: number, cores: number, rng: Xoshiro128): number;
}

/** Lognormal with the given median and p99 (deterministic when they are equal). */
function lognormalSigma(median: number, p99: number): number {
  return p99 > median && median > 0 ? Math.log(p99 / median) / Z99 : 0;
}

interface Curve {
  batches: number[];
  p50: number[];
  p99: number[];
}

export class ProfileServiceModel implements ServiceModel {
  private readonly cores: number[];
  private readonly curves: Curve[];
  /** Per core count: [median, sigma] per row count, filled as needed. */
  private readonly cache: Float64Array[] = [];

  constructor(points: readonly ProfilePoint[]) {
    if (points.length === 0) throw new Error("a profile service model needs at least one profiled point");
    const byCores = new Map<number, ProfilePoint[]>();
    for (const p of points) {
      const list = byCores.get(p.cores) ?? [];
      list.push(p);
      byCores.set(p.cores, list);
    }
    this.cores = [...byCores.keys()].sort((a, b) => a - b);
    this.curves = this.cores.map((c) => {
      const pts = byCores.get(c)!.sort((a, b) => a.batch - b.batch);
      return {
        batches: pts.map((p) => p.batch),
        p50: pts.map((p) => p.p50_ms),
        p99: pts.map((p) => Math.max(p.p99_ms, p.p50_ms)),
      };
    });
  }

  median(rows: number, cores: number): number {
    return this.entry(rows, cores, 0);
  }

  p99(rows: number, cores: number): number {
    const m = this.entry(rows, cores, 0);
    return m * Math.exp(this.entry(rows, cores, 1) * Z99);
  }

  sample(rows: number, cores: number, rng: Xoshiro128): number {
    const row = this.row(rows, cores);
    const median = row[2 * rows]!;
    const sigma = row[2 * rows + 1]!;
    return sigma === 0 ? median : median * Math.exp(sigma * rng.normal());
  }

  private entry(rows: number, cores: number, k: 0 | 1): number {
    return this.row(rows, cores)[2 * rows + k]!;
  }

  private row(rows: number, cores: number): Float64Array {
    let row = this.cache[cores];
    if (row === undefined || 2 * rows + 1 >= row.length) {
      const grown = new Float64Array(2 * Math.max(rows + 1, 2 * (row ? row.length / 2 : 16))).fill(Number.NaN);
      if (row) grown.set(row);
      row = grown;
      this.cache[cores] = row;
    }
    if (Number.isNaN(row[2 * rows]!)) {
      const m = this.interpolate(rows, cores, "p50");
      const q = Math.max(m, this.interpolate(rows, cores, "p99"));
      row[2 * rows] = m;
      row[2 * rows + 1] = lognormalSigma(m, q);
    }
    return row;
  }

  /** Profiled statistic at (rows, cores), interpolated as the header says. */
  interpolate(rows: number, cores: number, stat: "p50" | "p99"): number {
    const cs = this.cores;
    const at = (i: number) => alongBatch(this.curves[i]!, rows, stat);
    const i = cs.findIndex((c) => c >= cores);
    if (i >= 0 && cs[i] === cores) return at(i);
    if (i > 0) {
      const c1 = cs[i - 1]!;
      const c2 = cs[i]!;
      const w = (1 / cores - 1 / c2) / (1 / c1 - 1 / c2);
      return w * at(i - 1) + (1 - w) * at(i);
    }
    if (i === 0) return (at(0) * cs[0]!) / cores;
    const last = cs.length - 1;
    const lMax = at(last);
    const cMax = cs[last]!;
    if (last === 0) return lMax;
    const c1 = cs[last - 1]!;
    const l1 = at(last - 1);
    const B = (l1 - lMax) / (1 / c1 - 1 / cMax);
    const A = lMax - B / cMax;
    return Math.min(lMax, Math.max((lMax * cMax) / cores, A + B / cores));
  }
}

function alongBatch(curve: Curve, rows: number, stat: "p50" | "p99"): number {
  const bs = curve.batches;
  const ys = curve[stat];
  if (rows <= bs[0]!) return ys[0]!;
  const n = bs.length;
  if (rows >= bs[n - 1]!) return (ys[n - 1]! * rows) / bs[n - 1]!;
  let j = 1;
  while (bs[j]! < rows) j++;
  const w = (rows - bs[j - 1]!) / (bs[j]! - bs[j - 1]!);
  return ys[j - 1]! + w * (ys[j]! - ys[j - 1]!);
}

export interface FitServiceOptions {
  /** p99 / p50 of the spread around the fit (default 1: deterministic). */
  spread?: number;
  /** Which percentile the fitted parameters describe (default p99, as the profiles' fit used by policies). */
  fitIs?: "p50" | "p99";
  /** Smallest latency the fit may give (ms): Amdahl fits can dip below zero off their grid. */
  floorMs?: number;
}

/** Latency from fitted parameters alone (the papers' published fits). */
export class FitServiceModel implements ServiceModel {
  private readonly sigma: number;
  private readonly toMedian: number;
  private readonly floor: number;

  constructor(
    private readonly fit: LatencyParams,
    opts: FitServiceOptions = {},
  ) {
    const spread = Math.max(1, opts.spread ?? 1);
    this.sigma = Math.log(spread) / Z99;
    this.toMedian = (opts.fitIs ?? "p99") === "p99" ? 1 / spread : 1;
    this.floor = opts.floorMs ?? 0.01;
  }

  median(rows: number, cores: number): number {
    return Math.max(latencyOf(this.fit, rows, cores), this.floor) * this.toMedian;
  }

  p99(rows: number, cores: number): number {
    return this.median(rows, cores) * Math.exp(this.sigma * Z99);
  }

  sample(rows: number, cores: number, rng: Xoshiro128): number {
    const m = this.median(rows, cores);
    return this.sigma === 0 ? m : m * Math.exp(this.sigma * rng.normal());
  }
}

/**
 * A measured model whose draws follow what serving showed, whatever its shape: each batch takes the
 * model's median times one of the measured ratios (live batch time over the profile's median at the same
 * batch and cores), drawn uniformly — from the ratios measured at that batch size when there are enough of
 * them, else from all. A machine that now and then stalls a worker has a long, lumpy tail that no lognormal
 * through two percentiles reproduces.
 */
export class ResampledServiceModel implements ServiceModel {
  private readonly sorted: Float64Array;
  private readonly byRows = new Map<number, Float64Array>();

  constructor(
    private readonly base: ServiceModel,
    ratios: readonly number[],
    /** Ratios measured per batch size (rows); a size with fewer than `minPerRows` uses the pooled ones. */
    perRows: ReadonlyMap<number, readonly number[]> = new Map(),
    minPerRows = 20,
  ) {
    if (ratios.length === 0 || ratios.some((r) => !(r > 0)))
      throw new Error("a resampled service model needs measured ratios, all > 0");
    this.sorted = Float64Array.from(ratios).sort();
    for (const [rows, rs] of perRows)
      if (rs.length >= minPerRows && rs.every((r) => r > 0)) this.byRows.set(rows, Float64Array.from(rs).sort());
  }

  private ratios(rows: number): Float64Array {
    return this.byRows.get(rows) ?? this.sorted;
  }

  median(rows: number, cores: number): number {
    return this.base.median(rows, cores) * quantileSorted(this.ratios(rows), 0.5);
  }

  p99(rows: number, cores: number): number {
    return this.base.median(rows, cores) * quantileSorted(this.ratios(rows), 0.99);
  }

  sample(rows: number, cores: number, rng: Xoshiro128): number {
    const rs = this.ratios(rows);
    return this.base.median(rows, cores) * rs[rng.int(rs.length)]!;
  }
}

/** The same time for every batch (deterministic service: M/D/c checks). */
export class ConstantServiceModel implements ServiceModel {
  constructor(private readonly ms: number) {}
  median(): number {
    return this.ms;
  }
  p99(): number {
    return this.ms;
  }
  sample(): number {
    return this.ms;
  }
}

/** Exponentially distributed batch time with a fixed mean (M/M/c checks). */
export class ExponentialServiceModel implements ServiceModel {
  constructor(private readonly meanMs: number) {}
  median(): number {
    return this.meanMs * Math.LN2;
  }
  p99(): number {
    return this.meanMs * Math.log(100);
  }
  sample(_rows: number, _cores: number, rng: Xoshiro128): number {
    return rng.exponential(this.meanMs);
  }
}

/** A fixed time, or measured samples drawn from uniformly (cold starts, resizes). */
export type Duration = number | readonly number[];

export function sampleDuration(d: Duration, rng: Xoshiro128): number {
  if (typeof d === "number") return d;
  if (d.length === 0) return 0;
  return d.length === 1 ? d[0]! : d[rng.int(d.length)]!;
}

export function medianDuration(d: Duration): number {
  if (typeof d === "number") return d;
  return d.length === 0 ? 0 : median(d);
}
