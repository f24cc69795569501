// The pipeline walk on DAGs, through the serving core in the simulator with hand-made stages: a stage waits
// for every stage before it (fan-in), a stage's rows fan out by the recorded distribution and are split into
// requests no larger than its smallest max_batch, a request may skip an optional stage, a stage with no rows
// is skipped, and the end-to-end accuracy floor (measured per combination, or the product) decides which
// variants each stage request may take.
import { describe, expect, it } from "vitest";
import { PipelineAccuracy } from "../../src/core/pipeline-accuracy.js";
import type { Request } from "../../src/router/request.js";
import {
  graphOf,
  graphProblems,
  reducedChain,
  topologicalOrder,
  transitiveReduction,
  withoutStages,
} from "../../src/autoscaler/planner/pipeline-graph.js";
import { ConstantServiceModel, simulate, type SimTask, type SimVariant } from "../../src/sim/index.js";

function variant(name: string, accuracy: number, ms: number, maxBatch = 8): SimVariant {
  return {
    name,
    accuracy,
    maxBatch,
    fit: { alpha: 0, beta: ms, gamma: 0, zeta: 0 },
    service: new ConstantServiceModel(ms),
    coldStart: 100,
    resize: 10,
  };
}

const task = (name: string, variants: SimVariant[]): SimTask => ({ name, sloMs: 5000, variants });

// det → {cls (optional), rec}; rec waits for det and cls — the shape of the ocr pipeline
const OCR_LIKE = graphOf([
  "det",
  { task: "cls", after: ["det"], optional: true },
  { task: "rec", after: ["det", "cls"] },
]);

describe("pipeline graphs", () => {
  it("reads a list as a chain and objects as a DAG, and says what is wrong with a bad one", () => {
    expect(graphOf(["a", "b", "c"]).stages.map((s) => s.after)).toEqual([[], ["a"], ["b"]]);
    expect(topologicalOrder(OCR_LIKE)).toEqual(["det", "cls", "rec"]);
    expect(reducedChain(OCR_LIKE)).toEqual(["det", "cls", "rec"]);
    expect(transitiveReduction(OCR_LIKE).stages.find((s) => s.task === "rec")!.after).toEqual(["cls"]);
    expect(withoutStages(OCR_LIKE, new Set(["cls"])).stages.map((s) => [s.task, s.after])).toEqual([
      ["det", []],
      ["rec", ["det"]],
    ]);
    // a diamond does not reduce to a chain
    const diamond = graphOf([
      "a",
      { task: "b", after: ["a"] },
      { task: "c", after: ["a"] },
      { task: "d", after: ["b", "c"] },
    ]);
    expect(reducedChain(diamond)).toBeNull();
    expect(
      graphProblems(
        graphOf([
          { task: "a", after: ["b"] },
          { task: "b", after: ["a"] },
        ]),
      ),
    ).toEqual(["the stages wait for each other in a cycle; a pipeline is a directed acyclic graph"]);
    expect(graphProblems(graphOf(["a", "a"]))[0]).toMatch(/listed twice/);
    expect(graphProblems(graphOf(["a", { task: "b", after: ["x"] }]))[0]).toMatch(
      /waits for 'x', which is not a stage/,
    );
  });

  it("judges a floor by the measured combinations, or by the product of the stages' accuracies", () => {
    const stages = [
      {
        task: "det",
        optional: false,
        variants: [
          { name: "big", accuracy: 0.9 },
          { name: "small", accuracy: 0.6 },
        ],
      },
      { task: "cls", optional: true, variants: [{ name: "c", accuracy: 0.99 }] },
      {
        task: "rec",
        optional: false,
        variants: [
          { name: "r1", accuracy: 0.95 },
          { name: "r2", accuracy: 0.97 },
        ],
      },
    ];
    const product = new PipelineAccuracy(stages);
    expect(product.best(new Map(), new Set())).toBeCloseTo(0.9 * 0.99 * 0.97);
    expect(product.allowed("det", new Map(), new Set(), 0.8)).toEqual(["big"]);
    expect(
      product.allowed(
        "rec",
        new Map([
          ["det", ["big"]],
          ["cls", ["c"]],
        ]),
        new Set(),
        0.85,
      ),
    ).toEqual(["r2"]);
    // measured: r1 reads the small detector's boxes better, and skipping cls changes the figure
    const measured = new PipelineAccuracy(stages, [
      { stages: { det: "big", cls: "c", rec: "r1" }, value: 0.9 },
      { stages: { det: "big", cls: "c", rec: "r2" }, value: 0.92 },
      { stages: { det: "small", cls: "c", rec: "r1" }, value: 0.85 },
      { stages: { det: "small", cls: "c", rec: "r2" }, value: 0.7 },
      { stages: { det: "big", cls: "skip", rec: "r2" }, value: 0.8 },
    ]);
    expect(measured.allowed("det", new Map(), new Set(), 0.85)).toEqual(["big", "small"]);
    expect(measured.allowed("rec", new Map([["det", ["small"]]]), new Set(), 0.85)).toEqual(["r1"]);
    expect(measured.best(new Map(), new Set(["cls"]))).toBe(0.8);
    // a combination never measured reaches nothing; several variants at one stage count as the worst
    expect(measured.best(new Map([["det", ["small"]]]), new Set(["cls"]))).toBe(-Infinity);
    expect(
      measured.of(
        new Map([
          ["det", ["big", "small"]],
          ["cls", ["c"]],
          ["rec", ["r1"]],
        ]),
        new Set(),
      ),
    ).toBe(0.85);
  });
});

