// Pieces the experiments share: a variant from published fitted parameters, the measured timing of a
// zoo variant, and small statistics.
import { median as quantileMedian } from "../../src/stats/quantile.js";
import type { LatencyParams } from "../../src/stats/latency-model.js";
import type { Repository } from "../../src/repository/repository.js";
import type { RateSeries } from "../../src/traces/index.js";
import type { SimVariant } from "../../src/sim/scenario.js";
import { FitServiceModel, type Duration } from "../../src/sim/service-model.js";

export interface Timing {
  coldStart: Duration;
  resize: Duration;
}

/** Cold start and in-place resize as measured for a zoo variant (its profile's samples). */
export function measuredTiming(repo: Repository, task: string, variant: string): Timing {
  const p = repo.tasks.get(task)?.variants.get(variant)?.profile;
  if (!p)
    throw new Error(
      `no profile for ${task}/${variant}; run 'sloserve profile --task ${task} --variant ${variant}' first`,
    );
  return {
    coldStart: p.load_ms.samples.length ? p.load_ms.samples : p.load_ms.p50,
    resize: p.resize_ms.samples.length ? p.resize_ms.samples : p.resize_ms.p50,
  };
}

/** A variant known only by a paper's fitted latency (taken as p99, batch times spread by p99/p50 = `spread`). */
export function fittedVariant(
  name: string,
  fit: LatencyParams,
  o: Timing & { maxBatch: number; spread: number; accuracy?: number },
): SimVariant {
  return {
    name,
    accuracy: o.accuracy ?? 1,
    maxBatch: o.maxBatch,
    fit,
    loadMs: median(o.coldStart),
    service: new FitServiceModel(fit, { spread: o.spread, fitIs: "p99" }),
    coldStart: o.coldStart,
    resize: o.resize,
  };
}

/** Median of a figure over seeds or traces, or of a duration's samples (the one quantile rule). */
export function median(d: Duration): number {
  return typeof d === "number" ? d : quantileMedian(d);
}

export function meanOf(xs: ArrayLike<number>, from = 0, to = xs.length): number {
  let sum = 0;
  const end = Math.min(to, xs.length);
  for (let i = from; i < end; i++) sum += xs[i]!;
  return sum / Math.max(1, end - from);
}

export const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");

/** A per-minute series as per-second counts, each minute's count spread evenly over its seconds. */
export function perSecond(series: RateSeries): RateSeries {
  const k = series.binMs / 1000;
  const counts = new Float64Array(series.counts.length * k);
  series.counts.forEach((c, i) => counts.fill(c / k, i * k, (i + 1) * k));
  return { ...series, counts, binMs: 1000, gaps: undefined };
}
