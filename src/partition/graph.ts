// An ONNX model read as a partitioner needs it: the nodes that depend on the request in one topological
// order (what a cut splits), and apart from them the constant part (initializers, and nodes computed from
// nothing but constants), which is copied into every stage that uses it and so never crosses a cut.
import onnxPkg from "onnx-proto";

const { onnx } = onnxPkg;
export type NodeProto = onnxPkg.onnx.INodeProto;
export type TensorProto = onnxPkg.onnx.ITensorProto;
export type ValueInfoProto = onnxPkg.onnx.IValueInfoProto;
export type ModelProto = InstanceType<typeof onnx.ModelProto>;

export interface GraphNode {
  /** Index in the model's node list. */
  index: number;
  proto: NodeProto;
  /** Tensors it reads: its inputs, and what its subgraphs (If, Loop, Scan bodies) read from the outer graph. */
  reads: string[];
  outputs: string[];
}

export interface ModelGraph {
  model: ModelProto;
  /** Graph inputs fed per request (initializers listed as inputs by older exporters left out). */
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  initializers: Map<string, TensorProto>;
  /** Nodes that read no request input, by output name: copied into every stage that reads them. */
  constantOf: Map<string, GraphNode>;
  /** The same nodes in topological order. */
  constants: GraphNode[];
  /** The nodes a cut can split, in topological order (the model's own order where it already is one). */
  order: GraphNode[];
}

/** Ops whose output differs from run to run: never duplicated into several stages as a constant would be. */
const NONDETERMINISTIC = /^(Random|Multinomial|Bernoulli|Dropout$)/;

export function readModelGraph(bytes: Uint8Array): ModelGraph {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new Error(`not a valid ONNX protobuf (${(err as Error).message})`);
  }
  const g = model.graph;
  if (!g || !g.node || g.node.length === 0) throw new Error("the ONNX model has no graph nodes");
  const initializers = new Map<string, TensorProto>();
  for (const t of g.initializer ?? []) if (t.name) initializers.set(t.name, t);
  for (const t of g.sparseInitializer ?? [])
    if (t.values?.name)
      throw new Error(`sparse initializer '${t.values.name}' is not supported; densify the model's initializers first`);
  const inputs = (g.input ?? []).filter((v) => !initializers.has(v.name ?? ""));
  const outputs = g.output ?? [];
  const nodes: GraphNode[] = g.node.map((proto, index) => ({
    index,
    proto,
    reads: readsOf(proto),
    outputs: (proto.output ?? []).filter((o) => o !== ""),
  }));

  const producer = new Map<string, GraphNode>();
  for (const n of nodes)
    for (const o of n.outputs) {
      if (producer.has(o) || initializers.has(o))
        throw new Error(
          `tensor '${o}' is produced twice (node ${n.index}, ${n.proto.opType}); the graph is not valid SSA`,
        );
      producer.set(o, n);
    }
  const inputNames = new Set(inputs.map((v) => v.name ?? ""));
  for (const n of nodes)
    for (const r of n.reads)
      if (!producer.has(r) && !initializers.has(r) && !inputNames.has(r))
        throw new Error(
          `node ${n.index} (${n.proto.opType}) reads '${r}', which no node, initializer or graph input provides`,
        );
  for (const o of outputs)
    if (!producer.has(o.name ?? "") && !inputNames.has(o.name ?? "") && !initializers.has(o.name ?? ""))
      throw new Error(`graph output '${o.name}' is produced by nothing`);

  const sorted = topologicalOrder(nodes, producer);
  const constantOf = new Map<string, GraphNode>();
  const constants: GraphNode[] = [];
  const order: GraphNode[] = [];
  for (const n of sorted) {
    const constant =
      !NONDETERMINISTIC.test(n.proto.opType ?? "") && n.reads.every((r) => initializers.has(r) || constantOf.has(r));
    if (constant) {
      constants.push(n);
      for (const o of n.outputs) constantOf.set(o, n);
    } else order.push(n);
  }
  if (order.length === 0) throw new Error("every node of the graph is constant: there is nothing to partition");
  return { model, inputs, outputs, initializers, constantOf, constants, order };
}

/** Kahn's algorithm, taking the lowest original index first, so a sorted model keeps its own order. */
function topologicalOrder(nodes: GraphNode[], producer: Map<string, GraphNode>): GraphNode[] {
  const waiting = nodes.map((n) => new Set(n.reads.filter((r) => producer.has(r)).map((r) => producer.get(r)!.index)));
  const readers = new Map<number, number[]>();
  waiting.forEach((deps, i) => {
    for (const d of deps) readers.set(d, [...(readers.get(d) ?? []), i]);
  });
  const ready = new MinHeap();
  waiting.forEach((deps, i) => deps.size === 0 && ready.push(i));
  const out: GraphNode[] = [];
  while (ready.size > 0) {
    const i = ready.pop();
    out.push(nodes[i]!);
    for (const r of readers.get(i) ?? []) {
      const deps = waiting[r]!;
      deps.delete(i);
      if (deps.size === 0) ready.push(r);
    }
  }
  if (out.length !== nodes.length) {
    const stuck = nodes.filter((_, i) => waiting[i]!.size > 0).map((n) => `${n.index} (${n.proto.opType})`);
    throw new Error(`the graph has a cycle through nodes ${stuck.slice(0, 5).join(", ")}`);
  }
  return out;
}

/** A node's reads: explicit inputs (an empty name is an omitted optional input) and its subgraphs' outer reads. */
function readsOf(node: NodeProto): string[] {
  const reads = new Set((node.input ?? []).filter((i) => i !== ""));
  for (const a of node.attribute ?? []) {
    for (const sub of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) for (const r of outerReads(sub)) reads.add(r);
  }
  return [...reads];
}

/** Names a subgraph reads that it does not define itself: they come from the enclosing graph. */
function outerReads(graph: onnxPkg.onnx.IGraphProto): Set<string> {
  const defined = new Set<string>([
    ...(graph.input ?? []).map((v) => v.name ?? ""),
    ...(graph.initializer ?? []).map((t) => t.name ?? ""),
  ]);
  const free = new Set<string>();
  for (const n of graph.node ?? []) {
    for (const r of readsOf(n)) if (!defined.has(r)) free.add(r);
    for (const o of n.output ?? []) defined.add(o);
  }
  return free;
}

class MinHeap {
  private readonly a: number[] = [];
  get size(): number {
    return this.a.length;
  }
  push(x: number): void {
    const a = this.a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= x) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = x;
  }
  pop(): number {
    const a = this.a;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const c = l + 1 < a.length && a[l + 1]! < a[l]! ? l + 1 : l;
        if (a[c]! >= last) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

const ELEMENT_BYTES: Record<number, number> = {
  1: 4, // FLOAT
  2: 1, // UINT8
  3: 1, // INT8
  4: 2, // UINT16
  5: 2, // INT16
  6: 4, // INT32
  7: 8, // INT64
  9: 1, // BOOL
  10: 2, // FLOAT16
  11: 8, // DOUBLE
  12: 4, // UINT32
  13: 8, // UINT64
  16: 2, // BFLOAT16
};

/** Bytes of one element of an ONNX tensor type (0 when it has no fixed size, e.g. strings). */
export function elementBytes(elemType: number): number {
  return ELEMENT_BYTES[elemType] ?? 0;
}

/** Bytes a tensor's values take, however the exporter stored them (raw_data or typed fields). */
export function tensorBytes(t: TensorProto): number {
  const count = (t.dims ?? []).reduce<number>((a, d) => a * Number(d), 1);
  return count * elementBytes(t.dataType ?? 0);
}
