// Themis' two-stage scaling (EXPERIMENTS.md, the authors' July-2024 rule), for one task or a whole
// pipeline under its end-to-end SLO: vertical when the vertical solution needs extra instances or more
// cores than some stage has, or when the forecast needs more horizontal instances than the present
// load; while vertical, cores only go up; back to horizontal (1-core instances, consolidation) only
// after N agreeing decisions.
import { horizontal, vertical, type PlanOptions } from "../planner/dp.js";
import { unitFor, type Semantics, type StageModel } from "../planner/model.js";
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
import type { VariantModel } from "../../router/scheduling/types.js";

export interface ThemisOptions {
  /** Consecutive horizontal-leaning decisions before consolidating (the authors used 5–10). */
  stableDecisions: number;
  semantics: Semantics;
  /** Largest batch the planner may choose (B_max). */
  maxBatch: number;
}

export const THEMIS_DEFAULTS: ThemisOptions = { stableDecisions: 5, semantics: "v1", maxBatch: 8 };

interface StageView {
  obs: Observation;
  variant: VariantModel;
  model: StageModel;
  /** Live instances now (at least 1: the planner's n_s). */
  n: number;
  /** Largest instance's cores now. */
  cores: number;
  lambdaNow: number;
  lambdaPred: number;
}

/** The stage's variant, its latency model and what runs now. */
export function stageView(obs: Observation): StageView {
  const variant = obs.variants.find((x) => x.name === obs.variant)!;
  const live = liveInstances(obs);
  const lambdaNow = Math.max(obs.rateNow, 1e-3);
  return {
    obs,
    variant,
    model: { ...variant.fit },
    n: Math.max(1, live.length),
    cores: Math.max(1, ...live.map((i) => i.cores)),
    lambdaNow,
    lambdaPred: Math.max(obs.ratePred, lambdaNow),
  };
}

/** Planner options common to a decision: B_max and C_max of the tightest stage, the DP's time unit. */
export function planOptions(
  views: StageView[],
  sloMs: number,
  semantics: Semantics,
  maxBatch: number,
  cMax?: number,
): Omit<PlanOptions, "lambda"> {
  const c = cMax ?? Math.min(...views.map((v) => v.obs.maxCores));
  return {
    sloMs,
    bMax: Math.min(maxBatch, ...views.map((v) => v.variant.maxBatch)),
    cMax: c,
    semantics,
    unitMs: unitFor(
      views.map((v) => v.model),
      c,
      semantics,
      sloMs,
    ),
  };
}

export function singleStage(obs: Observation): PipelineObservation {
  return { now: obs.now, pipeline: obs.task, sloMs: obs.sloMs, stages: [obs] };
}

export interface ThemisState {
  mode: "horizontal" | "vertical";
  /** Consecutive decisions that agreed on consolidating, since the last vertical one. */
  stable: number;
}

export class ThemisPolicy implements PipelineScalingPolicy<ThemisState> {
  readonly name: string = "themis";

  constructor(private readonly o: ThemisOptions = THEMIS_DEFAULTS) {}

  initialState(): ThemisState {
    return { mode: "horizontal", stable: 0 };
  }

  steady(state: ThemisState): boolean {
    return state.mode === "horizontal";
  }

  decide(obs: Observation, state: ThemisState): Decided<ThemisState> {
    const d = this.decidePipeline(singleStage(obs), state);
    return { plan: d.plans[0]!, state: d.state };
  }

  decidePipeline(p: PipelineObservation, state: ThemisState): { plans: Plan[]; state: ThemisState } {
    const views = p.stages.map(stageView);
    const models = views.map((v) => v.model);
    const common = planOptions(views, p.sloMs, this.o.semantics, this.o.maxBatch);
    const now = views.map((v) => v.lambdaNow);
    const pred = views.map((v) => v.lambdaPred);
    const current = views.map((v) => v.n);
    const same = pred.every((x, i) => x === now[i]);
    const hNow = horizontal(models, { ...common, lambda: now });
    const hPred = same ? hNow : horizontal(models, { ...common, lambda: pred });
    const vNow = vertical(models, { ...common, lambda: now, current });
    const surge = hNow !== null && hPred !== null && hPred.stages.some((s, i) => s.replicas > hNow.stages[i]!.replicas);
    const extraAt = vNow?.extra?.findIndex((e) => e > 0) ?? -1;
    const coresAt = vNow ? vNow.stages.findIndex((s, i) => s.cores > views[i]!.cores) : -1;
    const name = (i: number) => (views.length > 1 ? `stage ${views[i]!.obs.task}: ` : "");
    if (!vNow || extraAt >= 0 || coresAt >= 0 || surge) {
      const sized = surge ? vertical(models, { ...common, lambda: pred, current }) : vNow;
      const why = !vNow
        ? "no vertical solution"
        : extraAt >= 0
          ? `${name(extraAt)}vertical needs ${vNow.extra![extraAt]} extra instance(s)`
          : coresAt >= 0
            ? `${name(coresAt)}vertical needs ${vNow.stages[coresAt]!.cores} cores > ${views[coresAt]!.cores}`
            : `forecast ${Math.max(...pred).toFixed(1)} req/s needs more horizontal instances than now`;
      const plans = views.map((v, i) => {
        const s = sized?.stages[i];
        const cores = Math.min(v.obs.maxCores, Math.max(v.cores, s?.cores ?? v.obs.maxCores));
        const count = v.n + (sized?.extra?.[i] ?? 0);
        return {
          instances: uniform(v.variant.name, count, cores),
          batch: s?.batch,
          reason: `${why}: vertical, ${name(i)}${count} × ${cores} cores (cores only go up while vertical)`,
          mode: "vertical",
        };
      });
      return { plans, state: { mode: "vertical", stable: 0 } };
    }
    const stable = state.stable + 1;
    if (state.mode === "vertical" && stable < this.o.stableDecisions) {
      return {
        plans: views.map((v) =>
          currentPlan(
            v.obs,
            `load stable, ${stable}/${this.o.stableDecisions} agreeing decisions before consolidating`,
            "vertical",
          ),
        ),
        state: { mode: "vertical", stable },
      };
    }
    const next: ThemisState = { mode: "horizontal", stable };
    if (!hNow)
      return {
        plans: views.map((v) =>
          currentPlan(v.obs, "no horizontal solution within the SLO; keeping the configuration", "horizontal"),
        ),
        state: next,
      };
    const plans = views.map((v, i) => {
      const h = hNow.stages[i]!;
      return {
        instances: uniform(v.variant.name, h.replicas, 1),
        batch: h.batch,
        reason: `horizontal: ${name(i)}${h.replicas} × 1 core, b=${h.batch} for ${v.lambdaNow.toFixed(1)} req/s`,
        mode: "horizontal",
      };
    });
    return { plans, state: next };
  }
}
