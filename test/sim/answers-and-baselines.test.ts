// The simulator records every answer, refusals included, and the baselines scale as their operators
// configure them; scaling policies see what the scheduler runs.
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { Decision } from "../../src/autoscaler/controller.js";
import { makeScalingPolicy } from "../../src/autoscaler/scaling/index.js";
import type { ServedShare } from "../../src/autoscaler/types.js";
import { simVariantModel } from "../../src/sim/scenario.js";
import { loadRepository } from "../../src/repository/repository.js";
import {
  ConstantServiceModel,
  FitServiceModel,
  Xoshiro128,
  simulate,
  simTaskFromRepository,
  type SimTask,
} from "../../src/sim/index.js";

function poisson(rate: number, endMs: number, seed: number): number[] {
  const rng = new Xoshiro128(seed);
  const out: number[] = [];
  for (let t = rng.exponential(1000 / rate); t < endMs; t += rng.exponential(1000 / rate)) out.push(t);
  return out;
}

describe("the simulator's answers", () => {
  it("records queue-full refusals as rejected, ends with the last answer, and lets the meter see them", async () => {
    const task: SimTask = {
      name: "t",
      sloMs: 100,
      scheduling: "edf",
      scaling: "static",
      scalingSettings: { staticInstances: 1, staticCores: 1 },
      maxQueue: 5,
      variants: [
        {
          name: "v",
          accuracy: 1,
          maxBatch: 1,
          fit: { alpha: 0, beta: 0, gamma: 0, zeta: 10 },
          service: new ConstantServiceModel(10),
          coldStart: 0,
          resize: 0,
        },
      ],
    };
    // 1,000 req/s offered to an instance that serves 100 req/s
    const times = Array.from({ length: 2000 }, (_, i) => i);
    const decisions: Decision[] = [];
    const { summary: s } = await simulate({
      tasks: [task],
      arrivals: [{ target: "t", times }],
      deployment: [{ task: "t", variant: "v", cores: 1 }],
      nodes: [1],
      controller: { log: (d) => decisions.push(d) },
    });
    expect(s.rejected).toBeGreaterThan(1500);
    expect(s.unanswered).toBe(0);
    expect(s.met + s.late + s.dropped + s.rejected + s.failed).toBe(2000);
    // no 60-s drain: the run ends with its last answer, and the one core held all along is the mean
    expect(s.simulatedSeconds).toBeLessThan(2.2);
    expect(s.meanCores).toBeCloseTo(1, 6);
    // the control loop saw the offered load (refusals are arrivals) and the refusals as misses
    const d = decisions.find((x) => x.at === 2000)!;
    expect(d.inputs.rateNow).toBeGreaterThanOrEqual(990);
    expect(d.inputs.misses).toBeGreaterThan(700);
  });
});

// Themis' video detector (EXPERIMENTS.md): 176 ms at batch 1 on 1 core, ~5.7 req/s per 1-core instance
const DETECTOR = { alpha: 148.82, beta: 37.49, gamma: 5.43, zeta: -15.48 };
function detectorTask(scaling: string): SimTask {
  return {
    name: "video",
    sloMs: 780,
    scheduling: "edf",
    scaling,
    variants: [
      {
        name: "detector",
        accuracy: 0.9,
        maxBatch: 4,
        fit: DETECTOR,
        service: new FitServiceModel(DETECTOR, { spread: 1.1 }),
        coldStart: 1000,
        resize: 200,
      },
    ],
  };
}

describe("baselines configured as operators would", () => {
  const run = (scaling: string) =>
    simulate({
      tasks: [detectorTask(scaling)],
      arrivals: [{ target: "video", times: poisson(20, 120_000, 3) }],
      deployment: [{ task: "video", variant: "detector", cores: 1 }],
      nodes: { count: 2, cores: 16 },
      seed: 3,
    });

  it("kpa, hpa, ray and il scale out a 1-instance deployment that 20 req/s overloads", async () => {
    for (const policy of ["kpa", "hpa", "ray", "il"]) {
      const { summary, decisions } = await run(policy);
      expect(summary.peakCores, policy).toBeGreaterThanOrEqual(4);
      expect(
        decisions.some((d) => d.changes.length > 0),
        policy,
      ).toBe(true);
    }
  });

  it("each decides at its own interval: hpa every 15 s, kpa every 2 s, themis every 0.5 s", async () => {
    const gaps = async (policy: string) => {
      const { decisions } = await run(policy);
      const at = decisions.map((d) => d.at);
      return new Set(at.slice(1).map((t, i) => Math.round(t - at[i]!)));
    };
    expect(await gaps("hpa")).toEqual(new Set([15_000]));
    expect(await gaps("kpa")).toEqual(new Set([2_000]));
    const themis = await gaps("themis");
    expect(Math.min(...themis)).toBe(500);
  });
});

describe("scaling policies see what the scheduler runs", () => {
  it("plans a supernet's instances for the subnets served, not for its default subnet alone", async () => {
    const repo = await loadRepository(path.resolve("models"), { tasks: ["vision-supernet"], profilesOnly: true });
    const t = repo.tasks.get("vision-supernet")!;
    const supernet = simTaskFromRepository(t).variants[0]!;
    const model = simVariantModel(supernet);
    const fastest = model.subnets![0]!;
    const policy = makeScalingPolicy("horizontal");
    const at = (served: ServedShare[]) =>
      policy.decide(
        {
          now: 0,
          task: t.name,
          sloMs: 500,
          rateNow: 40,
          recent: Array.from({ length: 10 }, () => 40),
          ratePred: 40,
          concurrency: 0,
          queueLength: 0,
          misses: 0,
          tightestBudgetMs: 500,
          avgBatch: 1,
          served,
          busyMs: 0,
          sinceMs: 1000,
          instances: [{ id: "s#1", variant: "supernet", cores: 1, state: "ready" }],
          variants: [model],
          variant: "supernet",
          coreBudget: 64,
          maxCores: 16,
        },
        policy.initialState(),
      ).plan.instances.length;
    const alone = at([]);
    expect(at([{ variant: "supernet", subnet: model.subnets!.at(-1)!.subnet!, rows: 100 }])).toBe(alone);
    expect(at([{ variant: "supernet", subnet: fastest.subnet!, rows: 100 }])).toBeLessThan(alone);
    // a mix lands in between
    const mixed = at([
      { variant: "supernet", subnet: fastest.subnet!, rows: 50 },
      { variant: "supernet", subnet: model.subnets!.at(-1)!.subnet!, rows: 50 },
    ]);
    expect(mixed).toBeGreaterThanOrEqual(at([{ variant: "supernet", subnet: fastest.subnet!, rows: 100 }]));
    expect(mixed).toBeLessThanOrEqual(alone);
  });

  it("so SlackFit and EDF on one supernet no longer cost the same", async () => {
    const repo = await loadRepository(path.resolve("models"), { tasks: ["vision-supernet"], profilesOnly: true });
    const t = repo.tasks.get("vision-supernet")!;
    const run = async (scheduling: string) =>
      (
        await simulate({
          tasks: [simTaskFromRepository(t, { scheduling, scaling: "horizontal" })],
          arrivals: [{ target: "vision-supernet", times: poisson(30, 90_000, 11) }],
          deployment: [{ task: "vision-supernet", variant: "supernet", cores: 1 }],
          nodes: { count: 1, cores: 16 },
          seed: 11,
        })
      ).summary;
    const slack = await run("slackfit");
    const edf = await run("edf");
    expect(Math.abs(slack.meanCores - edf.meanCores) / edf.meanCores).toBeGreaterThan(0.1);
  });
});
