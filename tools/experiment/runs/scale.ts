// Does the product keep attainment when it runs a large cluster, and how long does simulating a day take?
import { readFile } from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { loadRepository } from "../../../src/repository/repository.js";
import { timeSeriesSvg } from "../charts.js";
import type { ExperimentContext } from "../main.js";
import { markdownTable, num, pct, writeResults } from "../report.js";
import { scaleScenario } from "../scale.js";
import { simulate } from "../../../src/sim/index.js";

const Config = z.object({
  azure: z.string(),
  tasks: z.number().int().positive(),
  nodes: z.number().int().positive(),
  cores_per_node: z.number().int().positive(),
  minutes: z.number().int().positive(),
  template: z.string(),
  scaling: z.string(),
  scheduling: z.string(),
  seed: z.number().int(),
});

export default async function run(ctx: ExperimentContext): Promise<void> {
  const cfg = Config.parse(YAML.parse(await readFile(path.join(ctx.dir, "config.yaml"), "utf8")));
  const repo = await loadRepository(path.resolve("models"), { profilesOnly: true });
  const { config, requests } = scaleScenario(repo, {
    azureFile: cfg.azure,
    tasks: cfg.tasks,
    nodes: cfg.nodes,
    coresPerNode: cfg.cores_per_node,
    minutes: cfg.minutes,
    template: cfg.template,
    scaling: cfg.scaling,
    scheduling: cfg.scheduling,
    seed: cfg.seed,
  });
  ctx.log(
    `scale: ${cfg.tasks} tasks, ${requests} requests over ${cfg.minutes} min on ${cfg.nodes} × ${cfg.cores_per_node} cores`,
  );
  const r = await simulate(config);
  const s = r.summary;
  // what the loop owed (one per active task per interval), whether computed or promised by the policy
  const decisions = s.decisions + s.decisionsSkipped;
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  const perMinute = (xs: ArrayLike<number>, f: (chunk: number[]) => number) =>
    Array.from({ length: Math.ceil(xs.length / 60) }, (_, m) => f(Array.from(xs).slice(m * 60, m * 60 + 60)));
  const sum = (c: number[]) => c.reduce((a, b) => a + b, 0);
  const svg = await timeSeriesSvg(
    `scale — ${cfg.tasks} tasks on ${cfg.nodes} × ${cfg.cores_per_node} cores, one day`,
    [
      {
        title: "arrivals per minute",
        unit: "requests",
        lines: [{ name: "arrivals", values: perMinute(r.series.arrivals, sum) }],
      },
      {
        title: "SLO violations per minute",
        unit: "requests",
        lines: [{ name: cfg.scaling, values: perMinute(r.series.violations, sum) }],
      },
      {
        title: "cores held (minute average)",
        unit: "cores",
        lines: [{ name: cfg.scaling, values: perMinute(r.series.cores, (c) => sum(c) / c.length) }],
      },
    ],
    { timeUnit: "time (min)" },
  );
  await writeResults(
    ctx.dir,
    {
      title: "scale: 500 tasks, 1,000 nodes, one day",
      command: "npm run experiment scale",
      intro: [
        `**Setting.** ${cfg.tasks} tasks, each a copy of the \`${cfg.template}\` zoo task (its five variants with the profiles measured on this machine), mapped onto the ${cfg.tasks} busiest functions of ../shared/traces/azure-functions-2019 (per-minute counts for ${cfg.minutes} minutes, spread as Poisson); ${cfg.nodes} nodes × ${cfg.cores_per_node} cores; scheduling ${cfg.scheduling}, scaling ${cfg.scaling} (decisions at the policy's own interval, 0.5 s for Themis, per task; a task idle for its whole 60-s forecast history with a steady policy is skipped; with holds, a decision whose answer Themis promised while only time passes is counted, not computed — the plans and so all results are those of computing it, test/sim/equivalence.test.ts); each task starts with one 1-core instance of its most accurate variant.`,
      ],
      sections: [
        {
          heading: "Results",
          body: [
            markdownTable(
              [
                "requests",
                "SLO attainment",
                "violations",
                "p50 ms",
                "p99 ms",
                "mean cores",
                "peak cores",
                "decisions",
                "of which skipped (held)",
                "simulated",
                "wall time",
                "simulated req / wall s",
                "peak RSS",
              ],
              [
                [
                  s.requests,
                  pct(s.attainmentPct, 3),
                  s.violations,
                  num(s.latencyP50Ms, 2),
                  num(s.latencyP99Ms, 2),
                  num(s.meanCores, 1),
                  num(s.peakCores, 0),
                  decisions,
                  s.decisionsSkipped,
                  `${num(s.simulatedSeconds / 3600, 2)} h`,
                  `${num(s.wallMs / 1000, 1)} s`,
                  num(s.requestsPerWallSecond, 0),
                  `${num(peakRssMb, 0)} MB`,
                ],
              ],
            ),
            "![scale](scale.svg)",
            "**Reading.** The Azure file's 500 busiest functions carry about half a million invocations in the day — a few requests per second across the whole cluster — so without holds the simulation's time goes to the control loop (one Themis decision per active task every half second, each solving its DPs), not to the requests; holds skip the decisions whose answer is known, and `npm run bench:sim` measures both settings.",
          ],
        },
      ],
    },
    { "scale.svg": svg },
  );
}
