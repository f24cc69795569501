import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { seededRandom } from "../../src/stats/random.js";
import {
  VISION_VARIANTS,
  type VisionVariantName,
  buildVisionModel,
  countParameters,
  ensureVisionZoo,
} from "../../src/zoo/vision.js";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

// torchvision parameter counts; folding BatchNorm (gamma, beta -> one conv bias) removes one per BN channel.
const TORCHVISION_PARAMS: Record<VisionVariantName, number> = {
  resnet18: 11_689_512,
  resnet34: 21_797_672,
  resnet50: 25_557_032,
  mobilenetv2: 3_504_872,
};
// What this build has: torchvision's count less one parameter per BatchNorm channel.
const FOLDED_PARAMS: Record<VisionVariantName, number> = {
  resnet18: 11_684_712,
  resnet34: 21_789_160,
  resnet50: 25_530_472,
  mobilenetv2: 3_487_816,
};

describe("vision zoo", () => {
  it("declares the four variants with torchvision top-1", () => {
    expect(VISION_VARIANTS.map((v) => v.name)).toEqual(["resnet18", "resnet34", "resnet50", "mobilenetv2"]);
    expect(Object.fromEntries(VISION_VARIANTS.map((v) => [v.name, v.declaredTop1]))).toEqual({
      resnet18: 0.6976,
      resnet34: 0.7331,
      resnet50: 0.7613,
      mobilenetv2: 0.7188,
    });
  });

  it.each(["resnet18", "mobilenetv2"] as const)("builds %s deterministically", (name) => {
    const a = sha(buildVisionModel(name, 1));
    expect(sha(buildVisionModel(name, 1))).toBe(a);
    expect(sha(buildVisionModel(name, 2))).not.toBe(a);
  });

  it.each(VISION_VARIANTS.map((v) => v.name))("%s has the real parameter count", (name) => {
    const params = countParameters(buildVisionModel(name));
    const expected = TORCHVISION_PARAMS[name];
    expect(Math.abs(params - expected) / expected).toBeLessThan(0.02);
    expect(params).toBe(FOLDED_PARAMS[name]);
  });

  it("runs resnet18 at batch 1: [1,1000], finite, a distribution", async () => {
    const engine = await Engine.create(buildVisionModel("resnet18"), { threads: 1 });
    try {
      expect(engine.inputs).toEqual([{ name: "image", type: "float32", rowShape: [3, 224, 224] }]);
      expect(engine.outputs).toEqual([{ name: "probabilities", type: "float32", rowShape: [1000] }]);
      const rand = seededRandom(42);
      const image = Float32Array.from({ length: 3 * 224 * 224 }, () => rand() * 4 - 2);
      const [out] = await engine.runBatch([{ rows: 1, inputs: { image } }]);
      const probs = out!.probabilities!;
      expect(probs.dims).toEqual([1, 1000]);
      const data = probs.data as Float32Array;
      expect(data.every((x) => Number.isFinite(x) && x >= 0)).toBe(true);
      expect(data.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 4);
      // zero feeds go through too
      const zero = await engine.run(engine.zeroFeeds(1));
      expect((zero.probabilities!.data as Float32Array).every(Number.isFinite)).toBe(true);
    } finally {
      await engine.close();
    }
  });

  it("ensureVisionZoo builds what is missing, writes task.yaml and variant.yaml, then finds them present", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "sloserve-vision-"));
    try {
      const first = await ensureVisionZoo(dir);
      expect(first.built).toEqual(["resnet18", "resnet34", "resnet50", "mobilenetv2"]);
      expect(first.present).toEqual([]);
      const task = parse(await readFile(path.join(dir, "vision", "task.yaml"), "utf8"));
      expect(task).toMatchObject({ name: "vision", slo_ms: 500, scheduling: "edf", scaling: "themis" });
      expect(task.inputs).toEqual([{ name: "image", datatype: "FP32", shape: [3, 224, 224] }]);
      expect(task.outputs).toEqual([{ name: "probabilities", datatype: "FP32", shape: [1000] }]);
      for (const v of VISION_VARIANTS) {
        const vdir = path.join(dir, "vision", v.name);
        expect((await readdir(vdir)).sort()).toEqual(["model.onnx", "variant.yaml"]); // no temp files left
        const meta = parse(await readFile(path.join(vdir, "variant.yaml"), "utf8"));
        expect(meta).toMatchObject({ name: v.name, parameters: FOLDED_PARAMS[v.name], max_batch: 16 });
        expect(meta.accuracy).toMatchObject({ value: v.declaredTop1, source: "declared" });
      }
      const second = await ensureVisionZoo(dir);
      expect(second.built).toEqual([]);
      expect(second.present).toEqual(["resnet18", "resnet34", "resnet50", "mobilenetv2"]);
      expect(existsSync(path.join(dir, "vision", "task.yaml"))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
