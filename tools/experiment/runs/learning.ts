// A control loop that learns (issue 19), in the simulator, over five seeds (median and range):
//   drift   — a Twitter window on two nodes; at mid-run one node's batches take 1.5× as long. The same
//             arrivals with the online latency model (policies read profiles corrected by what each
//             instance's batches take) and without it (the profiles as measured). Goal: ≥ 5× fewer violations.
//   sharing — four zoo tasks, each on its own Twitter window, under a core budget of half the mean cores
//             they hold with no budget to speak of. Fair sharing (src/autoscaler/sharing.ts) against
//             arrival order (each plan takes what is free when it is carried out). Goal: fewer violations
//             in total and a higher attainment for the worst-served task.
// Writes results.md, results.json (one line per cell) and a chart of the drift run.
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { buildSchedule } from "../../../src/loadgen/schedule.js";
import { loadRepository, type Repository } from "../../../src/repository/repository.js";
import { simulate, simTaskFromRepository, type SimTask, type SimulationResult } from "../../../src/sim/index.js";
import type { ExperimentContext } from "../main.js";
import { timeSeriesSvg } from "../charts.js";
import { markdownTable, writeResults, jsonLines } from "../report.js";
import { fmtSpread, overlaps, safeRatio, spreadOf, type Spread } from "../spread.js";

const Config = z.object({
  trace: z.string(),
  seeds: z.array(z.number().int()).min(5),
  drift: z.object({
    start_s: z.number().nonnegative(),
    duration_s: z.number().positive(),
    mean_rate: z.number().positive(),
    task: z.string(),
    variant: z.string(),
    slo_ms: z.number().positive(),
    nodes: z.object({ count: z.number().int().positive(), cores: z.number().int().positive() }),
    instances_at_start: z.number().int().positive(),
    slowdown: z.object({ node: z.number().int().nonnegative(), factor: z.number().positive(), at_s: z.number() }),
    policies: z.array(z.string()).min(1),
  }),
  sharing: z.object({
    duration_s: z.number().positive(),
    tasks: z
      .array(
        z.object({
          name: z.string(),
          task: z.string(),
          variant: z.string(),
          slo_ms: z.number().positive(),
          mean_rate: z.number().positive(),
          start_s: z.number().nonnegative(),
        }),
      )
      .min(2),
    policies: z.array(z.string()).min(1),
    budget_fraction: z.number().positive().max(1),
    weighted: z.record(z.string(), z.number().positive()),
  }),
});
type Config = z.infer<typeof Config>;

interface DriftSeed {
  seed: number;
  requests: number;
  violations: number;
  /** Violations of requests that arrived after the slowdown. */
  violationsAfter: number;
  meanCores: number;
  /** First change point on the slowed node after the slowdown: delay (ms) and the factor found. */
  detectedAfterMs: number | null;
  factorFound: number | null;
  /** Change points reported anywhere else (nodes or times the slowdown did not touch). */
  otherChanges: number;
}

interface ShareSeed {
  seed: number;
  requests: number;
  violations: number;
  worstAttainmentPct: number;
  worstTask: string;
  perTask: Record<string, number>;
  meanCores: number;
}

