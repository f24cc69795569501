// `sloserve simulate`: one trace through the product's own router, scheduling policy and autoscaler on
// virtual time, against a simulated cluster whose instances take the times the profiles measured.
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { buildSchedule, TRACE_FORMATS, type ArrivalSource, type TraceFormat } from "../loadgen/schedule.js";
import { makeScalingPolicy, type ScalingSettings } from "../autoscaler/scaling/index.js";
import { staticForPeak } from "../autoscaler/scaling/static.js";
import { plansPipelines } from "../autoscaler/types.js";
import { stageTasks } from "../autoscaler/planner/pipeline-graph.js";
import { countsFromArrivals } from "../traces/index.js";
import { loadRepository } from "../repository/repository.js";
import {
  simPipelineFromRepository,
  simTaskFromRepository,
  simulate,
  type SimDeployment,
  type SimSlowdown,
} from "../sim/index.js";
import { fmt, printTable } from "../terminal/table.js";
import { DEFAULT_MODELS_DIR } from "../bundled-zoo/prepare.js";

interface SimulateFlags {
  models: string;
  task?: string;
  pipeline?: string;
  trace?: string;
  format: TraceFormat;
  start?: number;
  duration?: number;
  divideBy?: number;
  rate?: number;
  arrival: "poisson" | "gamma" | "uniform";
  cv2: number;
  scaling?: string;
  staticInstances?: number;
  staticCores?: number;
  scheduling?: string;
  nodes: number;
  coresPerNode: number;
  seed: number;
  actuation: string;
  seriesCsv?: string;
  json: boolean;
  onlineLatency: boolean;
  coreSharing: "fair" | "arrival";
  slowdown: SimSlowdown[];
}

/** `node:factor@seconds`, e.g. 0:1.5@300: node 0's batches take 1.5× as long from 300 s on. */
function slowdownSpec(v: string, prev: SimSlowdown[]): SimSlowdown[] {
  const m = /^(\d+):([0-9.]+)@([0-9.]+)$/.exec(v.trim());
  const factor = Number(m?.[2]);
  const at = Number(m?.[3]);
  if (!m || !(factor > 0) || !(at >= 0))
    throw new InvalidArgumentError(`--slowdown takes node:factor@seconds, e.g. 0:1.5@300; got '${v}'`);
  return [...prev, { node: Number(m[1]), factor, atMs: at * 1000 }];
}

const positive = (flag: string) => (v: string) => {
  const x = Number(v);
  if (!(x > 0)) throw new InvalidArgumentError(`${flag} must be a positive number, got '${v}'`);
  return x;
};
const nonNegative = (flag: string) => (v: string) => {
  const x = Number(v);
  if (!(x >= 0) || v.trim() === "") throw new InvalidArgumentError(`${flag} must be a number ≥ 0, got '${v}'`);
  return x;
};
const count = (flag: string) => (v: string) => {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 1) throw new InvalidArgumentError(`${flag} must be a whole number ≥ 1, got '${v}'`);
  return x;
};

