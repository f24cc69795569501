// Pipeline requests through the live server and through the simulator: both run the serving core's one
// pipeline walk, so every stage must see the same request (task, stage, rows, the variants the end-to-end
// accuracy floor allows, priority, deadline relative to the pipeline's arrival, late rule) and the answer
// must name the same stages. First a chain (mnist-e2e), then the DAG of the `ocr` pipeline: the detector
// fans out to one row per text box, the recogniser waits for the detector and the optional classifier, and
// a second request skips the classifier. The live detector's box count is the simulator's fan-out.
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ServingCore } from "../../src/core/serving-core.js";
import { loadRepository } from "../../src/repository/repository.js";
import type { Request } from "../../src/router/request.js";
import { simPipelineFromRepository, simTaskFromRepository, simulate } from "../../src/sim/index.js";
import { loadDigits } from "../../src/zoo/digits-data.js";
import { encodePng } from "../../src/pipelines/image-input.js";
import { ocrEvalSet } from "../../src/ocr/eval-set.js";
import { infer } from "../support/oip-client.js";
import { withTestServer } from "../support/server.js";

const PIPELINE = "mnist-e2e";
const SLO_MS = 5000;
const FLOOR = 0.95;

interface StageSeen {
  task: string;
  stage: number | undefined;
  pipeline: string | undefined;
  rows: number;
  /** The variants the pipeline's floor allows (all of the task's when absent). */
  allowed: string[] | null;
  priority: number;
  deadlineAfterArrivalMs: number;
  lateOk: boolean;
}

/** Records every stage request the core's router admits, relative to its pipeline request's arrival. */
function watch(core: ServingCore): { seen: StageSeen[]; answers: string[][] } {
  const seen: StageSeen[] = [];
  const answers: string[][] = [];
  let arrival = 0;
  core.on("pipelineArrived", (p) => (arrival = p.arrival));
  core.on("pipelineFinished", (_p, o) => answers.push(o.ok ? o.stages.map((s) => s.task) : [`failed: ${o.message}`]));
  core.router.on("arrived", (r: Request) =>
    seen.push({
      task: r.task,
      stage: r.stage?.index,
      pipeline: r.stage?.pipeline,
      rows: r.rows,
      allowed: r.allowed ? [...r.allowed].sort() : null,
      priority: r.priority,
      deadlineAfterArrivalMs: Math.round(r.deadline - arrival),
      lateOk: r.lateOk,
    }),
  );
  return { seen, answers };
}

describe("a pipeline request in the server and in the simulator", () => {
  it("walks the same stages with the same deadline, floor and rows in both worlds", async () => {
    const live = await withTestServer(
      { cores: 2, deploy: [{ task: "mnist-prep", variant: "scale", cores: 1 }], autoscaler: "kpa" },
      async (server) => {
        const w = watch(server.core);
        const raw = Array.from(loadDigits().test.images.subarray(0, 2 * 784), (x) => Math.round(x * 255));
        const res = await infer(
          server.httpUrl,
          `/v2/models/${PIPELINE}/infer`,
          [{ name: "raw", datatype: "UINT8", shape: [2, 28, 28], data: raw }],
          { parameters: { slo_ms: SLO_MS, min_accuracy: FLOOR } },
        );
        expect(res.status, JSON.stringify(res.json)).toBe(200);
        return w;
      },
    );

    const repo = await loadRepository(path.resolve("models"), { tasks: ["mnist-prep", "digits", PIPELINE] });
    let sim: ReturnType<typeof watch> | undefined;
    const r = await simulate({
      tasks: ["mnist-prep", "digits"].map((t) => simTaskFromRepository(repo.tasks.get(t)!, { scaling: "kpa" })),
      pipelines: [simPipelineFromRepository(repo.pipelines.get(PIPELINE)!, { sloMs: SLO_MS, scaling: "kpa" })],
      arrivals: [{ target: PIPELINE, times: [10], rows: 2, minAccuracy: FLOOR }],
      deployment: [{ task: "mnist-prep", variant: "scale", cores: 1 }],
      nodes: [2],
      observe: (core) => (sim = watch(core)),
    });
    expect(r.summary.served).toBe(1);

    expect(live.seen).toHaveLength(2);
    expect(live.seen.map((s) => [s.task, s.stage, s.pipeline])).toEqual([
      ["mnist-prep", 0, PIPELINE],
      ["digits", 1, PIPELINE],
    ]);
    // mnist-prep is exact (accuracy 1): the floor admits the digits variants at or above it, end to end
    const above = [...repo.tasks.get("digits")!.variants.values()]
      .filter((v) => v.config.accuracy.value >= FLOOR)
      .map((v) => v.name)
      .sort();
    expect(live.seen[1]).toMatchObject({ allowed: above, rows: 2, deadlineAfterArrivalMs: SLO_MS });
    expect(sim!.seen).toEqual(live.seen);
    expect(sim!.answers).toEqual(live.answers);
    expect(live.answers).toEqual([["mnist-prep", "digits"]]);
  });
});

