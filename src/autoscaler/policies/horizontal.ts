// FA2-like horizontal scaling: 1-core instances, as many as the horizontal DP says for the larger of
// the present rate and the forecast; every new instance pays its cold start.
import { horizontal } from "../planner/dp.js";
import { unitFor, type Semantics } from "../planner/model.js";
import { currentPlan, uniform, type Observation, type Plan, type ScalingPolicy } from "../types.js";

export class HorizontalPolicy implements ScalingPolicy {
  readonly name = "horizontal";

  constructor(private readonly o: { semantics: Semantics; maxBatch: number } = { semantics: "v1", maxBatch: 8 }) {}

  decide(obs: Observation): Plan {
    const v = obs.variants.find((x) => x.name === obs.variant)!;
    const lambda = Math.max(obs.rateNow, obs.ratePred, 1e-3);
    const stage = { ...v.latency };
    const h = horizontal([stage], { sloMs: obs.sloMs, lambda, bMax: Math.min(this.o.maxBatch, v.maxBatch), cMax: 1, semantics: this.o.semantics, unitMs: unitFor([stage], 1, this.o.semantics, obs.sloMs) });
    if (!h) return currentPlan(obs, `no 1-core configuration meets ${obs.sloMs} ms`, "horizontal");
    const s = h.stages[0]!;
    return { instances: uniform(v.name, s.replicas, 1), batch: s.batch, reason: `${s.replicas} × 1 core, b=${s.batch} for ${lambda.toFixed(1)} req/s`, mode: "horizontal" };
  }
}
