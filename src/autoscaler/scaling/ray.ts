// Ray Serve's autoscaler: replicas = ceil(ongoing requests averaged over a 30-s look-back / target
// ongoing requests per replica), acted on only after the wish has held for the upscale delay (30 s)
// or downscale delay (600 s). Defaults are Ray Serve's published ones.
import { currentPlan, uniform, type Observation, type Plan, type ScalingPolicy } from "../types.js";

export interface RayOptions {
  targetOngoingRequests: number;
  upscaleDelayMs: number;
  downscaleDelayMs: number;
  lookBackMs: number;
  minReplicas: number;
}

export const RAY_DEFAULTS: RayOptions = {
  targetOngoingRequests: 2,
  upscaleDelayMs: 30_000,
  downscaleDelayMs: 600_000,
  lookBackMs: 30_000,
  minReplicas: 1,
};

export class RayPolicy implements ScalingPolicy {
  readonly name = "ray";
  private samples: { t: number; c: number }[] = [];
  /** Since when the wish has pointed up (+) or down (−) without interruption. */
  private since = Number.NaN;
  private direction = 0;

  constructor(private readonly o: RayOptions = RAY_DEFAULTS) {}

  decide(obs: Observation): Plan {
    this.samples.push({ t: obs.now, c: obs.concurrency });
    while (this.samples.length && this.samples[0]!.t <= obs.now - this.o.lookBackMs) this.samples.shift();
    const avg = this.samples.reduce((a, s) => a + s.c, 0) / this.samples.length;
    const replicas = obs.instances.filter(
      (i) => i.variant === obs.variant && i.state !== "draining" && i.state !== "stopped",
    ).length;
    const cores = obs.instances.find((i) => i.variant === obs.variant)?.cores ?? 1;
    const desired = Math.max(this.o.minReplicas, Math.ceil(avg / this.o.targetOngoingRequests));
    const direction = Math.sign(desired - replicas);
    if (direction !== this.direction) {
      this.direction = direction;
      this.since = obs.now;
    }
    const held = obs.now - this.since;
    const why = `average ongoing ${avg.toFixed(2)} / target ${this.o.targetOngoingRequests} → ${desired} replicas (have ${replicas})`;
    if (direction > 0 && held >= this.o.upscaleDelayMs)
      return {
        instances: uniform(obs.variant, desired, cores),
        reason: `${why}; held ${(held / 1000).toFixed(0)} s ≥ upscale delay`,
        mode: "up",
      };
    if (direction < 0 && held >= this.o.downscaleDelayMs)
      return {
        instances: uniform(obs.variant, desired, cores),
        reason: `${why}; held ${(held / 1000).toFixed(0)} s ≥ downscale delay`,
        mode: "down",
      };
    return currentPlan(
      obs,
      direction === 0 ? `${why}; steady` : `${why}; waiting (${(held / 1000).toFixed(0)} s held)`,
      "wait",
    );
  }
}
