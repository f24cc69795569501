// Sponge's vertical scaler: instances stay; every decision takes the fewest cores, then the
// smallest batch, such that ceil(λ/b)·l(b,c) ≤ 0.9 × the tightest recent budget (the budget is
// already net of network time), and resizes in place.
import { latencyOf } from "../../profiler/fit.js";
import { uniform, type Observation, type Plan, type ScalingPolicy } from "../types.js";

export class SpongePolicy implements ScalingPolicy {
  readonly name = "vertical";

  constructor(private readonly headroom = 0.9) {}

  decide(obs: Observation): Plan {
    const v = obs.variants.find((x) => x.name === obs.variant)!;
    const n = Math.max(1, obs.instances.filter((i) => i.variant === obs.variant && i.state !== "draining" && i.state !== "stopped").length);
    const lambda = Math.max(obs.rateNow, obs.ratePred) / n;
    const budget = Math.min(obs.tightestBudgetMs, obs.sloMs);
    for (let c = 1; c <= obs.maxCores; c++) {
      for (let b = 1; b <= v.maxBatch; b++) {
        const busy = Math.ceil(lambda / b) * latencyOf(v.latency, b, c);
        if (busy <= this.headroom * budget) {
          return { instances: uniform(obs.variant, n, c), batch: b, reason: `fewest cores then smallest batch: c=${c}, b=${b}: ceil(${lambda.toFixed(1)}/${b})·l(${b},${c}) = ${busy.toFixed(1)} ≤ ${this.headroom}·${budget.toFixed(0)} ms`, mode: "vertical" };
        }
      }
    }
    return { instances: uniform(obs.variant, n, obs.maxCores), batch: v.maxBatch, reason: `no (c,b) meets ${this.headroom}·${budget.toFixed(0)} ms at ${lambda.toFixed(1)} req/s per instance: all ${obs.maxCores} cores`, mode: "vertical" };
  }
}
