// Sponge's vertical scaler: instances stay; every decision takes the fewest cores, then the
// smallest batch, such that ceil(λ/b)·l(b,c) ≤ 0.9 × the tightest recent budget (the budget is
// already net of network time), and resizes in place. On a pipeline (the vertical-only baseline of
// Themis' experiments) the stages' cores come from Themis' vertical DP under the end-to-end SLO —
// instances fixed, cores up or down, never extra instances (C_max when the DP needs them).
import { latencyOf } from "../../stats/latency-model.js";
import { vertical } from "../planner/dp.js";
import {
  uniform,
  type Observation,
  type PipelineObservation,
  type Decided,
  type PipelineScalingPolicy,
  type Plan,
  type Stateless,
} from "../types.js";
import { planOptions, stageView } from "./themis.js";

export class SpongePolicy implements PipelineScalingPolicy<Stateless> {
  readonly name = "vertical";

  constructor(private readonly headroom = 0.9) {}

  initialState(): Stateless {
    return null;
  }

  steady(): boolean {
    return true;
  }

  decide(obs: Observation): Decided<Stateless> {
    return { plan: this.plan(obs), state: null };
  }

  decidePipeline(p: PipelineObservation): { plans: Plan[]; state: Stateless } {
    return { plans: this.planPipeline(p), state: null };
  }

  private plan(obs: Observation): Plan {
    const v = obs.variants.find((x) => x.name === obs.variant)!;
    const n = Math.max(
      1,
      obs.instances.filter((i) => i.variant === obs.variant && i.state !== "draining" && i.state !== "stopped").length,
    );
    const lambda = Math.max(obs.rateNow, obs.ratePred) / n;
    const budget = Math.min(obs.tightestBudgetMs, obs.sloMs);
    for (let c = 1; c <= obs.maxCores; c++) {
      for (let b = 1; b <= v.maxBatch; b++) {
        const busy = Math.ceil(lambda / b) * latencyOf(v.fit, b, c);
        if (busy <= this.headroom * budget) {
          return {
            instances: uniform(obs.variant, n, c),
            batch: b,
            reason: `fewest cores then smallest batch: c=${c}, b=${b}: ceil(${lambda.toFixed(1)}/${b})·l(${b},${c}) = ${busy.toFixed(1)} ≤ ${this.headroom}·${budget.toFixed(0)} ms`,
            mode: "vertical",
          };
        }
      }
    }
    return {
      instances: uniform(obs.variant, n, obs.maxCores),
      batch: v.maxBatch,
      reason: `no (c,b) meets ${this.headroom}·${budget.toFixed(0)} ms at ${lambda.toFixed(1)} req/s per instance: all ${obs.maxCores} cores`,
      mode: "vertical",
    };
  }

  private planPipeline(p: PipelineObservation): Plan[] {
    const views = p.stages.map(stageView);
    const lambda = views.map((v) => v.lambdaPred);
    const plan = vertical(
      views.map((v) => v.model),
      {
        ...planOptions(views, p.sloMs, "v1", Math.min(...views.map((v) => v.variant.maxBatch))),
        lambda,
        current: views.map((v) => v.n),
      },
    );
    return views.map((v, i) => {
      const s = plan?.stages[i];
      const short = !s || (plan!.extra?.[i] ?? 0) > 0;
      const cores = short ? v.obs.maxCores : s.cores;
      return {
        instances: uniform(v.variant.name, v.n, cores),
        batch: s?.batch,
        reason: short
          ? `stage ${v.obs.task}: even ${v.obs.maxCores} cores per instance cannot carry ${lambda[i]!.toFixed(1)} req/s; all cores`
          : `stage ${v.obs.task}: ${v.n} × ${cores} cores for ${lambda[i]!.toFixed(1)} req/s`,
        mode: "vertical",
      };
    });
  }
}
