// `npx tsx src/zoo/vision-main.ts [modelsDir]`: builds the missing vision-zoo models and prints a table.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { VISION_VARIANTS, countParameters, ensureVisionZoo } from "./vision.js";

const modelsDir = process.argv[2] ?? "models";
const result = await ensureVisionZoo(modelsDir, (msg) => console.log(msg));

const rows: string[][] = [["variant", "params", "size (MB)", "build"]];
for (const v of VISION_VARIANTS) {
  const bytes = new Uint8Array(await readFile(path.join(modelsDir, "vision", v.name, "model.onnx")));
  const ms = result.buildMs[v.name];
  rows.push([
    v.name,
    countParameters(bytes).toLocaleString("en-US"),
    (bytes.byteLength / 1e6).toFixed(1),
    ms === undefined ? "present" : `${(ms / 1000).toFixed(2)} s`,
  ]);
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows)
  console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
console.log(`built: ${result.built.join(", ") || "none"}; present: ${result.present.join(", ") || "none"}`);
