// A small, typed front-end over onnx-proto for building ONNX graphs in code: the zoo's
// architectures (digits MLPs/CNNs, vision ResNets/MobileNet, supernets) are all written with it.
import onnxPkg from "onnx-proto";

const { onnx } = onnxPkg;
export type Onnx = typeof onnx;

export const DType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  DOUBLE: 11,
} as const;
export type DTypeCode = (typeof DType)[keyof typeof DType];

/** Attribute values accepted by `node()`; a GraphBuilder becomes a GRAPH attribute (If/Loop bodies). */
export type AttrValue = number | number[] | string | { float: number } | { floats: number[] } | GraphBuilder;

/** The ONNX opset the zoo targets: new enough for Slice-with-inputs and If, old enough for every runtime. */
export const ZOO_OPSET = 13;

export class GraphBuilder {
  private readonly nodes: InstanceType<Onnx["NodeProto"]>[] = [];
  private readonly inits: InstanceType<Onnx["TensorProto"]>[] = [];
  private readonly inputs: InstanceType<Onnx["ValueInfoProto"]>[] = [];
  private readonly outputs: InstanceType<Onnx["ValueInfoProto"]>[] = [];
  private counter = 0;

  constructor(
    readonly name: string,
    private readonly prefix = "",
  ) {}

  /** A fresh, unique value name inside this graph. */
  fresh(hint = "t"): string {
    this.counter += 1;
    return `${this.prefix}${hint}_${this.counter}`;
  }

  input(name: string, elemType: DTypeCode, dims: (number | string)[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Declares a graph output; `dims` may be omitted for subgraph outputs whose shape the runtime infers. */
  output(name: string, elemType: DTypeCode, dims?: (number | string)[]): string {
    this.outputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** A float32 initializer (weights). Returns its name. */
  weight(hint: string, data: Float32Array, dims: number[]): string {
    const name = this.fresh(hint);
    if (data.length !== dims.reduce((a, b) => a * b, 1)) {
      throw new Error(`initializer ${name}: ${data.length} values do not fill dims [${dims.join(",")}]`);
    }
    this.inits.push(onnx.TensorProto.create({ name, dims, dataType: DType.FLOAT, rawData: bytesOf(data) }));
    return name;
  }

  /**
   * A float32 initializer under exactly `name` (no counter suffix): a supernet's shared weights are
   * read back by name to export one subnet on its own.
   */
  namedWeight(name: string, data: Float32Array, dims: number[]): string {
    if (data.length !== dims.reduce((a, b) => a * b, 1)) {
      throw new Error(`initializer ${name}: ${data.length} values do not fill dims [${dims.join(",")}]`);
    }
    this.inits.push(onnx.TensorProto.create({ name, dims, dataType: DType.FLOAT, rawData: bytesOf(data) }));
    return name;
  }

  /** An int64 initializer (shapes, axes, slice bounds). */
  ints(hint: string, values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh(hint);
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.inits.push(onnx.TensorProto.create({ name, dims, dataType: DType.INT64, rawData: bytesOf(data) }));
    return name;
  }

  /** A float32 scalar or vector constant. */
  floats(hint: string, values: number[], dims: number[] = [values.length]): string {
    return this.weight(hint, Float32Array.from(values), dims);
  }

  /** Adds a node; returns its output names (`outputs` is a count of fresh names or explicit names). */
  node(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    outputs: number | string[] = 1,
  ): string[] {
    const outs =
      typeof outputs === "number" ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase())) : outputs;
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        input: inputs,
        output: outs,
        name: this.fresh(`n_${opType}`),
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return outs;
  }

  /** Single-output shorthand for `node`. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.node(opType, inputs, attrs)[0]!;
  }

  /** Emits `src` under the fixed name `name` (Identity), e.g. to give a graph output its public name. */
  rename(src: string, name: string): string {
    this.node("Identity", [src], {}, [name]);
    return name;
  }

  graphProto(): InstanceType<Onnx["GraphProto"]> {
    return onnx.GraphProto.create({
      name: this.name,
      node: this.nodes,
      initializer: this.inits,
      input: this.inputs,
      output: this.outputs,
    });
  }

  /** Serialises the graph as a complete ONNX model. */
  toModel(meta: { docString?: string; metadata?: Record<string, string>; opset?: number } = {}): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 7,
      producerName: "sloserve",
      producerVersion: "0.1.0",
      docString: meta.docString ?? "",
      opsetImport: [{ domain: "", version: meta.opset ?? ZOO_OPSET }],
      metadataProps: Object.entries(meta.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: this.graphProto(),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function bytesOf(view: Float32Array | BigInt64Array): Uint8Array {
  // ONNX raw_data is little-endian; every machine sloserve runs on is too.
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

function valueInfo(name: string, elemType: DTypeCode, dims?: (number | string)[]) {
  const tensorType: Record<string, unknown> = { elemType };
  if (dims) {
    tensorType.shape = { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) };
  }
  return onnx.ValueInfoProto.create({ name, type: { tensorType } });
}

function attribute(name: string, v: AttrValue) {
  const A = onnx.AttributeProto.AttributeType;
  if (v instanceof GraphBuilder) return onnx.AttributeProto.create({ name, type: A.GRAPH, g: v.graphProto() });
  if (typeof v === "string")
    return onnx.AttributeProto.create({ name, type: A.STRING, s: new TextEncoder().encode(v) });
  if (typeof v === "number") return onnx.AttributeProto.create({ name, type: A.INT, i: v });
  if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: A.INTS, ints: v });
  if ("float" in v) return onnx.AttributeProto.create({ name, type: A.FLOAT, f: v.float });
  return onnx.AttributeProto.create({ name, type: A.FLOATS, floats: v.floats });
}

/** He-normal weights (Box-Muller over the seeded PRNG): keeps activations finite through deep nets. */
export function heNormal(rand: () => number, count: number, fanIn: number): Float32Array {
  const out = new Float32Array(count);
  const std = Math.sqrt(2 / fanIn);
  for (let i = 0; i < count; i += 2) {
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < count) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}
