// Reads a model's input/output signature from the ONNX file itself (not from metadata a user wrote),
// so that the loader can check every variant against its task before anything is served.
import onnxPkg from "onnx-proto";
import { datatypeOfOnnx, type OipDatatype } from "./datatypes.js";

const { onnx } = onnxPkg;

export interface SignatureTensor {
  name: string;
  datatype: OipDatatype | `ONNX type ${number}`;
  /** -1 for a symbolic or unknown dimension. */
  shape: number[];
}

export interface OnnxSignature {
  inputs: SignatureTensor[];
  outputs: SignatureTensor[];
  opsets: Record<string, number>;
  initializerBytes: number;
}

export function readOnnxSignature(bytes: Uint8Array): OnnxSignature {
  let model: InstanceType<typeof onnx.ModelProto>;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new Error(`not a valid ONNX protobuf (${(err as Error).message})`);
  }
  const graph = model.graph;
  if (!graph || !graph.node || graph.node.length === 0) throw new Error("ONNX file has no graph nodes");
  const initNames = new Set((graph.initializer ?? []).map((t) => t.name));
  const toTensor = (v: onnxPkg.onnx.IValueInfoProto): SignatureTensor => {
    const tt = v.type?.tensorType;
    if (!tt) throw new Error(`value '${v.name}' is not a tensor`);
    const code = tt.elemType ?? 0;
    return {
      name: v.name ?? "",
      datatype: datatypeOfOnnx(code) ?? `ONNX type ${code}`,
      shape: (tt.shape?.dim ?? []).map((d) => (d.dimValue != null && Number(d.dimValue) > 0 ? Number(d.dimValue) : -1)),
    };
  };
  let initializerBytes = 0;
  for (const t of graph.initializer ?? []) initializerBytes += t.rawData?.length ?? 0;
  const opsets: Record<string, number> = {};
  for (const o of model.opsetImport ?? []) opsets[o.domain || "ai.onnx"] = Number(o.version);
  return {
    inputs: (graph.input ?? []).filter((v) => !initNames.has(v.name ?? "")).map(toTensor),
    outputs: (graph.output ?? []).map(toTensor),
    opsets,
    initializerBytes,
  };
}