export default async function run(ctx: ExperimentContext): Promise<void> {
  const cfg = Config.parse(YAML.parse(await readFile(path.join(ctx.dir, "config.yaml"), "utf8")));
  const repo = await loadRepository(path.resolve("models"), {
    profilesOnly: true,
    tasks: [...new Set([cfg.drift.task, ...cfg.sharing.tasks.map((t) => t.task)])],
  });
  const json: Record<string, unknown>[] = [];

  // ---- drift -------------------------------------------------------------------------------------
  const d = cfg.drift;
  const drift = new Map<string, { without: DriftSeed[]; with: DriftSeed[] }>();
  /** The same runs with no slowdown: what the online model costs, or saves, when nothing drifts. */
  const steady = new Map<string, { without: DriftSeed[]; with: DriftSeed[] }>();
  const chart: Partial<Record<"without" | "with", SimulationResult>> = {};
  for (const policy of d.policies) {
    const cell = { without: [] as DriftSeed[], with: [] as DriftSeed[] };
    const control = { without: [] as DriftSeed[], with: [] as DriftSeed[] };
    for (const seed of cfg.seeds) {
      const times = buildSchedule({
        kind: "trace",
        file: cfg.trace,
        format: "twitter",
        startS: d.start_s,
        durationS: d.duration_s,
        rate: d.mean_rate,
        seed,
      }).times;
      for (const online of [false, true])
        for (const slowed of [true, false]) {
          const task = onlyVariant(
            simTaskFromRepository(repo.tasks.get(d.task)!, { sloMs: d.slo_ms, scaling: policy }),
            d.variant,
          );
          const r = await simulate({
            tasks: [task],
            arrivals: [{ target: d.task, times }],
            deployment: [{ task: d.task, variant: d.variant, cores: 1, count: d.instances_at_start }],
            nodes: d.nodes,
            seed,
            onlineLatency: online,
            slowdowns: slowed
              ? [{ atMs: d.slowdown.at_s * 1000, node: d.slowdown.node, factor: d.slowdown.factor }]
              : [],
            controller: { maxCores: d.nodes.cores },
          });
          const fig = driftFigures(r, seed, d.slowdown.at_s * 1000, `node ${d.slowdown.node}`);
          const into = slowed ? cell : control;
          (online ? into.with : into.without).push(fig);
          json.push({ experiment: slowed ? "drift" : "no-drift", policy, onlineLatency: online, ...fig });
          if (slowed && policy === d.policies[0] && seed === cfg.seeds[0]) chart[online ? "with" : "without"] = r;
        }
      ctx.log(
        `learning: drift ${policy} seed ${seed}: ${cell.without.at(-1)!.violations} → ${cell.with.at(-1)!.violations} violations`,
      );
    }
    drift.set(policy, cell);
    steady.set(policy, control);
  }

  // ---- sharing -----------------------------------------------------------------------------------
  const s = cfg.sharing;
  const sharing = new Map<
    string,
    { want: Spread; budget: number; arrival: ShareSeed[]; fair: ShareSeed[]; weighted: ShareSeed[]; free: ShareSeed[] }
  >();
  for (const policy of s.policies) {
    const runShare = async (seed: number, budget: number | null, sharingMode: "arrival" | "fair", weights = {}) => {
      const tasks = s.tasks.map((t) => {
        const task = onlyVariant(
          simTaskFromRepository(repo.tasks.get(t.task)!, { name: t.name, sloMs: t.slo_ms, scaling: policy }),
          t.variant,
        );
        task.weight = (weights as Record<string, number>)[t.name] ?? 1;
        return task;
      });
      const arrivals = s.tasks.map((t) => ({
        target: t.name,
        times: buildSchedule({
          kind: "trace",
          file: cfg.trace,
          format: "twitter",
          startS: t.start_s,
          durationS: s.duration_s,
          rate: t.mean_rate,
          seed,
        }).times,
      }));
      const r = await simulate({
        tasks,
        arrivals,
        deployment: s.tasks.map((t) => ({ task: t.name, variant: t.variant, cores: 1 })),
        // no budget to speak of: one node per task, as large as the largest instance
        nodes: budget === null ? { count: 8, cores: 8 } : [budget],
        seed,
        controller: { maxCores: 8, sharing: sharingMode },
      });
      return shareFigures(r, seed);
    };
    const free: ShareSeed[] = [];
    for (const seed of cfg.seeds) free.push(await runShare(seed, null, "arrival"));
    const want = spreadOf(free.map((f) => f.meanCores));
    const budget = Math.max(s.tasks.length, Math.round(want.median * s.budget_fraction));
    const cell = {
      want,
      budget,
      arrival: [] as ShareSeed[],
      fair: [] as ShareSeed[],
      weighted: [] as ShareSeed[],
      free,
    };
    for (const seed of cfg.seeds) {
      cell.arrival.push(await runShare(seed, budget, "arrival"));
      cell.fair.push(await runShare(seed, budget, "fair"));
      cell.weighted.push(await runShare(seed, budget, "fair", s.weighted));
      ctx.log(
        `learning: sharing ${policy} seed ${seed} (budget ${budget}): arrival ${cell.arrival.at(-1)!.violations}, fair ${cell.fair.at(-1)!.violations} violations`,
      );
    }
    for (const [mode, list] of Object.entries({
      unconstrained: free,
      arrival: cell.arrival,
      fair: cell.fair,
      weighted: cell.weighted,
    }))
      for (const f of list)
        json.push({ experiment: "sharing", policy, mode, budget: mode === "unconstrained" ? null : budget, ...f });
    sharing.set(policy, cell);
  }

  await writeFile(
    path.join(ctx.dir, "results.json"),
    jsonLines({ command: "npm run experiment learning", config: cfg, runs: json }),
  );
  await report(ctx, cfg, drift, steady, sharing, chart as Record<"without" | "with", SimulationResult>);
}

