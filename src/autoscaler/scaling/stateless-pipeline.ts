// What the pipeline planners that keep no state between decisions share (IPA, FA2 and the baselines built on
// them): no warm-up or stabilisation of their own, and a lone task planned as a one-stage pipeline.
import type { Decided, Observation, PipelineObservation, Plan, Stateless } from "../types.js";

export abstract class StatelessPipelinePolicy {
  abstract decidePipeline(p: PipelineObservation, state: Stateless): { plans: Plan[]; state: Stateless };

  initialState(): Stateless {
    return null;
  }

  steady(): boolean {
    return true;
  }

  decide(obs: Observation, state: Stateless): Decided<Stateless> {
    const d = this.decidePipeline({ now: obs.now, pipeline: obs.task, sloMs: obs.sloMs, stages: [obs] }, state);
    return { plan: d.plans[0]!, state: null };
  }
}
