// Triton's classification extension: instead of an output tensor, its `k` highest values per row
// as BYTES strings "value:index[:label]" (shape [rows, k]; k capped at the row's size), the value
// printed as C's %f, as Triton does, and the label from the task's output declaration.
import type { TypedArray } from "../engine/engine.js";
import type { Tensor } from "./types.js";

export function topClasses(t: Tensor, k: number, labels?: readonly string[]): Tensor {
  const rows = t.shape[0] ?? 1;
  const data = t.data as TypedArray;
  const width = rows === 0 ? 0 : data.length / rows;
  const count = Math.min(k, width);
  const enc = new TextEncoder();
  const out: Uint8Array[] = [];
  for (let r = 0; r < rows; r++) {
    const row = Array.from(data.subarray(r * width, (r + 1) * width) as Float32Array, Number);
    const order = row.map((_, i) => i).sort((a, b) => row[b]! - row[a]! || a - b);
    for (const i of order.slice(0, count)) {
      const label = labels?.[i];
      out.push(enc.encode(`${row[i]!.toFixed(6)}:${i}${label === undefined ? "" : `:${label}`}`));
    }
  }
  return { name: t.name, datatype: "BYTES", shape: [rows, count], data: out };
}