export function registerSimulateCommand(program: Command): void {
  program
    .command("simulate")
    .description(
      "replay a trace through sloserve's router, policies and autoscaler on a simulated cluster (profiles give the times)",
    )
    .option("-m, --models <dir>", "model repository folder", DEFAULT_MODELS_DIR)
    .option("--task <name>", "the task the trace drives")
    .option("--pipeline <name>", "or the pipeline it drives")
    .option("--trace <file>", "a trace file (else a synthetic arrival process at --rate)")
    .option("--format <format>", `trace format: ${TRACE_FORMATS.join(", ")}`, "twitter")
    .option("--start <s>", "window start in seconds of the trace", nonNegative("--start"))
    .option("--duration <s>", "window or synthetic run length in seconds", positive("--duration"))
    .option("--divide-by <k>", "divide the trace's counts by k (the papers' damping)", positive("--divide-by"))
    .option("--rate <req/s>", "synthetic rate, or the mean rate a trace is rescaled to", positive("--rate"))
    .option("--arrival <process>", "synthetic arrivals: poisson, gamma or uniform", "poisson")
    .option("--cv2 <x>", "CV² of gamma inter-arrivals", positive("--cv2"), 1)
    .option("--scaling <policy>", "scaling policy (default: task.yaml / pipeline.yaml); none to disable")
    .option(
      "--static-instances <n>",
      "static: instances per task (default: the horizontal plan for the window's peak second)",
      count("--static-instances"),
    )
    .option("--static-cores <n>", "static: cores per instance (default 1)", count("--static-cores"))
    .option("--scheduling <policy>", "scheduling policy (default: task.yaml)")
    .option("--nodes <n>", "simulated nodes", (v) => Math.round(positive("--nodes")(v)), 1)
    .option("--cores-per-node <n>", "cores of each node", (v) => Math.round(positive("--cores-per-node")(v)), 8)
    .option("--seed <n>", "seed of arrivals and service times", (v) => Math.round(Number(v)), 1)
    .option(
      "--actuation <backend>",
      "cold starts and resizes as measured by: local (sloserve profile) or kubernetes (npm run bench:k8s -- --write-profile)",
      "local",
    )
    .option(
      "--online-latency <on|off>",
      "correct the profiles from the simulated batches, as the server does by default",
      (v: string) => {
        if (v !== "on" && v !== "off") throw new InvalidArgumentError(`--online-latency takes on or off, got '${v}'`);
        return v === "on";
      },
      true,
    )
    .option(
      "--core-sharing <mode>",
      "a budget the plans overrun is shared fair (least weighted expected violations) or by arrival, as serve's flag",
      (v: string) => {
        if (v !== "fair" && v !== "arrival")
          throw new InvalidArgumentError(`--core-sharing takes fair or arrival, got '${v}'`);
        return v;
      },
      "fair",
    )
    .option(
      "--slowdown <node:factor@s>",
      "make a node slower (or faster) mid-run, e.g. 0:1.5@300; repeatable",
      slowdownSpec,
      [] as SimSlowdown[],
    )
    .option("--series-csv <file>", "write the per-second series as CSV")
    .option("--json", "print the summary as one JSON object", false)
    .action(async (f: SimulateFlags) => {
      if (!f.task === !f.pipeline) throw new InvalidArgumentError("give --task or --pipeline (one of them)");
      if (!f.trace && !(f.rate && f.duration))
        throw new InvalidArgumentError("give --trace <file>, or --rate and --duration for synthetic arrivals");
      const repo = await loadRepository(path.resolve(f.models), { profilesOnly: true });
      const src: ArrivalSource = f.trace
        ? {
            kind: "trace",
            file: f.trace,
            format: f.format,
            startS: f.start,
            durationS: f.duration,
            divideBy: f.divideBy,
            rate: f.rate,
            seed: f.seed,
          }
        : { kind: "synthetic", rate: f.rate!, durationS: f.duration!, arrival: f.arrival, cv2: f.cv2, seed: f.seed };
      const arrivals = buildSchedule(src);
      const pipeline = f.pipeline ? repo.pipelines.get(f.pipeline) : undefined;
      if (f.pipeline && !pipeline)
        throw new InvalidArgumentError(
          `no pipeline '${f.pipeline}' in ${f.models}; have: ${[...repo.pipelines.keys()].join(", ") || "none"}`,
        );
      const names = pipeline ? stageTasks(pipeline.graph) : [f.task!];
      const scaling = f.scaling === "none" ? undefined : f.scaling;
      if ((f.staticInstances || f.staticCores) && scaling !== "static")
        throw new InvalidArgumentError(
          "--static-instances and --static-cores size the static policy: add --scaling static",
        );
      const tasks = names.map((n) => {
        const t = repo.tasks.get(n);
        if (!t)
          throw new InvalidArgumentError(`no task '${n}' in ${f.models}; have: ${[...repo.tasks.keys()].join(", ")}`);
        const over = { ...(f.scheduling ? { scheduling: f.scheduling } : {}), ...(f.scaling ? { scaling } : {}) };
        return simTaskFromRepository(t, over, f.actuation);
      });
      // Start like the server: one 1-core instance of each task's most accurate variant.
      const deployment: SimDeployment[] = tasks.map((t) => ({
        task: t.name,
        variant: [...t.variants].sort((a, b) => b.accuracy - a.accuracy)[0]!.name,
        cores: 1,
      }));
      // Static without a size is sized as an operator would: for the window's busiest second, per the profile.
      if (scaling === "static") {
        const peak = Math.max(0, ...countsFromArrivals(arrivals).counts);
        const variant = (i: number) => tasks[i]!.variants.find((v) => v.name === deployment[i]!.variant)!;
        const sized = f.staticInstances
          ? null
          : staticForPeak(
              tasks.map((_, i) => ({ ...variant(i).fit })),
              pipeline ? pipeline.config.slo_ms : tasks[0]!.sloMs,
              peak,
              Math.min(...tasks.map((_, i) => variant(i).maxBatch)),
            );
        tasks.forEach((t, i) => {
          t.scalingSettings = {
            staticInstances: f.staticInstances ?? sized?.[i] ?? 1,
            staticCores: f.staticCores ?? 1,
          } satisfies ScalingSettings;
        });
      }
      // a --scaling that cannot plan a pipeline whole scales each stage on its own (as `serve --autoscaler` does)
      const joint = scaling !== undefined && plansPipelines(makeScalingPolicy(scaling));
      const pipelines = pipeline
        ? [simPipelineFromRepository(pipeline, f.scaling ? { scaling: joint ? scaling : undefined } : {})]
        : [];
      const target = pipeline ? pipeline.name : f.task!;
      const r = await simulate({
        tasks,
        pipelines,
        arrivals: [{ target, times: arrivals.times }],
        deployment,
        nodes: { count: f.nodes, cores: f.coresPerNode },
        seed: f.seed,
        onlineLatency: f.onlineLatency,
        controller: { sharing: f.coreSharing },
        slowdowns: f.slowdown,
      });
      const s = r.summary;
      // what each autoscaled target ran with, in words (a result means little without its configuration)
      const configured = joint
        ? [{ target, policy: scaling!, configuration: describePolicy(scaling!, {}) }]
        : tasks
            .filter((t) => typeof t.scaling === "string")
            .map((t) => ({
              target: t.name,
              policy: t.scaling as string,
              configuration: describePolicy(t.scaling as string, t.scalingSettings ?? {}),
            }));
      if (f.seriesCsv) {
        const cols = [
          "second",
          "arrivals",
          "answered",
          "met",
          "violations",
          "attainmentPct",
          "p50Ms",
          "p99Ms",
          "cores",
          "instances",
        ] as const;
        const lines = [cols.join(","), ...r.series.second.map((_, i) => cols.map((c) => r.series[c][i]).join(","))];
        await writeFile(f.seriesCsv, lines.join("\n") + "\n");
      }
      if (f.json) {
        process.stdout.write(JSON.stringify({ ...s, scaling: configured }) + "\n");
        return;
      }
      printTable(
        [
          "target",
          "requests",
          "attainment",
          "violations",
          "p50 ms",
          "p99 ms",
          "mean cores",
          "peak cores",
          "simulated s",
          "wall s",
        ],
        [
          [
            target,
            String(s.requests),
            `${fmt(s.attainmentPct, 2)} %`,
            String(s.violations),
            fmt(s.latencyP50Ms, 1),
            fmt(s.latencyP99Ms, 1),
            fmt(s.meanCores, 2),
            String(s.peakCores),
            fmt(s.simulatedSeconds, 0),
            fmt(s.wallMs / 1000, 2),
          ],
        ],
      );
      for (const c of configured) process.stdout.write(`\n${c.target}: ${c.policy} — ${c.configuration}\n`);
    });
}

function describePolicy(name: string, settings: ScalingSettings): string {
  const p = makeScalingPolicy(name, settings);
  return p.describe?.() ?? "(no settings)";
}
