// Where a graph can be cut and what each piece costs. A cut at position p (between the p-th and the
// (p+1)-th node of the topological order) is crossed by every tensor made before p and read at or after
// p (a graph output counts as read at the end): a tensor read by several later stages crosses every cut
// in between. Per node: its multiply-accumulates (Conv, ConvTranspose, Gemm, MatMul, from the measured
// shapes), the weights it needs (initializers and constant nodes, copied into each stage that reads
// them), and the activation bytes alive while it runs.
import type { GraphNode, ModelGraph, NodeProto } from "./graph.js";
import { tensorBytes } from "./graph.js";
import type { TensorFacts } from "./probe.js";

export interface Analysis {
  graph: ModelGraph;
  facts: Map<string, TensorFacts>;
  /** Nodes in the order a cut splits them. */
  n: number;
  /** Per position 0..n: the tensors crossing it, in the order they were made. */
  crossing: string[][];
  /** Per position: the bytes of one row crossing it. */
  crossBytes: number[];
  /** Per position: whether a stage boundary may sit there (every tensor crossing it leads with the batch). */
  cuttable: boolean[];
  /** Why a position is not cuttable (the first tensor that cannot cross), for messages. */
  uncuttableWhy: (string | null)[];
  /** Per node: multiply-accumulates per row. */
  macs: number[];
  /** Per node: keys of the weights it needs (see weightBytes). */
  weights: string[][];
  /** Bytes of each weight: initializers by name, constant nodes' own values by `#node<index>`. */
  weightBytes: Map<string, number>;
  /** Per node: activation bytes per row alive while it runs (what crosses before it, plus what it makes). */
  peakBytes: number[];
}

export function analyse(graph: ModelGraph, facts: Map<string, TensorFacts>): Analysis {
  const n = graph.order.length;
  const made = new Map<string, number>();
  for (const v of graph.inputs) made.set(v.name ?? "", -1);
  graph.order.forEach((node, p) => node.outputs.forEach((o) => made.set(o, p)));
  const lastRead = new Map<string, number>();
  graph.order.forEach((node, p) => node.reads.forEach((r) => made.has(r) && lastRead.set(r, p)));
  for (const o of graph.outputs) if (made.has(o.name ?? "")) lastRead.set(o.name ?? "", n);

  const crossing: string[][] = Array.from({ length: n + 1 }, () => []);
  const byBirth = [...made.entries()].sort((a, b) => a[1] - b[1]);
  for (const [t, birth] of byBirth) {
    const last = lastRead.get(t);
    if (last === undefined) continue;
    for (let p = birth + 1; p <= last; p++) crossing[p]!.push(t);
  }
  const crossBytes = crossing.map((ts) => ts.reduce((s, t) => s + (facts.get(t)?.bytesPerRow ?? 0), 0));
  const uncuttableWhy = crossing.map((ts, p) => {
    if (p === 0 || p === n) return "a stage boundary lies between two nodes";
    for (const t of ts) {
      const f = facts.get(t);
      if (!f) return `'${t}' was not measured`;
      if (!f.rowShape) return `'${t}' [${f.dims.join(",")}] does not lead with the batch dimension`;
      if (!f.datatype || f.datatype === "BYTES") return `'${t}' has a type the protocol cannot carry`;
    }
    return null;
  });
  const cuttable = uncuttableWhy.map((w) => w === null);

  const weightBytes = new Map<string, number>();
  const constClosure = new Map<string, string[]>();
  const weightsOfRead = (r: string): string[] => {
    const init = graph.initializers.get(r);
    if (init) {
      weightBytes.set(r, tensorBytes(init));
      return [r];
    }
    const c = graph.constantOf.get(r);
    if (!c) return [];
    const key = `#node${c.index}`;
    const cached = constClosure.get(key);
    if (cached) return cached;
    weightBytes.set(key, constantValueBytes(c.proto));
    const keys = new Set<string>([key]);
    for (const rr of c.reads) for (const k of weightsOfRead(rr)) keys.add(k);
    const out = [...keys];
    constClosure.set(key, out);
    return out;
  };
  const weights = graph.order.map((node) => [...new Set(node.reads.flatMap(weightsOfRead))]);
  const dimsOf = (name: string): number[] | undefined => {
    const f = facts.get(name);
    if (f) return f.dims;
    const init = graph.initializers.get(name);
    if (init) return (init.dims ?? []).map(Number);
    const c = graph.constantOf.get(name);
    const value = c?.proto.opType === "Constant" ? c.proto.attribute?.find((a) => a.name === "value")?.t : undefined;
    return value ? (value.dims ?? []).map(Number) : undefined;
  };
  const macs = graph.order.map((node) => macsOf(node, dimsOf));
  const peakBytes = graph.order.map(
    (node, p) => crossBytes[p]! + node.outputs.reduce((s, o) => s + (facts.get(o)?.bytesPerRow ?? 0), 0),
  );
  return { graph, facts, n, crossing, crossBytes, cuttable, uncuttableWhy, macs, weights, weightBytes, peakBytes };
}