function onlyVariant(t: SimTask, variant: string): SimTask {
  const v = t.variants.filter((x) => x.name === variant);
  if (v.length === 0) throw new Error(`task ${t.name} has no profiled variant '${variant}'`);
  return { ...t, variants: v };
}

function driftFigures(r: SimulationResult, seed: number, atMs: number, place: string): DriftSeed {
  const after = Math.floor(atMs / 1000);
  const changes = r.decisions.flatMap((x) => x.correction?.changes ?? []);
  const hit = changes.find((c) => c.at >= atMs && c.place === place);
  return {
    seed,
    requests: r.summary.requests,
    violations: r.summary.violations,
    violationsAfter: r.series.violations.slice(after).reduce((a, b) => a + b, 0),
    meanCores: r.summary.meanCores,
    detectedAfterMs: hit ? Math.round(hit.at - atMs) : null,
    factorFound: hit ? hit.to : null,
    otherChanges: changes.filter((c) => c !== hit && (c.at < atMs || c.place !== place)).length,
  };
}

function shareFigures(r: SimulationResult, seed: number): ShareSeed {
  const per = Object.entries(r.summary.perTarget).map(([k, v]) => [k, v.attainmentPct] as const);
  const worst = per.reduce((a, b) => (b[1] < a[1] ? b : a));
  return {
    seed,
    requests: r.summary.requests,
    violations: r.summary.violations,
    worstAttainmentPct: worst[1],
    worstTask: worst[0],
    perTask: Object.fromEntries(per),
    meanCores: r.summary.meanCores,
  };
}

const sp = (xs: readonly number[]) => spreadOf(xs);

