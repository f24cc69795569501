// Request inputs for the load generator, written from the protocol text (not the server's codecs,
// so that the tool tests the server rather than agreeing with it): tensors described by a model's
// metadata and filled with seeded random values, or taken from a JSON request body; each kept both
// as JSON data and as the little-endian bytes the binary extension and gRPC raw contents carry.
import fs from "node:fs";
import { Mulberry32 } from "../traces/index.js";

export interface TensorSpec {
  name: string;
  datatype: string;
  /** -1 marks a variable dimension. */
  shape: number[];
}

export interface InputTensor {
  name: string;
  datatype: string;
  shape: number[];
  /** Flat row-major values (JSON form); FP16 has none (the protocol sends FP16 only as binary). */
  data: number[] | boolean[] | string[] | null;
  /** Little-endian raw bytes (binary extension / gRPC raw_input_contents). */
  raw: Uint8Array;
}

export type ParamValue = number | string | boolean;

/** Everything a client needs to send the same request again and again. */
export interface RequestTemplate {
  model: string;
  version?: string;
  inputs: InputTensor[];
  parameters: Record<string, ParamValue>;
}

export class InputError extends Error {}

const INT_RANGE: Record<string, [number, number]> = {
  INT8: [-128, 127],
  INT16: [-1000, 1000],
  INT32: [-1000, 1000],
  INT64: [-1000, 1000],
  UINT8: [0, 255],
  UINT16: [0, 1000],
  UINT32: [0, 1000],
  UINT64: [0, 1000],
};
const BYTE_WIDTH: Record<string, number> = {
  BOOL: 1,
  INT8: 1,
  UINT8: 1,
  INT16: 2,
  UINT16: 2,
  FP16: 2,
  INT32: 4,
  UINT32: 4,
  FP32: 4,
  INT64: 8,
  UINT64: 8,
  FP64: 8,
};

export function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Concrete shape: the first variable dimension is the batch, any other variable one is 1. */
export function concreteShape(shape: number[], batch: number): number[] {
  return shape.map((d, i) => (d >= 0 ? d : i === 0 ? batch : 1));
}

/** Seeded random inputs that match the model's declared inputs. */
export function randomInputs(specs: TensorSpec[], batch: number, seed: number): InputTensor[] {
  const rng = new Mulberry32(seed);
  return specs.map((s) => {
    const shape = concreteShape(s.shape, batch);
    const n = elementCount(shape);
    let data: number[] | boolean[] | string[];
    if (s.datatype === "BOOL") data = Array.from({ length: n }, () => rng.next() < 0.5);
    else if (s.datatype === "BYTES") data = Array.from({ length: n }, () => rng.next().toString(36).slice(2, 10));
    else if (s.datatype.startsWith("FP")) data = Array.from({ length: n }, () => Math.fround(rng.next()));
    else {
      const range = INT_RANGE[s.datatype];
      if (!range)
        throw new InputError(`input '${s.name}' has datatype '${s.datatype}', which the protocol does not define`);
      data = Array.from({ length: n }, () => range[0] + Math.floor(rng.next() * (range[1] - range[0] + 1)));
    }
    return tensor(s.name, s.datatype, shape, data);
  });
}

/** Inputs and parameters from a JSON inference request body (`{"inputs": [...], "parameters"?}`). */
export function inputsFromFile(file: string): { inputs: InputTensor[]; parameters: Record<string, ParamValue> } {
  let body: { inputs?: unknown; parameters?: unknown };
  try {
    body = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new InputError(
      `--input-file ${file}: ${(err as Error).message}; it must hold a JSON inference request body like {"inputs": [{"name", "datatype", "shape", "data"}]}`,
    );
  }
  if (!Array.isArray(body.inputs) || body.inputs.length === 0)
    throw new InputError(`--input-file ${file}: no "inputs" array`);
  const inputs = body.inputs.map((raw: any, k: number) => {
    if (typeof raw?.name !== "string" || typeof raw?.datatype !== "string" || !Array.isArray(raw?.shape))
      throw new InputError(`--input-file ${file}: inputs[${k}] needs name, datatype and shape`);
    if (raw.data === undefined)
      throw new InputError(
        `--input-file ${file}: inputs[${k}] ('${raw.name}') has no "data" (binary inputs cannot be given in a JSON file)`,
      );
    const data = [raw.data].flat(Infinity) as number[] | boolean[] | string[];
    if (data.length !== elementCount(raw.shape))
      throw new InputError(
        `--input-file ${file}: input '${raw.name}' has ${data.length} values for shape [${raw.shape.join(",")}]`,
      );
    return tensor(raw.name, raw.datatype, raw.shape, data);
  });
  const parameters = (body.parameters && typeof body.parameters === "object" ? body.parameters : {}) as Record<
    string,
    ParamValue
  >;
  return { inputs, parameters };
}

function tensor(name: string, datatype: string, shape: number[], data: number[] | boolean[] | string[]): InputTensor {
  return { name, datatype, shape, data: datatype === "FP16" ? null : data, raw: rawBytes(datatype, data) };
}

/** The binary extension's layout: little-endian elements; BYTES as a 4-byte length then the bytes. */
export function rawBytes(datatype: string, data: ArrayLike<unknown>): Uint8Array {
  if (datatype === "BYTES") {
    const parts = Array.from(data as ArrayLike<string>, (s) => Buffer.from(String(s), "utf8"));
    const out = Buffer.alloc(parts.reduce((a, p) => a + 4 + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.writeUInt32LE(p.length, off);
      p.copy(out, off + 4);
      off += 4 + p.length;
    }
    return out;
  }
  const width = BYTE_WIDTH[datatype];
  if (!width)
    throw new InputError(
      `datatype '${datatype}' is not one of the protocol's (BOOL, INT8..INT64, UINT8..UINT64, FP16, FP32, FP64, BYTES)`,
    );
  const out = new Uint8Array(data.length * width);
  const v = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    const o = i * width;
    switch (datatype) {
      case "BOOL":
        v.setUint8(o, x ? 1 : 0);
        break;
      case "INT8":
        v.setInt8(o, Number(x));
        break;
      case "UINT8":
        v.setUint8(o, Number(x));
        break;
      case "INT16":
        v.setInt16(o, Number(x), true);
        break;
      case "UINT16":
        v.setUint16(o, Number(x), true);
        break;
      case "INT32":
        v.setInt32(o, Number(x), true);
        break;
      case "UINT32":
        v.setUint32(o, Number(x), true);
        break;
      case "INT64":
        v.setBigInt64(o, BigInt(x as number), true);
        break;
      case "UINT64":
        v.setBigUint64(o, BigInt(x as number), true);
        break;
      case "FP16":
        v.setUint16(o, toHalf(Number(x)), true);
        break;
      case "FP32":
        v.setFloat32(o, Number(x), true);
        break;
      case "FP64":
        v.setFloat64(o, Number(x), true);
        break;
    }
  }
  return out;
}

/** IEEE 754 binary16 bits of a number (round to nearest even; enough for test inputs). */
export function toHalf(x: number): number {
  const f = new Float32Array([x]);
  const b = new Uint32Array(f.buffer)[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = ((b >>> 23) & 0xff) - 127 + 15;
  let mant = b & 0x7fffff;
  if (((b >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  if (exp >= 0x1f) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}
