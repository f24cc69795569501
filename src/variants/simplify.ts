// Graph rewrites that make a model cheaper without changing what it computes, done before
// onnxruntime's own optimiser so that its fusions apply:
// - constant-first Mul/Add (`Mul(s, x)`, as paddle2onnx writes them) are turned to `Mul(x, s)`:
//   onnxruntime folds a Conv's following scalar Mul/Add into the conv's weights only in that order;
// - hard-swish spelled out as x·Clip(x+3, 0, 6)/6 (four passes over the tensor) becomes
//   x·HardSigmoid(x) with alpha 1/6, beta 1/2 (two passes), the same function;
// - an affine map y = s·x + b (scalar or per-channel) right after a Conv is folded into its weights
//   and bias (paddle2onnx's "learnable affine blocks"; onnxruntime's fusion refuses their shapes);
// - the same affine map right before convs without padding is folded into those convs (with padding
//   it is not: the border would see b where it saw 0).
import onnxPkg from "onnx-proto";
import {
  ELEM,
  attrOf,
  consumersOf,
  dimsOf,
  floatsOf,
  freshNamer,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from "../engine/onnx-model.js";

const { onnx } = onnxPkg;

export interface SimplifyReport {
  reorderedOperands: number;
  hardSwish: number;
  affineIntoConv: number;
  affineIntoNextConv: number;
}

function scalarOf(name: string | undefined, inits: Map<string, TensorProto>): number | undefined {
  const t = name ? inits.get(name) : undefined;
  if (!t || t.dataType !== ELEM.FLOAT) return undefined;
  if (dimsOf(t).reduce((a, b) => a * b, 1) !== 1) return undefined;
  return floatsOf(t)[0];
}

/** Clip's bounds: inputs from opset 11, attributes before. */
function clipBounds(n: NodeProto, inits: Map<string, TensorProto>): [number, number] | undefined {
  if (n.input!.length > 1) {
    const lo = scalarOf(n.input![1], inits);
    const hi = scalarOf(n.input![2], inits);
    return lo === undefined || hi === undefined ? undefined : [lo, hi];
  }
  const lo = attrOf(n, "min")?.f;
  const hi = attrOf(n, "max")?.f;
  return lo == null || hi == null ? undefined : [lo, hi];
}

const isDefault = (n: NodeProto) => !n.domain || n.domain === "ai.onnx";

export function simplifyGraph(model: ModelProto): SimplifyReport {
  const graph = model.graph as GraphProto;
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const report: SimplifyReport = { reorderedOperands: 0, hardSwish: 0, affineIntoConv: 0, affineIntoNextConv: 0 };
  for (const n of graph.node ?? []) {
    if (!isDefault(n) || (n.opType !== "Mul" && n.opType !== "Add") || n.input!.length !== 2) continue;
    const [a, b] = n.input!;
    if (inits.has(a!) && !inits.has(b!)) {
      n.input = [b!, a!];
      report.reorderedOperands++;
    }
  }
  const consumers = consumersOf(graph);
  const outputs = new Set((graph.output ?? []).map((o) => o.name));
  const single = (t: string) => (consumers.get(t)?.length === 1 && !outputs.has(t) ? consumers.get(t)![0] : undefined);
  const fresh = freshNamer(graph);
  const removed = new Set<NodeProto>();
  const replacement = new Map<NodeProto, NodeProto>();
  // Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6): match from each Add(x, 3)
  for (const add of graph.node ?? []) {
    if (!isDefault(add) || add.opType !== "Add" || scalarOf(add.input![1], inits) !== 3) continue;
    const x = add.input![0]!;
    const clip = single(add.output![0]!);
    if (!clip || clip.opType !== "Clip" || !isDefault(clip)) continue;
    const bounds = clipBounds(clip, inits);
    if (!bounds || bounds[0] !== 0 || bounds[1] !== 6) continue;
    const mul = single(clip.output![0]!);
    if (!mul || mul.opType !== "Mul" || !isDefault(mul)) continue;
    const other = mul.input![0] === clip.output![0] ? mul.input![1] : mul.input![0];
    if (other !== x) continue;
    const div = single(mul.output![0]!);
    if (!div || div.opType !== "Div" || !isDefault(div) || scalarOf(div.input![1], inits) !== 6) continue;
    if (div.input![0] !== mul.output![0]) continue;
    const gate = fresh(`${x}_hardsigmoid`);
    const A = onnx.AttributeProto.AttributeType;
    const hs = onnx.NodeProto.create({
      opType: "HardSigmoid",
      name: fresh(`${add.name ?? x}_HardSigmoid`),
      input: [x],
      output: [gate],
      attribute: [
        onnx.AttributeProto.create({ name: "alpha", type: A.FLOAT, f: 1 / 6 }),
        onnx.AttributeProto.create({ name: "beta", type: A.FLOAT, f: 0.5 }),
      ],
    });
    const prod = onnx.NodeProto.create({
      opType: "Mul",
      name: fresh(`${div.name ?? x}_HardSwish`),
      input: [x, gate],
      output: [div.output![0]!],
    });
    replacement.set(add, hs);
    replacement.set(div, prod);
    removed.add(clip).add(mul);
    report.hardSwish++;
  }
  if (report.hardSwish > 0) {
    graph.node = (graph.node ?? []).filter((n) => !removed.has(n)).map((n) => replacement.get(n) ?? n);
    const read = new Set(graph.node.flatMap((n) => n.input ?? []));
    graph.initializer = (graph.initializer ?? []).filter((t) => read.has(t.name!));
  }
  foldAffines(graph, report);
  return report;
}

/** Per-channel values of a Mul/Add constant for `channels` channels (scalar, [C], [C,1,1], [1,C,1,1]). */
function channelValues(t: TensorProto | undefined, channels: number): Float32Array | undefined {
  if (!t || t.dataType !== ELEM.FLOAT) return undefined;
  const dims = dimsOf(t);
  const n = dims.reduce((a, b) => a * b, 1);
  const v = floatsOf(t);
  if (n === 1) return new Float32Array(channels).fill(v[0]!);
  const nonUnit = dims.filter((d) => d !== 1);
  if (n !== channels || nonUnit.length !== 1) return undefined;
  // the channel axis of an NCHW tensor is the third from the end of a right-aligned broadcast
  if (dims.length < 3 || dims[dims.length - 3] !== channels) return undefined;
  return v;
}

function isUnpadded(conv: NodeProto): boolean {
  const pads = attrOf(conv, "pads")?.ints?.map(Number) ?? [];
  const auto = attrOf(conv, "auto_pad")?.s;
  const autoPad = auto ? new TextDecoder().decode(auto) : "NOTSET";
  return pads.every((p) => p === 0) && (autoPad === "NOTSET" || autoPad === "VALID");
}

function foldAffines(graph: GraphProto, report: SimplifyReport): void {
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const outputs = new Set((graph.output ?? []).map((o) => o.name));
  const fresh = freshNamer(graph);
  const removed = new Set<NodeProto>();
  const rename = new Map<string, string>();
  const setFloats = (name: string, dims: number[], data: Float32Array): string => {
    const fresh_ = fresh(`${name}_folded`);
    graph.initializer!.push(
      onnx.TensorProto.create({ name: fresh_, dataType: ELEM.FLOAT, dims, rawData: new Uint8Array(data.buffer) }),
    );
    inits.set(fresh_, graph.initializer![graph.initializer!.length - 1]!);
    return fresh_;
  };
  const convWeights = (conv: NodeProto) => {
    const w = inits.get(conv.input![1] ?? "");
    if (!w || w.dataType !== ELEM.FLOAT || dimsOf(w).length !== 4) return undefined;
    const dims = dimsOf(w);
    const b = conv.input![2] ? inits.get(conv.input![2]) : undefined;
    if (conv.input![2] && !b) return undefined;
    return { dims, w: floatsOf(w), b: b ? floatsOf(b) : new Float32Array(dims[0]!) };
  };
  // The affine pair (Mul, then an optional Add) reading `t`, if that is all that reads it.
  const affineAfter = (t: string, channels: number) => {
    const consumers = consumersOf(graph);
    const users = (x: string) => (outputs.has(x) ? [] : (consumers.get(x) ?? []).filter((n) => !removed.has(n)));
    const [mul] = users(t);
    if (!mul || users(t).length !== 1 || mul.opType !== "Mul" || !isDefault(mul) || mul.input![0] !== t) return;
    const s = channelValues(inits.get(mul.input![1]!), channels);
    if (!s) return;
    const next = users(mul.output![0]!);
    const add = next.length === 1 && next[0]!.opType === "Add" && isDefault(next[0]!) ? next[0] : undefined;
    const b = add && add.input![0] === mul.output![0] ? channelValues(inits.get(add.input![1]!), channels) : undefined;
    return { mul, s, add: b ? add : undefined, b: b ?? new Float32Array(channels), out: (b ? add! : mul).output![0]! };
  };
  for (const conv of graph.node ?? []) {
    if (conv.opType !== "Conv" || !isDefault(conv) || removed.has(conv)) continue;
    const cw = convWeights(conv);
    if (!cw) continue;
    const m = cw.dims[0]!;
    const a = affineAfter(conv.output![0]!, m);
    // a graph output keeps its name and its producer
    if (!a || outputs.has(a.out)) continue;
    const per = cw.w.length / m;
    const w = Float32Array.from(cw.w, (v, i) => v * a.s[Math.floor(i / per)]!);
    const b = Float32Array.from(cw.b, (v, c) => v * a.s[c]! + a.b[c]!);
    conv.input = [conv.input![0]!, setFloats(conv.input![1]!, cw.dims, w), setFloats(`${conv.name}_bias`, [m], b)];
    removed.add(a.mul);
    if (a.add) removed.add(a.add);
    rename.set(a.out, conv.output![0]!);
    report.affineIntoConv++;
  }
  // s·x + b (scalars) whose every reader is an unpadded Conv
  for (const mul of graph.node ?? []) {
    if (mul.opType !== "Mul" || !isDefault(mul) || removed.has(mul)) continue;
    const x = mul.input![0]!;
    const consumers = consumersOf(graph);
    const before = (consumers.get(x) ?? []).filter((n) => !removed.has(n));
    if (!before.includes(mul)) continue;
    const a = affineAfter(x, 1);
    if (!a || a.mul !== mul) continue;
    const readers = (consumers.get(a.out) ?? []).filter((n) => !removed.has(n));
    if (outputs.has(a.out) || readers.length === 0) continue;
    if (!readers.every((c) => c.opType === "Conv" && isDefault(c) && isUnpadded(c) && c.input![0] === a.out)) continue;
    if (!readers.every((c) => convWeights(c))) continue;
    for (const c of readers) {
      const cw = convWeights(c)!;
      const m = cw.dims[0]!;
      const per = cw.w.length / m;
      const w = Float32Array.from(cw.w, (v) => v * a.s[0]!);
      const b = Float32Array.from(cw.b, (v, o) => {
        let sum = 0;
        for (let k = 0; k < per; k++) sum += cw.w[o * per + k]!;
        return v + a.b[0]! * sum;
      });
      c.input = [x, setFloats(c.input![1]!, cw.dims, w), setFloats(`${c.name}_bias`, [m], b)];
    }
    removed.add(a.mul);
    if (a.add) removed.add(a.add);
    report.affineIntoNextConv++;
  }
  if (removed.size === 0) return;
  graph.node = (graph.node ?? [])
    .filter((n) => !removed.has(n))
    .map((n) => {
      n.input = (n.input ?? []).map((i) => rename.get(i) ?? i);
      return n;
    });
  const read = new Set(graph.node.flatMap((n) => n.input ?? []));
  graph.initializer = (graph.initializer ?? []).filter((t) => read.has(t.name!));
}
