// Static provisioning: the same instances whatever the load, sized once for a peak.
import { uniform, type Decided, type Observation, type ScalingPolicy, type Stateless } from "../types.js";

export interface StaticOptions {
  instances: number;
  cores: number;
}

export class StaticPolicy implements ScalingPolicy<Stateless> {
  readonly name = "static";

  constructor(private readonly o: StaticOptions) {}

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
