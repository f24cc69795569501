// Typed-array views over wire payloads, by onnxruntime tensor type.
import type { TypedArray } from "../engine/engine.js";

const CTORS: Record<string, new (buf: ArrayBuffer, off: number, len: number) => TypedArray> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  float16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
};

/** A typed array over `bytes` (copied when the offset is not aligned for the element size). */
export function viewAs(type: string, bytes: Uint8Array): TypedArray {
  const Ctor = CTORS[type];
  if (!Ctor) throw new Error(`unsupported tensor type '${type}'`);
  const size = (Ctor as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  if (bytes.byteLength % size !== 0)
    throw new Error(`${bytes.byteLength} bytes is not a whole number of ${type} elements`);
  if (bytes.byteOffset % size === 0)
    return new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength / size);
  const copy = new Uint8Array(bytes);
  return new Ctor(copy.buffer, 0, copy.byteLength / size);
}

export function bytesOf(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
