// Themis' two-stage scaling as the authors revised it in 2025 (EXPERIMENTS.md, "the revised rule"; sloserve's
// `themis`), for one task or a whole pipeline under its end-to-end SLO. Every 0.5 s, from 30 s on:
//   λ  = ceil(max of the last 5 per-second arrival counts at the pipeline's entry);
//   T  = min over stages of the capacity of what runs now, Σ_i floor(1000·b_s / lat_s(c_i, b_s)) with the
//        revised latency margin (ζ += l(1,1)/10, ceil);
//   inc = "load will exceed capacity within 10 s": the control loop's forecast of the next 10 s' maximum
//        exceeds T (the authors use an LSTM classifier here; this is sloserve's stated deviation);
//   horizontal when (not inc and λ < T) or a stage already has C_max cores, else vertical.
// Horizontal: the DP with 1-core instances for λ + √λ, cost Σ n·(mem + 18·c). A stage that needs more
// instances than it has gets the plan at once; otherwise nothing happens until 20 such decisions (10 s)
// agree, and then the plan is applied — scale-in, or consolidation of multi-core instances onto 1-core ones.
// Whenever a plan shrinks a stage's instances to 1 core, the stage gets one spare instance. Any applied
// action resets that count. Vertical: the DP at the present instance counts for λ + √λ, cores only go
// up; when even C_max cannot carry the load, instances of the largest size are added. The queue is
// budgeted as (b−1) p99 exponential inter-arrivals. The actuator makes before it breaks: new instances are
// ready before old ones shrink or stop, and a resize with no room on its node becomes a new instance of
// the new size and the old one's stop.
import { horizontal, vertical, type StagesPlan } from "../planner/dp.js";
import { throughput } from "../planner/model.js";
import {
  currentPlan,
  liveInstances,
  uniform,
  type Decided,
  type Observation,
  type PipelineObservation,
  type PipelineScalingPolicy,
  type Plan,
} from "../types.js";
import { planOptions, singleStage, stageRates, stageView, type StageView } from "./stages.js";

export interface ThemisOptions {
  /** Decision interval (ms). */
  intervalMs: number;
  /** No decision before this long after the policy first sees the task (ms). */
  warmupMs: number;
  /** Seconds whose maximum per-second count is λ. */
  rateWindowS: number;
  /** Agreeing horizontal decisions before a scale-in or consolidation is applied. */
  stableDecisions: number;
  /** Largest batch the planner may choose (B_max). */
  maxBatch: number;
  /** One extra 1-core instance for a stage whose instances shrink. */
  spare: boolean;
}

export const THEMIS_DEFAULTS: ThemisOptions = {
  intervalMs: 500,
  warmupMs: 30_000,
  rateWindowS: 5,
  stableDecisions: 20,
  maxBatch: 4,
  spare: true,
};

export interface ThemisState {
  /** The last decision's mode ("warmup" before the first). */
  mode: "warmup" | "horizontal" | "vertical";
  /** Agreeing horizontal decisions since the last applied action (capped at stableDecisions). */
  stable: number;
  /** Clock ms the policy first saw the task; null before. */
  since: number | null;
  /** The batch each stage was last planned with (capacity T is computed with it); empty before any plan. */
  batch: number[];
}

const SEMANTICS = "revised" as const;
const QUEUE = "exp-p99" as const;

export class ThemisPolicy implements PipelineScalingPolicy<ThemisState> {
  readonly name: string = "themis";
  readonly intervalMs: number;

  constructor(private readonly o: ThemisOptions = THEMIS_DEFAULTS) {
    this.intervalMs = o.intervalMs;
  }

  describe(): string {
    return `revised 2025 rule: ${this.o.intervalMs / 1000}-s decisions after ${this.o.warmupMs / 1000} s, λ = max of ${this.o.rateWindowS} s, target λ+√λ, ${this.o.stableDecisions} agreeing decisions to scale in, ${this.o.spare ? "one spare instance" : "no spare"}, B_max ${this.o.maxBatch}, inc = forecast > capacity`;
  }

  initialState(): ThemisState {
    return { mode: "warmup", stable: 0, since: null, batch: [] };
  }

  steady(state: ThemisState): boolean {
    return state.mode === "horizontal" && state.stable >= this.o.stableDecisions;
  }

  decide(obs: Observation, state: ThemisState): Decided<ThemisState> {
    const d = this.decidePipeline(singleStage(obs), state);
    return { plan: d.plans[0]!, state: d.state };
  }

  decidePipeline(p: PipelineObservation, state: ThemisState): { plans: Plan[]; state: ThemisState } {
    const since = state.since ?? p.now;
    if (p.now - since < this.o.warmupMs) {
      const left = ((this.o.warmupMs - (p.now - since)) / 1000).toFixed(1);
      return {
        plans: p.stages.map((o) => currentPlan(o, `warm-up: first decision in ${left} s`, "warmup")),
        state: { ...state, since },
      };
    }
    const views = p.stages.map(stageView);
    const models = views.map((v) => v.model);
    const common = planOptions(views, p.sloMs, SEMANTICS, this.o.maxBatch, undefined, QUEUE);
    const cMax = common.cMax;
    const lambda = stageRates(p.stages, this.o.rateWindowS);
    const target = lambda.map((l) => l + Math.sqrt(l));
    const hPlan = horizontal(models, { ...common, cMax: 1, lambda: target });
    const batch = views.map((_, i) => state.batch[i] ?? hPlan?.stages[i]!.batch ?? 1);
    const capacity = views.map((v, i) =>
      liveInstances(v.obs).reduce((sum, inst) => sum + throughput(v.model, batch[i]!, inst.cores, SEMANTICS), 0),
    );
    const T = Math.min(...capacity);
    const forecast = Math.max(...p.stages.map((o) => o.ratePred));
    const inc = forecast > T;
    const below = lambda.every((l, i) => l < capacity[i]!);
    const maxed = views.findIndex((v) => v.cores >= cMax);
    const signals = `λ ${lambda[0]}, T ${T}, forecast ${forecast.toFixed(1)}${inc ? " > T" : ""}`;
    const next = { ...state, since, batch };
    if ((!inc && below) || maxed >= 0) {
      const why = maxed >= 0 ? `${this.stageName(views, maxed)}at C_max = ${cMax} cores` : "no increase expected";
      return this.horizontalStep(views, hPlan, `${signals}; ${why}`, next);
    }
    return this.verticalStep(views, common, target, signals, next);
  }

