// Latency read off the measured profile points themselves, not a fitted curve: the p50 and p99 of
// every profiled (batch, cores), interpolated between them. The simulator draws batch times from it
// and SlackFit predicts with it, so both see what was measured, spread included.
//
// Between profiled points the latency is interpolated (linearly in batch, linearly in 1/cores: the
// Amdahl form l = A + B/c), because the fitted model l(b,c) can be far off on a real grid (its
// max relative error is in the profile) while the points are measurements. Off the grid, the
// pessimistic side: fewer cores or a larger batch than profiled scale proportionally (as if the
// profiled ones enjoyed a perfect speed-up or batching gain), more cores follow the Amdahl curve
// through the two largest profiled core counts, never faster than a perfect speed-up and never
// slower than the largest profiled count.

/** What a profile measured at one (batch, cores). */
export interface LatencyPoint {
  batch: number;
  cores: number;
  p50_ms: number;
  p99_ms: number;
}

/** A latency distribution per (rows, cores): its median and 99th percentile in ms. */
export interface LatencyQuantiles {
  median(rows: number, cores: number): number;
  p99(rows: number, cores: number): number;
}

interface Curve {
  batches: number[];
  p50: number[];
  p99: number[];
}

export class MeasuredLatency implements LatencyQuantiles {
  private readonly cores: number[];
  private readonly curves: Curve[];

  constructor(points: readonly LatencyPoint[]) {
    if (points.length === 0) throw new Error("measured latency needs at least one profiled point");
    const byCores = new Map<number, LatencyPoint[]>();
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

  /** The batch sizes profiled on `cores` (on the nearest profiled core count at or above it, else the largest). */
  batchesAt(cores: number): readonly number[] {
    const i = this.cores.findIndex((c) => c >= cores);
    return this.curves[i >= 0 ? i : this.curves.length - 1]!.batches;
  }

  median(rows: number, cores: number): number {
    return this.interpolate(rows, cores, "p50");
  }

  p99(rows: number, cores: number): number {
    return Math.max(this.interpolate(rows, cores, "p50"), this.interpolate(rows, cores, "p99"));
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
