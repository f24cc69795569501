// Raw onnxruntime-node on the cores this process is pinned to, no server around it: the baseline
// sloserve's added latency is measured against, by the same procedure as raw_ort.py (its Python
// twin) and with the session options sloserve's engine uses. Prints one JSON object.
// usage: tsx tools/peers/raw-ort-node.ts MODEL.onnx --max-batch N [--gap-ms 2] [--samples 300] [--budget-s 1.5]
import { parseArgs } from "node:util";
import ort from "onnxruntime-node";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    "max-batch": { type: "string" },
    "gap-ms": { type: "string", default: "2" },
    samples: { type: "string", default: "300" },
    "budget-s": { type: "string", default: "1.5" },
  },
});
const model = positionals[0];
const maxBatch = Number(values["max-batch"]);
if (!model || !Number.isInteger(maxBatch) || maxBatch < 1)
  throw new Error("usage: raw-ort-node.ts MODEL.onnx --max-batch N [--gap-ms 2] [--samples 300] [--budget-s 1.5]");
const gapMs = Number(values["gap-ms"]);
const samples = Number(values.samples);
const budgetMs = Number(values["budget-s"]) * 1000;

const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: Number(process.env.PEER_THREADS ?? 1),
  interOpNumThreads: 1,
  executionMode: "sequential",
  graphOptimizationLevel: "all",
});
const inputName = session.inputNames[0]!;
const meta = session.inputMetadata[0] as { shape?: (number | string)[] };
const rowShape = (meta.shape ?? []).slice(1).map(Number);
if (rowShape.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`${model}: input row shape is not fixed`);
const rowElems = rowShape.reduce((a, b) => a * b, 1);
const feed = (b: number) => {
  const data = new Float32Array(b * rowElems);
  for (let i = 0; i < data.length; i++) data[i] = Math.random();
  return { [inputName]: new ort.Tensor("float32", data, [b, ...rowShape]) };
};
const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * p;
  const lo = Math.floor(i);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (i - lo);
};

const points = [];
for (let b = 1; ; b = Math.min(b * 2, maxBatch)) {
  const f = feed(b);
  for (let i = 0; i < 3; i++) await session.run(f);
  const lat: number[] = [];
  const end = performance.now() + budgetMs;
  while (performance.now() < end || lat.length < 10) {
    const t0 = performance.now();
    await session.run(f);
    lat.push(performance.now() - t0);
  }
  points.push({
    batch: b,
    p50_ms: q(lat, 0.5),
    p99_ms: q(lat, 0.99),
    rows_per_s: (b * lat.length) / (lat.reduce((a, x) => a + x, 0) / 1000),
  });
  if (b === maxBatch) break;
}
const f1 = feed(1);
for (let i = 0; i < 5; i++) await session.run(f1);
const lat: number[] = [];
for (let i = 0; i < samples; i++) {
  const t0 = performance.now();
  await session.run(f1);
  lat.push(performance.now() - t0);
  await new Promise((r) => setTimeout(r, gapMs));
}
// the model's own CPU per one-row run, back to back so that no timer wake-up is counted
const runs = Math.max(200, samples);
const cpu0 = process.cpuUsage();
for (let i = 0; i < runs; i++) await session.run(f1);
const cpu = process.cpuUsage(cpu0);
process.stdout.write(
  JSON.stringify({
    runtime: "onnxruntime-node",
    points,
    lowload: { p50_ms: q(lat, 0.5), p99_ms: q(lat, 0.99) },
    cpu_us_per_row_b1: (cpu.user + cpu.system) / runs,
  }) + "\n",
);
