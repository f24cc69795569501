// Static provisioning: the same instances whatever the load, sized once for a peak.
import { uniform, type Observation, type Plan, type ScalingPolicy } from "../types.js";

export interface StaticOptions {
  instances: number;
  cores: number;
}

export class StaticPolicy implements ScalingPolicy {
  readonly name = "static";

  constructor(private readonly o: StaticOptions) {}

  steady(): boolean {
    return true;
  }

  decide(obs: Observation): Plan {
    return {
      instances: uniform(obs.variant, this.o.instances, this.o.cores),
      reason: `static: ${this.o.instances} × ${this.o.cores} cores, provisioned for the peak`,
      mode: "static",
    };
  }
}
