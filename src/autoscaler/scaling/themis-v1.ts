// Themis' two-stage scaling as the authors' July-2024 code does it (EXPERIMENTS.md; `themis-v1`), for
// one task or a whole pipeline under its end-to-end SLO: vertical when the vertical solution needs extra instances or more
// cores than some stage has, or when the forecast needs more horizontal instances than the present
// load; while vertical, cores only go up; back to horizontal (1-core instances, consolidation) only
// after N agreeing decisions.
import { horizontal, vertical } from "../planner/dp.js";
import type { Semantics } from "../planner/model.js";
import {
  currentPlan,
  uniform,
  type Observation,
  type PipelineObservation,
  type Decided,
  type PipelineScalingPolicy,
  type Plan,
} from "../types.js";
import { planOptions, singleStage, stageView } from "./stages.js";

export interface ThemisV1Options {
  /** Consecutive horizontal-leaning decisions before consolidating (the authors used 5–10). */
  stableDecisions: number;
  semantics: Semantics;
  /** Largest batch the planner may choose (B_max). */
  maxBatch: number;
}

export const THEMIS_V1_DEFAULTS: ThemisV1Options = { stableDecisions: 5, semantics: "v1", maxBatch: 8 };

export interface ThemisV1State {
  mode: "horizontal" | "vertical";
  /** Consecutive decisions that agreed on consolidating, since the last vertical one. */
  stable: number;
}

export class ThemisV1Policy implements PipelineScalingPolicy<ThemisV1State> {
  readonly name: string = "themis-v1";

  constructor(private readonly o: ThemisV1Options = THEMIS_V1_DEFAULTS) {}

  describe(): string {
    return `July-2024 rule: 1-s decisions on the 2-s rate and the forecast, ${this.o.stableDecisions} agreeing decisions to consolidate, ${this.o.semantics} planner, B_max ${this.o.maxBatch}`;
  }

  initialState(): ThemisV1State {
    return { mode: "horizontal", stable: 0 };
  }

  steady(state: ThemisV1State): boolean {
    return state.mode === "horizontal";
  }

  decide(obs: Observation, state: ThemisV1State): Decided<ThemisV1State> {
    const d = this.decidePipeline(singleStage(obs), state);
    return { plan: d.plans[0]!, state: d.state };
  }

  decidePipeline(p: PipelineObservation, state: ThemisV1State): { plans: Plan[]; state: ThemisV1State } {
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
    const next: ThemisV1State = { mode: "horizontal", stable };
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
