// The three names every tensor type has: Open Inference Protocol (API), ONNX (files) and
// onnxruntime-node (engine). One table so that the API, the loader and the engine agree.
import type ort from "onnxruntime-node";

export const OIP_DATATYPES = [
  "BOOL",
  "UINT8",
  "UINT16",
  "UINT32",
  "UINT64",
  "INT8",
  "INT16",
  "INT32",
  "INT64",
  "FP16",
  "FP32",
  "FP64",
  "BYTES",
] as const;
export type OipDatatype = (typeof OIP_DATATYPES)[number];

interface DatatypeInfo {
  onnx: number;
  ort: ort.Tensor.Type;
  bytes: number;
}

export const DATATYPES: Record<OipDatatype, DatatypeInfo> = {
  BOOL: { onnx: 9, ort: "bool", bytes: 1 },
  UINT8: { onnx: 2, ort: "uint8", bytes: 1 },
  UINT16: { onnx: 4, ort: "uint16", bytes: 2 },
  UINT32: { onnx: 12, ort: "uint32", bytes: 4 },
  UINT64: { onnx: 13, ort: "uint64", bytes: 8 },
  INT8: { onnx: 3, ort: "int8", bytes: 1 },
  INT16: { onnx: 5, ort: "int16", bytes: 2 },
  INT32: { onnx: 6, ort: "int32", bytes: 4 },
  INT64: { onnx: 7, ort: "int64", bytes: 8 },
  FP16: { onnx: 10, ort: "float16", bytes: 2 },
  FP32: { onnx: 1, ort: "float32", bytes: 4 },
  FP64: { onnx: 11, ort: "float64", bytes: 8 },
  BYTES: { onnx: 8, ort: "string", bytes: 0 },
};

export function datatypeOfOnnx(code: number): OipDatatype | undefined {
  return OIP_DATATYPES.find((d) => DATATYPES[d].onnx === code);
}
