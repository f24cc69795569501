// FA2 (Razavi et al., RTAS 2022): autoscaling a DL inference graph in two phases — a graph model of
// the serving system, a targeted transformation of that graph, and a dynamic program over it — to the
// fewest resources that keep the end-to-end latency within the SLA. Our reading of it:
//
// 1. Model. Every stage (one model, its variant fixed: FA2 scales, it does not switch) is an edge from
//    its input to its output vertex; a pipeline edge u → v joins u's output to v's input with a
//    zero-latency wire. A super source feeds the sources and the sinks feed a super sink.
// 2. Configuration expansion. A stage's edge stands for all its configurations chosen jointly: batch b,
//    cores per replica c and replicas n, where n = ceil(λ_s / h(b,c)) is the fewest that carry the
//    stage's rate. Its latency is l(b,c) + batch formation (b−1)/λ_s, its cost n·cost(c). Collapsed
//    into a table: cost[t] = the least cost of a configuration taking at most t latency units.
// 3. Transformation. Series-parallel reduction of the two-terminal graph: two edges in a row through a
//    vertex nothing else touches become one (min-plus convolution of their tables: the budget split
//    between them), two edges between the same vertices become one (their tables added: both branches
//    run at once, so both get the whole budget). A chain reduces by series steps alone; fan-out/fan-in
//    branches by parallel steps. A graph that does not reduce to one edge is not series-parallel and
//    is refused with that reason.
// 4. DP. The root's table at the SLO is the least cost; backtracking the splits hands each stage its
//    budget and so its configuration. Exact for series-parallel graphs, pseudo-polynomial in the budget.
//
// The latency arithmetic is the planner's (model.ts): on a chain with 1-core replicas FA2's DP and the
// horizontal DP of dp.ts are the same optimisation, which is what sloserve's `horizontal` approximates.
import { instanceCost, lat, queueMs, throughput, unitFor, type Semantics, type StageModel } from "./model.js";
import type { StagePlan } from "./dp.js";

export interface Fa2Stage {
  name: string;
  model: StageModel;
  maxBatch: number;
  /** The rate this stage carries (req/s). */
  lambda: number;
  /** Cores a replica may have (default [1]). */
  cores?: readonly number[];
}

export interface Fa2Graph {
  stages: readonly Fa2Stage[];
  /** Absent: a chain in stage order. */
  edges?: readonly { from: string; to: string }[];
}

export interface Fa2Options {
  sloMs: number;
  bMax: number;
  semantics: Semantics;
  /** Latency unit (ms); default unitFor() over the stages at their largest core count. */
  unitMs?: number;
}

export interface Fa2StagePlan extends StagePlan {
  stage: string;
  /** The latency budget (ms) the DP gave this stage's path segment. */
  budgetMs: number;
}

export interface Fa2Plan {
  /** One plan per stage, in the order of `graph.stages`. */
  stages: Fa2StagePlan[];
  cost: number;
  /** The longest source-to-sink latency + queueing of the plan (ms). */
  latencyMs: number;
  /** The reduced graph as an expression: `;` in series, `|` in parallel. */
  shape: string;
  unitMs: number;
}

/** One configuration of a stage. */
interface Config {
  plan: StagePlan;
  cost: number;
  span: number;
}

/** A (reduced) edge: its cost table over budgets 0..T and how it was made. */
type Block =
  | { kind: "stage"; stage: number; table: Float64Array; arg: Int32Array; configs: Config[] }
  | { kind: "wire"; table: Float64Array }
  | { kind: "series"; a: Block; b: Block; table: Float64Array; split: Int32Array }
  | { kind: "parallel"; a: Block; b: Block; table: Float64Array };

interface Arc {
  from: number;
  to: number;
  block: Block;
}

