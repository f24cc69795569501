// Knative's Pod Autoscaler (KServe's default): concurrency averaged over a 60-s stable window and
// a 6-s panic window against a per-instance target; panic mode when the panic window wants at least
// twice the ready instances, never scaling down while panicking; scale-down limited to halving.
// Defaults are Knative's published ones.
import { currentPlan, uniform, type Observation, type Plan, type ScalingPolicy } from "../types.js";

export interface KpaOptions {
  /** container-concurrency-target-default */
  targetConcurrency: number;
  /** container-concurrency-target-percentage */
  targetUtilization: number;
  stableWindowMs: number;
  panicWindowMs: number;
  /** panic-threshold-percentage / 100 */
  panicThreshold: number;
  maxScaleDownRate: number;
  maxScaleUpRate: number;
  minInstances: number;
}

export const KPA_DEFAULTS: KpaOptions = {
  targetConcurrency: 100,
  targetUtilization: 0.7,
  stableWindowMs: 60_000,
  panicWindowMs: 6_000,
  panicThreshold: 2,
  maxScaleDownRate: 2,
  maxScaleUpRate: 1000,
  minInstances: 1,
};

export class KpaPolicy implements ScalingPolicy {
  readonly name = "kpa";
  private samples: { t: number; c: number }[] = [];
  private panicUntil = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: KpaOptions = KPA_DEFAULTS) {}

  get panicking(): boolean {
    return this.samples.length > 0 && this.samples.at(-1)!.t < this.panicUntil;
  }

  decide(obs: Observation): Plan {
    this.samples.push({ t: obs.now, c: obs.concurrency });
    while (this.samples.length && this.samples[0]!.t <= obs.now - this.o.stableWindowMs) this.samples.shift();
    const avg = (windowMs: number) => {
      const w = this.samples.filter((s) => s.t > obs.now - windowMs);
      return w.reduce((a, s) => a + s.c, 0) / Math.max(1, w.length);
    };
    const target = this.o.targetConcurrency * this.o.targetUtilization;
    const ready = obs.instances.filter(
      (i) => i.variant === obs.variant && (i.state === "ready" || i.state === "starting"),
    ).length;
    const current = Math.max(ready, 1);
    const cores = obs.instances.find((i) => i.variant === obs.variant)?.cores ?? 1;
    const stable = Math.ceil(avg(this.o.stableWindowMs) / target);
    const panic = Math.ceil(avg(this.o.panicWindowMs) / target);
    if (panic / current >= this.o.panicThreshold) this.panicUntil = obs.now + this.o.stableWindowMs;
    let desired: number;
    let reason: string;
    if (obs.now < this.panicUntil) {
      desired = Math.max(current, panic);
      reason = `panic: 6-s concurrency wants ${panic} instances (≥ ${this.o.panicThreshold}× the ${current} ready); no scale-down until ${((this.panicUntil - obs.now) / 1000).toFixed(0)} s of calm`;
    } else {
      desired = stable;
      reason = `stable: 60-s average concurrency ${avg(this.o.stableWindowMs).toFixed(1)} / target ${target} → ${stable}`;
    }
    desired = Math.min(desired, Math.ceil(current * this.o.maxScaleUpRate));
    desired = Math.max(desired, Math.ceil(current / this.o.maxScaleDownRate), this.o.minInstances);
    if (desired === ready)
      return currentPlan(obs, `${reason}; no change`, obs.now < this.panicUntil ? "panic" : "stable");
    return {
      instances: uniform(obs.variant, desired, cores),
      reason,
      mode: obs.now < this.panicUntil ? "panic" : "stable",
    };
  }
}
