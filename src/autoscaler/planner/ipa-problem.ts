// IPA's planning problem (EXPERIMENTS.md "IPA"; Razavi et al., the authors' optimizer): per pipeline stage
// choose one variant, a batch b, the cores of each instance c (where the stage allows more than one) and
// the replicas n, maximising
//     α·PAS − β·Σ n·c − γ·Σ b − (switch cost)
// subject to every source-to-sink path's Σ (l(b,c) + (b−1)/λ_s) ≤ SLO and n·h(b,c) ≥ λ_s per stage.
// PAS is the product of the stages' accuracies (or their sum, the authors' MILP); λ_s is the stage's own
// rate: the pipeline's, multiplied along the way by each edge's measured mean fan-out.
//
// Replicas follow from the rest: n = ceil(λ_s / h) is the cheapest that carries the load, and accuracy
// does not depend on n, so a stage's options are (variant, b, c) with that n. Latencies are counted in
// integer units of `unitMs` (rounded up, so a plan the solvers accept meets the SLO in milliseconds);
// both solvers (ipa-dp.ts, ipa-milp.ts) read the same options from stageOptions(), so they solve the
// same discrete problem and must agree on its optimum. Everything here is pure arithmetic.
import { latencyOf, type LatencyParams } from "../../stats/latency-model.js";

export interface IpaVariant {
  name: string;
  /** The accuracy score the objective multiplies (0..1): measured accuracy, or a normalised one. */
  accuracy: number;
  /** p99 latency fit l(b,c) in ms. */
  fit: LatencyParams;
  maxBatch: number;
  /** Cold start of one instance (ms): what switching to this variant costs. */
  loadMs: number;
}

export interface IpaStage {
  name: string;
  variants: readonly IpaVariant[];
  /** Core counts one instance may have (its base allocation; more than one where the stage allows). Default [1]. */
  cores?: readonly number[];
  /** The rate this stage must carry (req/s); absent: derived from the pipeline's rate and the fan-outs. */
  lambda?: number;
  /** The variant serving now: choosing another costs its switch. */
  current?: string;
  /** Most instances of this stage (IPA's scaling cap). */
  maxReplicas?: number;
  /** Replicas fixed (switch-only planning, RIM): options keep exactly this many instances. */
  fixedReplicas?: number;
  /**
   * Rows one request brings to this stage together (after a fan-out: a high quantile of the measured
   * distribution; default 1). They spread over the replicas' batches, so a request waits for
   * ceil(rows / (b·n)) batches in turn: that many l(b,c) count towards its latency.
   */
  rows?: number;
}

/** An edge of the pipeline graph; `fanOut` is the measured mean of rows one upstream row becomes. */
export interface IpaEdge {
  from: string;
  to: string;
  fanOut?: number;
}

export interface IpaWeights {
  alpha: number;
  beta: number;
  gamma: number;
}

/**
 * IPA's objective presets. PAS is a product of accuracies near 1, so its differences are small: α is
 * the worth of the whole PAS range in cores. accuracy-first pays up to 10 cores for one PAS point,
 * balanced one core, resource-first gives up ten points to save one core. γ only breaks ties towards
 * smaller batches (the authors used 1e-6).
 */
export const IPA_PRESETS = {
  "accuracy-first": { alpha: 1000, beta: 1, gamma: 1e-4 },
  balanced: { alpha: 100, beta: 1, gamma: 1e-4 },
  "resource-first": { alpha: 10, beta: 1, gamma: 1e-4 },
} as const satisfies Record<string, IpaWeights>;

export type IpaPreset = keyof typeof IPA_PRESETS;

export const IPA_PRESET_NAMES = Object.keys(IPA_PRESETS) as IpaPreset[];

export interface IpaProblem {
  stages: readonly IpaStage[];
  /** The pipeline graph; absent: a chain in the order of `stages`. */
  edges?: readonly IpaEdge[];
  /** Requests per second entering the pipeline (its sources). */
  lambda: number;
  sloMs: number;
  weights: IpaWeights;
  /** Largest batch any stage may form (B_max; a variant's own max_batch also caps it). */
  bMax: number;
  /** Latency unit of the solvers (ms); default sloMs / 1000. */
  unitMs?: number;
  /** How stage accuracies combine into PAS: product (default) or sum (the authors' MILP). */
  accuracy?: "product" | "sum";
  /**
   * Switching a stage's variant starts n new c-core instances that serve nothing for loadMs: the cost of
   * those core-seconds, as a share of the `intervalMs` the plan holds for, weighted by β (× this, default 1).
   */
  switchWeight?: number;
  /** How long a plan holds (ms): the decision interval. Default 10,000 (IPA's). */
  intervalMs?: number;
}

