import { readFileSync } from "node:fs";
import path from "node:path";
import ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { ctcCharset, ctcGreedyDecode } from "../../src/ocr/ctc.js";
import { editDistance } from "../../src/ocr/cer.js";
import { readDictionary, REC_STEPS } from "../../src/ocr/models.js";
import { loadRepository } from "../../src/repository/repository.js";
import { readOnnxSignature } from "../../src/repository/onnx-signature.js";
import { decodeModel, encodeModel, opCounts } from "../../src/engine/onnx-model.js";
import { optimizeWithOrt } from "../../src/variants/ort-optimize.js";
import { quantizeInt8, type Feeds } from "../../src/variants/quantize.js";
import { applyRecipe } from "../../src/variants/recipe.js";
import { resizeInputs } from "../../src/variants/resolution.js";
import { simplifyGraph } from "../../src/variants/simplify.js";
import { taskSupport } from "../../src/variants/tasks.js";

const MODELS = path.resolve("models");
const model = (task: string, variant: string) =>
  new Uint8Array(readFileSync(path.join(MODELS, task, variant, "model.onnx")));

async function run(bytes: Uint8Array, feeds: Feeds): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2, logSeverityLevel: 3 });
  try {
    return Object.values(await s.run(feeds))[0]!.data as Float32Array;
  } finally {
    await s.release();
  }
}

/** The repository's generated int8 variant of `task` made at the source's own input size. */
async function int8Variant(task: string) {
  const repo = await loadRepository(MODELS, { tasks: [task] });
  const v = [...repo.tasks.get(task)!.variants.values()].find(
    (x) =>
      x.config.derived_from?.transforms.some((t) => t.kind === "int8") &&
      !x.config.derived_from.transforms.some((t) => t.kind === "resolution"),
  );
  if (!v)
    throw new Error(`models/${task} has no generated int8 variant; run 'sloserve variants generate --task ${task}'`);
  return { variant: v, source: repo.tasks.get(task)!.variants.get(v.config.derived_from!.variant)! };
}

describe("graph simplification", () => {
  it("folds affine blocks and spells hard-swish as HardSigmoid without changing the outputs", async () => {
    for (const [task, variant] of [
      ["ocr-det", "ppocrv4-mobile"],
      ["ocr-rec", "ppocrv4-mobile"],
    ] as const) {
      const bytes = model(task, variant);
      const m = decodeModel(await optimizeWithOrt(bytes, "basic"));
      const report = simplifyGraph(m);
      expect(report.hardSwish, task).toBeGreaterThan(20);
      expect(report.affineIntoConv, task).toBeGreaterThan(20);
      const simplified = encodeModel(m);
      expect(opCounts(decodeModel(simplified)).Clip ?? 0).toBeLessThan(opCounts(decodeModel(bytes)).Clip!);
      const [feeds] = await taskSupport(task).calibration();
      const a = await run(bytes, feeds!);
      const b = await run(simplified, feeds!);
      let max = 0;
      for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
      expect(max, task).toBeLessThan(1e-4);
    }
  }, 120_000);
});

