// Knative's Pod Autoscaler (KServe's default): concurrency averaged over a 60-s stable window and
// a 6-s panic window against a per-instance target; panic mode when the panic window wants at least
// twice the ready instances, never scaling down while panicking; scale-down limited to halving.
// Configured as an operator would: containerConcurrency from the variant's profiled capacity (what one
// instance holds at its best throughput within the SLO) and Knative's default target utilisation (70 %);
// the other settings are Knative's published defaults, its autoscaler ticking every 2 s.
import { currentPlan, uniform, type Decided, type Observation, type ScalingPolicy } from "../types.js";
import { instanceCapacity } from "./capacity.js";

export interface KpaOptions {
  /** containerConcurrency; absent: from the profile of the variant scaled. */
  containerConcurrency?: number;
  /** container-concurrency-target-percentage / 100 */
  targetUtilization: number;
  stableWindowMs: number;
  panicWindowMs: number;
  /** panic-threshold-percentage / 100 */
  panicThreshold: number;
  maxScaleDownRate: number;
  maxScaleUpRate: number;
  minInstances: number;
  /** The autoscaler's tick. */
  intervalMs: number;
}

export const KPA_DEFAULTS: KpaOptions = {
  targetUtilization: 0.7,
  stableWindowMs: 60_000,
  panicWindowMs: 6_000,
  panicThreshold: 2,
  maxScaleDownRate: 2,
  maxScaleUpRate: 1000,
  minInstances: 1,
  intervalMs: 2_000,
};

export interface KpaState {
  /** Concurrency samples of the stable window, oldest first. */
  samples: { t: number; c: number }[];
  /** Panic mode holds until this clock time. */
  panicUntil: number;
}

export class KpaPolicy implements ScalingPolicy<KpaState> {
  readonly name = "kpa";
  readonly intervalMs: number;
  private readonly o: KpaOptions;

  constructor(o: Partial<KpaOptions> = {}) {
    this.o = { ...KPA_DEFAULTS, ...o };
    this.intervalMs = this.o.intervalMs;
  }

  describe(): string {
    const cc = this.o.containerConcurrency;
    return `containerConcurrency ${cc ?? "from the profile"} × target ${this.o.targetUtilization * 100} %, stable ${this.o.stableWindowMs / 1000} s / panic ${this.o.panicWindowMs / 1000} s, scale-down ≤ ÷${this.o.maxScaleDownRate}, tick ${this.o.intervalMs / 1000} s`;
  }

  initialState(): KpaState {
    return { samples: [], panicUntil: Number.NEGATIVE_INFINITY };
  }

  steady(): boolean {
    return false;
  }

  /** containerConcurrency for the variant scaled: the operator's, or its profiled capacity. */
  containerConcurrency(obs: Observation): number {
    if (this.o.containerConcurrency !== undefined) return this.o.containerConcurrency;
    const v = obs.variants.find((x) => x.name === obs.variant)!;
    return instanceCapacity(v, obs.sloMs).concurrency;
  }

  decide(obs: Observation, state: KpaState): Decided<KpaState> {
    const samples = [
      ...state.samples.filter((s) => s.t > obs.now - this.o.stableWindowMs),
      { t: obs.now, c: obs.concurrency },
    ];
    const avg = (windowMs: number) => {
      const w = samples.filter((s) => s.t > obs.now - windowMs);
      return w.reduce((a, s) => a + s.c, 0) / Math.max(1, w.length);
    };
    const target = this.containerConcurrency(obs) * this.o.targetUtilization;
    const ready = obs.instances.filter(
      (i) => i.variant === obs.variant && (i.state === "ready" || i.state === "starting"),
    ).length;
    const current = Math.max(ready, 1);
    const cores = obs.instances.find((i) => i.variant === obs.variant)?.cores ?? 1;
    const stable = Math.ceil(avg(this.o.stableWindowMs) / target);
    const panic = Math.ceil(avg(this.o.panicWindowMs) / target);
    const panicUntil = panic / current >= this.o.panicThreshold ? obs.now + this.o.stableWindowMs : state.panicUntil;
    const next: KpaState = { samples, panicUntil };
    const panicking = obs.now < panicUntil;
    let desired: number;
    let reason: string;
    if (panicking) {
      desired = Math.max(current, panic);
      reason = `panic: 6-s concurrency wants ${panic} instances (≥ ${this.o.panicThreshold}× the ${current} ready); no scale-down until ${((panicUntil - obs.now) / 1000).toFixed(0)} s of calm`;
    } else {
      desired = stable;
      reason = `stable: 60-s average concurrency ${avg(this.o.stableWindowMs).toFixed(1)} / target ${target.toFixed(1)} → ${stable}`;
    }
    desired = Math.min(desired, Math.ceil(current * this.o.maxScaleUpRate));
    desired = Math.max(desired, Math.ceil(current / this.o.maxScaleDownRate), this.o.minInstances);
    const mode = panicking ? "panic" : "stable";
    if (desired === ready) return { plan: currentPlan(obs, `${reason}; no change`, mode), state: next };
    return { plan: { instances: uniform(obs.variant, desired, cores), reason, mode }, state: next };
  }
}
