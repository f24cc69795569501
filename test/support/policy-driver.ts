// Drives a scaling policy as the controller does: the policy's state is held here between decisions.
import {
  plansPipelines,
  type Observation,
  type PipelineObservation,
  type Plan,
  type ScalingPolicy,
} from "../../src/autoscaler/types.js";

export class PolicyDriver<S> {
  state: S;

  constructor(readonly policy: ScalingPolicy<S>) {
    this.state = policy.initialState();
  }

  decide(obs: Observation): Plan {
    const d = this.policy.decide(obs, this.state);
    this.state = d.state;
    return d.plan;
  }

  decidePipeline(obs: PipelineObservation): Plan[] {
    if (!plansPipelines(this.policy)) throw new Error(`${this.policy.name} does not plan pipelines`);
    const d = this.policy.decidePipeline(obs, this.state);
    this.state = d.state;
    return d.plans;
  }
}

export function drive<S>(policy: ScalingPolicy<S>): PolicyDriver<S> {
  return new PolicyDriver(policy);
}
