// FA2-like horizontal scaling, for one task or a whole pipeline: 1-core instances, as many as the
// horizontal DP says; every new instance pays its cold start. By default it plans for the larger of the
// present rate and the forecast and follows the plan at once, the July-2024 planner's semantics. Themis'
// horizontal-only baseline (HO) is the revised loop without its vertical step: λ = max of the last 5 s,
// target λ + √λ, scale out at once, scale in after 20 agreeing decisions.
import { horizontal } from "../planner/dp.js";
import type { QueueModel, Semantics } from "../planner/model.js";
import {
  currentPlan,
  liveInstances,
  uniform,
  type Observation,
  type PipelineObservation,
  type Decided,
  type PipelineScalingPolicy,
  type Plan,
} from "../types.js";
import { planOptions, singleStage, stageRates, stageView } from "./stages.js";

export interface HorizontalOptions {
  semantics: Semantics;
  maxBatch: number;
  queue?: QueueModel;
  /** What load to plan for: the larger of the 2-s rate and the forecast, or the max of the last seconds. */
  rate: "forecast" | "recent-max";
  /** Seconds of the recent maximum (rate: recent-max). */
  rateWindowS: number;
  /** Plan for λ + √λ instead of λ. */
  sqrtHeadroom: boolean;
  /** Agreeing decisions before removing instances (0: at once). */
  stableDecisions: number;
  /** Decision interval (ms); absent, the control loop's. */
  intervalMs?: number;
}

export const HORIZONTAL_DEFAULTS: HorizontalOptions = {
  semantics: "v1",
  maxBatch: 8,
  rate: "forecast",
  rateWindowS: 5,
  sqrtHeadroom: false,
  stableDecisions: 0,
};

/** HO as the revised Themis experiments configure it. */
export const HORIZONTAL_REVISED: HorizontalOptions = {
  semantics: "revised",
  queue: "exp-p99",
  maxBatch: 4,
  rate: "recent-max",
  rateWindowS: 5,
  sqrtHeadroom: true,
  stableDecisions: 20,
  intervalMs: 500,
};

export interface HorizontalState {
  /** Agreeing decisions to scale in so far. */
  stable: number;
}

export class HorizontalPolicy implements PipelineScalingPolicy<HorizontalState> {
  readonly name = "horizontal";
  readonly intervalMs?: number;
  private readonly o: HorizontalOptions;

  constructor(o: Partial<HorizontalOptions> = {}) {
    this.o = { ...HORIZONTAL_DEFAULTS, ...o };
    this.intervalMs = this.o.intervalMs;
  }

  describe(): string {
    const o = this.o;
    const load = o.rate === "forecast" ? "max(2-s rate, forecast)" : `max of the last ${o.rateWindowS} s`;
    return `1-core instances from the horizontal DP for ${load}${o.sqrtHeadroom ? " + √λ" : ""}, ${o.semantics} planner, B_max ${o.maxBatch}, ${o.stableDecisions > 0 ? `scale in after ${o.stableDecisions} agreeing decisions` : "scale in at once"}${o.intervalMs ? `, every ${o.intervalMs / 1000} s` : ""}`;
  }

  initialState(): HorizontalState {
    return { stable: 0 };
  }

  steady(state: HorizontalState): boolean {
    return this.o.stableDecisions === 0 || state.stable >= this.o.stableDecisions;
  }

  decide(obs: Observation, state: HorizontalState): Decided<HorizontalState> {
    const d = this.decidePipeline(singleStage(obs), state);
    return { plan: d.plans[0]!, state: d.state };
  }

  decidePipeline(p: PipelineObservation, state: HorizontalState): { plans: Plan[]; state: HorizontalState } {
    const views = p.stages.map(stageView);
    const base = this.o.rate === "forecast" ? views.map((v) => v.lambdaPred) : stageRates(p.stages, this.o.rateWindowS);
    const lambda = base.map((l) => (this.o.sqrtHeadroom ? l + Math.sqrt(l) : l));
    const h = horizontal(
      views.map((v) => v.model),
      { ...planOptions(views, p.sloMs, this.o.semantics, this.o.maxBatch, 1, this.o.queue), lambda },
    );
    if (!h)
      return {
        plans: views.map((v) => currentPlan(v.obs, `no 1-core configuration meets ${p.sloMs} ms`, "horizontal")),
        state,
      };
    const live = views.map((v) => liveInstances(v.obs).length);
    const grows = h.stages.some((s, i) => s.replicas > live[i]!);
    const shrinks = h.stages.some((s, i) => s.replicas < live[i]! || views[i]!.cores > 1);
    const plan = () =>
      views.map((v, i) => {
        const s = h.stages[i]!;
        return {
          instances: uniform(v.variant.name, s.replicas, 1),
          batch: s.batch,
          reason: `${s.replicas} × 1 core, b=${s.batch} for ${lambda[i]!.toFixed(1)} req/s`,
          mode: "horizontal",
        };
      });
    if (this.o.stableDecisions === 0 || !shrinks) return { plans: plan(), state: { stable: 0 } };
    if (grows) {
      // out at once where a stage is short; a stage that could shrink waits for the agreeing decisions
      const all = plan();
      return {
        plans: views.map((v, i) =>
          h.stages[i]!.replicas > live[i]! ? all[i]! : currentPlan(v.obs, "enough instances", "horizontal"),
        ),
        state: { stable: 0 },
      };
    }
    const stable = Math.min(state.stable + 1, this.o.stableDecisions);
    if (stable < this.o.stableDecisions)
      return {
        plans: views.map((v) =>
          currentPlan(v.obs, `fewer instances would do: ${stable}/${this.o.stableDecisions} agreeing`, "horizontal"),
        ),
        state: { stable },
      };
    return { plans: plan(), state: { stable: 0 } };
  }
}
