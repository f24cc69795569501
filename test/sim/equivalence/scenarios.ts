// Fixed simulations whose results must not move when the simulator or the serving core is made faster:
// test/sim/equivalence.test.ts runs each and compares its fingerprint with the one recorded before
// (fingerprints.json, written by record.ts). They cover the request path at high rate, the control loop over
// many mostly idle tasks, every scaling policy on a load step, a pipeline planned as a whole, a cluster too
// small for its tasks (on-demand starts, eviction, reclaim), a supernet under SlackFit behind a front end,
// and instance crashes with retries.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import type { Decision } from "../../../src/autoscaler/controller.js";
import { loadRepository, type Repository } from "../../../src/repository/repository.js";
import {
  ConstantServiceModel,
  FitServiceModel,
  Xoshiro128,
  simTaskFromRepository,
  simulate,
  type SimArrivals,
  type SimTask,
  type SimulationConfig,
  type SimulationResult,
} from "../../../src/sim/index.js";
import type { SimCluster } from "../../../src/sim/sim-cluster.js";
import { arrivalsFromCounts, azureFunctionSeries, loadAzureFunctions } from "../../../src/traces/index.js";

export const AZURE = path.resolve("../shared/traces/azure-functions-2019/invocations_per_function_1day_675fn.csv");

export interface Scenario {
  name: string;
  /** Absent: always runs; else the reason it cannot run here (the test skips it). */
  missing?: () => string | null;
  config(repo: Repository): SimulationConfig;
}

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

/** Bursts of `rate` req/s lasting about `onS` s, separated by about `offS` s of nothing (exponential lengths). */
function onOff(rate: number, onS: number, offS: number, endMs: number, seed: number): number[] {
  const rng = new Xoshiro128(seed);
  const out: number[] = [];
  let t = rng.exponential(offS * 1000);
  while (t < endMs) {
    const until = Math.min(endMs, t + rng.exponential(onS * 1000));
    for (t += rng.exponential(1000 / rate); t < until; t += rng.exponential(1000 / rate)) out.push(t);
    t = until + rng.exponential(offS * 1000);
  }
  return out;
}

const detectorFit = { alpha: 148.82, beta: 37.49, gamma: 5.43, zeta: -15.48 };
const classifierFit = { alpha: 34.69, beta: 2.06, gamma: 19.48, zeta: 14.26 };
const COLD_STARTS = [2000, 2500, 3000];
const RESIZES = [100, 120, 140];

function fitTask(name: string, fit: typeof detectorFit, scaling: string | undefined, variant = "detector"): SimTask {
  return {
    name,
    sloMs: 780,
    scheduling: "edf",
    scaling,
    variants: [
      {
        name: variant,
        accuracy: 0.9,
        maxBatch: 8,
        fit,
        service: new FitServiceModel(fit, { spread: 1.1 }),
        coldStart: COLD_STARTS,
        resize: RESIZES,
      },
    ],
  };
}

/** A load step on one task under `scaling` (the policies' own settings). */
function step(scaling: string): Scenario {
  return {
    name: `step-${scaling}`,
    config: () => ({
      tasks: [fitTask("video", detectorFit, scaling)],
      arrivals: [
        {
          target: "video",
          times: poissonSteps(
            [
              [0, 2],
              [40_000, 15],
              [80_000, 4],
            ],
            130_000,
            11,
          ),
        },
      ],
      deployment: [{ task: "video", variant: "detector", cores: 1 }],
      nodes: { count: 2, cores: 8 },
      seed: 11,
      records: true,
    }),
  };
}