describe("int8 quantisation", () => {
  // Tolerances, stated once: detector map mean |Δp| ≤ 1e-3 and ≤ 0.2 % of pixels change side of the
  // 0.3 threshold; recogniser greedy readings within 2 % CER of the fp32 readings; digits
  // probabilities within 0.05 and the same top-1 on ≥ 99 % of digits.
  it("keeps the detector's probability map within tolerance of the fp32 model's", async () => {
    const { variant, source } = await int8Variant("ocr-det");
    const feeds = (await taskSupport("ocr-det").calibration()).slice(0, 4);
    let sum = 0;
    let n = 0;
    let flipped = 0;
    for (const f of feeds) {
      const a = await run(model("ocr-det", source.name), f);
      const b = await run(model("ocr-det", variant.name), f);
      for (let i = 0; i < a.length; i++) {
        sum += Math.abs(a[i]! - b[i]!);
        if (a[i]! > 0.3 !== b[i]! > 0.3) flipped++;
      }
      n += a.length;
    }
    expect(sum / n).toBeLessThan(1e-3);
    expect(flipped / n).toBeLessThan(0.002);
  }, 120_000);

  it("keeps the recogniser's readings within tolerance of the fp32 model's", async () => {
    const { variant, source } = await int8Variant("ocr-rec");
    const charset = ctcCharset(await readDictionary());
    const feeds = await taskSupport("ocr-rec").calibration();
    let edits = 0;
    let chars = 0;
    const stride = REC_STEPS * charset.length;
    for (const f of feeds) {
      const a = await run(model("ocr-rec", source.name), f);
      const b = await run(model("ocr-rec", variant.name), f);
      for (let r = 0; r < a.length / stride; r++) {
        const ta = ctcGreedyDecode(a.subarray(r * stride, (r + 1) * stride), REC_STEPS, charset).text;
        const tb = ctcGreedyDecode(b.subarray(r * stride, (r + 1) * stride), REC_STEPS, charset).text;
        edits += editDistance(tb, ta);
        chars += ta.length;
      }
    }
    expect(chars).toBeGreaterThan(100);
    expect(edits / chars).toBeLessThan(0.02);
  }, 120_000);

  it("quantises the digits CNN into integer kernels that onnxruntime fuses, within tolerance", async () => {
    const bytes = model("digits", "cnn-large");
    const calibration = await taskSupport("digits").calibration();
    const { bytes: q, report } = await quantizeInt8(bytes, calibration, { ops: ["Conv", "MatMul", "Gemm"] });
    expect(report.quantizedNodes.Conv).toBe(2);
    expect(q.byteLength).toBeLessThan(bytes.byteLength / 3);
    expect(readOnnxSignature(q).inputs).toEqual(readOnnxSignature(bytes).inputs);
    // what onnxruntime runs: integer convolutions, not float ones fed by dequantised weights
    const ops = opCounts(decodeModel(await optimizeWithOrt(q, "extended")));
    expect(ops["com.microsoft:QLinearConv"] ?? ops.QLinearConv ?? 0).toBe(2);
    let maxDiff = 0;
    let agree = 0;
    let rows = 0;
    for (const f of calibration) {
      const a = await run(bytes, f);
      const b = await run(q, f);
      for (let r = 0; r < a.length / 10; r++) {
        let ia = 0;
        let ib = 0;
        for (let k = 0; k < 10; k++) {
          maxDiff = Math.max(maxDiff, Math.abs(a[r * 10 + k]! - b[r * 10 + k]!));
          if (a[r * 10 + k]! > a[r * 10 + ia]!) ia = k;
          if (b[r * 10 + k]! > b[r * 10 + ib]!) ib = k;
        }
        rows++;
        if (ia === ib) agree++;
      }
    }
    expect(maxDiff).toBeLessThan(0.05);
    expect(agree / rows).toBeGreaterThanOrEqual(0.99);
  }, 60_000);
});

describe("resolution variants", () => {
  it("keep the task's signature and run the detector at the smaller size", async () => {
    const bytes = model("ocr-det", "ppocrv4-mobile");
    const r320 = resizeInputs(await optimizeWithOrt(bytes, "basic"), 320);
    expect(readOnnxSignature(r320).inputs).toEqual(readOnnxSignature(bytes).inputs);
    expect(readOnnxSignature(r320).outputs).toEqual(readOnnxSignature(bytes).outputs);
    const [feeds] = await taskSupport("ocr-det").calibration();
    const out = await run(r320, feeds!);
    expect(out.length).toBe(640 * 640);
    expect(() => resizeInputs(bytes, 300)).toThrow(/multiple of 32/);
    // the recogniser's output is no map of its input
    expect(() => resizeInputs(model("ocr-rec", "ppocrv4-mobile"), 320)).toThrow(/resolution variants need/);
  }, 60_000);
});

describe("generation from bad models", () => {
  it("fails with a message for a corrupt file or a model it cannot quantise", async () => {
    const garbage = new TextEncoder().encode("this is not an onnx model at all");
    const noCalibration = async () => [];
    await expect(applyRecipe(garbage, [{ kind: "simplify" }], noCalibration)).rejects.toThrow(
      /not a valid ONNX file|no graph nodes|cannot load/,
    );
    await expect(quantizeInt8(garbage, [{}])).rejects.toThrow(/not a valid ONNX file|no graph nodes/);
    // mnist-prep's model is a Mul/Div: no Conv, MatMul or Gemm weights to quantise
    const prep = model("mnist-prep", "scale");
    await expect(quantizeInt8(prep, [{}])).rejects.toThrow(/nothing to quantise/);
    await expect(quantizeInt8(prep, [])).rejects.toThrow(/at least one calibration batch/);
    expect(() => taskSupport("vision")).toThrow(/no accuracy measurement is known for task 'vision'/);
  }, 30_000);
});
