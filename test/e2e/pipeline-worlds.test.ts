// One pipeline request through the live server and through the simulator: both run the serving core's
// one pipeline walk, so every stage must see the same request (task, stage, rows, accuracy floor,
// priority, deadline relative to the pipeline's arrival, late rule) and the answer must name the same
// stages. A policy that cannot plan the pipeline as a whole is handled the same way in both.
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ServingCore } from "../../src/core/serving-core.js";
import { loadRepository } from "../../src/repository/repository.js";
import type { Request } from "../../src/router/request.js";
import { simPipelineFromRepository, simTaskFromRepository, simulate } from "../../src/sim/index.js";
import { loadDigits } from "../../src/zoo/digits-data.js";
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
  minAccuracy: number;
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
      minAccuracy: r.minAccuracy,
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
    expect(live.seen[1]).toMatchObject({ minAccuracy: FLOOR, rows: 2, deadlineAfterArrivalMs: SLO_MS });
    expect(sim!.seen).toEqual(live.seen);
    expect(sim!.answers).toEqual(live.answers);
    expect(live.answers).toEqual([["mnist-prep", "digits"]]);
  });
});
