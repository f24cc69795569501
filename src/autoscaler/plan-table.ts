// `sloserve plan`: every scaling policy's choice for one hand-given load, side by side.
import { latencyOf } from "../stats/latency-model.js";
import type { VariantModel } from "../router/scheduling/types.js";
import type { ScalingSettings } from "./scaling/index.js";
import { RECENT_SECONDS, type Observation, type ScalingPolicy } from "./types.js";

export interface PlanQuestion {
  task: string;
  sloMs: number;
  rate: number;
  forecast: number;
  variant: string;
  variants: readonly VariantModel[];
  instances: number;
  coresEach: number;
  maxCores: number;
  policies: string[];
  makePolicy(name: string, settings?: ScalingSettings): ScalingPolicy;
}

export function planTable(q: PlanQuestion): string[][] {
  const batch1 = latencyOf(q.variants.find((v) => v.name === q.variant)!.fit, 1, q.coresEach);
  const obs: Observation = {
    now: 0,
    task: q.task,
    sloMs: q.sloMs,
    rateNow: q.rate,
    recent: Array.from({ length: RECENT_SECONDS }, () => q.rate),
    ratePred: q.forecast,
    // Little's law with the variant's batch-1 latency: what Knative and Ray would see in flight
    concurrency: q.rate * (batch1 / 1000),
    queueLength: 0,
    misses: 0,
    tightestBudgetMs: q.sloMs,
    avgBatch: 1,
    served: [],
    // a second of batch-1 work at the rate: what the HPA would read as CPU
    busyMs: q.rate * batch1,
    sinceMs: 1000,
    instances: Array.from({ length: q.instances }, (_, i) => ({
      id: `${q.variant}#${i + 1}`,
      variant: q.variant,
      cores: q.coresEach,
      state: "ready" as const,
    })),
    variants: q.variants,
    variant: q.variant,
    coreBudget: Number.MAX_SAFE_INTEGER,
    maxCores: q.maxCores,
  };
  return q.policies.map((name) => {
    // each policy as it decides the first time, from its initial state (themis past its warm-up)
    const policy = q.makePolicy(name, { themis: { warmupMs: 0 } });
    const { plan } = policy.decide(obs, policy.initialState());
    const groups = new Map<string, number>();
    for (const i of plan.instances)
      groups.set(`${i.variant}×${i.cores}`, (groups.get(`${i.variant}×${i.cores}`) ?? 0) + 1);
    const shape = [...groups].map(([k, n]) => `${n} × ${k.replace(/×(\d+)$/, " ($1 cores)")}`).join(", ") || "none";
    return [
      name,
      shape,
      String(plan.instances.reduce((n, i) => n + i.cores, 0)),
      plan.batch === undefined ? "-" : String(plan.batch),
      plan.mode ?? "-",
      plan.reason,
    ];
  });
}
