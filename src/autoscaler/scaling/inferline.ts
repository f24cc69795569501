// An InferLine-like planner (Themis' fourth baseline, "IL"): every stage starts on the largest instances
// (C_max cores, batch 1, as many replicas as the load needs), then a greedy loop takes, among "one core
// less" and "a larger batch" on any stage, the change that lowers the cost Σ n·(mem + 18·c) the most while
// the end-to-end latency Σ (lat + queue) stays within the SLO and every stage carries its load; it stops
// when no change lowers the cost. InferLine plans offline and tunes replicas online; here the planner runs
// at every decision on the revised loop's load signal (max of the last 5 s + √λ), adds capacity at once and
// removes it after 20 agreeing decisions.
import { instanceCost, lat, queueMs, throughput, type StageModel } from "../planner/model.js";
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
import { planOptions, singleStage, stageRates, stageView } from "./stages.js";

export interface IlStage {
  cores: number;
  batch: number;
  replicas: number;
}

export interface IlOptions {
  sloMs: number;
  lambda: readonly number[];
  bMax: number;
  cMax: number;
  unitMs?: number;
}

const SEMANTICS = "revised" as const;
const QUEUE = "exp-p99" as const;

/** The greedy trim from C_max; null when even C_max at batch 1 misses the SLO. */
export function inferlinePlan(stages: StageModel[], o: IlOptions): IlStage[] | null {
  const unit = o.unitMs ?? 1;
  const evalStage = (s: number, c: number, b: number) => {
    const m = stages[s]!;
    const l = lat(m, b, c, SEMANTICS, unit) * unit;
    const q = queueMs(b, o.lambda[s]!, SEMANTICS, unit, QUEUE) * unit;
    const h = throughput(m, b, c, SEMANTICS, unit);
    if (!(h > 0) || !Number.isFinite(q)) return null;
    const n = Math.max(1, Math.ceil(o.lambda[s]! / h - 1e-12));
    return { span: l + q, cost: n * instanceCost(m, c, SEMANTICS), n };
  };
  const cfg = stages.map(() => ({ c: o.cMax, b: 1 }));
  const total = (xs: { c: number; b: number }[]) => {
    let span = 0;
    let cost = 0;
    for (let s = 0; s < xs.length; s++) {
      const e = evalStage(s, xs[s]!.c, xs[s]!.b);
      if (!e) return null;
      span += e.span;
      cost += e.cost;
    }
    return span <= o.sloMs + 1e-9 ? cost : null;
  };
  let cost = total(cfg);
  if (cost === null) return null;
  for (;;) {
    let best: { s: number; c: number; b: number; cost: number } | null = null;
    for (let s = 0; s < cfg.length; s++) {
      const { c, b } = cfg[s]!;
      const moves = [
        ...(c > 1 ? [{ c: c - 1, b }] : []),
        ...Array.from({ length: o.bMax - b }, (_, k) => ({ c, b: b + k + 1 })),
      ];
      for (const m of moves) {
        const next = cfg.map((x, i) => (i === s ? m : x));
        const nc = total(next);
        if (nc !== null && nc < cost && (!best || nc < best.cost)) best = { s, ...m, cost: nc };
      }
    }
    if (!best) break;
    cfg[best.s] = { c: best.c, b: best.b };
    cost = best.cost;
  }
  return cfg.map((x, s) => ({ cores: x.c, batch: x.b, replicas: evalStage(s, x.c, x.b)!.n }));
}

export interface InferlineOptions {
  maxBatch: number;
  rateWindowS: number;
  stableDecisions: number;
  intervalMs: number;
}

export const INFERLINE_DEFAULTS: InferlineOptions = {
  maxBatch: 4,
  rateWindowS: 5,
  stableDecisions: 20,
  intervalMs: 500,
};

export interface InferlineState {
  stable: number;
}

export class InferlinePolicy implements PipelineScalingPolicy<InferlineState> {
  readonly name = "il";
  readonly intervalMs: number;
  private readonly o: InferlineOptions;

  constructor(o: Partial<InferlineOptions> = {}) {
    this.o = { ...INFERLINE_DEFAULTS, ...o };
    this.intervalMs = this.o.intervalMs;
  }

  describe(): string {
    return `InferLine-like: start at C_max, greedy trim of cores and batch, for the max of the last ${this.o.rateWindowS} s + √λ, capacity down after ${this.o.stableDecisions} agreeing decisions, every ${this.o.intervalMs / 1000} s`;
  }

  initialState(): InferlineState {
    return { stable: 0 };
  }

  steady(state: InferlineState): boolean {
    return state.stable >= this.o.stableDecisions;
  }

  decide(obs: Observation, state: InferlineState): Decided<InferlineState> {
    const d = this.decidePipeline(singleStage(obs), state);
    return { plan: d.plans[0]!, state: d.state };
  }

  decidePipeline(p: PipelineObservation, state: InferlineState): { plans: Plan[]; state: InferlineState } {
    const views = p.stages.map(stageView);
    const lambda = stageRates(p.stages, this.o.rateWindowS).map((l) => l + Math.sqrt(l));
    const common = planOptions(views, p.sloMs, SEMANTICS, this.o.maxBatch, undefined, QUEUE);
    const plan = inferlinePlan(
      views.map((v) => v.model),
      { sloMs: p.sloMs, lambda, bMax: common.bMax, cMax: common.cMax, unitMs: common.unitMs },
    );
    if (!plan)
      return {
        plans: views.map((v) => currentPlan(v.obs, `even ${common.cMax} cores at batch 1 miss ${p.sloMs} ms`, "il")),
        state,
      };
    const plans: Plan[] = views.map((v, i) => {
      const s = plan[i]!;
      return {
        instances: uniform(v.variant.name, s.replicas, s.cores),
        batch: s.batch,
        reason: `${s.replicas} × ${s.cores} cores, b=${s.batch} for ${lambda[i]!.toFixed(1)} req/s`,
        mode: "il",
      };
    });
    const live = views.map((v) => liveInstances(v.obs));
    const cores = (xs: readonly { cores: number }[]) => xs.reduce((a, x) => a + x.cores, 0);
    const grows = plans.some((pl, i) => pl.instances.length > live[i]!.length || cores(pl.instances) > cores(live[i]!));
    const same = plans.every(
      (pl, i) => pl.instances.length === live[i]!.length && cores(pl.instances) === cores(live[i]!),
    );
    if (grows || same) return { plans, state: { stable: 0 } };
    const stable = Math.min(state.stable + 1, this.o.stableDecisions);
    if (stable < this.o.stableDecisions)
      return {
        plans: views.map((v) =>
          currentPlan(v.obs, `a cheaper plan: ${stable}/${this.o.stableDecisions} agreeing`, "il"),
        ),
        state: { stable },
      };
    return { plans, state: { stable: 0 } };
  }
}
