// Open Inference Protocol tensors in and out of JSON and the binary tensor extension: checks
// datatype, shape and element count, and says exactly what is wrong when they disagree.
import { quoted } from "../repository/safe-path.js";
import type { TypedArray } from "../engine/engine.js";
import { DATATYPES, OIP_DATATYPES, type OipDatatype } from "../repository/datatypes.js";
import { REQUEST_LIMITS } from "./limits.js";
import { ApiError, type Tensor } from "./types.js";

/** The largest finite float32: JSON numbers beyond it would silently become ±Infinity. */
const FP32_MAX = 3.4028234663852886e38;

/** Value ranges of the integer datatypes, for JSON data (binary data cannot be out of range). */
const INT_RANGE: Partial<Record<OipDatatype, [number, number]>> = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-(2 ** 31), 2 ** 31 - 1],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 2 ** 32 - 1],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
};

const ARRAYS: Record<
  Exclude<OipDatatype, "BYTES">,
  { new (n: number): TypedArray; new (b: ArrayBuffer, o: number, n: number): TypedArray }
> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
} as never;

export function parseDatatype(value: unknown, where: string): OipDatatype {
  if (typeof value === "string" && (OIP_DATATYPES as readonly string[]).includes(value)) return value as OipDatatype;
  throw new ApiError(400, `${where}: datatype ${JSON.stringify(value)} is not one of ${OIP_DATATYPES.join(", ")}`);
}

export function parseShape(value: unknown, where: string): number[] {
  if (!Array.isArray(value) || value.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ApiError(400, `${where}: shape must be an array of non-negative integers, got ${JSON.stringify(value)}`);
  }
  return value as number[];
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A tensor from JSON `data` (flat or nested, row-major). */
export function tensorFromJson(name: string, datatype: OipDatatype, shape: number[], data: unknown): Tensor {
  const where = `input ${quoted(name)}`;
  if (datatype === "FP16")
    throw new ApiError(400, `${where}: FP16 can only be sent as binary data (binary tensor extension)`);
  if (!Array.isArray(data)) throw new ApiError(400, `${where}: 'data' must be an array (flat or nested, row-major)`);
  const flat = flattenData(data, where);
  const n = elementCount(shape);
  if (flat.length !== n)
    throw new ApiError(400, `${where}: shape [${shape.join(",")}] needs ${n} elements, 'data' has ${flat.length}`);
  if (datatype === "BYTES") {
    return {
      name,
      datatype,
      shape,
      data: flat.map((v, i) => {
        if (typeof v !== "string") throw new ApiError(400, `${where}: BYTES element ${i} must be a string`);
        return new TextEncoder().encode(v);
      }),
    };
  }
  const out = new ARRAYS[datatype](n);
  const range = INT_RANGE[datatype];
  for (let i = 0; i < n; i++) {
    const v = flat[i];
    if (datatype === "BOOL") {
      if (typeof v !== "boolean")
        throw new ApiError(400, `${where}: BOOL element ${i} must be true or false, got ${JSON.stringify(v)}`);
      out[i] = v ? 1 : 0;
    } else if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new ApiError(400, `${where}: element ${i} must be a finite number, got ${JSON.stringify(v)}`);
    } else if (datatype === "FP32" && Math.abs(v) > FP32_MAX) {
      throw new ApiError(
        400,
        `${where}: element ${i} (${v}) is out of range for FP32 (±${FP32_MAX.toExponential(6)}); scale the input or send FP64`,
      );
    } else if (range) {
      if (!Number.isInteger(v)) throw new ApiError(400, `${where}: element ${i} must be an integer for ${datatype}`);
      // typed arrays wrap silently (300 becomes 44 in UINT8): refuse instead
      if (v < range[0] || v > range[1])
        throw new ApiError(
          400,
          `${where}: element ${i} (${v}) is out of range for ${datatype} (${range[0]}..${range[1]}${datatype.endsWith("64") ? " in JSON; send larger values as binary data" : ""})`,
        );
      if (datatype === "INT64" || datatype === "UINT64") (out as BigInt64Array)[i] = BigInt(v);
      else out[i] = v;
    } else {
      out[i] = v;
    }
  }
  return { name, datatype, shape, data: out };
}