  private stageName(views: StageView[], i: number): string {
    return views.length > 1 ? `stage ${views[i]!.obs.task} ` : "";
  }

  private horizontalStep(
    views: StageView[],
    h: StagesPlan | null,
    why: string,
    state: ThemisState,
  ): { plans: Plan[]; state: ThemisState } {
    if (!h)
      return {
        plans: views.map((v) =>
          currentPlan(v.obs, `${why}: no 1-core configuration meets the SLO; keeping`, "horizontal"),
        ),
        state: { ...state, mode: "horizontal" },
      };
    const live = views.map((v) => liveInstances(v.obs));
    const out = views.map((_, i) => h.stages[i]!.replicas > live[i]!.length);
    const layout = (i: number) => {
      const v = views[i]!;
      const spare = this.o.spare && v.cores > 1 ? 1 : 0;
      return uniform(v.variant.name, h.stages[i]!.replicas + spare, 1);
    };
    const describeStage = (i: number) => {
      const v = views[i]!;
      const spare = this.o.spare && v.cores > 1;
      return `${this.stageName(views, i)}${h.stages[i]!.replicas}${spare ? " + 1 spare" : ""} × 1 core, b=${h.stages[i]!.batch}`;
    };
    if (out.some(Boolean)) {
      const plans = views.map((v, i) =>
        out[i]
          ? {
              instances: layout(i),
              batch: h.stages[i]!.batch,
              reason: `${why}: scale out now to ${describeStage(i)}`,
              mode: "horizontal",
            }
          : currentPlan(v.obs, `${why}: enough instances`, "horizontal"),
      );
      const batch = state.batch.map((b, i) => (out[i] ? h.stages[i]!.batch : b));
      return { plans, state: { ...state, mode: "horizontal", stable: 0, batch } };
    }
    const stable = Math.min(state.stable + 1, this.o.stableDecisions);
    if (stable < this.o.stableDecisions)
      return {
        plans: views.map((v) =>
          currentPlan(v.obs, `${why}: stable ${stable}/${this.o.stableDecisions} before scaling in`, "horizontal"),
        ),
        state: { ...state, mode: "horizontal", stable },
      };
    const plans: Plan[] = views.map((v, i) => ({
      instances: layout(i),
      batch: h.stages[i]!.batch,
      reason: `${why}: ${this.o.stableDecisions} agreeing decisions, ${describeStage(i)}`,
      mode: "horizontal",
    }));
    const changes = views.some((v, i) => !sameLayout(live[i]!, plans[i]!));
    return {
      plans,
      state: {
        ...state,
        mode: "horizontal",
        stable: changes ? 0 : stable,
        batch: h.stages.map((s) => s.batch),
      },
    };
  }

  private verticalStep(
    views: StageView[],
    common: ReturnType<typeof planOptions>,
    target: number[],
    signals: string,
    state: ThemisState,
  ): { plans: Plan[]; state: ThemisState } {
    const live = views.map((v) => liveInstances(v.obs));
    const v = vertical(
      views.map((x) => x.model),
      { ...common, lambda: target, current: views.map((x) => x.n) },
    );
    if (!v)
      return {
        plans: views.map((x) =>
          currentPlan(x.obs, `${signals}: no vertical configuration meets the SLO; keeping`, "vertical"),
        ),
        state: { ...state, mode: "vertical" },
      };
    const plans: Plan[] = views.map((x, i) => {
      const s = v.stages[i]!;
      const extra = v.extra?.[i] ?? 0;
      const grown = live[i]!.map((inst) => ({ variant: x.variant.name, cores: Math.max(inst.cores, s.cores) }));
      if (grown.length === 0) grown.push({ variant: x.variant.name, cores: s.cores });
      const instances = [...grown, ...uniform(x.variant.name, extra, s.cores)];
      return {
        instances,
        batch: s.batch,
        reason: `${signals}: vertical, ${this.stageName(views, i)}${s.cores} cores each, b=${s.batch}${extra > 0 ? `, ${extra} more instance(s) of ${s.cores} cores (C_max cannot carry λ+√λ)` : ""} (cores only go up)`,
        mode: "vertical",
      };
    });
    const changes = views.some((x, i) => !sameLayout(live[i]!, plans[i]!));
    return {
      plans,
      state: {
        ...state,
        mode: "vertical",
        stable: changes ? 0 : state.stable,
        batch: v.stages.map((s) => s.batch),
      },
    };
  }
}

/** Does the plan ask for exactly the instances (variant and cores) that live now? */
function sameLayout(live: readonly { variant: string; cores: number }[], plan: Plan): boolean {
  const key = (xs: readonly { variant: string; cores: number }[]) =>
    xs
      .map((i) => `${i.variant}:${i.cores}`)
      .sort()
      .join(",");
  return key(live) === key(plan.instances);
}
