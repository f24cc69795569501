// What every tensor of a graph is, measured rather than inferred: the model is run once at batch 1 and
// once at batch 2 with every intermediate tensor made a graph output. A tensor whose first dimension
// follows the batch and whose other dimensions stay put is one a cut can carry (its row shape goes into
// the stage's task.yaml); anything else (a shape vector, a reshaped-away batch) cannot cross a cut.
import ort from "onnxruntime-node";
import onnxPkg from "onnx-proto";
import { DATATYPES, datatypeOfOnnx, type OipDatatype } from "../repository/datatypes.js";
import { seededRandom } from "../stats/random.js";
import type { ModelGraph, ValueInfoProto } from "./graph.js";

const { onnx } = onnxPkg;

export interface TensorFacts {
  name: string;
  /** null: a type the Open Inference Protocol cannot carry. */
  datatype: OipDatatype | null;
  /** Shape without the batch dimension; null when the tensor does not lead with the batch. */
  rowShape: number[] | null;
  /** Shape at batch 1. */
  dims: number[];
  /** Bytes of one row (of the whole tensor at batch 1 when it does not lead with the batch). */
  bytesPerRow: number;
}

export async function probeTensors(graph: ModelGraph): Promise<Map<string, TensorFacts>> {
  const facts = new Map<string, TensorFacts>();
  for (const v of graph.inputs) {
    const f = inputFacts(v);
    facts.set(f.name, f);
  }
  const wanted = new Set<string>();
  for (const n of graph.order) for (const o of n.outputs) if (!facts.has(o)) wanted.add(o);
  if (wanted.size === 0) return facts;

  const probe = onnx.ModelProto.decode(onnx.ModelProto.encode(graph.model).finish());
  const declared = new Set((probe.graph!.output ?? []).map((o) => o.name));
  for (const name of wanted) if (!declared.has(name)) probe.graph!.output!.push(onnx.ValueInfoProto.create({ name }));
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(onnx.ModelProto.encode(probe).finish(), {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
    });
  } catch (err) {
    throw new Error(`onnxruntime cannot load the model to measure its tensors: ${(err as Error).message}`);
  }
  try {
    const one = await session.run(randomFeeds(graph, 1, 1), [...wanted]);
    const two = await session.run(randomFeeds(graph, 2, 1), [...wanted]);
    for (const name of wanted) {
      const a = one[name]!;
      const b = two[name]!;
      const datatype = datatypeOfOrt(a.type);
      const batchLeading =
        a.dims.length >= 1 &&
        a.dims[0] === 1 &&
        b.dims[0] === 2 &&
        a.dims.length === b.dims.length &&
        a.dims.every((d, i) => i === 0 || d === b.dims[i]);
      const elems = a.dims.reduce((x, d) => x * d, 1);
      facts.set(name, {
        name,
        datatype,
        rowShape: batchLeading ? a.dims.slice(1) : null,
        dims: [...a.dims],
        bytesPerRow: elems * (datatype ? DATATYPES[datatype].bytes : 0),
      });
    }
  } catch (err) {
    throw new Error(`running the model once to measure its tensors failed: ${(err as Error).message}`);
  } finally {
    await session.release();
  }
  return facts;
}

function inputFacts(v: ValueInfoProto): TensorFacts {
  const tt = v.type?.tensorType;
  if (!tt) throw new Error(`graph input '${v.name}' is not a tensor`);
  const dims = (tt.shape?.dim ?? []).map((d) => (d.dimValue != null ? Number(d.dimValue) : -1));
  const row = dims.slice(1);
  if (dims.length === 0 || row.some((d) => !(d > 0)))
    throw new Error(
      `graph input '${v.name}' has shape [${dims.join(",")}]: only its first (batch) dimension may be dynamic`,
    );
  if (dims[0]! > 0)
    throw new Error(
      `graph input '${v.name}' has its first dimension fixed at ${dims[0]}; export the model with a dynamic batch dimension`,
    );
  const datatype = datatypeOfOnnx(tt.elemType ?? 0) ?? null;
  return {
    name: v.name ?? "",
    datatype,
    rowShape: row,
    dims: [1, ...row],
    bytesPerRow: row.reduce((a, d) => a * d, 1) * (datatype ? DATATYPES[datatype].bytes : 0),
  };
}

export function datatypeOfOrt(type: string): OipDatatype | null {
  return (Object.keys(DATATYPES) as OipDatatype[]).find((d) => DATATYPES[d].ort === type) ?? null;
}

/** Seeded request inputs for `rows` rows: uniforms for floats, small non-negative integers otherwise. */
export function randomFeeds(graph: ModelGraph, rows: number, seed: number): Record<string, ort.Tensor> {
  const rand = seededRandom(seed);
  const feeds: Record<string, ort.Tensor> = {};
  for (const v of graph.inputs) {
    const f = inputFacts(v);
    if (!f.datatype || f.datatype === "BYTES")
      throw new Error(
        `graph input '${f.name}' has a type sloserve cannot feed (ONNX type ${v.type?.tensorType?.elemType})`,
      );
    feeds[f.name] = randomTensor(f.datatype, [rows, ...f.rowShape!], rand);
  }
  return feeds;
}

export function randomTensor(datatype: OipDatatype, dims: number[], rand: () => number): ort.Tensor {
  const n = dims.reduce((a, d) => a * d, 1);
  const type = DATATYPES[datatype].ort;
  const ints = (k: number) => Array.from({ length: n }, () => Math.floor(rand() * k));
  switch (datatype) {
    case "FP32":
      return new ort.Tensor(type, Float32Array.from({ length: n }, rand), dims);
    case "FP64":
      return new ort.Tensor(type, Float64Array.from({ length: n }, rand), dims);
    case "INT64":
      return new ort.Tensor(type, BigInt64Array.from(ints(10), BigInt), dims);
    case "UINT64":
      return new ort.Tensor(type, BigUint64Array.from(ints(10), BigInt), dims);
    case "INT32":
      return new ort.Tensor(type, Int32Array.from(ints(10)), dims);
    case "UINT32":
      return new ort.Tensor(type, Uint32Array.from(ints(10)), dims);
    case "INT16":
      return new ort.Tensor(type, Int16Array.from(ints(10)), dims);
    case "UINT16":
      return new ort.Tensor(type, Uint16Array.from(ints(10)), dims);
    case "INT8":
      return new ort.Tensor(type, Int8Array.from(ints(10)), dims);
    case "UINT8":
      return new ort.Tensor(type, Uint8Array.from(ints(256)), dims);
    case "BOOL":
      return new ort.Tensor(type, Uint8Array.from(ints(2)), dims);
    default:
      throw new Error(`cannot make random ${datatype} inputs`);
  }
}