async function report(
  ctx: ExperimentContext,
  cfg: Config,
  drift: Map<string, { without: DriftSeed[]; with: DriftSeed[] }>,
  steady: Map<string, { without: DriftSeed[]; with: DriftSeed[] }>,
  sharing: Map<
    string,
    { want: Spread; budget: number; arrival: ShareSeed[]; fair: ShareSeed[]; weighted: ShareSeed[]; free: ShareSeed[] }
  >,
  chart: { without: SimulationResult; with: SimulationResult },
): Promise<void> {
  const d = cfg.drift;
  const s = cfg.sharing;
  const driftRows: (string | number)[][] = [];
  const driftGoals: string[] = [];
  for (const [policy, c] of drift) {
    const fewer = sp(c.without.map((w, i) => safeRatio(w.violations, c.with[i]!.violations)));
    const wo = sp(c.without.map((x) => x.violations));
    const wi = sp(c.with.map((x) => x.violations));
    const met = fewer.median >= 5 && !overlaps(wo, wi);
    driftGoals.push(`${policy}: ${met ? "met" : "missed"} (${fmtSpread(fewer, 1, "×")})`);
    const det = c.with.map((x) => x.detectedAfterMs).filter((x): x is number => x !== null);
    const found = c.with.map((x) => x.factorFound).filter((x): x is number => x !== null);
    driftRows.push([
      policy,
      fmtSpread(wo, 0),
      fmtSpread(wi, 0),
      fmtSpread(fewer, 1, "×"),
      `${fmtSpread(sp(c.without.map((x) => x.violationsAfter)), 0)} → ${fmtSpread(sp(c.with.map((x) => x.violationsAfter)), 0)}`,
      `${fmtSpread(sp(c.without.map((x) => x.meanCores)), 2)} → ${fmtSpread(sp(c.with.map((x) => x.meanCores)), 2)}`,
      `${det.length}/${c.with.length}: ${fmtSpread(sp(det), 0, " ms")}, ×${fmtSpread(sp(found), 2)}`,
      fmtSpread(sp(c.with.map((x) => x.otherChanges)), 0),
    ]);
  }
  const steadyRows = [...steady].map(([policy, c]) => [
    policy,
    `${fmtSpread(sp(c.without.map((x) => x.violations)), 0)} → ${fmtSpread(sp(c.with.map((x) => x.violations)), 0)}`,
    `${fmtSpread(sp(c.without.map((x) => x.meanCores)), 2)} → ${fmtSpread(sp(c.with.map((x) => x.meanCores)), 2)}`,
    fmtSpread(sp(c.with.map((x) => x.otherChanges)), 0),
  ]);
  const shareRows: (string | number)[][] = [];
  const shareGoals: string[] = [];
  const perTaskRows: (string | number)[][] = [];
  for (const [policy, c] of sharing) {
    const fewer = sp(c.arrival.map((a, i) => safeRatio(a.violations, c.fair[i]!.violations)));
    const va = sp(c.arrival.map((x) => x.violations));
    const vf = sp(c.fair.map((x) => x.violations));
    const wa = sp(c.arrival.map((x) => x.worstAttainmentPct));
    const wf = sp(c.fair.map((x) => x.worstAttainmentPct));
    const lower = c.fair.filter((f, i) => f.violations < c.arrival[i]!.violations).length;
    const raised = c.fair.filter((f, i) => f.worstAttainmentPct > c.arrival[i]!.worstAttainmentPct).length;
    shareGoals.push(
      `${policy}: fewer violations ${lower === c.fair.length ? "met" : "missed"} (${lower}/${c.fair.length} seeds; ${fmtSpread(fewer, 2, "×")} fewer), worst task's attainment raised ${raised === c.fair.length ? "met" : "missed"} (${raised}/${c.fair.length} seeds)`,
    );
    const worstOf = (l: ShareSeed[]) => [...new Set(l.map((x) => x.worstTask))].join(", ");
    shareRows.push([
      policy,
      `${fmtSpread(c.want, 2)} → ${c.budget}`,
      fmtSpread(sp(c.free.map((x) => x.violations)), 0),
      `${fmtSpread(va, 0)} → ${fmtSpread(vf, 0)}`,
      fmtSpread(fewer, 2, "×"),
      `${fmtSpread(wa, 1, " %")} (${worstOf(c.arrival)}) → ${fmtSpread(wf, 1, " %")} (${worstOf(c.fair)})`,
      `${fmtSpread(sp(c.arrival.map((x) => x.meanCores)), 2)} / ${fmtSpread(sp(c.fair.map((x) => x.meanCores)), 2)}`,
    ]);
    for (const t of s.tasks) {
      const m = (l: ShareSeed[]) => fmtSpread(sp(l.map((x) => x.perTask[t.name] ?? Number.NaN)), 1, " %");
      perTaskRows.push([policy, t.name, s.weighted[t.name] ?? 1, m(c.free), m(c.arrival), m(c.fair), m(c.weighted)]);
    }
  }
  const weightsText = Object.entries(s.weighted)
    .map(([k, v]) => `${k} weight ${v}`)
    .join(", ");
  const svg = await timeSeriesSvg(
    `${d.task}/${d.variant} under ${d.policies[0]}, seed ${cfg.seeds[0]}: node ${d.slowdown.node} ${d.slowdown.factor}× slower from ${d.slowdown.at_s} s`,
    [
      { title: "arrivals", unit: "req/s", lines: [{ name: "arrivals", values: chart.with.series.arrivals }] },
      {
        title: "violations per second",
        unit: "req/s",
        lines: [
          { name: "profiles only", values: chart.without.series.violations },
          { name: "online model", values: chart.with.series.violations },
        ],
      },
      {
        title: "cores held",
        unit: "cores",
        lines: [
          { name: "profiles only", values: chart.without.series.cores },
          { name: "online model", values: chart.with.series.cores },
        ],
      },
    ],
  );
  await writeResults(
    ctx.dir,
    {
      title: "learning: a control loop that learns (online latency model, fair sharing of a core budget)",
      command: "npm run experiment learning",
      intro: [
        `**Setting.** The simulator (the serving core the server runs: router, scheduling policy, control loop, on-demand scaler) with the zoo's measured profiles as the simulated instances' batch times; ${cfg.seeds.length} seeds (${cfg.seeds.join(", ")}), each drawing the arrivals within every second and every batch time. Figures are the median over seeds with the range in brackets; a ratio is computed per seed (the same arrivals for both sides).`,
        `**Drift.** Twitter seconds ${d.start_s}–${d.start_s + d.duration_s} rescaled to a mean of ${d.mean_rate} req/s, task \`${d.task}\` on \`${d.variant}\` (SLO ${d.slo_ms} ms), ${d.nodes.count} nodes × ${d.nodes.cores} cores (new instances spread over them), ${d.instances_at_start} 1-core instances at the start; from ${d.slowdown.at_s} s every batch that starts on node ${d.slowdown.node} takes ${d.slowdown.factor}× as long (SimCluster.slowNode). "profiles only": the policies read the profiles as measured; "online model": the serving core's online latency model (src/core/online-latency.ts) corrects them from every batch — per instance, with change points — and the scheduling policy (EDF) and the scaling policy read the corrected model.`,
        `**Sharing.** ${s.tasks.length} tasks from the zoo, each on its own ${s.duration_s}-s window of the Twitter trace: ${s.tasks.map((t) => `\`${t.name}\` (${t.task}/${t.variant}, SLO ${t.slo_ms} ms, ${t.mean_rate} req/s, from second ${t.start_s})`).join(", ")}. "want": the mean cores the tasks hold together with no budget to speak of (8 nodes × 8 cores); the budget is ${s.budget_fraction} of that, on one node. "arrival": each plan is carried out with what is free (the actuator does what fits; idle instances are reclaimed after 30 s), as sloserve did before; "fair": when the tasks' latest plans want more than the budget, the control loop allocates it by the objective (the default: the most Σ w·λ·ln(expected attainment), each task an M/M/c/K queue whose blocked arrivals are its violations; exact DP) and cuts each plan to its share. The weighted row runs fair sharing again with ${weightsText}.`,
      ],
      sections: [
        {
          heading: "Drift: a node 1.5× slower mid-run",
          body: [
            markdownTable(
              [
                "policy",
                "violations, profiles only",
                "violations, online model",
                "fewer (per seed)",
                "after the slowdown",
                "mean cores",
                "slowdown found: seeds, delay, factor",
                "other change points",
              ],
              driftRows,
            ),
            `Goal: ≥ 5× fewer violations with the online model, the seeds' ranges not overlapping — ${driftGoals.join("; ")}. "slowdown found": the first change point on node ${d.slowdown.node}'s instances after the slowdown, how long after it and the factor over the profile it moved to; "other change points": change points anywhere else or before the slowdown (false alarms).`,
            `![violations and cores with and without the online model](drift.svg)`,
            `The same arrivals with no slowdown (a control: what the online model does when nothing drifts; the simulated batch times are the profile's, so its factors stay near 1):`,
            markdownTable(
              ["policy", "violations, profiles only → online model", "mean cores", "change points (false alarms)"],
              steadyRows,
            ),
          ],
        },
        {
          heading: "Sharing: half the cores the tasks want",
          body: [
            markdownTable(
              [
                "policy",
                "want → budget (cores)",
                "violations, no budget",
                "violations, arrival → fair",
                "fewer (per seed)",
                "worst task's attainment, arrival → fair",
                "mean cores arrival / fair",
              ],
              shareRows,
            ),
            `Goals: fair sharing lowers total violations and raises the worst-served task's attainment, in every seed — ${shareGoals.join("; ")}.`,
            markdownTable(
              ["policy", "task", "weight (weighted run)", "no budget", "arrival", "fair", "fair, weighted"],
              perTaskRows,
            ),
            `Attainment per task. The decision log of a fair run names, at every decision the budget binds, what each task wanted and was granted and who was cut by how much (\`sharing.cut\`, e.g. "ocr-rec: 7 → 3 cores (−4)").`,
          ],
        },
      ],
    },
    { "drift.svg": svg },
  );
}
