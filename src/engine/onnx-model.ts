// Reading and rewriting ONNX models with onnx-proto: the graph transforms of the variant generator
// (quantisation, input-resolution wrapping, shape fixing) all work on a decoded ModelProto.
import onnxPkg from "onnx-proto";

const { onnx } = onnxPkg;

export type ModelProto = onnxPkg.onnx.ModelProto;
export type GraphProto = onnxPkg.onnx.IGraphProto;
export type NodeProto = onnxPkg.onnx.INodeProto;
export type TensorProto = onnxPkg.onnx.ITensorProto;
export type ValueInfoProto = onnxPkg.onnx.IValueInfoProto;

export const ELEM = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;

export class ModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelError";
  }
}

/** Decodes ONNX bytes, with a message that says what is wrong instead of a protobuf stack. */
export function decodeModel(bytes: Uint8Array, what = "model"): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new ModelError(`${what} is not a valid ONNX file (${(err as Error).message})`);
  }
  if (!model.graph || !model.graph.node || model.graph.node.length === 0)
    throw new ModelError(`${what} is not a usable ONNX model: it has no graph nodes`);
  return model;
}

export function encodeModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** The version of the default (ai.onnx) opset the model imports. */
export function onnxOpset(model: ModelProto): number {
  const o = (model.opsetImport ?? []).find((x) => !x.domain || x.domain === "ai.onnx");
  return o ? Number(o.version) : 0;
}

export function ensureOpsetImport(model: ModelProto, domain: string, version: number): void {
  const list = (model.opsetImport ??= []);
  if (!list.some((o) => o.domain === domain)) list.push(onnx.OperatorSetIdProto.create({ domain, version }));
}

/** Float values of a FLOAT tensor, from raw_data or float_data. */
export function floatsOf(t: TensorProto): Float32Array {
  if (t.dataType !== ELEM.FLOAT) throw new ModelError(`tensor '${t.name}' is not FLOAT (type ${t.dataType})`);
  if (t.rawData && t.rawData.length > 0) {
    const raw = t.rawData;
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  }
  return Float32Array.from(t.floatData ?? []);
}

export function dimsOf(t: TensorProto): number[] {
  return (t.dims ?? []).map(Number);
}

function rawOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

export function tensor(name: string, dataType: number, dims: number[], data: ArrayBufferView): TensorProto {
  return onnx.TensorProto.create({ name, dataType, dims, rawData: rawOf(data) });
}

export function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  name: string,
  attrs: Record<string, number | number[] | string> = {},
  domain = "",
): NodeProto {
  const A = onnx.AttributeProto.AttributeType;
  const attribute = Object.entries(attrs).map(([k, v]) =>
    typeof v === "number"
      ? onnx.AttributeProto.create({ name: k, type: A.INT, i: v })
      : typeof v === "string"
        ? onnx.AttributeProto.create({ name: k, type: A.STRING, s: new TextEncoder().encode(v) })
        : onnx.AttributeProto.create({ name: k, type: A.INTS, ints: v }),
  );
  return onnx.NodeProto.create({ opType, input: inputs, output: outputs, name, attribute, domain });
}

export function attrOf(n: NodeProto, name: string): onnxPkg.onnx.IAttributeProto | undefined {
  return (n.attribute ?? []).find((a) => a.name === name);
}

export function intAttr(n: NodeProto, name: string, fallback: number): number {
  const a = attrOf(n, name);
  return a?.i != null ? Number(a.i) : fallback;
}

export function valueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

/** Sets the dims of a graph input or output (numbers fixed, strings symbolic). */
export function setDims(v: ValueInfoProto, dims: (number | string)[]): void {
  const tt = v.type?.tensorType;
  if (!tt) throw new ModelError(`value '${v.name}' is not a tensor`);
  tt.shape = { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) };
}

/** Renames a value everywhere it appears: node inputs/outputs, graph inputs/outputs, initializers. */
export function renameValue(graph: GraphProto, from: string, to: string): void {
  for (const n of graph.node ?? []) {
    n.input = (n.input ?? []).map((x) => (x === from ? to : x));
    n.output = (n.output ?? []).map((x) => (x === from ? to : x));
  }
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])])
    if (v.name === from) v.name = to;
  for (const t of graph.initializer ?? []) if (t.name === from) t.name = to;
}

/** Nodes reading each value. */
export function consumersOf(graph: GraphProto): Map<string, NodeProto[]> {
  const out = new Map<string, NodeProto[]>();
  for (const n of graph.node ?? [])
    for (const x of n.input ?? []) {
      if (!x) continue;
      const list = out.get(x);
      if (list) list.push(n);
      else out.set(x, [n]);
    }
  return out;
}

export function producersOf(graph: GraphProto): Map<string, NodeProto> {
  const out = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) for (const x of n.output ?? []) if (x) out.set(x, n);
  return out;
}

/** A name not yet used by any value or node of the graph. */
export function freshNamer(graph: GraphProto): (hint: string) => string {
  const used = new Set<string>();
  for (const n of graph.node ?? []) {
    if (n.name) used.add(n.name);
    for (const x of [...(n.input ?? []), ...(n.output ?? [])]) used.add(x);
  }
  for (const t of graph.initializer ?? []) used.add(t.name ?? "");
  for (const v of [...(graph.input ?? []), ...(graph.output ?? [])]) used.add(v.name ?? "");
  return (hint) => {
    let name = hint;
    for (let i = 1; used.has(name); i++) name = `${hint}_${i}`;
    used.add(name);
    return name;
  };
}

/** Op types of the model with their counts: what a transform changed, in one line. */
export function opCounts(model: ModelProto): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of model.graph?.node ?? []) {
    const key = n.domain && n.domain !== "ai.onnx" ? `${n.domain}:${n.opType}` : n.opType!;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}
