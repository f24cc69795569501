import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { oneMinusCer } from "../../src/ocr/cer.js";
import { ctcCharset } from "../../src/ocr/ctc.js";
import { findCombination, readE2eRecord } from "../../src/ocr/e2e-record.js";
import { ocrEvalSet, OCR_EVAL_SET, renderEvalSet } from "../../src/ocr/eval-set.js";
import { measureEndToEnd } from "../../src/ocr/evaluate.js";
import { iou } from "../../src/ocr/geometry.js";
import { OCR_STAGES, readDictionary } from "../../src/ocr/models.js";
import { ocr, type OcrEngines } from "../../src/ocr/pipeline.js";

const MODELS = path.resolve("models");
const base = (task: string) => OCR_STAGES.find((s) => s.task === task)!.variant;
const open = (task: string, variant = base(task)) =>
  Engine.create(new Uint8Array(readFileSync(path.join(MODELS, task, variant, "model.onnx"))), { threads: 2 });

let engines: OcrEngines;
beforeAll(async () => {
  engines = {
    det: await open("ocr-det"),
    cls: await open("ocr-cls"),
    rec: await open("ocr-rec"),
    charset: ctcCharset(await readDictionary()),
  };
});
afterAll(async () => {
  for (const e of [engines.det, engines.cls!, engines.rec]) await e.close();
});

describe("rendered evaluation set", () => {
  it("is the same for the same seed, and varied", () => {
    const a = renderEvalSet(OCR_EVAL_SET.seed, 12);
    const b = renderEvalSet(OCR_EVAL_SET.seed + 0, 12);
    expect(a.map((s) => s.lines.map((l) => l.text))).toEqual(b.map((s) => s.lines.map((l) => l.text)));
    const all = ocrEvalSet();
    expect(all).toHaveLength(OCR_EVAL_SET.images);
    const tags = new Set(all.flatMap((s) => s.tags));
    for (const t of ["line", "document", "blur", "noise", "rotated", "low-contrast", "small", "upside-down"])
      expect(tags, t).toContain(t);
    for (const s of all) expect(s.image.data.length).toBe(s.image.width * s.image.height * 4);
  });
});

describe("ocr() in process", () => {
  it("reads a rendered line with its box and confidence", async () => {
    const sample = ocrEvalSet().find((s) => s.tags.length === 1 && s.tags[0] === "line")!;
    const lines = await ocr(sample.image, engines);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.text).toBe(sample.lines[0]!.text);
    expect(lines[0]!.confidence).toBeGreaterThan(0.8);
    expect(iou(lines[0]!.quad, sample.lines[0]!.quad)).toBeGreaterThan(0.5);
    expect(lines[0]!.flipped).toBe(false);
  });

  it("reads an upside-down line the right way up", async () => {
    const sample = ocrEvalSet().find(
      (s) => s.tags.includes("upside-down") && !["small", "noise", "blur"].some((t) => s.tags.includes(t)),
    )!;
    const lines = await ocr(sample.image, engines);
    expect(lines.map((l) => l.flipped)).toContain(true);
    expect(lines.map((l) => l.text).join(" ")).toBe(sample.lines[0]!.text);
  });

  it("reproduces the recorded end-to-end accuracy within 1 point", async () => {
    const record = await readE2eRecord(MODELS);
    const recorded = findCombination(record!, { det: base("ocr-det"), cls: base("ocr-cls"), rec: base("ocr-rec") })!;
    const tally = await measureEndToEnd(engines, ocrEvalSet());
    expect(tally.chars).toBe(recorded.total);
    expect(Math.abs(oneMinusCer(tally) - recorded.value)).toBeLessThanOrEqual(0.01);
  }, 120_000);
});
