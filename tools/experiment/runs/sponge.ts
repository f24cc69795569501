// Sponge's headline (EXPERIMENTS.md): with per-request budgets that shrink and grow with the network,
// deadline-ordered batching plus in-place vertical scaling against an FA2-like horizontal autoscaler
// and static instances. The simulator drives the product's own EDF scheduler and scaling policies.
import { readFile } from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { loadRepository } from "../../../src/repository/repository.js";
import { timeSeriesSvg } from "../charts.js";
import { fittedVariant, measuredTiming, slug } from "../common.js";
import type { ExperimentContext } from "../main.js";
import { markdownTable, num, pct, ratio, writeResults } from "../report.js";
import { simulate, simVariantFromRepository, type SimulationResult, type SimVariant } from "../../../src/sim/index.js";
import { attachBudgets, KIB, loadBandwidthLog, poissonArrivals, type ArrivalTrace } from "../../../src/traces/index.js";

const Config = z.object({
  bandwidth_log: z.string(),
  seed: z.number().int(),
  slo_ms: z.number().positive(),
  payload_kib: z.number().positive(),
  rates: z.array(z.number().positive()).min(1),
  duration_s: z.number().positive(),
  c_max: z.number().int().positive(),
  max_instances: z.number().int().positive(),
  b_max: z.number().int().positive(),
  spread: z.number().min(1),
  detector: z.object({ alpha: z.number(), beta: z.number(), gamma: z.number(), zeta: z.number() }),
  timing_from: z.object({ task: z.string(), variant: z.string() }),
  measured: z.object({ task: z.string(), variant: z.string() }),
});
type Config = z.infer<typeof Config>;

const POLICIES = [
  { label: "sponge (EDF + vertical)", scaling: "vertical", scheduling: "edf", start: { count: 1, cores: 1 } },
  { label: "FA2-like horizontal", scaling: "horizontal", scheduling: "fifo", start: { count: 1, cores: 1 } },
  { label: "static 8 cores", scaling: undefined, scheduling: "edf", start: { count: 1, cores: 8 } },
  { label: "static 16 cores", scaling: undefined, scheduling: "edf", start: { count: 1, cores: 16 } },
] as const;

interface Row {
  model: string;
  rate: number;
  policy: string;
  result: SimulationResult;
}