export const SCENARIOS: Scenario[] = [
  {
    name: "dense",
    config: (repo) => {
      const digits = repo.tasks.get("digits")!;
      return {
        tasks: Array.from({ length: 4 }, (_, i) =>
          simTaskFromRepository(digits, { name: `digits-${i}`, scaling: undefined }),
        ),
        arrivals: Array.from({ length: 4 }, (_, i) => ({
          target: `digits-${i}`,
          times: poissonSteps([[0, 1500 + 500 * i]], 4000, 100 + i),
        })),
        deployment: Array.from({ length: 4 }, (_, i) => ({
          task: `digits-${i}`,
          variant: "cnn-small",
          cores: 1,
          count: 2,
        })),
        nodes: { count: 2, cores: 8 },
        seed: 2024,
        onDemand: false,
        records: true,
      };
    },
  },
  {
    // many tasks, most of them idle most of the time (the control loop's skipping), some bursting past their
    // instances (scale-out, then scale-in once the burst is over)
    name: "sporadic-themis",
    config: (repo) => {
      const digits = repo.tasks.get("digits")!;
      const tasks: SimTask[] = [];
      const arrivals: SimArrivals[] = [];
      for (let i = 0; i < 30; i++) {
        const name = `t${i}`;
        const heavy = i % 3 === 2;
        tasks.push(
          heavy ? fitTask(name, detectorFit, "themis") : simTaskFromRepository(digits, { name, scaling: "themis" }),
        );
        const rate = heavy ? 4 + (i % 4) * 3 : [0.05, 0.3, 2, 20][i % 4]!;
        const times = i % 7 === 6 ? [] : onOff(rate, 5 + (i % 4) * 20, 10 + (i % 3) * 60, 300_000, 500 + i);
        arrivals.push({ target: name, times });
      }
      return {
        tasks,
        arrivals,
        deployment: tasks.map((t) => ({
          task: t.name,
          variant: t.variants[0]!.name === "detector" ? "detector" : "cnn-small",
          cores: 1,
        })),
        nodes: { count: 20, cores: 8 },
        seed: 7,
        records: true,
        drainMs: 10_000,
      };
    },
  },
  ...["themis", "themis-v1", "horizontal", "vertical", "il", "kpa", "hpa", "ray", "infaas", "static"].map(step),
  {
    name: "pipeline-themis",
    config: () => {
      const video = fitTask("video", detectorFit, undefined);
      const classifier = fitTask("classifier", classifierFit, undefined, "c");
      return {
        tasks: [video, classifier],
        pipelines: [{ name: "video-pipeline", stages: ["video", "classifier"], sloMs: 780, scaling: "themis" }],
        arrivals: [
          {
            target: "video-pipeline",
            times: poissonSteps(
              [
                [0, 2],
                [40_000, 12],
                [70_000, 1],
              ],
              120_000,
              5,
            ),
          },
          { target: "classifier", times: poissonSteps([[0, 1]], 100_000, 6) },
        ],
        deployment: [
          { task: "video", variant: "detector", cores: 1 },
          { task: "classifier", variant: "c", cores: 1 },
        ],
        nodes: { count: 2, cores: 8 },
        seed: 5,
        records: true,
      };
    },
  },
  {
    // more demand than cores: on-demand starts evict idle instances, plans are cut short, reclaim frees cores
    name: "crowded",
    config: () => {
      const tasks = Array.from({ length: 6 }, (_, i) =>
        fitTask(`v${i}`, i % 2 ? classifierFit : detectorFit, "themis"),
      );
      return {
        tasks,
        arrivals: tasks.map((t, i) => ({
          target: t.name,
          times: onOff(6 + 3 * i, 15, 20 + 10 * i, 150_000, 900 + i),
        })),
        deployment: tasks.slice(0, 3).map((t) => ({ task: t.name, variant: "detector", cores: 1 })),
        nodes: [4, 4, 2],
        placement: "pack",
        seed: 3,
        records: true,
      };
    },
  },
  {
    // SlackFit switching subnets of the digits supernet, behind the front-end core, with a vertical scaler
    name: "supernet-front-end",
    config: (repo) => {
      const supernet = repo.tasks.get("digits-supernet")!;
      const task = simTaskFromRepository(supernet, { scaling: "vertical" });
      return {
        tasks: [task],
        arrivals: [
          {
            target: task.name,
            times: poissonSteps(
              [
                [0, 300],
                [10_000, 2500],
                [20_000, 600],
              ],
              30_000,
              21,
            ),
          },
        ],
        deployment: [{ task: task.name, variant: task.variants[0]!.name, cores: 1 }],
        nodes: { count: 1, cores: 8 },
        frontEnd: { inMs: 0.03, outMs: 0.02, wireMs: 0.05, offPathMs: 0.01 },
        seed: 21,
        records: true,
      };
    },
  },
  {
    // instances die under load: their batches fail over to the others or fail, replacements cold-start
    name: "crashes",
    config: () => {
      const task: SimTask = {
        name: "t",
        sloMs: 200,
        scheduling: "edf",
        scaling: "horizontal",
        variants: [
          {
            name: "v",
            accuracy: 0.9,
            maxBatch: 4,
            fit: { alpha: 0, beta: 0, gamma: 0, zeta: 20 },
            service: new ConstantServiceModel(20),
            coldStart: 800,
            resize: 50,
          },
        ],
      };
      return {
        tasks: [task],
        arrivals: [{ target: "t", times: poissonSteps([[0, 120]], 40_000, 31) }],
        deployment: [{ task: "t", variant: "v", cores: 1, count: 3 }],
        nodes: { count: 2, cores: 4 },
        seed: 31,
        records: true,
        observe: (core) => {
          const cluster = core.cluster as SimCluster;
          const clock = core.clock;
          for (const at of [5_000, 12_000, 12_010, 25_000])
            clock.setTimer(at, () => {
              const victim = cluster.instances().find((i) => i.state === "ready" && i.inFlight > 0);
              if (victim) void cluster.crash(victim.id);
            });
        },
      };
    },
  },
  {
    // the bench's scale setting, smaller: 60 tasks on the busiest Azure functions for 10 minutes
    name: "azure-60",
    missing: () => (existsSync(AZURE) ? null : `${AZURE} is not here`),
    config: (repo) => {
      const digits = repo.tasks.get("digits")!;
      const trace = loadAzureFunctions(AZURE, { top: 60, firstMinute: 0, minutes: 10 });
      const tasks: SimTask[] = [];
      const arrivals: SimArrivals[] = [];
      trace.functions.forEach((fn, i) => {
        const name = `fn${i}`;
        tasks.push(simTaskFromRepository(digits, { name, scheduling: "edf", scaling: "themis" }));
        const times = arrivalsFromCounts(azureFunctionSeries(trace, fn), { spread: "poisson", seed: 2024 + i }).times;
        arrivals.push({ target: name, times });
      });
      return {
        tasks,
        arrivals,
        deployment: tasks.map((t) => ({ task: t.name, variant: "cnn-large", cores: 1 })),
        nodes: { count: 120, cores: 8 },
        seed: 2024,
        controller: { intervalMs: 1000 },
        mix: false,
        drainMs: 10_000,
        records: true,
      };
    },
  },
];