/** FA2's plan: the cheapest configuration of every stage within the SLO, or null when none exists. */
export function fa2Plan(graph: Fa2Graph, o: Fa2Options): Fa2Plan | null {
  const stages = graph.stages;
  if (stages.length === 0) throw new Error("FA2: the graph has no stage");
  const cTop = Math.max(...stages.flatMap((s) => s.cores ?? [1]));
  const unit =
    o.unitMs ??
    unitFor(
      stages.map((s) => s.model),
      cTop,
      o.semantics,
      o.sloMs,
    );
  const T = Math.floor(o.sloMs / unit + 1e-9);
  if (T < 0) return null;
  const blocks = stages.map((s, i) => stageBlock(s, i, o, unit, T));
  const root = reduce(graph, blocks, T);
  if (!(root.table[T]! < Infinity)) return null;
  // the least cost, then the least budget that buys it
  let t = T;
  while (t > 0 && root.table[t - 1] === root.table[T]) t--;
  const budgets = new Array<number>(stages.length).fill(0);
  const picks = new Array<Config>(stages.length);
  assign(root, t, picks, budgets);
  const plans = picks.map((c, i) => ({ ...c.plan, stage: stages[i]!.name, budgetMs: budgets[i]! * unit }));
  return {
    stages: plans,
    cost: picks.reduce((a, c) => a + c.cost, 0),
    latencyMs: longestPath(graph, plans),
    shape: describe(root, stages),
    unitMs: unit,
  };
}

/** A stage's configurations (the expansion) collapsed into its cost-per-budget table. */
function stageBlock(s: Fa2Stage, index: number, o: Fa2Options, unit: number, T: number): Block {
  const configs: Config[] = [];
  const bTop = Math.min(o.bMax, s.maxBatch);
  for (const c of s.cores ?? [1]) {
    for (let b = 1; b <= bTop; b++) {
      const l = lat(s.model, b, c, o.semantics, unit);
      const q = queueMs(b, s.lambda, o.semantics, unit);
      const span = l + q;
      if (!Number.isFinite(span) || span > T) continue;
      const h = throughput(s.model, b, c, o.semantics, unit);
      if (l <= 0 || h <= 0) continue;
      const n = Math.max(1, Math.ceil(s.lambda / h - 1e-12));
      configs.push({
        plan: { cores: c, batch: b, replicas: n, latencyMs: l * unit, queueMs: q * unit, throughput: h },
        cost: n * instanceCost(s.model, c, o.semantics),
        span,
      });
    }
  }
  const table = new Float64Array(T + 1).fill(Infinity);
  const arg = new Int32Array(T + 1).fill(-1);
  // ties: the first configuration (fewer cores, smaller batch), then the shorter one
  configs.forEach((c, k) => {
    if (c.cost < table[c.span]!) {
      table[c.span] = c.cost;
      arg[c.span] = k;
    }
  });
  for (let t = 1; t <= T; t++)
    if (table[t - 1]! <= table[t]!) {
      table[t] = table[t - 1]!;
      arg[t] = arg[t - 1]!;
    }
  return { kind: "stage", stage: index, table, arg, configs };
}

/** Series-parallel reduction of the two-terminal graph down to one edge. */
function reduce(graph: Fa2Graph, blocks: Block[], T: number): Block {
  const n = graph.stages.length;
  const index = new Map(graph.stages.map((s, i) => [s.name, i]));
  const edges = graph.edges ?? graph.stages.slice(1).map((s, i) => ({ from: graph.stages[i]!.name, to: s.name }));
  // vertices: 2i = input of stage i, 2i+1 = its output, 2n = super source, 2n+1 = super sink
  const SRC = 2 * n;
  const SNK = 2 * n + 1;
  const wire = (): Block => ({ kind: "wire", table: new Float64Array(T + 1) });
  let arcs: Arc[] = blocks.map((block, i) => ({ from: 2 * i, to: 2 * i + 1, block }));
  const hasIn = new Set<number>();
  const hasOut = new Set<number>();
  for (const e of edges) {
    const u = index.get(e.from);
    const v = index.get(e.to);
    if (u === undefined || v === undefined) throw new Error(`FA2: edge ${e.from} → ${e.to} names an unknown stage`);
    arcs.push({ from: 2 * u + 1, to: 2 * v, block: wire() });
    hasOut.add(u);
    hasIn.add(v);
  }
  for (let i = 0; i < n; i++) {
    if (!hasIn.has(i)) arcs.push({ from: SRC, to: 2 * i, block: wire() });
    if (!hasOut.has(i)) arcs.push({ from: 2 * i + 1, to: SNK, block: wire() });
  }
  for (;;) {
    if (arcs.length === 1 && arcs[0]!.from === SRC && arcs[0]!.to === SNK) return arcs[0]!.block;
    const next = parallelStep(arcs, T) ?? seriesStep(arcs, T, SRC, SNK);
    if (!next)
      throw new Error(
        "FA2: the pipeline graph is not series-parallel (branches that cross between fan-out and fan-in); FA2's transformation needs nested fork-join branches",
      );
    arcs = next;
  }
}

