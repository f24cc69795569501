import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { DIGITS_SPLIT, loadDigits } from "../../src/zoo/digits-data.js";
import { DIGITS_TASK_YAML, loadTf, makeOps } from "../../tools/train/digits.js";
import { measureDigitsAccuracy } from "../../src/zoo/digits-accuracy.js";

const digitsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../models/digits");

function variantDirs(): string[] {
  return readdirSync(digitsDir)
    .filter((d) => statSync(path.join(digitsDir, d)).isDirectory())
    .sort();
}

describe("digits data split", () => {
  it("is sized as documented, deterministic and disjoint", () => {
    const a = loadDigits();
    const b = loadDigits();
    expect(a.train.count).toBe(DIGITS_SPLIT.train);
    expect(a.test.count).toBe(DIGITS_SPLIT.test);
    expect(DIGITS_SPLIT.train + DIGITS_SPLIT.test).toBe(DIGITS_SPLIT.total);
    for (const [x, y] of [
      [a.train, b.train],
      [a.test, b.test],
    ] as const) {
      expect(x.images.length).toBe(x.count * 784);
      expect(x.labels.length).toBe(x.count);
      expect(Buffer.from(x.images.buffer).equals(Buffer.from(y.images.buffer))).toBe(true);
      expect(Buffer.from(x.labels).equals(Buffer.from(y.labels))).toBe(true);
      expect(Buffer.from(x.indices.buffer).equals(Buffer.from(y.indices.buffer))).toBe(true);
    }
    // Fresh arrays on every call: a caller mutating its copy cannot change the next one.
    expect(a.test.images === b.test.images).toBe(false);

    const trainIdx = new Set(a.train.indices);
    expect(trainIdx.size).toBe(a.train.count);
    expect(new Set(a.test.indices).size).toBe(a.test.count);
    for (const i of a.test.indices) expect(trainIdx.has(i)).toBe(false);

    let min = Infinity;
    let max = -Infinity;
    for (const v of a.test.images) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThanOrEqual(1);
    const seen = new Set(a.test.labels);
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe("digits model zoo", () => {
  it("has the task.yaml the trainer writes", () => {
    expect(readFileSync(path.join(digitsDir, "task.yaml"), "utf8")).toBe(DIGITS_TASK_YAML);
  });

  it("records, for every variant, the accuracy onnxruntime measures on the held-out split", async () => {
    const dirs = variantDirs();
    expect(dirs.length).toBeGreaterThanOrEqual(5);
    const accuracies: number[] = [];
    for (const name of dirs) {
      expect(name).toMatch(/^[a-z0-9][a-z0-9._-]*$/);
      const dir = path.join(digitsDir, name);
      expect(existsSync(path.join(dir, "model.onnx"))).toBe(true);
      const bytes = new Uint8Array(readFileSync(path.join(dir, "model.onnx")));
      expect(bytes.byteLength).toBeLessThan(2.5 * 1024 * 1024);
      const meta = YAML.parse(readFileSync(path.join(dir, "variant.yaml"), "utf8"));
      expect(meta.name).toBe(name);
      expect(meta.accuracy.source).toBe("measured");
      expect(meta.accuracy.total).toBe(DIGITS_SPLIT.test);
      expect(meta.accuracy.value).toBe(Number((meta.accuracy.correct / meta.accuracy.total).toFixed(6)));
      const measured = await measureDigitsAccuracy(bytes);
      expect(measured, name).toEqual({ correct: meta.accuracy.correct, total: meta.accuracy.total });
      accuracies.push(measured.correct / measured.total);
    }
    expect(Math.min(...accuracies)).toBeLessThanOrEqual(0.93);
    expect(Math.max(...accuracies)).toBeGreaterThanOrEqual(0.985);
  }, 60_000);
});

describe("digits trainer's hand-written gradients", () => {
  it("match tfjs's reference gradients on the cpu backend", async () => {
    const tf = await loadTf();
    const ops = makeOps(tf);
    const rnd = (shape: number[], seed: number) =>
      tf.randomNormal(shape, 0, 1, "float32", seed).dataSync() as Float32Array;
    for (const [n, h, cin, cout] of [
      [3, 28, 1, 8],
      [2, 14, 8, 16],
    ] as const) {
      const xs = rnd([n, h, h, cin], 1),
        ws = rnd([3, 3, cin, cout], 2),
        rs = rnd([n, h, h, cout], 3);
      const as = rnd([n, 50], 4),
        bs = rnd([50, 7], 5),
        r2s = rnd([n, 7], 6);
      const grads = (custom: boolean): Float32Array[] =>
        tf.tidy(() => {
          const x = tf.tensor4d(xs, [n, h, h, cin]),
            r = tf.tensor4d(rs, [n, h, h, cout]);
          const a = tf.tensor2d(as, [n, 50]),
            r2 = tf.tensor2d(r2s, [n, 7]);
          const w = tf.variable(tf.tensor4d(ws, [3, 3, cin, cout])),
            b = tf.variable(tf.tensor2d(bs, [50, 7]));
          const loss = (xx: typeof x, aa: typeof a) => {
            const y = custom ? ops.conv3x3(xx, w, false) : tf.conv2d(xx, w as unknown as typeof x, 1, "same");
            const z = custom ? ops.matmul(aa, b) : tf.matMul(aa, b as unknown as typeof a);
            return tf.add(tf.sum(tf.mul(y, r)), tf.sum(tf.mul(z, r2))) as ReturnType<typeof tf.scalar>;
          };
          const [dx, da] = tf.grads((xx, aa) => loss(xx as typeof x, aa as typeof a))([x, a]);
          const { grads: vg } = tf.variableGrads(() => loss(x, a), [w, b]);
          const out = [dx!, da!, vg[w.name]!, vg[b.name]!].map((t) => t.dataSync() as Float32Array);
          w.dispose();
          b.dispose();
          return out;
        });
      await tf.setBackend("wasm");
      const got = grads(true);
      await tf.setBackend("cpu");
      const want = grads(false);
      await tf.setBackend("wasm");
      got.forEach((g, i) => {
        let diff = 0;
        let scale = 0;
        for (let k = 0; k < g.length; k++) {
          diff = Math.max(diff, Math.abs(g[k]! - want[i]![k]!));
          scale = Math.max(scale, Math.abs(want[i]![k]!));
        }
        expect(diff / scale, `grad ${i} of conv(${cin}->${cout})`).toBeLessThan(1e-4);
      });
    }
  }, 30_000);
});