export interface Fingerprint {
  /** The summary without what measures the run rather than its results (wall time, events, flushes, decisions). */
  summary: unknown;
  /** Decisions the control loop took or, having been promised the same answer, did not need to take. */
  decisions: number;
  records: string;
  series: string;
  /** Every decision that changed something: when, for what, the plan, the changes and how the actuation went. */
  actuated: string;
  /** Every decision taken (without its solver time); a loop that skips promised answers takes fewer. */
  log: string;
}

export interface Run {
  fingerprint: Fingerprint;
  /** Every decision taken, without its solver time (wall clock). */
  taken: string[];
}

function sha(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 32);
}

/** JSON with NaN and ±Infinity spelled out, so that they compare as themselves. */
export function exact(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) =>
    typeof v === "number" && !Number.isFinite(v) ? `#${v}` : ArrayBuffer.isView(v) ? Array.from(v as never) : v,
  );
}

export function decisionText(d: Decision): string {
  const { solverMs: _s, ...rest } = d;
  return exact(rest);
}

/** Runs a scenario; `holds` makes the control loop skip the decisions a policy promised the answer of. */
export async function runScenario(s: Scenario, repo: Repository, holds?: boolean): Promise<Run> {
  const config = s.config(repo);
  const taken: string[] = [];
  const actuated: string[] = [];
  const r: SimulationResult = await simulate({
    ...config,
    controller: {
      ...config.controller,
      ...(holds === undefined ? {} : { holds }),
      log: (d) => {
        taken.push(decisionText(d));
        if (d.changes.length > 0)
          actuated.push(exact([d.at, d.task, d.pipeline, d.plan.instances, d.changes, d.actuation]));
      },
    },
  });
  const {
    wallMs: _w,
    requestsPerWallSecond: _r,
    events: _e,
    flushes: _f,
    decisions: _d,
    decisionsSkipped: _k,
    meanPooled,
    ...rest
  } = r.summary as typeof r.summary & { decisionsSkipped?: number };
  // recorded before the simulator kept a warm pool: a run without one has nothing to add
  const summary = meanPooled === 0 ? rest : { ...rest, meanPooled };
  const skipped = (r.summary as { decisionsSkipped?: number }).decisionsSkipped ?? 0;
  return {
    fingerprint: {
      summary: JSON.parse(exact(summary)),
      decisions: taken.length + skipped,
      records: sha(exact(r.records)),
      series: sha(exact(r.series)),
      actuated: sha(actuated.join("\n")),
      log: sha(taken.join("\n")),
    },
    taken,
  };
}

export async function scenarioRepository(): Promise<Repository> {
  return loadRepository(path.resolve("models"), { tasks: ["digits", "digits-supernet"], profilesOnly: true });
}