/**
 * JSON `data`, flat or nested, as one row-major list. Nested data must be rectangular (every list at one
 * depth as long as the others, numbers only at the deepest level) and at most REQUEST_LIMITS.nesting deep;
 * walked level by level, so no nesting depth reaches the call stack.
 */
function flattenData(data: unknown[], where: string): unknown[] {
  let level = data;
  for (let depth = 1; ; depth++) {
    let lists = 0;
    for (const v of level) if (Array.isArray(v)) lists++;
    if (lists === 0) return level;
    if (lists !== level.length)
      throw new ApiError(
        400,
        `${where}: 'data' mixes numbers and lists at depth ${depth}; send it flat or nested evenly along the shape`,
      );
    if (depth >= REQUEST_LIMITS.nesting)
      throw new ApiError(
        400,
        `${where}: 'data' is nested more than ${REQUEST_LIMITS.nesting} deep; send it flat or nested along the shape`,
      );
    const width = (level[0] as unknown[]).length;
    const next: unknown[] = [];
    for (const v of level as unknown[][]) {
      if (v.length !== width)
        throw new ApiError(
          400,
          `${where}: 'data' is ragged at depth ${depth + 1}: lists of ${width} and ${v.length} elements; every list at one depth must be as long as the others`,
        );
      for (const x of v) next.push(x);
    }
    level = next;
  }
}

/** A tensor from raw little-endian bytes (binary tensor extension, gRPC raw contents). */
export function tensorFromBytes(name: string, datatype: OipDatatype, shape: number[], bytes: Uint8Array): Tensor {
  const n = elementCount(shape);
  const where = `input ${quoted(name)}`;
  if (datatype === "BYTES") {
    const items: Uint8Array[] = [];
    let off = 0;
    while (off < bytes.byteLength) {
      if (off + 4 > bytes.byteLength)
        throw new ApiError(400, `${where}: BYTES data ends inside a 4-byte length prefix`);
      const len = new DataView(bytes.buffer, bytes.byteOffset + off, 4).getUint32(0, true);
      off += 4;
      if (off + len > bytes.byteLength)
        throw new ApiError(
          400,
          `${where}: BYTES element ${items.length} claims ${len} bytes, only ${bytes.byteLength - off} remain`,
        );
      items.push(bytes.slice(off, off + len));
      off += len;
    }
    if (items.length !== n)
      throw new ApiError(400, `${where}: shape [${shape.join(",")}] needs ${n} BYTES elements, got ${items.length}`);
    return { name, datatype, shape, data: items };
  }
  const size = DATATYPES[datatype].bytes;
  if (bytes.byteLength !== n * size) {
    throw new ApiError(
      400,
      `${where}: shape [${shape.join(",")}] of ${datatype} needs ${n * size} bytes, got ${bytes.byteLength}`,
    );
  }
  const copy = new Uint8Array(bytes); // aligned, and owned by the tensor
  return { name, datatype, shape, data: new ARRAYS[datatype](copy.buffer, 0, n) };
}

/** JSON `data` for a response (flat, row-major); 64-bit integers become numbers. */
export function tensorToJson(t: Tensor): unknown[] {
  if (t.datatype === "BYTES") return (t.data as Uint8Array[]).map((b) => new TextDecoder().decode(b));
  if (t.datatype === "BOOL") return Array.from(t.data as Uint8Array, (v) => v !== 0);
  const d = t.data as TypedArray;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Array.from(d, (v) => Number(v));
  return Array.from(d as Float32Array);
}

/** Raw bytes of a tensor for the binary extension / gRPC raw contents. */
export function tensorToBytes(t: Tensor): Uint8Array {
  if (t.datatype === "BYTES") {
    const items = t.data as Uint8Array[];
    const out = new Uint8Array(items.reduce((n, b) => n + 4 + b.byteLength, 0));
    const view = new DataView(out.buffer);
    let off = 0;
    for (const b of items) {
      view.setUint32(off, b.byteLength, true);
      out.set(b, off + 4);
      off += 4 + b.byteLength;
    }
    return out;
  }
  const d = t.data as TypedArray;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** The OIP datatype of an onnxruntime tensor type. */
export function datatypeOfOrt(type: string): OipDatatype {
  const found = OIP_DATATYPES.find((d) => DATATYPES[d].ort === type || (type === "uint8" && d === "UINT8"));
  if (!found) throw new ApiError(500, `model produced an output of unsupported type ${type}`);
  return found;
}
