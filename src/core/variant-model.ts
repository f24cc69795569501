// Turns a repository variant (config + measured profile) into what policies reason with.
import type { VariantInfo } from "../autoscaler/types.js";
import type { VariantModel } from "../router/scheduling/types.js";
import { latencyOf } from "../stats/latency-model.js";
import type { Variant } from "../repository/repository.js";

/**
 * Latency is the p99 fit of the profile, never below the fastest point measured (fits can dip at b=1).
 * A supernet variant's own accuracy and latency are its default subnet's (what a batch naming no
 * subnet runs); its `subnets` carry the rest for policies that switch.
 */
export function variantModel(v: Variant): VariantModel {
  const base = plainModel(v);
  return v.config.subnets ? { ...base, subnets: subnetModels(v, base) } : base;
}

function plainModel(v: Variant): VariantModel {
  const p = v.profile;
  if (!p)
    throw new Error(
      `variant ${v.task}/${v.name} has no profile.json; run 'sloserve profile --task ${v.task} --variant ${v.name}'`,
    );
  const floor = Math.min(...p.points.map((pt) => pt.p50_ms));
  return {
    name: v.name,
    accuracy: v.config.accuracy.value,
    maxBatch: v.config.max_batch,
    latency: (rows, cores) => Math.max(latencyOf(p.fit.p99, rows, cores), floor),
    loadMs: p.load_ms.p50,
  };
}

/** What scaling policies know of a variant: accuracy, the p99 latency fit, cold start. */
export function variantInfo(v: Variant): VariantInfo {
  const m = plainModel(v);
  const f = v.profile!.fit.p99;
  return {
    name: v.name,
    accuracy: m.accuracy,
    maxBatch: m.maxBatch,
    latency: { alpha: f.alpha, beta: f.beta, gamma: f.gamma, zeta: f.zeta },
    loadMs: m.loadMs,
  };
}

/**
 * A supernet variant's served subnets as policies see them (SlackFit's (subnet, batch) table): one
 * model per subnet with its own accuracy and latency fit, all sharing the variant's instances.
 * Empty for an ordinary variant.
 */
export function subnetModels(v: Variant, base: VariantModel = plainModel(v)): VariantModel[] {
  const subnets = v.config.subnets ?? [];
  return subnets.map((s) => {
    const sp = v.profile!.subnets?.[s.name];
    if (!sp)
      throw new Error(
        `profile of ${v.task}/${v.name} has no subnet '${s.name}'; re-run 'sloserve profile --task ${v.task} --variant ${v.name}'`,
      );
    const floor = Math.min(...sp.points.map((pt) => pt.p50_ms));
    return {
      ...base,
      subnet: s.name,
      accuracy: s.accuracy.value,
      latency: (rows: number, cores: number) => Math.max(latencyOf(sp.fit.p99, rows, cores), floor),
    };
  });
}
