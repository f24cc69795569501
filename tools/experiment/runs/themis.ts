// Themis' headline (EXPERIMENTS.md): two-stage vertical-then-horizontal scaling against horizontal-only,
// vertical-only and the production autoscalers, on the paper's pipelines and Twitter window, then on
// sloserve's own measured models and on Azure Functions. Everything runs in the simulator, which drives
// the product's own router, policies and control loop.
import { readFile } from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import type { Decision } from "../../../src/autoscaler/controller.js";
import { horizontal } from "../../../src/autoscaler/planner/dp.js";
import { THEMIS_PIPELINES } from "../../../src/autoscaler/planner/pipelines.js";
import { MaxTrendForecaster } from "../../../src/autoscaler/forecast/max-trend.js";
import { loadRepository } from "../../../src/repository/repository.js";
import type { ExperimentContext } from "../main.js";
import { timeSeriesSvg } from "../charts.js";
import { fittedVariant, meanOf, measuredTiming, median, perSecond, slug } from "../common.js";
import { lstmTable, tableForecaster, type TableForecaster } from "../forecast-table.js";
import { markdownTable, num, pct, ratio, writeResults } from "../report.js";
import { simulate, simVariantFromRepository, type SimulationResult, type SimVariant } from "../../../src/sim/index.js";
import {
  arrivalsFromCounts,
  azureAggregateSeries,
  countsFromArrivals,
  divideCounts,
  loadTwitterRates,
  PAPER_WINDOWS,
  scaleToMeanRate,
  sliceSeries,
  type RateSeries,
} from "../../../src/traces/index.js";

const Config = z.object({
  trace: z.string(),
  azure: z.string(),
  seed: z.number().int(),
  nodes: z.object({ count: z.number().int().positive(), cores: z.number().int().positive() }),
  c_max: z.number().int().positive(),
  decision_interval_ms: z.number().positive(),
  spread: z.number().min(1),
  timing_from: z.object({ task: z.string(), variant: z.string() }),
  kubernetes_cold_start_ms: z.number().positive(),
  policies: z.array(z.string()).min(1),
  measured: z.object({
    stages: z.array(z.string()).min(1),
    slo_ms: z.number().positive(),
    mean_rate: z.number().positive(),
    azure_minutes: z.number().int().positive(),
  }),
});
type Config = z.infer<typeof Config>;

interface Scenario {
  name: string;
  sloMs: number;
  stages: SimVariant[];
  /** Per-second arrival counts. */
  load: RateSeries;
  bMax: number;
}

interface Row {
  scenario: string;
  policy: string;
  result: SimulationResult;
  /** Share of the pipeline's decisions taken in vertical mode (themis), NaN for other policies. */
  verticalShare: number;
}

