// The `ocr` pipeline served end to end: rendered pages go in as PNG files over REST (binary tensor
// extension) or as pixels, the server runs detector → classifier → recogniser through its router with the
// glue between them, and the lines that come back score, on a subset of the labelled set, what the in-process
// measurement that wrote the pipeline's record gives on the same subset, within 1 point. Bad input is
// answered 400 with what to fix.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { oneMinusCer, type CerTally } from "../../src/ocr/cer.js";
import { findCombination, measureCombinations, readE2eRecord } from "../../src/ocr/e2e-record.js";
import { ocrEvalSet } from "../../src/ocr/eval-set.js";
import { scorePage } from "../../src/ocr/evaluate.js";
import type { Quad } from "../../src/ocr/geometry.js";
import type { OcrLine } from "../../src/ocr/pipeline.js";
import { encodePng } from "../../src/pipelines/image-input.js";
import type { RunningServer } from "../../src/server/server.js";
import { infer } from "../support/oip-client.js";
import { startTestServer } from "../support/server.js";

const MODELS = path.resolve("models");
const SUBSET = 24;
const COMBO = { det: "ppocrv4-mobile", cls: "ppocr-mobile-v2", rec: "ppocrv4-mobile" };

let server: RunningServer;

beforeAll(async () => {
  server = await startTestServer({
    cores: 2,
    deploy: [
      { task: "ocr-det", variant: COMBO.det, cores: 1 },
      { task: "ocr-cls", variant: COMBO.cls, cores: 1 },
      { task: "ocr-rec", variant: COMBO.rec, cores: 1 },
    ],
  });
}, 60_000);

afterAll(async () => {
  await server?.close(1000);
});

/** The lines of one answer, as the evaluation scores them. */
function linesOf(json: Record<string, any>): OcrLine[] {
  const out = new Map<string, any>(json.outputs.map((o: any) => [o.name, o]));
  const text = out.get("text").data as string[];
  const conf = out.get("confidence").data as number[];
  const boxes = out.get("boxes").data as number[];
  const flipped = out.get("flipped").data as boolean[];
  const scores = out.get("box_score").data as number[];
  return text.map((t, i) => ({
    text: t,
    confidence: conf[i]!,
    quad: [0, 1, 2, 3].map((k) => [boxes[i * 8 + 2 * k]!, boxes[i * 8 + 2 * k + 1]!]) as Quad,
    boxScore: scores[i]!,
    flipped: flipped[i]!,
  }));
}