/** One admissible configuration of one stage. */
export interface IpaOption {
  variant: string;
  batch: number;
  cores: number;
  replicas: number;
  /** Accuracy score of the variant. */
  accuracy: number;
  /** l(b,c) in ms (p99 fit). */
  latencyMs: number;
  /** Batch-formation delay (b−1)·1000/λ_s in ms. */
  queueMs: number;
  /** ceil((latency + queue) / unit): what the option spends of the latency budget. */
  span: number;
  /** Cores held: n·c. */
  coreCount: number;
  /** Cost of switching to this variant (0 when it is the current one), in objective units. */
  switchCost: number;
  /** Everything the objective subtracts for this option: β·n·c + γ·b + switch cost. */
  penalty: number;
}

export interface IpaStagePlan extends IpaOption {
  stage: string;
  /** The rate the stage was planned for (req/s). */
  lambda: number;
}

export interface IpaSolution {
  stages: IpaStagePlan[];
  objective: number;
  /** Product (or sum) of the chosen accuracies. */
  pas: number;
  /** Σ n·c. */
  cores: number;
  batchSum: number;
  switchCost: number;
  /** The longest source-to-sink path's latency + queueing (ms, unrounded), ≤ SLO. */
  latencyMs: number;
  /** The same path in solver units (≤ budget). */
  span: number;
}

/** The smallest latency a batch can take: fits of sub-ms models can dip to 0 or below off their grid. */
const MIN_LATENCY_MS = 1e-3;

export function unitOf(p: IpaProblem): number {
  return p.unitMs ?? p.sloMs / 1000;
}

/** The latency budget in units. */
export function budgetOf(p: IpaProblem): number {
  return Math.floor(p.sloMs / unitOf(p) + 1e-9);
}

/** Checks a problem and says what is wrong with it. */
export function validateProblem(p: IpaProblem): void {
  if (p.stages.length === 0) throw new Error("IPA problem: a pipeline needs at least one stage");
  if (!(p.sloMs > 0)) throw new Error(`IPA problem: SLO must be > 0 ms, got ${p.sloMs}`);
  if (!(p.lambda >= 0) || !Number.isFinite(p.lambda))
    throw new Error(`IPA problem: arrival rate must be finite and ≥ 0, got ${p.lambda}`);
  if (!(p.bMax >= 1) || !Number.isInteger(p.bMax)) throw new Error(`IPA problem: B_max must be an integer ≥ 1`);
  if (!(unitOf(p) > 0)) throw new Error(`IPA problem: latency unit must be > 0 ms`);
  if (budgetOf(p) > 100_000)
    throw new Error(`IPA problem: SLO / unit = ${budgetOf(p)} units; use a coarser unitMs (≤ 100,000 units)`);
  const w = p.weights;
  if (![w.alpha, w.beta, w.gamma].every((x) => Number.isFinite(x) && x >= 0))
    throw new Error(`IPA problem: weights α, β, γ must be finite and ≥ 0`);
  const names = new Set<string>();
  for (const s of p.stages) {
    if (names.has(s.name)) throw new Error(`IPA problem: stage '${s.name}' appears twice`);
    names.add(s.name);
    if (s.variants.length === 0) throw new Error(`IPA problem: stage '${s.name}' has no variant`);
    for (const v of s.variants)
      if (!(v.accuracy >= 0 && v.accuracy <= 1))
        throw new Error(
          `IPA problem: accuracy of ${s.name}/${v.name} is ${v.accuracy}; scores must lie in [0, 1] (PAS multiplies them)`,
        );
    for (const c of s.cores ?? [1])
      if (!(Number.isInteger(c) && c >= 1))
        throw new Error(`IPA problem: stage '${s.name}' allows ${c} cores; core counts are integers ≥ 1`);
    if (s.fixedReplicas !== undefined && !(Number.isInteger(s.fixedReplicas) && s.fixedReplicas >= 1))
      throw new Error(`IPA problem: stage '${s.name}' fixes ${s.fixedReplicas} replicas; give an integer ≥ 1`);
    if (s.rows !== undefined && !(s.rows >= 1 && Number.isFinite(s.rows)))
      throw new Error(`IPA problem: stage '${s.name}' takes ${s.rows} rows per request; give a number ≥ 1`);
  }
  for (const e of p.edges ?? []) {
    if (!names.has(e.from) || !names.has(e.to))
      throw new Error(`IPA problem: edge ${e.from} → ${e.to} names an unknown stage`);
    if (e.fanOut !== undefined && !(e.fanOut > 0 && Number.isFinite(e.fanOut)))
      throw new Error(`IPA problem: edge ${e.from} → ${e.to} has fan-out ${e.fanOut}; give a mean > 0`);
  }
  topologicalOrder(p); // throws on a cycle
}

