// npm run bench:sim [-- --json] [--minutes N] [--every-decision]: how fast the simulator runs the product's own
// router, policies and control loop, in simulated requests per wall-clock second (and per CPU second: the
// machine is shared), and its peak memory.
//   scale — the `scale` experiment's setting (500 tasks on the 500 busiest Azure functions, 1,000 nodes
//           × 8 cores, themis), for --minutes of the day (default the experiment's whole day, 1,440), with
//           holds (decisions Themis promised the answer of are skipped; --every-decision takes them all);
//   dense — the request path alone: 8 digits tasks at 2,000 req/s each (Poisson) for 30 s, no autoscaler;
//           --rounds times (default 3), the median round kept (a round lasts half a second: one round is
//           mostly JIT warm-up and whatever else the shared machine runs at that moment).
import { loadavg } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fmt } from "../../src/terminal/table.js";
import { describeMachine } from "../../src/profiler/machine.js";
import { loadRepository } from "../../src/repository/repository.js";
import { scaleScenario } from "../experiment/scale.js";
import { simTaskFromRepository, simulate, type SimulationConfig } from "../../src/sim/index.js";
import { poissonArrivals } from "../../src/traces/index.js";
import { emit } from "../../src/terminal/report.js";

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    minutes: { type: "string", default: "1440" },
    "every-decision": { type: "boolean", default: false },
    rounds: { type: "string", default: "3" },
    azure: {
      type: "string",
      default: path.resolve("../shared/traces/azure-functions-2019/invocations_per_function_1day_675fn.csv"),
    },
  },
});

/** Simulated requests per wall second (issue 17). */
const GOAL = { dense: 1_000_000, scale: 50_000 };
const repo = await loadRepository(path.resolve("models"), { profilesOnly: true });

interface Run {
  scenario: string;
  requests: number;
  decisions: number;
  decisions_skipped: number;
  wall_s: number;
  cpu_s: number;
  requests_per_wall_s: number;
  requests_per_cpu_s: number;
  decisions_per_wall_s: number;
  attainment_pct: number;
}

async function measure(scenario: string, config: SimulationConfig): Promise<Run> {
  const cpu0 = process.cpuUsage();
  const r = await simulate(config);
  const used = process.cpuUsage(cpu0);
  const cpu = (used.user + used.system) / 1e6;
  const wall = r.summary.wallMs / 1000;
  const decisions = r.summary.decisions + r.summary.decisionsSkipped;
  return {
    scenario,
    requests: r.summary.requests,
    decisions,
    decisions_skipped: r.summary.decisionsSkipped,
    wall_s: wall,
    cpu_s: cpu,
    requests_per_wall_s: r.summary.requests / wall,
    requests_per_cpu_s: r.summary.requests / cpu,
    decisions_per_wall_s: decisions / wall,
    attainment_pct: r.summary.attainmentPct,
  };
}

const scale = scaleScenario(repo, {
  azureFile: values.azure!,
  tasks: 500,
  nodes: 1000,
  coresPerNode: 8,
  minutes: Number(values.minutes),
  template: "digits",
  scaling: "themis",
  scheduling: "edf",
  seed: 2024,
  holds: !values["every-decision"],
});
const runs: Run[] = [await measure(`scale (${values.minutes} min)`, scale.config)];

const digits = repo.tasks.get("digits")!;
const dense: SimulationConfig = {
  tasks: Array.from({ length: 8 }, (_, i) =>
    simTaskFromRepository(digits, { name: `digits-${i}`, scaling: undefined }),
  ),
  arrivals: Array.from({ length: 8 }, (_, i) => ({
    target: `digits-${i}`,
    times: poissonArrivals(2000, 30, 100 + i).times,
  })),
  deployment: Array.from({ length: 8 }, (_, i) => ({ task: `digits-${i}`, variant: "cnn-small", cores: 1, count: 2 })),
  nodes: { count: 4, cores: 8 },
  seed: 2024,
  onDemand: false,
};
const roundCount = Number(values.rounds);
if (!Number.isInteger(roundCount) || roundCount < 1)
  throw new Error(`--rounds must be a whole number ≥ 1, got '${values.rounds}'`);
const rounds: Run[] = [];
for (let k = 0; k < roundCount; k++) rounds.push(await measure(`dense (8 × 2,000 req/s, 30 s), round ${k + 1}`, dense));
const median = [...rounds].sort((a, b) => a.requests_per_wall_s - b.requests_per_wall_s)[(rounds.length - 1) >> 1]!;
runs.push({ ...median, scenario: `dense (8 × 2,000 req/s, 30 s), median of ${rounds.length} rounds` });

const peakRssMb = process.resourceUsage().maxRSS / 1024;
const m = describeMachine();
emit(
  {
    title: `bench:sim — simulated requests per wall-clock second (${m.cpu}, ${m.cores} cores, Node ${m.node})`,
    tables: [
      {
        head: [
          "scenario",
          "requests",
          "decisions",
          "of which skipped",
          "wall s",
          "CPU s",
          "requests / wall s",
          "requests / CPU s",
          "decisions / wall s",
          "attainment",
        ],
        rows: runs.map((r) => [
          r.scenario,
          String(r.requests),
          String(r.decisions),
          String(r.decisions_skipped),
          fmt(r.wall_s, 2),
          fmt(r.cpu_s, 2),
          fmt(r.requests_per_wall_s, 0),
          fmt(r.requests_per_cpu_s, 0),
          fmt(r.decisions_per_wall_s, 0),
          `${fmt(r.attainment_pct, 2)} %`,
        ]),
      },
    ],
    figures: {
      machine: { cpu: m.cpu, cores: m.cores, load_average_1m_at_end: loadavg()[0] },
      goal_requests_per_wall_s: GOAL,
      holds: !values["every-decision"],
      scale_requests_per_wall_s: runs[0]!.requests_per_wall_s,
      dense_requests_per_wall_s: runs[1]!.requests_per_wall_s,
      peak_rss_mb: peakRssMb,
      runs,
      dense_rounds: rounds,
    },
    notes: [
      `peak RSS of the whole run: ${fmt(peakRssMb, 0)} MB; load average (1 min) at the end ${fmt(loadavg()[0]!, 2)} on ${m.cores} cores`,
      `dense rounds (req / wall s): ${rounds.map((r) => fmt(r.requests_per_wall_s, 0)).join(", ")}; per CPU s: ${rounds.map((r) => fmt(r.requests_per_cpu_s, 0)).join(", ")}`,
      goalNote("dense", runs[1]!, GOAL.dense),
      goalNote("scale", runs[0]!, GOAL.scale),
      `decisions: those the loop owed (one per active task per interval); skipped: promised by the policy (holds), not computed${values["every-decision"] ? " — none with --every-decision" : ""}`,
    ],
  },
  values.json!,
);

function goalNote(name: string, r: Run, goal: number): string {
  const verdict = r.requests_per_wall_s >= goal ? "met" : "MISSED";
  return `goal ≥ ${goal.toLocaleString("en")} simulated req / wall s on ${name}: ${verdict} (${fmt(r.requests_per_wall_s, 0)})`;
}
