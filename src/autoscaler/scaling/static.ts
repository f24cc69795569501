// Static provisioning: the same instances whatever the load, sized once for a peak — by the operator
// (instances × cores), or from the profile: the horizontal plan (1-core instances) for the peak rate.
import { horizontal } from "../planner/dp.js";
import { unitFor, type StageModel } from "../planner/model.js";
import { uniform, type Decided, type Observation, type ScalingPolicy, type Stateless } from "../types.js";

export interface StaticOptions {
  instances: number;
  cores: number;
}

export class StaticPolicy implements ScalingPolicy<Stateless> {
  readonly name = "static";

  constructor(private readonly o: StaticOptions) {}

  describe(): string {
    return `${this.o.instances} × ${this.o.cores} core(s), fixed`;
  }

  initialState(): Stateless {
    return null;
  }

  steady(): boolean {
    return true;
  }

  decide(obs: Observation): Decided<Stateless> {
    return {
      plan: {
        instances: uniform(obs.variant, this.o.instances, this.o.cores),
        reason: `static: ${this.o.instances} × ${this.o.cores} cores, provisioned for the peak`,
        mode: "static",
      },
      state: null,
    };
  }
}

/**
 * 1-core instances per stage for a peak rate (req/s) under an end-to-end SLO: the July-2024 horizontal
 * DP, as an operator would size a fixed deployment from the profile. Null when no 1-core plan fits.
 */
export function staticForPeak(stages: StageModel[], sloMs: number, peak: number, maxBatch: number): number[] | null {
  const plan = horizontal(stages, {
    sloMs,
    lambda: Math.max(1, peak),
    bMax: maxBatch,
    cMax: 1,
    semantics: "v1",
    unitMs: unitFor(stages, 1, "v1", sloMs),
  });
  return plan ? plan.stages.map((s) => s.replicas) : null;
}