describe("the pipeline walk on a DAG (simulator)", () => {
  const tasks = [
    task("det", [variant("big", 0.9, 20), variant("small", 0.6, 5)]),
    task("cls", [variant("c", 0.99, 2, 32)]),
    task("rec", [variant("r1", 0.95, 3, 4), variant("r2", 0.97, 4, 4)]),
  ];

  async function run(opts: { skip?: string[]; floor?: number; fanOut?: number[]; accuracy?: boolean }) {
    const seen: Request[] = [];
    const answers: { ok: boolean; stages: string[]; skipped: string[]; accuracy: number; message?: string }[] = [];
    const r = await simulate({
      tasks,
      pipelines: [
        {
          name: "ocr-like",
          stages: ["det", "cls", "rec"],
          graph: OCR_LIKE,
          sloMs: 5000,
          fanOut: { det: { big: opts.fanOut ?? [10], small: opts.fanOut ?? [10] } },
          ...(opts.accuracy
            ? {
                accuracy: [
                  { stages: { det: "big", cls: "c", rec: "r1" }, value: 0.95 },
                  { stages: { det: "big", cls: "c", rec: "r2" }, value: 0.9 },
                  { stages: { det: "small", cls: "c", rec: "r1" }, value: 0.5 },
                  { stages: { det: "small", cls: "c", rec: "r2" }, value: 0.5 },
                  { stages: { det: "big", cls: "skip", rec: "r2" }, value: 0.93 },
                ],
              }
            : {}),
        },
      ],
      arrivals: [
        { target: "ocr-like", times: [10], minAccuracy: opts.floor ?? 0, ...(opts.skip ? { skip: opts.skip } : {}) },
      ],
      deployment: [
        { task: "det", variant: "big", cores: 1 },
        { task: "det", variant: "small", cores: 1 },
        { task: "cls", variant: "c", cores: 1 },
        { task: "rec", variant: "r1", cores: 1 },
        { task: "rec", variant: "r2", cores: 1 },
      ],
      nodes: [8],
      onDemand: false,
      observe: (core) => {
        core.router.on("arrived", (q) => seen.push(q));
        core.on("pipelineFinished", (_p, o) =>
          answers.push(
            o.ok
              ? {
                  ok: true,
                  stages: o.stages.map((s) => `${s.task}:${s.variant}:${s.rows}`),
                  skipped: o.skipped,
                  accuracy: o.accuracy,
                }
              : { ok: false, stages: [], skipped: [], accuracy: NaN, message: o.message },
          ),
        );
      },
    });
    return { summary: r.summary, seen, answer: answers[0]! };
  }

  it("fans out, splits the rows into max_batch requests, and runs the fan-in stage once both inputs are in", async () => {
    const { seen, answer, summary } = await run({});
    expect(summary.served).toBe(1);
    // 1 detector row → 10 boxes: the classifier takes them in one request (max 32), the recogniser in 4+4+2
    expect(seen.map((r) => `${r.task}:${r.rows}`)).toEqual(["det:1", "cls:10", "rec:4", "rec:4", "rec:2"]);
    const recArrival = seen.find((r) => r.task === "rec")!.arrival;
    const clsArrival = seen.find((r) => r.task === "cls")!.arrival;
    expect(recArrival).toBeGreaterThan(clsArrival); // it waited for the classifier, not only the detector
    expect(answer.ok).toBe(true);
    expect(answer.stages.filter((s) => s.startsWith("rec")).map((s) => Number(s.split(":")[2]))).toEqual(
      expect.arrayContaining([4, 4, 2]),
    );
  });

  it("skips an optional stage when asked, and the stages after it wait for the rest", async () => {
    const { seen, answer } = await run({ skip: ["cls"] });
    expect(seen.map((r) => r.task)).toEqual(["det", "rec", "rec", "rec"]);
    expect(answer.skipped).toEqual(["cls"]);
  });

  it("skips the stages that get no rows (a blank page), and still answers", async () => {
    const { seen, answer } = await run({ fanOut: [0] });
    expect(seen.map((r) => r.task)).toEqual(["det"]);
    expect(answer).toMatchObject({ ok: true, skipped: ["cls", "rec"] });
  });

  it("holds each stage to the variants that keep the end-to-end accuracy at the floor", async () => {
    // product: 0.9 · 0.99 · r ≥ 0.85 needs the big detector and r2 (0.891 · 0.95 < 0.85)
    const product = await run({ floor: 0.85 });
    expect(product.seen[0]!.allowed && [...product.seen[0]!.allowed]).toEqual(["big"]);
    const recs = product.seen.filter((r) => r.task === "rec");
    expect(recs.every((r) => r.allowed && [...r.allowed].join() === "r2")).toBe(true);
    expect(product.answer.accuracy).toBeCloseTo(0.9 * 0.99 * 0.97);
    // measured: r1 is the better recogniser after the big detector; skipping cls leaves r2 alone
    const measured = await run({ floor: 0.94, accuracy: true });
    expect(measured.seen.filter((r) => r.task === "rec").every((r) => [...r.allowed!].join() === "r1")).toBe(true);
    expect(measured.answer.accuracy).toBe(0.95);
    const skipping = await run({ floor: 0.92, accuracy: true, skip: ["cls"] });
    expect(skipping.answer).toMatchObject({ ok: true, accuracy: 0.93 });
    expect(skipping.seen.filter((r) => r.task === "rec").every((r) => [...r.allowed!].join() === "r2")).toBe(true);
  });
});
