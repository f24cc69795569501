// FA2-like horizontal scaling, for one task or a whole pipeline: 1-core instances, as many as the
// horizontal DP says for the larger of the present rate and the forecast; every new instance pays its
// cold start.
import { horizontal } from "../planner/dp.js";
import type { Semantics } from "../planner/model.js";
import {
  currentPlan,
  uniform,
  type Observation,
  type PipelineObservation,
  type Decided,
  type PipelineScalingPolicy,
  type Plan,
  type Stateless,
} from "../types.js";
import { planOptions, singleStage, stageView } from "./themis.js";

export class HorizontalPolicy implements PipelineScalingPolicy<Stateless> {
  readonly name = "horizontal";

  constructor(private readonly o: { semantics: Semantics; maxBatch: number } = { semantics: "v1", maxBatch: 8 }) {}

  initialState(): Stateless {
    return null;
  }

  steady(): boolean {
    return true;
  }

  decide(obs: Observation): Decided<Stateless> {
    return { plan: this.decidePipeline(singleStage(obs)).plans[0]!, state: null };
  }

  decidePipeline(p: PipelineObservation): { plans: Plan[]; state: Stateless } {
    return { plans: this.plan(p), state: null };
  }

  private plan(p: PipelineObservation): Plan[] {
    const views = p.stages.map(stageView);
    const lambda = views.map((v) => v.lambdaPred);
    const h = horizontal(
      views.map((v) => v.model),
      { ...planOptions(views, p.sloMs, this.o.semantics, this.o.maxBatch, 1), lambda },
    );
    if (!h) return views.map((v) => currentPlan(v.obs, `no 1-core configuration meets ${p.sloMs} ms`, "horizontal"));
    return views.map((v, i) => {
      const s = h.stages[i]!;
      return {
        instances: uniform(v.variant.name, s.replicas, 1),
        batch: s.batch,
        reason: `${s.replicas} × 1 core, b=${s.batch} for ${lambda[i]!.toFixed(1)} req/s`,
        mode: "horizontal",
      };
    });
  }
}
