// The local backend's warm pool: worker processes started ahead with onnxruntime loaded and no model. A
// start takes one and only loads its model, so its measured cold start is a fraction of a new process's;
// the pooled worker then serves like any other, on the cores it was given, and the pool refills.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { LocalCluster } from "../../../src/cluster/local/local-cluster.js";
import type { WorkItem } from "../../../src/cluster/types.js";
import { DIGIT_PIXELS, loadDigits } from "../../../src/zoo/digits-data.js";

const modelPath = (task: string, variant: string) => path.resolve("models", task, variant, "model.onnx");
const digits = loadDigits().test;

async function coldStart(cluster: LocalCluster, variant: string): Promise<number> {
  const r = await cluster.start("digits", variant, 1);
  expect(r.ok, r.message).toBe(true);
  await cluster.stop(r.instance!);
  return r.ms;
}

describe("LocalCluster's warm pool", () => {
  it("cuts the cold start of a digits variant by at least half, and the pooled worker serves", async () => {
    const cold = new LocalCluster({ coreBudget: 1, modelPath });
    const warm = new LocalCluster({ coreBudget: 1, modelPath, warmPool: 1 });
    try {
      for (let i = 0; i < 100 && warm.pooled < 1; i++) await new Promise((r) => setTimeout(r, 100));
      expect(warm.pooled).toBe(1);
      const coldMs: number[] = [];
      const warmMs: number[] = [];
      for (let round = 0; round < 3; round++) {
        coldMs.push(await coldStart(cold, "cnn-small"));
        for (let i = 0; i < 100 && warm.pooled < 1; i++) await new Promise((r) => setTimeout(r, 100));
        warmMs.push(await coldStart(warm, "cnn-small"));
      }
      const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[1]!;
      process.stdout.write(
        `cold start: new process ${coldMs.map((x) => x.toFixed(0)).join("/")} ms, warm pool ${warmMs.map((x) => x.toFixed(0)).join("/")} ms\n`,
      );
      expect(med(warmMs) * 2).toBeLessThanOrEqual(med(coldMs));

      for (let i = 0; i < 100 && warm.pooled < 1; i++) await new Promise((r) => setTimeout(r, 100));
      const started = await warm.start("digits", "cnn-small", 1);
      const inst = warm.instances().find((i) => i.id === started.instance)!;
      const item: WorkItem = {
        rows: 4,
        input: { image: { type: "float32", dims: [4, 1, 28, 28], data: digits.images.slice(0, 4 * DIGIT_PIXELS) } },
      };
      const probs = await new Promise<Float32Array>((resolve, reject) =>
        inst.run({ task: "digits", variant: "cnn-small", items: [item] }, (r) =>
          r.ok ? resolve(r.outputs[0]!.probabilities!.data as Float32Array) : reject(new Error(r.message)),
        ),
      );
      const guesses = Array.from({ length: 4 }, (_, k) => {
        const row = probs.subarray(k * 10, k * 10 + 10);
        return row.indexOf(Math.max(...row));
      });
      expect(guesses.filter((g, k) => g === digits.labels[k]).length).toBeGreaterThanOrEqual(3);
    } finally {
      await Promise.all([cold.shutdown(), warm.shutdown()]);
    }
  }, 120_000);
});