describe("the ocr pipeline, served", () => {
  it("reads rendered pages as accurately as the recorded measurement on the same pages (within 1 point)", async () => {
    const set = ocrEvalSet(SUBSET);
    const tally: CerTally = { edits: 0, chars: 0 };
    // a few at a time, as clients would send them: the router batches across requests
    for (let i = 0; i < set.length; i += 4) {
      const answers = await Promise.all(
        set
          .slice(i, i + 4)
          .map((s) =>
            infer(
              server.httpUrl,
              "/v2/models/ocr/infer",
              [{ name: "image", datatype: "BYTES", shape: [1], binary: lengthPrefixed(encodePng(s.image)) }],
              { parameters: { slo_ms: 60_000 } },
            ),
          ),
      );
      answers.forEach((res, k) => {
        expect(res.status, JSON.stringify(res.json)).toBe(200);
        expect(res.json.parameters.variant).toBe(`ocr-det:${COMBO.det},ocr-cls:${COMBO.cls},ocr-rec:${COMBO.rec}`);
        scorePage(tally, set[i + k]!.lines, linesOf(res.json));
      });
    }
    const served = oneMinusCer(tally);
    console.log(`ocr served on ${SUBSET} pages: 1 - CER ${served.toFixed(4)}`);
    const measured = await measureCombinations(
      MODELS,
      { det: [COMBO.det], cls: [COMBO.cls], rec: [COMBO.rec] },
      SUBSET,
    );
    const inProcess = findCombination(measured, COMBO)!;
    expect(tally.chars).toBe(inProcess.total);
    console.log(`in process on the same pages: ${inProcess.value.toFixed(4)}`);
    expect(Math.abs(served - inProcess.value)).toBeLessThanOrEqual(0.01);
    // and the record the floor reads (all 96 pages) is what this subset estimates
    const recorded = findCombination((await readE2eRecord(MODELS))!, COMBO)!;
    expect(Math.abs(served - recorded.value)).toBeLessThanOrEqual(0.05);
  }, 240_000);

  it("takes pixels too, and answers a blank page with no lines (the classifier and recogniser skipped)", async () => {
    const white = new Uint8Array(64 * 48 * 3).fill(255);
    const res = await infer(server.httpUrl, "/v2/models/ocr/infer", [
      { name: "pixels", datatype: "UINT8", shape: [1, 48, 64, 3], data: Array.from(white) },
    ]);
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.outputs.find((o: any) => o.name === "text").shape).toEqual([0]);
    expect(res.json.parameters.variant).toBe(`ocr-det:${COMBO.det}`);
    expect(res.json.parameters.skipped_stages).toBe("ocr-cls,ocr-rec");
  });

  it("describes itself: inputs, outputs, and the stage graph in its config", async () => {
    const meta = await (await fetch(`${server.httpUrl}/v2/models/ocr`)).json();
    expect(meta.platform).toBe("ensemble");
    expect(meta.inputs.map((i: any) => i.name)).toEqual(["image", "pixels"]);
    expect(meta.outputs.map((o: any) => o.name)).toEqual(["text", "confidence", "boxes", "box_score", "flipped"]);
    const config = await (await fetch(`${server.httpUrl}/v2/models/ocr/config`)).json();
    expect(config.ensemble_scheduling.step).toEqual([
      { model_name: "ocr-det", model_version: -1 },
      { model_name: "ocr-cls", model_version: -1 },
      { model_name: "ocr-rec", model_version: -1 },
    ]);
    expect(JSON.parse(config.parameters.stage_graph.string_value)).toEqual([
      { task: "ocr-det", after: [] },
      { task: "ocr-cls", after: ["ocr-det"], optional: true },
      { task: "ocr-rec", after: ["ocr-det", "ocr-cls"] },
    ]);
    const stats = await (await fetch(`${server.httpUrl}/dashboard/api/pipelines`)).json();
    const ocr = stats.find((p: any) => p.name === "ocr");
    expect(ocr.stages.map((s: any) => s.task)).toEqual(["ocr-det", "ocr-cls", "ocr-rec"]);
  });

  it("answers bad input 400 with what to fix", async () => {
    const ask = (inputs: any[], parameters: Record<string, unknown> = {}) =>
      infer(server.httpUrl, "/v2/models/ocr/infer", inputs, { parameters });
    const page = { name: "image", datatype: "BYTES", shape: [1], data: ["not an image"] };
    const cases: [Awaited<ReturnType<typeof ask>>, RegExp][] = [
      [await ask([page]), /neither a PNG nor a JPEG/],
      [await ask([{ ...page, shape: [2], data: ["a", "b"] }]), /one image per request/],
      [await ask([{ name: "photo", datatype: "BYTES", shape: [1], data: ["x"] }]), /unknown input 'photo'/],
      [
        await ask([{ name: "pixels", datatype: "UINT8", shape: [1, 2, 2, 2], data: Array(8).fill(0) }]),
        /\[1, H, W, 3\]/,
      ],
      [
        await ask([page], { min_accuracy: 0.99 }),
        /reaches min_accuracy 0.99; the most accurate measured reaches 0.9685/,
      ],
      [await ask([page], { skip_stages: "ocr-det" }), /stage 'ocr-det' of 'ocr' is not optional/],
      [await ask([page], { skip_stages: "nope" }), /'nope' is not a stage of 'ocr'/],
    ];
    for (const [res, why] of cases) {
      expect(res.status, JSON.stringify(res.json)).toBe(400);
      expect(res.json.error).toMatch(why);
    }
  });
});

/** One BYTES element on the binary extension: its 4-byte little-endian length, then the bytes. */
function lengthPrefixed(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + b.length);
  new DataView(out.buffer).setUint32(0, b.length, true);
  out.set(b, 4);
  return out;
}
