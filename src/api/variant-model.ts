// Turns a repository variant (config + measured profile) into what policies reason with.
import type { VariantInfo } from "../autoscaler/types.js";
import type { VariantModel } from "../policies/types.js";
import { latencyOf } from "../profiler/fit.js";
import type { Variant } from "../repository/repository.js";

/** Latency is the p99 fit of the profile, never below the fastest point measured (fits can dip at b=1). */
export function variantModel(v: Variant): VariantModel {
  const p = v.profile;
  if (!p) throw new Error(`variant ${v.task}/${v.name} has no profile.json; run 'sloserve profile --task ${v.task} --variant ${v.name}'`);
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
  const m = variantModel(v);
  const f = v.profile!.fit.p99;
  return { name: v.name, accuracy: m.accuracy, maxBatch: m.maxBatch, latency: { alpha: f.alpha, beta: f.beta, gamma: f.gamma, zeta: f.zeta }, loadMs: m.loadMs };
}