function parallelStep(arcs: Arc[], T: number): Arc[] | null {
  const seen = new Map<string, number>();
  for (let k = 0; k < arcs.length; k++) {
    const key = `${arcs[k]!.from}>${arcs[k]!.to}`;
    const j = seen.get(key);
    if (j === undefined) {
      seen.set(key, k);
      continue;
    }
    const a = arcs[j]!.block;
    const b = arcs[k]!.block;
    const table = new Float64Array(T + 1);
    for (let t = 0; t <= T; t++) table[t] = a.table[t]! + b.table[t]!;
    const merged: Arc = { from: arcs[j]!.from, to: arcs[j]!.to, block: { kind: "parallel", a, b, table } };
    return arcs.filter((_, i) => i !== j && i !== k).concat(merged);
  }
  return null;
}

function seriesStep(arcs: Arc[], T: number, src: number, snk: number): Arc[] | null {
  const into = new Map<number, number[]>();
  const outOf = new Map<number, number[]>();
  arcs.forEach((a, k) => {
    (into.get(a.to) ?? into.set(a.to, []).get(a.to)!).push(k);
    (outOf.get(a.from) ?? outOf.set(a.from, []).get(a.from)!).push(k);
  });
  for (const [v, ins] of into) {
    const outs = outOf.get(v) ?? [];
    if (v === src || v === snk || ins.length !== 1 || outs.length !== 1) continue;
    const first = arcs[ins[0]!]!;
    const second = arcs[outs[0]!]!;
    const block = series(first.block, second.block, T);
    const merged: Arc = { from: first.from, to: second.to, block };
    return arcs.filter((_, i) => i !== ins[0] && i !== outs[0]).concat(merged);
  }
  return null;
}

/** Min-plus convolution: the least cost of a then b within t, and the budget a gets. A wire passes through. */
function series(a: Block, b: Block, T: number): Block {
  if (a.kind === "wire") return b;
  if (b.kind === "wire") return a;
  const table = new Float64Array(T + 1).fill(Infinity);
  const split = new Int32Array(T + 1).fill(-1);
  for (let t1 = 0; t1 <= T; t1++) {
    const ca = a.table[t1]!;
    if (ca === Infinity || (t1 > 0 && a.table[t1 - 1] === ca)) continue; // a larger budget buys a nothing more
    for (let t = t1; t <= T; t++) {
      const c = ca + b.table[t - t1]!;
      if (c < table[t]!) {
        table[t] = c;
        split[t] = t1;
      }
    }
  }
  return { kind: "series", a, b, table, split };
}

/** Hands each block its budget, down to the stages' configurations. */
function assign(block: Block, t: number, picks: Config[], budgets: number[]): void {
  switch (block.kind) {
    case "wire":
      return;
    case "stage":
      picks[block.stage] = block.configs[block.arg[t]!]!;
      budgets[block.stage] = t;
      return;
    case "parallel":
      assign(block.a, t, picks, budgets);
      assign(block.b, t, picks, budgets);
      return;
    case "series": {
      const t1 = block.split[t]!;
      assign(block.a, t1, picks, budgets);
      assign(block.b, t - t1, picks, budgets);
    }
  }
}

function describe(block: Block, stages: readonly Fa2Stage[]): string {
  switch (block.kind) {
    case "wire":
      return "·";
    case "stage":
      return stages[block.stage]!.name;
    case "series":
      return `${describe(block.a, stages)} ; ${describe(block.b, stages)}`;
    case "parallel":
      return `(${describe(block.a, stages)} | ${describe(block.b, stages)})`;
  }
}

function longestPath(graph: Fa2Graph, plans: StagePlan[]): number {
  const n = graph.stages.length;
  const index = new Map(graph.stages.map((s, i) => [s.name, i]));
  const edges = graph.edges ?? graph.stages.slice(1).map((s, i) => ({ from: graph.stages[i]!.name, to: s.name }));
  const done = new Array<number>(n).fill(-1);
  const pred: number[][] = graph.stages.map(() => []);
  for (const e of edges) pred[index.get(e.to)!]!.push(index.get(e.from)!);
  const finish = (i: number): number => {
    if (done[i]! >= 0) return done[i]!;
    const own = plans[i]!.latencyMs + plans[i]!.queueMs;
    done[i] = own + Math.max(0, ...pred[i]!.map(finish));
    return done[i]!;
  };
  return Math.max(...graph.stages.map((_, i) => finish(i)));
}