export default async function run(ctx: ExperimentContext): Promise<void> {
  const cfg = Config.parse(YAML.parse(await readFile(path.join(ctx.dir, "config.yaml"), "utf8")));
  const repo = await loadRepository(path.resolve("models"));
  const { coldStart, resize } = measuredTiming(repo, cfg.timing_from.task, cfg.timing_from.variant);
  const twitter = loadTwitterRates(cfg.trace);
  const window = sliceSeries(twitter, PAPER_WINDOWS.themis);

  const paper: Scenario[] = THEMIS_PIPELINES.map((p) => ({
    name: p.name,
    sloMs: p.sloMs,
    bMax: p.bMax,
    stages: p.stages.map((fit, i) =>
      fittedVariant(`${p.name}-${i}`, fit, { coldStart, resize, maxBatch: p.bMax, spread: cfg.spread }),
    ),
    load: divideCounts(window, p.traceDivisor, { rounding: "none", minRate: 1 }),
  }));

  const vision = repo.tasks.get("vision")!;
  const measuredStages = cfg.measured.stages.map((v) => simVariantFromRepository(vision.variants.get(v)!));
  const azure = azureAggregateSeries(cfg.azure, { firstMinute: 0, minutes: cfg.measured.azure_minutes });
  const measured: Scenario[] = [
    {
      name: `vision ${cfg.measured.stages.join("→")} · Twitter`,
      sloMs: cfg.measured.slo_ms,
      bMax: 8,
      stages: measuredStages,
      load: scaleToMeanRate(window, cfg.measured.mean_rate, { rounding: "none" }),
    },
    {
      name: `vision ${cfg.measured.stages.join("→")} · Azure`,
      sloMs: cfg.measured.slo_ms,
      bMax: 8,
      stages: measuredStages,
      load: scaleToMeanRate(perSecond(azure), cfg.measured.mean_rate, { rounding: "none" }),
    },
  ];

  const rows: Row[] = [];
  const runOne = async (
    s: Scenario,
    policy: string,
    opts: { forecaster?: "lstm"; stages?: SimVariant[]; label?: string } = {},
  ) => {
    const stages = opts.stages ?? s.stages;
    const label = opts.label ?? policy;
    ctx.log(`themis: ${s.name} · ${label}`);
    const modes = { vertical: 0, all: 0 };
    const result = await simulateScenario(cfg, { ...s, stages }, policy, opts.forecaster === "lstm", (d) => {
      if (d.task !== `${slug(s.name)}-s0`) return;
      modes.all++;
      if (d.plan.mode === "vertical") modes.vertical++;
    });
    rows.push({
      scenario: s.name,
      policy: label,
      result,
      verticalShare: policy === "themis" ? modes.vertical / Math.max(1, modes.all) : NaN,
    });
  };
  for (const s of [...paper, ...measured]) {
    for (const p of cfg.policies) await runOne(s, p);
    await runOne(s, "themis", { forecaster: "lstm", label: "themis (lstm)" });
  }
  // The authors' pods took seconds to start: horizontal-only pays that on every scale-out.
  for (const s of paper) {
    const slow = s.stages.map((v) => ({
      ...v,
      coldStart: cfg.kubernetes_cold_start_ms,
      loadMs: cfg.kubernetes_cold_start_ms,
    }));
    await runOne(s, "themis", { stages: slow, label: `themis, ${cfg.kubernetes_cold_start_ms / 1000}-s cold start` });
    await runOne(s, "horizontal", {
      stages: slow,
      label: `horizontal, ${cfg.kubernetes_cold_start_ms / 1000}-s cold start`,
    });
  }

  const charts: Record<string, string> = {};
  for (const s of [...paper, ...measured]) {
    const mine = rows.filter((r) => r.scenario === s.name && cfg.policies.includes(r.policy));
    charts[`${slug(s.name)}.svg`] = await timeSeriesSvg(`Themis experiment — ${s.name}`, [
      { title: "arrival rate", unit: "req/s", lines: [{ name: "arrivals", values: s.load.counts }] },
      {
        title: "SLO violations per second",
        unit: "requests",
        lines: mine.map((r) => ({ name: r.policy, values: r.result.series.violations })),
      },
      {
        title: "cores held",
        unit: "cores",
        lines: mine.map((r) => ({ name: r.policy, values: r.result.series.cores })),
      },
    ]);
  }

  const table = (names: string[]) =>
    markdownTable(
      [
        "scenario",
        "policy",
        "requests",
        "violations",
        "mean cores",
        "p99 ms",
        "this ÷ themis' violations",
        "cores vs horizontal",
        "decisions vertical",
      ],
      rows
        .filter((r) => names.includes(r.scenario))
        .map((r) => {
          const themis = rows.find((x) => x.scenario === r.scenario && x.policy === "themis")!.result.summary;
          const hor = rows.find((x) => x.scenario === r.scenario && x.policy === "horizontal")!.result.summary;
          const s = r.result.summary;
          return [
            r.scenario,
            r.policy,
            s.requests,
            pct(s.violationPct),
            num(s.meanCores, 2),
            num(s.latencyP99Ms, 0),
            ratio(s.violationPct, themis.violationPct),
            pct(((s.meanCores - hor.meanCores) / hor.meanCores) * 100, 1),
            Number.isFinite(r.verticalShare) ? pct(r.verticalShare * 100, 0) : "",
          ];
        }),
    );
  const goals = [...paper, ...measured].map((s) => {
    const get = (p: string) => rows.find((r) => r.scenario === s.name && r.policy === p)!.result.summary;
    const t = get("themis");
    const h = get("horizontal");
    const v = get("vertical");
    const fewer = (x: number) => (t.violationPct === 0 ? (x > 0 ? Infinity : 1) : x / t.violationPct);
    return {
      scenario: s.name,
      vsH: fewer(h.violationPct),
      vsV: fewer(v.violationPct),
      cores: (t.meanCores - h.meanCores) / h.meanCores,
    };
  });
  const verdict = (x: number) => (x >= 10 ? "met" : `missed (${Number.isFinite(x) ? x.toFixed(1) : "∞"}×)`);
  await writeResults(
    ctx.dir,
    {
      title: "Themis: two-stage vertical + horizontal scaling",
      command: "npm run experiment themis",
      intro: [
        "**Setting.** The paper's pipelines and fitted latencies l(b,c) = α·b/c + β·b + γ/c + ζ (EXPERIMENTS.md), C_max = 8, B_max = 8 (4 for nlp), on the 660-s Twitter window starting at second 15·86400 + 84·60 + 450, each second's count divided by 4.384 / 8.5625 / 21 (at least 1 req/s) and spread as Poisson arrivals. Every stage queues by the end-to-end deadline (EDF); decisions every 1 s; the forecast of the next 10 s is the max/trend forecaster unless the row says lstm (the LSTM trained on days 1–14, run over the same histories). Every policy starts from the horizontal plan for the first 10 s.",
        `**Measured, not assumed.** Batch times are drawn around the paper's fits with a p99/p50 spread of ${cfg.spread}; the cold start (${num(median(coldStart), 0)} ms median) and in-place resize (${num(median(resize), 0)} ms median) are sloserve's own, measured on this machine for ${cfg.timing_from.task}/${cfg.timing_from.variant}. The authors' Kubernetes pods took seconds to start; the rows marked "${cfg.kubernetes_cold_start_ms / 1000}-s cold start" show what that does.`,
        "**Policies.** themis (the July-2024 switching rule, 5 agreeing decisions to consolidate), horizontal (FA2-like: the horizontal DP, 1-core instances), vertical (vertical-only: Themis' vertical DP, instances fixed, cores up and down), static (the horizontal plan for the window's peak, fixed), kpa (Knative), ray (Ray Serve). themis, horizontal and vertical plan the whole pipeline; static, kpa and ray scale each stage on its own.",
      ],
      sections: [
        {
          heading: "The paper's pipelines",
          body: [table(paper.map((s) => s.name)), ...paper.map((s) => `![${s.name}](${slug(s.name)}.svg)`)],
        },
        {
          heading: "sloserve's measured vision models, Twitter and Azure Functions",
          body: [
            `A two-stage pipeline ${cfg.measured.stages.join(" → ")} with profiles measured on this machine (batch times drawn from the measured p50/p99), SLO ${cfg.measured.slo_ms} ms; the Twitter window and the first ${cfg.measured.azure_minutes} minutes of the Azure Functions aggregate (per-minute counts spread as Poisson), both rescaled to a mean of ${cfg.measured.mean_rate} req/s.`,
            table(measured.map((s) => s.name)),
            ...measured.map((s) => `![${s.name}](${slug(s.name)}.svg)`),
          ],
        },
        {
          heading: "Goals",
          body: [
            "Goals of the issue: themis ≥ 10× fewer violations than horizontal-only and than vertical-only, with mean cores within 10 % of horizontal-only. Where missed, the reading below says why.",
            markdownTable(
              [
                "scenario",
                "≥ 10× fewer violations than horizontal",
                "≥ 10× fewer than vertical",
                "mean cores within 10 % of horizontal",
              ],
              goals.map((g) => [
                g.scenario,
                verdict(g.vsH),
                verdict(g.vsV),
                Math.abs(g.cores) <= 0.1 ? `met (${pct(g.cores * 100, 1)})` : `missed (${pct(g.cores * 100, 1)})`,
              ]),
            ),
          ],
        },
        { heading: "Reading", body: reading(rows, cfg.kubernetes_cold_start_ms) },
      ],
    },
    charts,
  );
}

