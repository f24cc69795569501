// Sponge's vertical scaler: instances stay; every decision takes the fewest cores, then the
// smallest batch, such that ceil(λ/b)·l(b,c) ≤ 0.9 × the tightest recent budget (the budget is
// already net of network time), and resizes in place. On a pipeline (the vertical-only baseline of
// Themis' experiments) the stages' cores come from Themis' vertical DP under the end-to-end SLO —
// instances fixed, cores up or down, never extra instances (C_max when the DP needs them). As the revised
// Themis experiments configure VO, it plans for the max of the last 5 s + √λ and gives cores back only
// after 20 agreeing decisions.
import { latencyOf } from "../../stats/latency-model.js";
import { vertical } from "../planner/dp.js";
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
import { planOptions, stageRates, stageView } from "./stages.js";

export interface VerticalOptions {
  /** Sponge's share of the budget a single task's busy time may fill. */
  headroom: number;
  /** Pipelines: the vertical DP's semantics, queue model and the load it plans for. */
  semantics: Semantics;
  queue?: QueueModel;
  maxBatch?: number;
  rate: "forecast" | "recent-max";
  rateWindowS: number;
  sqrtHeadroom: boolean;
  /** Agreeing decisions before cores are given back (0: at once). */
  stableDecisions: number;
  intervalMs?: number;
}

export const VERTICAL_DEFAULTS: VerticalOptions = {
  headroom: 0.9,
  semantics: "v1",
  rate: "forecast",
  rateWindowS: 5,
  sqrtHeadroom: false,
  stableDecisions: 0,
};

/** VO as the revised Themis experiments configure it. */
export const VERTICAL_REVISED: VerticalOptions = {
  headroom: 0.9,
  semantics: "revised",
  queue: "exp-p99",
  maxBatch: 4,
  rate: "recent-max",
  rateWindowS: 5,
  sqrtHeadroom: true,
  stableDecisions: 20,
  intervalMs: 500,
};

export interface VerticalState {
  stable: number;
}

export class SpongePolicy implements PipelineScalingPolicy<VerticalState> {
  readonly name = "vertical";
  readonly intervalMs?: number;
  private readonly o: VerticalOptions;
  private readonly headroom: number;

  constructor(o: Partial<VerticalOptions> = {}) {
    this.o = { ...VERTICAL_DEFAULTS, ...o };
    this.headroom = this.o.headroom;
    this.intervalMs = this.o.intervalMs;
  }

  describe(): string {
    const o = this.o;
    const load = o.rate === "forecast" ? "max(2-s rate, forecast)" : `max of the last ${o.rateWindowS} s`;
    return `instances fixed; one task: fewest cores then smallest batch within ${o.headroom} of the tightest budget; a pipeline: the vertical DP for ${load}${o.sqrtHeadroom ? " + √λ" : ""}, ${o.semantics} planner, ${o.stableDecisions > 0 ? `cores back after ${o.stableDecisions} agreeing decisions` : "cores up and down at once"}`;
  }

  initialState(): VerticalState {
    return { stable: 0 };
  }

  steady(state: VerticalState): boolean {
    return this.o.stableDecisions === 0 || state.stable >= this.o.stableDecisions;
  }

  decide(obs: Observation, state: VerticalState): Decided<VerticalState> {
    return { plan: this.plan(obs), state };
  }

  decidePipeline(p: PipelineObservation, state: VerticalState): { plans: Plan[]; state: VerticalState } {
    const plans = this.planPipeline(p);
    if (this.o.stableDecisions === 0) return { plans, state: { stable: 0 } };
    const cores = (xs: readonly { cores: number }[]) => xs.reduce((a, i) => a + i.cores, 0);
    const live = p.stages.map((o) => liveInstances(o));
    const grows = plans.some((pl, i) => pl.instances.some((x, k) => x.cores > (live[i]![k]?.cores ?? 0)));
    const shrinks = plans.some((pl, i) => cores(pl.instances) < cores(live[i]!));
    if (grows) {
      // up at once (no stage gives cores back meanwhile)
      const up = plans.map((pl, i) => ({
        ...pl,
        instances: pl.instances.map((x, k) => ({ ...x, cores: Math.max(x.cores, live[i]![k]?.cores ?? 0) })),
      }));
      return { plans: up, state: { stable: 0 } };
    }
    if (!shrinks) return { plans, state: { stable: 0 } };
    const stable = Math.min(state.stable + 1, this.o.stableDecisions);
    if (stable < this.o.stableDecisions)
      return {
        plans: p.stages.map((o) =>
          currentPlan(o, `fewer cores would do: ${stable}/${this.o.stableDecisions} agreeing`, "vertical"),
        ),
        state: { stable },
      };
    return { plans, state: { stable: 0 } };
  }

  private plan(obs: Observation): Plan {
    const v = obs.variants.find((x) => x.name === obs.variant)!;
    const fit = stageView(obs).model;
    const n = Math.max(
      1,
      obs.instances.filter((i) => i.variant === obs.variant && i.state !== "draining" && i.state !== "stopped").length,
    );
    const lambda = Math.max(obs.rateNow, obs.ratePred) / n;
    const budget = Math.min(obs.tightestBudgetMs, obs.sloMs);
    for (let c = 1; c <= obs.maxCores; c++) {
      for (let b = 1; b <= v.maxBatch; b++) {
        const busy = Math.ceil(lambda / b) * latencyOf(fit, b, c);
        if (busy <= this.headroom * budget) {
          return {
            instances: uniform(obs.variant, n, c),
            batch: b,
            reason: `fewest cores then smallest batch: c=${c}, b=${b}: ceil(${lambda.toFixed(1)}/${b})·l(${b},${c}) = ${busy.toFixed(1)} ≤ ${this.headroom}·${budget.toFixed(0)} ms`,
            mode: "vertical",
          };
        }
      }
    }
    return {
      instances: uniform(obs.variant, n, obs.maxCores),
      batch: v.maxBatch,
      reason: `no (c,b) meets ${this.headroom}·${budget.toFixed(0)} ms at ${lambda.toFixed(1)} req/s per instance: all ${obs.maxCores} cores`,
      mode: "vertical",
    };
  }

  private planPipeline(p: PipelineObservation): Plan[] {
    const views = p.stages.map(stageView);
    const base = this.o.rate === "forecast" ? views.map((v) => v.lambdaPred) : stageRates(p.stages, this.o.rateWindowS);
    const lambda = base.map((l) => (this.o.sqrtHeadroom ? l + Math.sqrt(l) : l));
    const maxBatch = this.o.maxBatch ?? Math.min(...views.map((v) => v.variant.maxBatch));
    const plan = vertical(
      views.map((v) => v.model),
      {
        ...planOptions(views, p.sloMs, this.o.semantics, maxBatch, undefined, this.o.queue),
        lambda,
        current: views.map((v) => v.n),
      },
    );
    return views.map((v, i) => {
      const s = plan?.stages[i];
      const short = !s || (plan!.extra?.[i] ?? 0) > 0;
      const cores = short ? v.obs.maxCores : s.cores;
      return {
        instances: uniform(v.variant.name, v.n, cores),
        batch: s?.batch,
        reason: short
          ? `stage ${v.obs.task}: even ${v.obs.maxCores} cores per instance cannot carry ${lambda[i]!.toFixed(1)} req/s; all cores`
          : `stage ${v.obs.task}: ${v.n} × ${cores} cores for ${lambda[i]!.toFixed(1)} req/s`,
        mode: "vertical",
      };
    });
  }
}
