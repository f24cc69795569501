// Themis' planners (EXPERIMENTS.md, "Themis"): one dynamic program over pipeline stages and an integer
// latency budget in ms — a multiple-choice knapsack. best[s][t] is the least cost of configuring stages
// 0..s using exactly t ms end to end; every (cores, batch) choice of stage s relaxes
// best[s][t + lat + queue]. The answer is the cheapest t ≤ SLO (ties: the smaller t), then backtrack.
// O(S · SLO · C_max · B_max) time, O(S · SLO) memory.
import { instanceCost, lat, queueMs, throughput, type QueueModel, type Semantics, type StageModel } from "./model.js";

export interface PlanOptions {
  sloMs: number;
  /** Arrival rate every stage must carry (req/s), or one per stage (a stage also serving direct traffic). */
  lambda: number | readonly number[];
  bMax: number;
  cMax: number;
  semantics: Semantics;
  /** How batch formation is budgeted (default: the semantics'). */
  queue?: QueueModel;
  /** DP time unit in ms (default 1, the papers'); see unitFor() for sub-ms models. */
  unitMs?: number;
}

export interface VerticalOptions extends PlanOptions {
  /** Instances each stage has now; the vertical planner keeps them. */
  current: number[];
}

export interface StagePlan {
  cores: number;
  batch: number;
  replicas: number;
  /** Integer-ms latency of one batch under the semantics. */
  latencyMs: number;
  /** Batch-formation delay at the planned rate (ms). */
  queueMs: number;
  /** Requests per second one instance serves. */
  throughput: number;
}

export interface StagesPlan {
  stages: StagePlan[];
  cost: number;
  /** Σ (latency + queue) over stages, ≤ SLO. */
  totalLatencyMs: number;
  /** Vertical fallback only: instances of the chosen size to add per stage. */
  extra?: number[];
}

interface Choice {
  plan: StagePlan;
  cost: number;
  /** lat + queue, integer ms. */
  span: number;
}

/** One stage's admissible choices; `replicasFor` returns the instances a (c, b) needs, or null to skip it. */
type ReplicasFor = (c: number, b: number, h: number) => number | null;

/** Stage s's arrival rate. */
export function rateOf(lambda: PlanOptions["lambda"], s: number): number {
  return typeof lambda === "number" ? lambda : (lambda[s] ?? 0);
}

/**
 * `cycle`: an instance's rate is b requests per batch formation plus processing, floor(1000·b/(lat + queue)),
 * rather than per processing alone (v1's vertical solver; see vertical()).
 */
function choices(
  m: StageModel,
  o: PlanOptions,
  lambda: number,
  cMin: number,
  cMax: number,
  replicasFor: ReplicasFor,
  cycle = false,
): Choice[] {
  const out: Choice[] = [];
  const unit = o.unitMs ?? 1;
  const slo = Math.floor(o.sloMs / unit + 1e-9);
  const queue = Array.from({ length: o.bMax + 1 }, (_, b) =>
    b === 0 ? 0 : queueMs(b, lambda, o.semantics, unit, o.queue),
  );
  for (let c = cMin; c <= cMax; c++) {
    for (let b = 1; b <= o.bMax; b++) {
      const l = lat(m, b, c, o.semantics, unit);
      const q = queue[b]!;
      const span = l + q;
      if (!Number.isFinite(span) || span > slo) continue;
      const h = cycle ? Math.floor((1000 * b) / (span * unit) + 1e-9) : throughput(m, b, c, o.semantics, unit);
      if (l <= 0 || h <= 0) continue;
      const n = replicasFor(c, b, h);
      if (n === null) continue;
      out.push({
        plan: { cores: c, batch: b, replicas: n, latencyMs: l * unit, queueMs: q * unit, throughput: h },
        cost: n * instanceCost(m, c, o.semantics),
        span,
      });
    }
  }
  return out;
}

