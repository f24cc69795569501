import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadRepository } from "../../src/repository/repository.js";
import {
  ConstantServiceModel,
  FitServiceModel,
  RECORD_STATUS,
  Xoshiro128,
  Z99,
  simulate,
  simTaskFromRepository,
  type SimTask,
  type SimulationConfig,
  type SimSummary,
} from "../../src/sim/index.js";

/** Poisson arrivals whose rate changes at the given times: [[fromMs, reqPerS], ...]. */
function poissonSteps(steps: [number, number][], endMs: number, seed: number): number[] {
  const rng = new Xoshiro128(seed);
  const out: number[] = [];
  let t = 0;
  let k = 0;
  for (;;) {
    while (k + 1 < steps.length && t >= steps[k + 1]![0]) k++;
    t += rng.exponential(1000 / steps[k]![1]);
    if (t >= endMs) return out;
    out.push(t);
  }
}

// Themis' video detector (EXPERIMENTS.md, the authors' fitted parameters), with a 10 % spread
const detectorFit = { alpha: 148.82, beta: 37.49, gamma: 5.43, zeta: -15.48 };
const COLD_STARTS = [2000, 2500, 3000];
const RESIZES = [100, 120, 140];

function videoTask(scaling: string): SimTask {
  return {
    name: "video",
    sloMs: 780,
    scheduling: "edf",
    scaling,
    variants: [
      {
        name: "detector",
        accuracy: 0.9,
        maxBatch: 8,
        fit: detectorFit,
        service: new FitServiceModel(detectorFit, { spread: 1.1 }),
        coldStart: COLD_STARTS,
        resize: RESIZES,
      },
    ],
  };
}

function stepConfig(seed: number, scaling = "themis-v1"): SimulationConfig {
  return {
    tasks: [videoTask(scaling)],
    arrivals: [
      {
        target: "video",
        times: poissonSteps(
          [
            [0, 2],
            [60_000, 15],
          ],
          120_000,
          seed,
        ),
      },
    ],
    deployment: [{ task: "video", variant: "detector", cores: 1 }],
    nodes: { count: 2, cores: 8 },
    seed,
  };
}

function repeatable(s: SimSummary): Omit<SimSummary, "wallMs" | "requestsPerWallSecond"> {
  const { wallMs: _w, requestsPerWallSecond: _r, ...rest } = s;
  return rest;
}