/** What the run shows, with its own numbers. */
function reading(rows: Row[], slowMs: number): string[] {
  const slow = (scenario: string, policy: string) =>
    rows.find((r) => r.scenario === scenario && r.policy === `${policy}, ${slowMs / 1000}-s cold start`)?.result
      .summary;
  const fewer = (scenario: string) => {
    const t = slow(scenario, "themis");
    const h = slow(scenario, "horizontal");
    return t && h
      ? t.violationPct === 0
        ? h.violationPct === 0
          ? "no"
          : "all of the"
        : `${(h.violationPct / t.violationPct).toFixed(0)}× fewer`
      : "?";
  };
  return [
    `**Violations.** Themis' in-place vertical step absorbs the ramp without waiting for cold starts: with the authors' seconds-long pod starts it has ${fewer("video")} violations than horizontal-only on video and ${fewer("audio-sentiment")} on audio-sentiment. With sloserve's own cold start (about a second), horizontal-only scales out almost as fast as themis resizes, so its advantage shrinks, and where no policy misses (nlp, the measured Twitter run) there is nothing to divide. Vertical-only cannot add instances: on audio-sentiment (γ = 160 ms of serial work per batch) eight cores per instance are not enough and most requests miss.`,
    ...READING_REST,
  ];
}

const READING_REST = [
  "**Cost.** The cost goal is missed, by a wide margin on the paper's pipelines. The 'decisions vertical' column says why: the July-2024 rule goes vertical whenever the horizontal plan for the forecast needs more instances than the plan for the present 2-s rate. The forecast is a maximum over the next 10 s, the present rate a 2-s mean; on Poisson arrivals the first exceeds the second almost always, so themis spends most decisions vertical, where cores only go up and a shortfall is covered by extra instances of C_max = 8 cores. It consolidates only when five decisions in a row agree, which on a ramp rarely happens. The LSTM forecaster, whose forecasts sit closer to the present on a steady plateau, cuts the cores of audio-sentiment and nlp by a quarter to a half (not video's), but not to horizontal's level. The revised 2025 rule (max over the last 5 s for the present, scale in after 10 s of stability, one spare instance when leaving vertical) addresses exactly this; it is not implemented yet.",
  "**Baselines.** Knative's published defaults (a concurrency target of 100 × 0.7 per pod) hardly ever scale a model server whose instances hold a few requests: they stay at the initial instances and miss most deadlines; Ray Serve's 30-s upscale delay lags the ramp, and its 600-s downscale delay keeps the peak's instances to the end.",
];