/** The knapsack over stages, in integer time units; null when no combination fits the SLO. */
function solve(perStage: Choice[][], o: PlanOptions): { picks: Choice[]; cost: number; t: number } | null {
  const T = Math.floor(o.sloMs / (o.unitMs ?? 1) + 1e-9);
  if (T < 0 || perStage.some((c) => c.length === 0)) return null;
  const S = perStage.length;
  if (S === 1) {
    // One stage (every plain task): the knapsack is the cheapest choice that fits, ties to the shorter span.
    let best: Choice | null = null;
    for (const c of perStage[0]!)
      if (c.span <= T && (!best || c.cost < best.cost || (c.cost === best.cost && c.span < best.span))) best = c;
    return best ? { picks: [best], cost: best.cost, t: best.span } : null;
  }
  let best = new Float64Array(T + 1).fill(Infinity);
  best[0] = 0;
  const pick: Int32Array[] = [];
  for (let s = 0; s < S; s++) {
    const next = new Float64Array(T + 1).fill(Infinity);
    const arg = new Int32Array(T + 1).fill(-1);
    const opts = perStage[s]!;
    for (let t = 0; t <= T; t++) {
      const base = best[t]!;
      if (base === Infinity) continue;
      for (let k = 0; k < opts.length; k++) {
        const o = opts[k]!;
        const u = t + o.span;
        if (u > T) continue;
        const cost = base + o.cost;
        if (cost < next[u]!) {
          next[u] = cost;
          arg[u] = k;
        }
      }
    }
    pick.push(arg);
    best = next;
  }
  let tBest = -1;
  for (let t = 0; t <= T; t++) if (best[t]! < (tBest < 0 ? Infinity : best[tBest]!)) tBest = t;
  if (tBest < 0) return null;
  const picks: Choice[] = new Array(S);
  let t = tBest;
  for (let s = S - 1; s >= 0; s--) {
    const c = perStage[s]![pick[s]![t]!]!;
    picks[s] = c;
    t -= c.span;
  }
  return { picks, cost: best[tBest]!, t: tBest };
}

function toPlan(r: { picks: Choice[]; cost: number; t: number }, o: PlanOptions): StagesPlan {
  return { stages: r.picks.map((p) => p.plan), cost: r.cost, totalLatencyMs: r.t * (o.unitMs ?? 1) };
}

/** Horizontal planner: replicas n = ceil(λ / h(c, b)); v1 uses 1-core instances only, revised any c ≤ C_max. */
export function horizontal(stages: StageModel[], o: PlanOptions): StagesPlan | null {
  const cMax = o.semantics === "v1" ? 1 : o.cMax;
  const r = solve(
    stages.map((m, s) => {
      const lambda = rateOf(o.lambda, s);
      return choices(m, o, lambda, 1, cMax, (_c, _b, h) => Math.max(1, Math.ceil(lambda / h - 1e-12)));
    }),
    o,
  );
  return r ? toPlan(r, o) : null;
}

/** The vertical DP proper: instances fixed, cost Σ n·cost(c), (c, b) skipped when n·h < λ; c ≥ cMin. */
function verticalFixed(
  stages: StageModel[],
  o: VerticalOptions,
  rate: (s: number) => number,
  cMin: number,
): StagesPlan | null {
  const r = solve(
    stages.map((m, s) => {
      const n = Math.max(1, o.current[s] ?? 1);
      const lambda = rate(s);
      return choices(m, o, lambda, cMin, o.cMax, (_c, _b, h) => (n * h >= lambda ? n : null), o.semantics === "v1");
    }),
    o,
  );
  return r ? toPlan(r, o) : null;
}

/**
 * Vertical planner: the current instances resized in place. Under v1 (the July-2024 code) an instance's rate
 * counts batch formation too, floor(1000·b/(lat + queue)) — golden vector A1 decides: with processing alone its
 * stage 1 would take 3 cores at b = 2 (int(l) = 64 ms, 31 req/s) instead of 4 at b = 1; with the cycle,
 * b = 2 gives 2000/(64 + 33) = 20 req/s < 30. Batching still pays at high rates, where queues are short. When even
 * C_max cannot carry λ, fix every instance at C_max, binary-search the largest integer rate λ' they serve
 * (choosing only b; with per-stage rates, each stage carries min(λ_s, λ')), keep that plan, and add
 * ceil((λ_s − λ') / h_s(C_max, b)) instances of that size per stage (`extra`).
 */
export function vertical(stages: StageModel[], o: VerticalOptions): StagesPlan | null {
  const direct = verticalFixed(stages, o, (s) => rateOf(o.lambda, s), 1);
  if (direct) return { ...direct, extra: stages.map(() => 0) };
  let lo = 0;
  let hi = Math.ceil(Math.max(...stages.map((_, s) => rateOf(o.lambda, s))));
  let found: StagesPlan | null = null;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    const p = verticalFixed(stages, o, (s) => Math.min(rateOf(o.lambda, s), mid), o.cMax);
    if (p) {
      lo = mid;
      found = p;
    } else hi = mid - 1;
  }
  if (!found) return null;
  const extra = found.stages.map((st, s) => Math.max(0, Math.ceil((rateOf(o.lambda, s) - lo) / st.throughput - 1e-12)));
  return { ...found, extra };
}