describe("simulate", () => {
  it("repeats exactly from its seed: same summary, same series", async () => {
    const a = await simulate(stepConfig(7));
    const b = await simulate(stepConfig(7));
    expect(repeatable(b.summary)).toEqual(repeatable(a.summary));
    expect(JSON.stringify(b.series)).toBe(JSON.stringify(a.series));
    expect(b.decisions.map((d) => [d.at, d.changes])).toEqual(a.decisions.map((d) => [d.at, d.changes]));
    const c = await simulate(stepConfig(8));
    expect(repeatable(c.summary)).not.toEqual(repeatable(a.summary));
  });

  it("drains microtasks only where needed: the same run as flushing after every event", async () => {
    const auto = await simulate(stepConfig(9));
    const always = await simulate({ ...stepConfig(9), flush: "always" });
    const { flushes: fa, ...a } = repeatable(auto.summary);
    const { flushes: fb, ...b } = repeatable(always.summary);
    expect(b).toEqual(a);
    expect(JSON.stringify(always.series)).toBe(JSON.stringify(auto.series));
    expect(fb).toBe(always.summary.events);
    expect(fa).toBeLessThan(fb / 5);
  });

  it("keeps series and summary consistent", async () => {
    const { summary: s, series } = await simulate(stepConfig(3));
    const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
    expect(sum(series.arrivals)).toBe(s.requests);
    expect(sum(series.answered)).toBe(s.requests - s.unanswered);
    expect(sum(series.met)).toBe(s.met);
    expect(s.met + s.late + s.dropped + s.rejected + s.failed + s.unanswered).toBe(s.requests);
    expect(s.violations).toBe(s.requests - s.met);
    expect(s.attainmentPct).toBeCloseTo((100 * s.met) / s.requests, 9);
    // the time-average of the per-second cores is the run's mean (the last second may be partial)
    const full = Math.floor(s.simulatedSeconds);
    const partial = s.simulatedSeconds - full;
    const weighted = sum(series.cores.slice(0, full)) + (partial > 0 ? series.cores[full]! * partial : 0);
    expect(weighted / s.simulatedSeconds).toBeCloseTo(s.meanCores, 6);
    expect(series.second).toEqual(series.second.map((_, i) => i));
    expect(series.mix?.[10]).toEqual({ "video/detector": 1 });
  });

  it("drives the real Themis controller (the July-2024 rule), which grows the instance in place on a step", async () => {
    const { summary, decisions, series } = await simulate(stepConfig(7));
    expect(summary.actuations.resize).toBeGreaterThan(0);
    const afterStep = decisions.filter((d) => d.at > 60_000 && d.changes.length > 0);
    const first = afterStep[0]!;
    expect(first.plan.mode).toBe("vertical");
    expect(first.changes.every((c) => c.startsWith("resize"))).toBe(true);
    expect(first.inputs.instances).toEqual([expect.stringMatching(/^detector×\d+$/)]);
    // the resize took one of its measured times
    expect(RESIZES).toContain(first.actuation!.ms);
    // more cores on the same single instance within a few seconds of the step
    const sec = Math.floor(first.at / 1000);
    expect(series.instances[sec]).toBe(1);
    expect(series.cores[sec + 1]!).toBeGreaterThan(series.cores[59]!);
    // and any instance the controller started paid a measured cold start
    for (const d of decisions)
      if (d.changes.some((c) => c.startsWith("start")) && d.actuation?.failed.length === 0 && d.changes.length === 1)
        expect(COLD_STARTS).toContain(d.actuation.ms);
    expect(summary.attainmentPct).toBeGreaterThan(90);
  });

  it("delays requests by the cold start of the instance started for them", async () => {
    const task: SimTask = {
      name: "t",
      sloMs: 2000,
      scheduling: "edf",
      variants: [
        {
          name: "v",
          accuracy: 1,
          maxBatch: 1,
          fit: { alpha: 0, beta: 0, gamma: 0, zeta: 10 },
          service: new ConstantServiceModel(10),
          coldStart: 500,
          resize: 0,
        },
      ],
    };
    // no deployment: the server's on-demand scaler starts an instance for the first request
    const { summary, records } = await simulate({
      tasks: [task],
      arrivals: [{ target: "t", times: [0, 100] }],
      nodes: [4],
      records: true,
    });
    expect(Array.from(records!.finish)).toEqual([510, 520]);
    expect(summary.latencyMeanMs).toBeCloseTo((510 + 420) / 2, 1);
    expect(summary.met).toBe(2);
    // the same with the deployment paying its cold start at t = 0
    const cold = await simulate({
      tasks: [task],
      arrivals: [{ target: "t", times: [0] }],
      nodes: [4],
      deployment: [{ task: "t", variant: "v", cores: 1 }],
      coldDeployment: true,
      onDemand: false,
      records: true,
    });
    expect(Array.from(cold.records!.finish)).toEqual([510]);
  });

  it("answers 504 at once for budgets the fastest instance cannot meet, and records why", async () => {
    const task: SimTask = {
      name: "t",
      sloMs: 1000,
      scheduling: "edf",
      variants: [
        {
          name: "v",
          accuracy: 1,
          maxBatch: 4,
          fit: { alpha: 0, beta: 0, gamma: 0, zeta: 50 },
          service: new ConstantServiceModel(50),
          coldStart: 0,
          resize: 0,
        },
      ],
    };
    const { summary, records } = await simulate({
      tasks: [task],
      arrivals: [{ target: "t", times: [0, 10, 20], budgets: [1000, 20, 1000] }],
      deployment: [{ task: "t", variant: "v", cores: 1 }],
      nodes: [1],
      records: true,
    });
    expect(summary).toMatchObject({ requests: 3, met: 2, dropped: 1, violations: 1 });
    expect(Array.from(records!.status).map((s) => RECORD_STATUS[s])).toEqual(["met", "dropped", "met"]);
  });

  it("runs a task straight from the model repository with its measured profiles", async () => {
    const repo = await loadRepository(path.resolve("models"), { tasks: ["vision"] });
    const task = repo.tasks.get("vision")!;
    const p11 = task.variants.get("resnet18")!.profile!.points.find((p) => p.batch === 1 && p.cores === 1)!;
    const arrivals = [{ target: "vision", times: poissonSteps([[0, 5]], 20_000, 1) }];
    const deployment = [{ task: "vision", variant: "resnet18", cores: 1 }];
    // fixed at one core: single-row batches take what was measured on one core
    const fixed = await simulate({
      tasks: [simTaskFromRepository(task, { scaling: undefined })],
      arrivals,
      deployment,
      nodes: [1],
      seed: 1,
      records: true,
      onDemand: false,
    });
    const rec = fixed.records!;
    const times: number[] = [];
    for (let i = 0; i < rec.target.length; i++)
      if (rec.batchRows[i] === 1 && RECORD_STATUS[rec.status[i]!] !== "dropped") times.push(rec.computeMs[i]!);
    times.sort((a, b) => a - b);
    expect(times.length).toBeGreaterThan(50);
    // the sample median of n lognormal draws has a relative standard error of about 1.25·σ/√n
    const sigma = Math.log(Math.max(p11.p99_ms, p11.p50_ms) / p11.p50_ms) / Z99;
    const tolerance = 0.02 + (4 * 1.2533 * sigma) / Math.sqrt(times.length);
    expect(Math.abs(times[times.length >> 1]! / p11.p50_ms - 1)).toBeLessThan(tolerance);
    expect(fixed.decisions).toEqual([]);
    // and under the task's own scaling policy (themis, from task.yaml) on an 8-core node
    const scaled = await simulate({ tasks: [simTaskFromRepository(task)], arrivals, deployment, nodes: [8], seed: 1 });
    // (decisions its policy promised the answer of are skipped, and counted)
    expect(scaled.summary.decisions + scaled.summary.decisionsSkipped).toBeGreaterThan(10);
    expect(scaled.summary.served).toBeGreaterThan(50);
  });

  it("walks pipeline requests through their stages under the end-to-end deadline", async () => {
    const stage = (name: string, ms: number, accuracy: number): SimTask => ({
      name,
      sloMs: 1000,
      scheduling: "edf",
      variants: [
        {
          name: "v",
          accuracy,
          maxBatch: 4,
          fit: { alpha: 0, beta: 0, gamma: 0, zeta: ms },
          service: new ConstantServiceModel(ms),
          coldStart: 0,
          resize: 0,
        },
      ],
    });
    const { summary, records } = await simulate({
      tasks: [stage("a", 10, 0.9), stage("b", 20, 0.8)],
      pipelines: [{ name: "ab", stages: ["a", "b"], sloMs: 35 }],
      // the third (deadline 130) waits for the second at stage a until 110, leaves it at 120 and would wait
      // for stage b until 130: hopeless there under the end-to-end deadline, so stage b answers 504 at 120
      arrivals: [{ target: "ab", times: [0, 100, 105], budgets: [35, 35, 25] }],
      deployment: [
        { task: "a", variant: "v", cores: 1 },
        { task: "b", variant: "v", cores: 1 },
      ],
      nodes: [2],
      records: true,
    });
    expect(Array.from(records!.finish)).toEqual([30, 130, 120]);
    expect(Array.from(records!.computeMs)).toEqual([30, 30, Number.NaN]);
    expect(Array.from(records!.status).map((x) => RECORD_STATUS[x])).toEqual(["met", "met", "dropped"]);
    expect(summary.meanAccuracy).toBeCloseTo(0.72, 12);
    expect(summary.perTarget).toEqual({ ab: { requests: 3, met: 2, attainmentPct: 200 / 3 } });
  });

  it("lets Themis plan a whole pipeline and resize its stages in place", async () => {
    const classifierFit = { alpha: 34.69, beta: 2.06, gamma: 19.48, zeta: 14.26 };
    const video = videoTask("themis");
    video.scaling = undefined;
    const classifier: SimTask = {
      name: "classifier",
      sloMs: 780,
      scheduling: "edf",
      variants: [
        {
          name: "c",
          accuracy: 0.8,
          maxBatch: 8,
          fit: classifierFit,
          service: new FitServiceModel(classifierFit, { spread: 1.1 }),
          coldStart: COLD_STARTS,
          resize: RESIZES,
        },
      ],
    };
    const { summary, decisions } = await simulate({
      tasks: [video, classifier],
      pipelines: [{ name: "video-pipeline", stages: ["video", "classifier"], sloMs: 780, scaling: "themis" }],
      arrivals: [
        {
          target: "video-pipeline",
          times: poissonSteps(
            [
              [0, 2],
              [40_000, 12],
            ],
            80_000,
            5,
          ),
        },
      ],
      deployment: [
        { task: "video", variant: "detector", cores: 1 },
        { task: "classifier", variant: "c", cores: 1 },
      ],
      nodes: { count: 2, cores: 8 },
      seed: 5,
    });
    expect(decisions.length).toBeGreaterThan(0);
    expect(decisions.every((d) => d.pipeline === "video-pipeline")).toBe(true);
    expect(new Set(decisions.map((d) => d.task))).toEqual(new Set(["video", "classifier"]));
    expect(summary.actuations.resize).toBeGreaterThan(0);
    expect(Object.keys(summary.perTarget)).toEqual(["video-pipeline"]);
    expect(summary.meanAccuracy).toBeCloseTo(0.72, 9);
  });

  it("rejects malformed input with a clear message", async () => {
    const base = stepConfig(1);
    await expect(simulate({ ...base, arrivals: [{ target: "video", times: [5, 1] }] })).rejects.toThrow(
      /sorted ascending/,
    );
    await expect(simulate({ ...base, arrivals: [{ target: "nope", times: [1] }] })).rejects.toThrow(
      /unknown task or pipeline 'nope'/,
    );
    await expect(simulate({ ...base, deployment: [{ task: "video", variant: "x", cores: 1 }] })).rejects.toThrow(
      /unknown variant 'x'/,
    );
    await expect(simulate({ ...base, deployment: [{ task: "video", variant: "detector", cores: 9 }] })).rejects.toThrow(
      /does not fit/,
    );
  });
});