export default async function run(ctx: ExperimentContext): Promise<void> {
  const cfg = Config.parse(YAML.parse(await readFile(path.join(ctx.dir, "config.yaml"), "utf8")));
  const repo = await loadRepository(path.resolve("models"));
  const log = loadBandwidthLog(cfg.bandwidth_log);
  const timing = measuredTiming(repo, cfg.timing_from.task, cfg.timing_from.variant);
  const models: SimVariant[] = [
    fittedVariant("detector", cfg.detector, { ...timing, maxBatch: cfg.b_max, spread: cfg.spread }),
    {
      ...simVariantFromRepository(repo.tasks.get(cfg.measured.task)!.variants.get(cfg.measured.variant)!),
      maxBatch: cfg.b_max,
    },
  ];
  const rows: Row[] = [];
  for (const model of models) {
    for (const rate of cfg.rates) {
      const trace = attachBudgets(poissonArrivals(rate, cfg.duration_s, cfg.seed), log, {
        sloMs: cfg.slo_ms,
        payloadBytes: cfg.payload_kib * KIB,
      });
      for (const p of POLICIES) {
        ctx.log(`sponge: ${model.name} at ${rate} req/s · ${p.label}`);
        rows.push({ model: model.name, rate, policy: p.label, result: await simulateOne(cfg, model, trace, p) });
      }
    }
  }

  const charts: Record<string, string> = {};
  for (const model of models) {
    const rate = cfg.rates.at(-1)!;
    const mine = rows.filter((r) => r.model === model.name && r.rate === rate);
    charts[`${slug(model.name)}-${rate}.svg`] = await timeSeriesSvg(
      `Sponge experiment — ${model.name} at ${rate} req/s, 4G budgets`,
      [
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
        {
          title: "p99 latency (ms, arrival to answer, excludes the network)",
          unit: "ms",
          lines: mine.map((r) => ({ name: r.policy, values: r.result.series.p99Ms })),
        },
      ],
    );
  }
  const table = markdownTable(
    [
      "model",
      "rate",
      "policy",
      "requests",
      "violations",
      "mean cores",
      "p99 ms",
      "this ÷ sponge's violations",
      "cores vs static-16",
    ],
    rows.map((r) => {
      const s = r.result.summary;
      const sponge = rows.find((x) => x.model === r.model && x.rate === r.rate && x.policy === POLICIES[0].label)!
        .result.summary;
      return [
        r.model,
        `${r.rate} req/s`,
        r.policy,
        s.requests,
        pct(s.violationPct),
        num(s.meanCores, 2),
        num(s.latencyP99Ms, 0),
        ratio(s.violationPct, sponge.violationPct),
        pct((s.meanCores / 16 - 1) * 100, 1),
      ];
    }),
  );
  const goals = models.flatMap((m) =>
    cfg.rates.map((rate) => {
      const get = (label: string) =>
        rows.find((r) => r.model === m.name && r.rate === rate && r.policy === label)!.result.summary;
      const sp = get(POLICIES[0].label);
      const fa2 = get(POLICIES[1].label);
      const fewer = sp.violationPct === 0 ? (fa2.violationPct > 0 ? Infinity : 1) : fa2.violationPct / sp.violationPct;
      return [
        m.name,
        `${rate} req/s`,
        fewer >= 10 ? `met (${Number.isFinite(fewer) ? fewer.toFixed(1) : "∞"}×)` : `missed (${fewer.toFixed(1)}×)`,
        sp.meanCores < 16 ? `met (${num(sp.meanCores, 2)} < 16)` : `missed (${num(sp.meanCores, 2)})`,
      ];
    }),
  );
  const budgets = attachBudgets(poissonArrivals(cfg.rates[0]!, cfg.duration_s, cfg.seed), log, {
    sloMs: cfg.slo_ms,
    payloadBytes: cfg.payload_kib * KIB,
  }).budgetsMs!;
  await writeResults(
    ctx.dir,
    {
      title: "Sponge: dynamic SLOs, EDF batching, in-place vertical scaling",
      command: "npm run experiment sponge",
      intro: [
        `**Setting.** Each request's budget = ${cfg.slo_ms} ms − the time to upload ${cfg.payload_kib} KiB at the 4G bandwidth of its second (../shared/traces/lte-bandwidth-4g, the authors' integer rule; budgets here span ${num(Math.min(...budgets), 0)}–${num(Math.max(...budgets), 0)} ms). Poisson arrivals at a constant ${cfg.rates.join(", ")} req/s for ${cfg.duration_s / 60} minutes. C_max = ${cfg.c_max}, B_max = ${cfg.b_max}; decisions every 1 s.`,
        `**Models.** "detector": the detector of Themis' video pipeline (its published fit, as p99, batch times spread p99/p50 = ${cfg.spread}); cold start and resize measured on this machine for ${cfg.timing_from.task}/${cfg.timing_from.variant}. "${cfg.measured.variant}": sloserve's own ResNet-50, batch times drawn from its measured profile (this machine has 2 cores, so its profile beyond 2 cores is extrapolated by the simulator's Amdahl rule).`,
        "**Policies.** sponge: EDF over the request budgets, the largest batch that meets the most urgent deadline, and every second the fewest cores then smallest batch with ceil(λ/b)·l(b,c) ≤ 0.9 × the tightest budget of the last 5 s, resized in place. FA2-like: FIFO batching, 1-core instances from the horizontal DP for the nominal SLO (it does not see the budgets), cold starts paid. Static: one instance of 8 or 16 cores with EDF.",
      ],
      sections: [
        { heading: "Results", body: [table, ...Object.keys(charts).map((f) => `![${f}](${f})`)] },
        { heading: "Reading", body: READING },
        {
          heading: "Goals",
          body: [
            "Goals of the issue: sponge ≥ 10× fewer violations than FA2-like, with fewer cores than static-16.",
            markdownTable(
              ["model", "rate", "≥ 10× fewer violations than FA2-like", "fewer cores than static-16"],
              goals,
            ),
          ],
        },
      ],
    },
    charts,
  );
}

const READING = [
  "Sponge's own figure holds: EDF over the request budgets plus in-place vertical scaling keeps violations near 0.1 % (the paper: ≈0.2 %) with fewer cores than a static 16-core instance. The ≥ 10× margin over FA2-like does not reproduce: where the paper's FA2 missed 3–5.5 %, ours misses under 1 %, and at several rates neither misses at all. Two measured reasons: sloserve's cold start is under a second (the paper's pods took seconds, during which FA2's queue overflowed), and our FA2-like policy batches (the horizontal DP picks b up to 8 for the nominal 1000-ms SLO), which absorbs the budget dips the 4G log causes. FA2-like is also the cheapest policy here: Sponge's rule sizes one instance so that a whole second's batches fit in 0.9 × the tightest budget of the last 5 s — safe, but it buys cores for the worst second of the network, not the average.",
  "static 8 cores falls behind at 20 req/s on the detector (the paper's static-8 missed ≈87 % on a heavier model); static 16 never misses and is the cost reference.",
];

async function simulateOne(
  cfg: Config,
  model: SimVariant,
  trace: ArrivalTrace,
  p: (typeof POLICIES)[number],
): Promise<SimulationResult> {
  return simulate({
    tasks: [{ name: "detect", sloMs: cfg.slo_ms, variants: [model], scheduling: p.scheduling, scaling: p.scaling }],
    arrivals: [{ target: "detect", times: trace.times, budgets: trace.budgetsMs }],
    deployment: [{ task: "detect", variant: model.name, cores: p.start.cores, count: p.start.count }],
    nodes: [Math.max(cfg.c_max, cfg.max_instances)],
    seed: cfg.seed,
    controller: { intervalMs: 1000, maxCores: cfg.c_max },
  });
}