/** The graph's edges: the given ones, or a chain in stage order. */
export function edgesOf(p: Pick<IpaProblem, "stages" | "edges">): readonly IpaEdge[] {
  if (p.edges) return p.edges;
  return p.stages.slice(1).map((s, i) => ({ from: p.stages[i]!.name, to: s.name }));
}

/** Stage indices in an order where every edge goes forward; throws on a cycle. */
export function topologicalOrder(p: Pick<IpaProblem, "stages" | "edges">): number[] {
  const index = new Map(p.stages.map((s, i) => [s.name, i]));
  const indeg = p.stages.map(() => 0);
  const out: number[][] = p.stages.map(() => []);
  for (const e of edgesOf(p)) {
    out[index.get(e.from)!]!.push(index.get(e.to)!);
    indeg[index.get(e.to)!]!++;
  }
  const order: number[] = [];
  const ready = indeg.flatMap((d, i) => (d === 0 ? [i] : []));
  while (ready.length > 0) {
    const i = ready.shift()!;
    order.push(i);
    for (const j of out[i]!) if (--indeg[j]! === 0) ready.push(j);
  }
  if (order.length !== p.stages.length) throw new Error("IPA problem: the pipeline graph has a cycle");
  return order;
}

/** Predecessors of each stage (indices). */
export function predecessors(p: Pick<IpaProblem, "stages" | "edges">): number[][] {
  const index = new Map(p.stages.map((s, i) => [s.name, i]));
  const pred: number[][] = p.stages.map(() => []);
  for (const e of edgesOf(p)) pred[index.get(e.to)!]!.push(index.get(e.from)!);
  return pred;
}

/** Whether the graph is one chain in stage order (the DP's case). */
export function isChain(p: Pick<IpaProblem, "stages" | "edges">): boolean {
  if (!p.edges) return true;
  const pred = predecessors(p);
  const e = edgesOf(p);
  return (
    e.length === p.stages.length - 1 &&
    pred.every((ps, i) => (i === 0 ? ps.length === 0 : ps.length === 1 && ps[0] === i - 1))
  );
}

/**
 * Each stage's rate: its own `lambda` when given; otherwise a source carries the pipeline's rate and a
 * later stage its predecessors' rate times the edge's fan-out (the largest over its inputs: a fan-in
 * stage runs once per joined request).
 */
export function stageRates(p: IpaProblem): number[] {
  const rates: number[] = p.stages.map(() => 0);
  const index = new Map(p.stages.map((s, i) => [s.name, i]));
  const incoming: { from: number; fanOut: number }[][] = p.stages.map(() => []);
  for (const e of edgesOf(p)) incoming[index.get(e.to)!]!.push({ from: index.get(e.from)!, fanOut: e.fanOut ?? 1 });
  for (const i of topologicalOrder(p)) {
    const own = p.stages[i]!.lambda;
    if (own !== undefined) rates[i] = own;
    else if (incoming[i]!.length === 0) rates[i] = p.lambda;
    else rates[i] = Math.max(...incoming[i]!.map((e) => rates[e.from]! * e.fanOut));
  }
  return rates;
}

/**
 * Stage s's admissible options, each dominated one removed (another as accurate or more, no longer and no
 * dearer can always replace it). Empty when nothing fits the SLO or carries the load.
 */
