// Ray Serve's autoscaler: replicas = ceil(ongoing requests averaged over a 30-s look-back / target
// ongoing requests per replica), acted on only after the wish has held for the upscale delay (30 s)
// or downscale delay (600 s). Configured as an operator would: target_ongoing_requests from the variant's
// profile, so that one replica runs near its capacity (one batch running, one full batch waiting); the
// delays and look-back are Ray Serve's published defaults.
import { currentPlan, uniform, type Decided, type Observation, type Plan, type ScalingPolicy } from "../types.js";
import { instanceCapacity } from "./capacity.js";

export interface RayOptions {
  /** target_ongoing_requests; absent: from the profile of the variant scaled. */
  targetOngoingRequests?: number;
  upscaleDelayMs: number;
  downscaleDelayMs: number;
  lookBackMs: number;
  minReplicas: number;
}

export const RAY_DEFAULTS: RayOptions = {
  upscaleDelayMs: 30_000,
  downscaleDelayMs: 600_000,
  lookBackMs: 30_000,
  minReplicas: 1,
};

export interface RayState {
  /** Ongoing-request samples of the look-back window, oldest first. */
  samples: { t: number; c: number }[];
  /** Since when the wish has pointed up (+1) or down (−1) without interruption. */
  since: number;
  direction: number;
}

export class RayPolicy implements ScalingPolicy<RayState> {
  readonly name = "ray";
  private readonly o: RayOptions;

  constructor(o: Partial<RayOptions> = {}) {
    this.o = { ...RAY_DEFAULTS, ...o };
  }

  describe(): string {
    return `target_ongoing_requests ${this.o.targetOngoingRequests ?? "from the profile"}, look-back ${this.o.lookBackMs / 1000} s, upscale delay ${this.o.upscaleDelayMs / 1000} s, downscale delay ${this.o.downscaleDelayMs / 1000} s`;
  }

  /** target_ongoing_requests for the variant scaled: the operator's, or one replica at its profiled capacity. */
  target(obs: Observation): number {
    if (this.o.targetOngoingRequests !== undefined) return this.o.targetOngoingRequests;
    const v = obs.variants.find((x) => x.name === obs.variant)!;
    return instanceCapacity(v, obs.sloMs).concurrency;
  }

  initialState(): RayState {
    return { samples: [], since: Number.NaN, direction: 0 };
  }

  steady(): boolean {
    return false;
  }

  decide(obs: Observation, state: RayState): Decided<RayState> {
    const samples = [
      ...state.samples.filter((s) => s.t > obs.now - this.o.lookBackMs),
      { t: obs.now, c: obs.concurrency },
    ];
    const avg = samples.reduce((a, s) => a + s.c, 0) / samples.length;
    const replicas = obs.instances.filter(
      (i) => i.variant === obs.variant && i.state !== "draining" && i.state !== "stopped",
    ).length;
    const cores = obs.instances.find((i) => i.variant === obs.variant)?.cores ?? 1;
    const target = this.target(obs);
    const desired = Math.max(this.o.minReplicas, Math.ceil(avg / target));
    const direction = Math.sign(desired - replicas);
    const since = direction !== state.direction ? obs.now : state.since;
    const next: RayState = { samples, since, direction };
    const held = obs.now - since;
    const why = `average ongoing ${avg.toFixed(2)} / target ${target} → ${desired} replicas (have ${replicas})`;
    let plan: Plan;
    if (direction > 0 && held >= this.o.upscaleDelayMs)
      plan = {
        instances: uniform(obs.variant, desired, cores),
        reason: `${why}; held ${(held / 1000).toFixed(0)} s ≥ upscale delay`,
        mode: "up",
      };
    else if (direction < 0 && held >= this.o.downscaleDelayMs)
      plan = {
        instances: uniform(obs.variant, desired, cores),
        reason: `${why}; held ${(held / 1000).toFixed(0)} s ≥ downscale delay`,
        mode: "down",
      };
    else
      plan = currentPlan(
        obs,
        direction === 0 ? `${why}; steady` : `${why}; waiting (${(held / 1000).toFixed(0)} s held)`,
        "wait",
      );
    return { plan, state: next };
  }
}