/** One policy on one scenario: the pipeline's stages as tasks; pipeline-capable policies plan them jointly. */
async function simulateScenario(
  cfg: Config,
  s: Scenario,
  policy: string,
  lstm: boolean,
  log: (d: Decision) => void,
): Promise<SimulationResult> {
  const names = s.stages.map((v, i) => `${slug(s.name)}-s${i}`);
  const models = s.stages.map((v) => ({ ...v.fit }));
  const bMax = Math.min(s.bMax, ...s.stages.map((v) => v.maxBatch));
  const plan = (lambda: number) =>
    horizontal(models, { sloMs: s.sloMs, lambda, bMax, cMax: 1, semantics: "v1", unitMs: 1 });
  const counts = s.load.counts;
  const start = plan(Math.max(1, meanOf(counts, 0, 10)));
  const peak = plan(Math.max(...Array.from(counts)));
  const joint = ["themis", "horizontal", "vertical"].includes(policy);
  const arrivals = arrivalsFromCounts(s.load, { spread: "poisson", seed: cfg.seed });
  const pipeline = `${slug(s.name)}`;
  // the control loop sees whole arrivals per second at the pipeline's entry: the LSTM's table is built from those
  const table = lstm ? await lstmTable(countsFromArrivals(arrivals).counts) : null;
  let made: TableForecaster | undefined;
  const forecaster = table ? () => (made = tableForecaster(table)) : () => new MaxTrendForecaster();
  const result = await simulate({
    tasks: s.stages.map((v, i) => ({
      name: names[i]!,
      sloMs: s.sloMs,
      variants: [{ ...v, maxBatch: bMax }],
      scheduling: "edf",
      scaling: joint ? undefined : policy,
      scalingSettings: { staticInstances: peak?.stages[i]!.replicas ?? 1, staticCores: 1 },
    })),
    pipelines: [{ name: pipeline, stages: names, sloMs: s.sloMs, scaling: joint ? policy : undefined }],
    arrivals: [{ target: pipeline, times: arrivals.times }],
    deployment: s.stages.map((v, i) => ({
      task: names[i]!,
      variant: v.name,
      cores: 1,
      count: start?.stages[i]!.replicas ?? 1,
    })),
    nodes: cfg.nodes,
    seed: cfg.seed,
    controller: { intervalMs: cfg.decision_interval_ms, maxCores: cfg.c_max, forecaster, log },
  });
  if (made && made.misses > 0)
    throw new Error(
      `the LSTM table missed ${made.misses} histories: the simulated meter saw other counts than the arrivals`,
    );
  return result;
}