export function stageOptions(p: IpaProblem, s: number, lambda: number): IpaOption[] {
  const stage = p.stages[s]!;
  const unit = unitOf(p);
  const T = budgetOf(p);
  const w = p.weights;
  const interval = p.intervalMs ?? 10_000;
  const switchWeight = p.switchWeight ?? 1;
  const all: IpaOption[] = [];
  for (const v of stage.variants) {
    const bTop = Math.min(p.bMax, v.maxBatch);
    for (const c of stage.cores ?? [1]) {
      for (let b = 1; b <= bTop; b++) {
        const batchMs = Math.max(MIN_LATENCY_MS, latencyOf(v.fit, b, c));
        const queueMs = b === 1 ? 0 : lambda > 0 ? ((b - 1) * 1000) / lambda : Number.POSITIVE_INFINITY;
        const h = (1000 * b) / batchMs;
        const needed = Math.max(1, Math.ceil(lambda / h - 1e-9));
        let replicas = needed;
        if (stage.fixedReplicas !== undefined) {
          if (stage.fixedReplicas < needed) continue;
          replicas = stage.fixedReplicas;
        }
        if (stage.maxReplicas !== undefined && replicas > stage.maxReplicas) continue;
        const latencyMs = batchMs * Math.ceil((stage.rows ?? 1) / (b * replicas) - 1e-9);
        const span = Math.ceil((latencyMs + queueMs) / unit - 1e-9);
        if (!(span <= T)) continue;
        const coreCount = replicas * c;
        const switching = stage.current !== undefined && v.name !== stage.current;
        const switchCost = switching ? (switchWeight * w.beta * coreCount * v.loadMs) / interval : 0;
        all.push({
          variant: v.name,
          batch: b,
          cores: c,
          replicas,
          accuracy: v.accuracy,
          latencyMs,
          queueMs,
          span,
          coreCount,
          switchCost,
          penalty: w.beta * coreCount + w.gamma * b + switchCost,
        });
      }
    }
  }
  return paretoOptions(all);
}

/** Options no other option beats on all of accuracy (≥), span (≤) and penalty (≤); ties keep the first. */
function paretoOptions(all: IpaOption[]): IpaOption[] {
  const sorted = [...all].sort((a, b) => a.span - b.span || a.penalty - b.penalty || b.accuracy - a.accuracy);
  const kept: IpaOption[] = [];
  for (const o of sorted) {
    if (kept.some((k) => k.accuracy >= o.accuracy && k.span <= o.span && k.penalty <= o.penalty)) continue;
    kept.push(o);
  }
  return kept;
}

/** PAS of chosen accuracies. */
export function combineAccuracy(p: IpaProblem, accuracies: readonly number[]): number {
  return p.accuracy === "sum" ? accuracies.reduce((a, b) => a + b, 0) : accuracies.reduce((a, b) => a * b, 1);
}

/**
 * The solution made of one option per stage (by stage index), with its objective, or null when a path
 * exceeds the budget. Both solvers report through this, so their figures are computed the same way.
 */
export function evaluate(p: IpaProblem, picks: readonly IpaOption[], rates = stageRates(p)): IpaSolution | null {
  const pred = predecessors(p);
  const spanDone: number[] = p.stages.map(() => 0);
  const msDone: number[] = p.stages.map(() => 0);
  for (const i of topologicalOrder(p)) {
    const before = pred[i]!;
    const o = picks[i]!;
    spanDone[i] = o.span + Math.max(0, ...before.map((j) => spanDone[j]!));
    msDone[i] = o.latencyMs + o.queueMs + Math.max(0, ...before.map((j) => msDone[j]!));
  }
  const span = Math.max(...spanDone);
  if (span > budgetOf(p)) return null;
  const pas = combineAccuracy(
    p,
    picks.map((o) => o.accuracy),
  );
  const penalty = picks.reduce((a, o) => a + o.penalty, 0);
  return {
    stages: picks.map((o, i) => ({ ...o, stage: p.stages[i]!.name, lambda: rates[i]! })),
    objective: p.weights.alpha * pas - penalty,
    pas,
    cores: picks.reduce((a, o) => a + o.coreCount, 0),
    batchSum: picks.reduce((a, o) => a + o.batch, 0),
    switchCost: picks.reduce((a, o) => a + o.switchCost, 0),
    latencyMs: Math.max(...msDone),
    span,
  };
}

/**
 * Every combination of options, for small instances: the reference both solvers are tested against.
 * Returns null when none is feasible.
 */
export function bruteForce(p: IpaProblem): IpaSolution | null {
  validateProblem(p);
  const rates = stageRates(p);
  const options = p.stages.map((_, s) => stageOptions(p, s, rates[s]!));
  if (options.some((o) => o.length === 0)) return null;
  let best: IpaSolution | null = null;
  const picks: IpaOption[] = [];
  const walk = (s: number): void => {
    if (s === options.length) {
      const sol = evaluate(p, picks, rates);
      if (sol && (!best || sol.objective > best.objective)) best = sol;
      return;
    }
    for (const o of options[s]!) {
      picks[s] = o;
      walk(s + 1);
    }
  };
  walk(0);
  return best;
}