describe("a DAG pipeline request (ocr) in the server and in the simulator", () => {
  const OCR = "ocr";
  const OCR_SLO = 30_000;
  const OCR_FLOOR = 0.95;
  const deploy = [
    { task: "ocr-det", variant: "ppocrv4-mobile-r960-int8", cores: 1 },
    { task: "ocr-cls", variant: "ppocr-mobile-v2", cores: 1 },
    { task: "ocr-rec", variant: "ppocrv4-mobile", cores: 1 },
  ];

  it("fans out to the boxes, waits for both inputs of the recogniser, skips the classifier when asked", async () => {
    // a small document of several lines, sent as a PNG file (base64 in JSON)
    const page = ocrEvalSet(8).find((s) => s.lines.length >= 5)!;
    const png = Buffer.from(encodePng(page.image)).toString("base64");
    let boxes = 0;
    const live = await withTestServer({ cores: 2, deploy }, async (server) => {
      const w = watch(server.core);
      for (const skip of [undefined, "ocr-cls"]) {
        const res = await infer(
          server.httpUrl,
          `/v2/models/${OCR}/infer`,
          [{ name: "image", datatype: "BYTES", shape: [1], data: [png] }],
          { parameters: { slo_ms: OCR_SLO, min_accuracy: OCR_FLOOR, ...(skip ? { skip_stages: skip } : {}) } },
        );
        expect(res.status, JSON.stringify(res.json)).toBe(200);
        expect(res.json.parameters.variant).toBe(
          skip
            ? "ocr-det:ppocrv4-mobile-r960-int8,ocr-rec:ppocrv4-mobile"
            : "ocr-det:ppocrv4-mobile-r960-int8,ocr-cls:ppocr-mobile-v2,ocr-rec:ppocrv4-mobile",
        );
        expect(res.json.parameters.pipeline_accuracy).toBeGreaterThanOrEqual(OCR_FLOOR);
        if (skip) expect(res.json.parameters.skipped_stages).toBe("ocr-cls");
      }
      boxes = w.seen.find((s) => s.task === "ocr-cls")!.rows;
      return w;
    });
    expect(boxes).toBeGreaterThanOrEqual(5);

    const repo = await loadRepository(path.resolve("models"), { tasks: ["ocr-det", "ocr-cls", "ocr-rec", OCR] });
    let sim: ReturnType<typeof watch> | undefined;
    const r = await simulate({
      tasks: ["ocr-det", "ocr-cls", "ocr-rec"].map((t) =>
        simTaskFromRepository(repo.tasks.get(t)!, { scaling: undefined }),
      ),
      pipelines: [
        simPipelineFromRepository(repo.pipelines.get(OCR)!, {
          sloMs: OCR_SLO,
          scaling: undefined,
          // the boxes the live detector found on this page
          fanOut: { "ocr-det": { "ppocrv4-mobile-r960-int8": [boxes] } },
        }),
      ],
      arrivals: [
        { target: OCR, times: [10], minAccuracy: OCR_FLOOR },
        { target: OCR, times: [60_000], minAccuracy: OCR_FLOOR, skip: ["ocr-cls"] },
      ],
      deployment: deploy,
      nodes: [3],
      onDemand: false,
      observe: (core) => (sim = watch(core)),
    });
    expect(r.summary.served).toBe(2);

    // the recogniser takes at most 16 rows a request: more boxes are split, one request per 16
    const rec = Array.from({ length: Math.ceil(boxes / 16) }, (_, k) => ["ocr-rec", 2, Math.min(16, boxes - 16 * k)]);
    expect(live.seen.map((s) => [s.task, s.stage, s.rows])).toEqual([
      ["ocr-det", 0, 1],
      ["ocr-cls", 1, boxes],
      ...rec,
      ["ocr-det", 0, 1],
      ...rec,
    ]);
    // the floor rules out the detector variants no combination lifts to 0.95 end to end
    expect(live.seen[0]!.allowed).toEqual(["ppocrv4-mobile", "ppocrv4-mobile-int8", "ppocrv4-mobile-r960-int8"]);
    expect(sim!.seen).toEqual(live.seen);
    expect(sim!.answers).toEqual(live.answers);
  }, 120_000);
});
