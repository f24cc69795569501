// Kubernetes' Horizontal Pod Autoscaler on CPU, as operators configure it for a model server: target
// utilisation 70 %, a 15-s sync period, a 300-s scale-down stabilisation window (the largest
// recommendation of the last 5 minutes wins when scaling down), a 10 % tolerance, and the default
// scale-up limit (the larger of 4 pods or 100 % per period). Pods keep their size (1 core each).
// Utilisation is the instances' busy time over the period: a worker runs its batches with all its
// threads, so a busy instance is a fully used CPU request; one still starting counts as idle, as the
// HPA counts unready pods conservatively when it scales up.
import { currentPlan, liveInstances, uniform, type Decided, type Observation, type ScalingPolicy } from "../types.js";

export interface HpaOptions {
  targetUtilization: number;
  syncMs: number;
  scaleDownWindowMs: number;
  tolerance: number;
  minReplicas: number;
  /** Scale-up limit per period: max(pods, percent of current). */
  scaleUpPods: number;
  scaleUpPercent: number;
}

export const HPA_DEFAULTS: HpaOptions = {
  targetUtilization: 0.7,
  syncMs: 15_000,
  scaleDownWindowMs: 300_000,
  tolerance: 0.1,
  minReplicas: 1,
  scaleUpPods: 4,
  scaleUpPercent: 100,
};

export interface HpaState {
  /** Recommendations of the scale-down window, oldest first. */
  recommendations: { t: number; n: number }[];
}

export class HpaPolicy implements ScalingPolicy<HpaState> {
  readonly name = "hpa";
  readonly intervalMs: number;
  private readonly o: HpaOptions;

  constructor(o: Partial<HpaOptions> = {}) {
    this.o = { ...HPA_DEFAULTS, ...o };
    this.intervalMs = this.o.syncMs;
  }

  describe(): string {
    return `CPU target ${this.o.targetUtilization * 100} %, sync ${this.o.syncMs / 1000} s, scale-down window ${this.o.scaleDownWindowMs / 1000} s, tolerance ${this.o.tolerance * 100} %, 1-core pods`;
  }

  initialState(): HpaState {
    return { recommendations: [] };
  }

  steady(): boolean {
    return false;
  }

  decide(obs: Observation, state: HpaState): Decided<HpaState> {
    const live = liveInstances(obs);
    const current = Math.max(1, live.length);
    const cores = live[0]?.cores ?? 1;
    const utilisation = obs.sinceMs > 0 ? obs.busyMs / (current * obs.sinceMs) : 0;
    const ratio = utilisation / this.o.targetUtilization;
    const raw =
      Math.abs(ratio - 1) <= this.o.tolerance ? current : Math.max(this.o.minReplicas, Math.ceil(current * ratio));
    const recommendations = [
      ...state.recommendations.filter((r) => r.t > obs.now - this.o.scaleDownWindowMs),
      { t: obs.now, n: raw },
    ];
    const upLimit = Math.max(current + this.o.scaleUpPods, Math.ceil((current * (100 + this.o.scaleUpPercent)) / 100));
    const desired =
      raw > current ? Math.min(raw, upLimit) : Math.min(current, Math.max(...recommendations.map((r) => r.n)));
    const why = `CPU ${(utilisation * 100).toFixed(0)} % of ${current} pod(s) / target ${this.o.targetUtilization * 100} % → ${raw}`;
    const next = { recommendations };
    if (desired === live.length) return { plan: currentPlan(obs, `${why}; ${desired} pods`, "hpa"), state: next };
    return {
      plan: {
        instances: uniform(obs.variant, desired, cores),
        reason:
          desired < raw
            ? `${why}, limited to ${desired} this period`
            : desired > raw
              ? `${why}; the 5-min window holds ${desired}`
              : why,
        mode: desired > live.length ? "up" : "down",
      },
      state: next,
    };
  }
}