/** Multiply-accumulates per row of the ops that dominate compute; every other op counts 0. */
export function macsOf(node: GraphNode, dimsOf: (name: string) => number[] | undefined): number {
  const op = node.proto.opType;
  const input = node.proto.input ?? [];
  const prod = (d: number[] | undefined) => (d ?? []).reduce((a, x) => a * x, 1);
  const out = dimsOf(node.outputs[0] ?? "");
  if (!out) return 0;
  switch (op) {
    case "Conv": {
      const w = dimsOf(input[1] ?? "");
      return w ? prod(out) * prod(w.slice(1)) : 0;
    }
    case "ConvTranspose": {
      const x = dimsOf(input[0] ?? "");
      const w = dimsOf(input[1] ?? "");
      return x && w ? prod(x) * prod(w.slice(1)) : 0;
    }
    case "Gemm": {
      const a = dimsOf(input[0] ?? "");
      const transA = node.proto.attribute?.find((x) => x.name === "transA")?.i;
      if (!a || a.length !== 2) return 0;
      return prod(out) * (Number(transA ?? 0) ? a[0]! : a[1]!);
    }
    case "MatMul": {
      const a = dimsOf(input[0] ?? "");
      return a && a.length > 0 ? prod(out) * a[a.length - 1]! : 0;
    }
    default:
      return 0;
  }
}

function constantValueBytes(node: NodeProto): number {
  if (node.opType !== "Constant") return 0;
  const t = node.attribute?.find((a) => a.name === "value")?.t;
  return t ? tensorBytes(t) : 0;
}

/** What one stage [from, to) of the order needs. */
export interface StageCost {
  from: number;
  to: number;
  macs: number;
  weightBytes: number;
  /** Largest activation bytes per row alive at once inside the stage. */
  peakBytesPerRow: number;
  /** weightBytes + peakBytesPerRow × batch: the model's share of an instance's memory. */
  memoryBytes: number;
}

/**
 * Calls `visit` with the cost of [from, to) for every `to` after `from`, each extending the last by one
 * node, until `visit` returns false. Every cost only grows with `to`, so a visitor stops at its budget.
 */
export function sweepStages(a: Analysis, from: number, batch: number, visit: (c: StageCost) => boolean): void {
  const seen = new Set<string>();
  let weightBytes = 0;
  let macs = 0;
  let peak = 0;
  for (let to = from + 1; to <= a.n; to++) {
    const p = to - 1;
    macs += a.macs[p]!;
    peak = Math.max(peak, a.peakBytes[p]!);
    for (const k of a.weights[p]!)
      if (!seen.has(k)) {
        seen.add(k);
        weightBytes += a.weightBytes.get(k) ?? 0;
      }
    const cost = { from, to, macs, weightBytes, peakBytesPerRow: peak, memoryBytes: weightBytes + peak * batch };
    if (!visit(cost)) return;
  }
}

export function stageCost(a: Analysis, from: number, to: number, batch: number): StageCost {
  let out: StageCost | undefined;
  sweepStages(a, from, batch, (c) => {
    out = c;
    return c.to < to;
  });
  return out!;
}
