// How long a simulated batch runs: a lognormal whose median and 99th percentile are the profile's
// p50 and p99 for that (batch, cores), so a simulated instance shows the spread that was measured,
// not just the fitted mean. Between and beyond the profiled points, see stats/measured-latency.ts.
import type { LatencyParams } from "../stats/latency-model.js";
import { latencyOf } from "../stats/latency-model.js";
import { MeasuredLatency } from "../stats/measured-latency.js";
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

export class ProfileServiceModel implements ServiceModel {
  /** The profile's points, interpolated: what SlackFit predicts with, too. */
  readonly measured: MeasuredLatency;
  /** Per core count: [median, sigma] per row count, filled as needed. */
  private readonly cache: Float64Array[] = [];

  constructor(points: readonly ProfilePoint[]) {
    if (points.length === 0) throw new Error("a profile service model needs at least one profiled point");
    this.measured = new MeasuredLatency(points);
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

  /** Profiled statistic at (rows, cores), interpolated. */
  interpolate(rows: number, cores: number, stat: "p50" | "p99"): number {
    return this.measured.interpolate(rows, cores, stat);
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
      const m = this.measured.interpolate(rows, cores, "p50");
      const q = Math.max(m, this.measured.interpolate(rows, cores, "p99"));
      row[2 * rows] = m;
      row[2 * rows + 1] = lognormalSigma(m, q);
    }
    return row;
  }
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
