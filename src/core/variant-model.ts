// A repository variant (config + measured profile) as policies see it: one VariantModel that both
// scheduling policies (predicted batch latency) and scaling policies (the fit their planners use) read.
import type { VariantModel } from "../router/scheduling/types.js";
import type { Variant } from "../repository/repository.js";
import type { LatencyFit } from "../repository/schema.js";
import { latencyOf, type LatencyParams } from "../stats/latency-model.js";
import { MeasuredLatency, type LatencyQuantiles } from "../stats/measured-latency.js";

/**
 * Latency is the p99 fit of the profile, never below the fastest point measured (fits can dip at b=1);
 * `measured` is the profile's points themselves. A supernet variant's own accuracy and latency are its
 * default subnet's (what a batch naming no subnet runs); its `subnets` carry the rest for policies
 * that switch.
 */
export function variantModel(v: Variant): VariantModel {
  const p = v.profile;
  if (!p)
    throw new Error(
      `variant ${v.task}/${v.name} has no profile.json; run 'sloserve profile --task ${v.task} --variant ${v.name}'`,
    );
  const base: VariantModel = {
    name: v.name,
    accuracy: v.config.accuracy.value,
    maxBatch: v.config.max_batch,
    latency: predictor(p.fit.p99, p.points),
    fit: paramsOf(p.fit.p99),
    measured: new MeasuredLatency(p.points),
    loadMs: p.load_ms.p50,
    ...(p.warm_load_ms ? { warmLoadMs: p.warm_load_ms.p50 } : {}),
    memGb: p.peak_rss_mb / 1024,
  };
  return v.config.subnets ? { ...base, subnets: subnetModels(v, base) } : base;
}

/**
 * A supernet variant's served subnets (SlackFit's (subnet, batch) table): one model per subnet with its
 * own accuracy and latency fit, all sharing the variant's instances.
 */
function subnetModels(v: Variant, base: VariantModel): VariantModel[] {
  return (v.config.subnets ?? []).map((s) => {
    const sp = v.profile!.subnets?.[s.name];
    if (!sp)
      throw new Error(
        `profile of ${v.task}/${v.name} has no subnet '${s.name}'; re-run 'sloserve profile --task ${v.task} --variant ${v.name}'`,
      );
    return {
      ...base,
      subnet: s.name,
      accuracy: s.accuracy.value,
      latency: predictor(sp.fit.p99, sp.points),
      fit: paramsOf(sp.fit.p99),
      measured: new MeasuredLatency(sp.points),
    };
  });
}

/**
 * A variant known by its latency fit alone (the papers' fitted stages, hand-made tables): predictions come
 * from the fit (at least 0.01 ms) unless `predict` is given; `measured` gives it points to predict from.
 */
export function fittedModel(v: {
  name: string;
  accuracy: number;
  maxBatch: number;
  fit: LatencyParams;
  loadMs: number;
  warmLoadMs?: number;
  memGb?: number;
  predict?: (rows: number, cores: number) => number;
  measured?: LatencyQuantiles;
}): VariantModel {
  return {
    name: v.name,
    accuracy: v.accuracy,
    maxBatch: v.maxBatch,
    latency: v.predict ?? ((rows, cores) => Math.max(latencyOf(v.fit, rows, cores), 0.01)),
    fit: v.fit,
    loadMs: v.loadMs,
    ...(v.warmLoadMs === undefined ? {} : { warmLoadMs: v.warmLoadMs }),
    ...(v.memGb === undefined ? {} : { memGb: v.memGb }),
    ...(v.measured ? { measured: v.measured } : {}),
  };
}

function predictor(fit: LatencyParams, points: readonly { p50_ms: number }[]): (rows: number, cores: number) => number {
  const floor = Math.min(...points.map((pt) => pt.p50_ms));
  return (rows, cores) => Math.max(latencyOf(fit, rows, cores), floor);
}

function paramsOf(f: LatencyFit): LatencyParams {
  return { alpha: f.alpha, beta: f.beta, gamma: f.gamma, zeta: f.zeta };
}
