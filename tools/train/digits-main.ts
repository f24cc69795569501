// Trains the digits zoo into ./models: npx tsx tools/train/digits-main.ts [--only a,b]
import { median } from "../../src/stats/quantile.js";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Engine } from "../../src/engine/engine.js";
import { DIGIT_PIXELS, loadDigits } from "../../src/zoo/digits-data.js";
import { trainDigitsZoo } from "./digits.js";

/** Median wall time (ms) of `runs` batch-8 inferences through the Engine with one thread. */
async function batch8Ms(modelPath: string, runs = 200): Promise<number> {
  const engine = await Engine.create(new Uint8Array(await readFile(modelPath)), { threads: 1 });
  const image = loadDigits().test.images.slice(0, 8 * DIGIT_PIXELS);
  const times: number[] = [];
  for (let i = 0; i < runs + 20; i++) {
    const t = performance.now();
    await engine.runBatch([{ rows: 8, inputs: { image } }]);
    if (i >= 20) times.push(performance.now() - t);
  }
  await engine.close();
  return median(times);
}

function parseOnly(argv: string[]): string[] | undefined {
  const i = argv.findIndex((a) => a === "--only" || a.startsWith("--only="));
  if (i < 0) return undefined;
  const value = argv[i]!.includes("=") ? argv[i]!.slice("--only=".length) : argv[i + 1];
  if (!value) throw new Error("--only needs a comma-separated list of variant names");
  return value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

const t0 = performance.now();
const results = await trainDigitsZoo({
  modelsDir: "models",
  only: parseOnly(process.argv.slice(2)),
  onProgress: (msg) => console.log(msg),
});
const trainedS = (performance.now() - t0) / 1000;
const latency = new Map<string, number>();
for (const r of results) latency.set(r.name, await batch8Ms(path.join(r.dir, "model.onnx")));
const rows = [
  ["variant", "architecture", "params", "accuracy", "correct/total", "train s", "batch-8 ms (1 thread, median)"],
  ...results.map((r) => [
    r.name,
    r.architecture,
    String(r.parameters),
    `${(r.accuracy * 100).toFixed(2)}%`,
    `${r.correct}/${r.total}`,
    r.trainSeconds.toFixed(1),
    latency.get(r.name)!.toFixed(3),
  ]),
];
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log("");
for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c]!)).join("  "));
console.log(`\ntraining, export and measurement took ${trainedS.toFixed(1)} s`);
