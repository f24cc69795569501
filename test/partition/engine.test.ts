// In process, through the serving engine: the stage models run one after another (each stage's outputs
// fed to the next stage's inputs by name, as the pipeline walk does) give the whole model's outputs.
import { readFileSync } from "node:fs";
import path from "node:path";
import ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { Engine, type Tensors, type TypedArray } from "../../src/engine/engine.js";
import { partitionModel } from "../../src/partition/partition.js";
import { seededRandom } from "../../src/stats/random.js";
import { loadDigits } from "../../src/zoo/digits-data.js";
import { skipModel } from "./graphs.js";

async function run(bytes: Uint8Array, inputs: Tensors): Promise<Tensors> {
  const engine = await Engine.create(bytes, { threads: 1 });
  try {
    const rows = Object.values(inputs)[0]!.dims[0]!;
    const feeds = Object.fromEntries(engine.inputs.map((s) => [s.name, inputs[s.name]!.data]));
    return (await engine.runBatch([{ rows, inputs: feeds }]))[0]!;
  } finally {
    await engine.close();
  }
}

async function chain(stages: Uint8Array[], inputs: Tensors): Promise<Tensors> {
  let t = inputs;
  for (const s of stages) t = await run(s, t);
  return t;
}

function floats(name: string, rows: number, row: number[], values: Float32Array): Tensors {
  return { [name]: { type: "float32", dims: [rows, ...row], data: values } };
}

function maxDiff(a: TypedArray, b: TypedArray): { diff: number; scale: number } {
  expect(b.length).toBe(a.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(Number(a[i]) - Number(b[i])));
    scale = Math.max(scale, Math.abs(Number(a[i])));
  }
  return { diff, scale };
}

describe("a partitioned model through the engine", () => {
  it("digits/cnn-large in 2 and 3 stages gives exactly the whole model's outputs on real digits", async () => {
    const bytes = readFileSync(path.resolve("models/digits/cnn-large/model.onnx"));
    const digits = loadDigits().test.images.subarray(0, 8 * 784);
    const inputs = floats("image", 8, [1, 28, 28], Float32Array.from(digits));
    const whole = await run(bytes, inputs);
    for (const parts of [2, 3]) {
      const p = await partitionModel(bytes, { parts, batch: 64 });
      expect(p.stages).toHaveLength(parts);
      const out = await chain(
        p.stages.map((s) => s.bytes),
        inputs,
      );
      expect(Object.keys(out)).toEqual(["probabilities"]);
      expect(Array.from(out.probabilities!.data as Float32Array)).toEqual(
        Array.from(whole.probabilities!.data as Float32Array),
      );
    }
  });

  it("a tensor carried through a middle stage and an early second output arrive unchanged", async () => {
    const bytes = skipModel();
    const rand = seededRandom(5);
    const inputs = floats(
      "x",
      6,
      [8],
      Float32Array.from({ length: 48 }, () => rand() * 2 - 1),
    );
    const whole = await run(bytes, inputs);
    const p = await partitionModel(bytes, { parts: 3, batch: 8, positions: [3, 6] });
    const out = await chain(
      p.stages.map((s) => s.bytes),
      inputs,
    );
    for (const name of ["probabilities", "early"])
      expect(Array.from(out[name]!.data as Float32Array), name).toEqual(Array.from(whole[name]!.data as Float32Array));
  });

  it("vision/resnet18 in 2 stages: equal to float rounding, and bit for bit without the runtime's layout rewrite", async () => {
    const bytes = readFileSync(path.resolve("models/vision/resnet18/model.onnx"));
    const rand = seededRandom(9);
    const image = Float32Array.from({ length: 2 * 3 * 224 * 224 }, rand);
    const inputs = floats("image", 2, [3, 224, 224], image);
    const p = await partitionModel(bytes, { parts: 2, batch: 16 });
    const whole = await run(bytes, inputs);
    const out = await chain(
      p.stages.map((s) => s.bytes),
      inputs,
    );
    const { diff, scale } = maxDiff(whole.probabilities!.data, out.probabilities!.data);
    // the engine runs onnxruntime at its "all" level, whose NCHWc layout rewrite blocks the convolutions
    // differently in a whole graph and in its pieces: a few float32 ulps, nothing more
    expect(diff).toBeLessThanOrEqual(1e-5 * scale);
    // below that level the pieces compute exactly what the whole does
    const opts = { graphOptimizationLevel: "extended" as const, intraOpNumThreads: 1 };
    const feeds = { image: new ort.Tensor("float32", image, [2, 3, 224, 224]) };
    const runOnce = async (b: Uint8Array, f: Record<string, ort.Tensor>) => {
      const session = await ort.InferenceSession.create(b, opts);
      try {
        return await session.run(f);
      } finally {
        await session.release();
      }
    };
    const exact = await runOnce(bytes, feeds);
    let cur: Record<string, ort.Tensor> = feeds;
    for (const s of p.stages) cur = await runOnce(s.bytes, cur);
    expect(Array.from(cur.probabilities!.data as Float32Array)).toEqual(
      Array.from(exact.probabilities!.data as Float32Array),
    );
  });
});
