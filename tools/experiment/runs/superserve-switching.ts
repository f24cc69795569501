// The INFaaS-like switching baseline: the Pareto subnets exported as separate models, each load
// paying the measured cold start. Every second it picks the most accurate subnet whose pool
// capacity carries the forecast rate and replaces one instance of another subnet with it (rolling,
// at most one instance loading at a time, as INFaaS swaps the variant of one worker at a time).
import { latencyOf } from "../../../src/stats/latency-model.js";
import type { Decided, Observation, Plan, ScalingPolicy, Stateless } from "../../../src/autoscaler/types.js";
import type { VariantModel } from "../../../src/router/scheduling/types.js";

/** Requests per second one instance of `v` carries at the largest batch that fits half the SLO. */
export function throughputAt(v: VariantModel, sloMs: number, cores = 1): number {
  let best = 1000 / Math.max(latencyOf(v.fit, 1, cores), 1e-3);
  for (let b = 2; b <= v.maxBatch; b++) {
    const l = latencyOf(v.fit, b, cores);
    if (l > sloMs / 2) break;
    best = Math.max(best, (1000 * b) / l);
  }
  return best;
}

export class SwitchingPolicy implements ScalingPolicy<Stateless> {
  readonly name = "infaas-switching";

  constructor(private readonly headroom: number) {}

  initialState(): Stateless {
    return null;
  }

  steady(): boolean {
    return false;
  }

  decide(obs: Observation): Decided<Stateless> {
    return { plan: this.plan(obs), state: null };
  }

  private plan(obs: Observation): Plan {
    const live = obs.instances.filter((i) => i.state !== "draining" && i.state !== "stopped");
    const n = live.length;
    const rate = Math.max(obs.rateNow, obs.ratePred);
    const byAccuracy = [...obs.variants].sort((a, b) => b.accuracy - a.accuracy);
    const target = byAccuracy.find((v) => n * throughputAt(v, obs.sloMs) * this.headroom >= rate) ?? byAccuracy.at(-1)!;
    const current = live.map((i) => ({ variant: i.variant, cores: i.cores }));
    if (live.some((i) => i.state === "starting")) return { instances: current, reason: "a subnet is loading" };
    const k = live.findIndex((i) => i.variant !== target.name);
    if (k < 0) return { instances: current, reason: `all on ${target.name}` };
    current[k] = { variant: target.name, cores: live[k]!.cores };
    return {
      instances: current,
      reason: `${rate.toFixed(0)} req/s: load ${target.name} in place of ${live[k]!.variant}`,
    };
  }
}
