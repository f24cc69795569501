// SuperServe's headline (EXPERIMENTS.md): SlackFit on one weight-shared supernet against the static
// trade-off curve (each Pareto subnet served alone) and INFaaS-like switching between separately
// loaded subnets, on gamma traces (CV² sweep), an Azure Functions window and a ramp. The simulator
// drives the product's own router and SlackFit; every subnet's batch times come from its measured
// profile. Also: the bucket-width sweep behind SlackFit's default.
import { readFile } from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { SLACKFIT_DEFAULT_BUCKET_FRACTION, SlackFitPolicy } from "../../../src/router/scheduling/slackfit.js";
import { loadRepository } from "../../../src/repository/repository.js";
import { planeSvg } from "../charts.js";
import { median, slug } from "../common.js";
import type { ExperimentContext } from "../main.js";
import { markdownTable, num, writeResults } from "../report.js";
import {
  simulate,
  simVariantFromRepository,
  type SimSummary,
  type SimTask,
  type SimVariant,
} from "../../../src/sim/index.js";
import { ProfileServiceModel } from "../../../src/sim/service-model.js";
import {
  arrivalsFromCounts,
  gammaArrivals,
  generateArrivals,
  loadAzureAggregate,
  scaleToMeanRate,
  sliceSeries,
  type ArrivalTrace,
} from "../../../src/traces/index.js";
import { matchAgainstStatic, staticFront, type PlanePoint } from "./superserve-plane.js";
import { SwitchingPolicy } from "./superserve-switching.js";

const Config = z.object({
  task: z.string(),
  variant: z.string(),
  seed: z.number().int(),
  instances: z.number().int().positive(),
  rates: z.array(z.number().positive()).min(1),
  duration_s: z.number().positive(),
  gamma_cv2: z.array(z.number().positive()),
  azure: z.object({ file: z.string(), first_minute: z.number().int().min(0), minutes: z.number().int().positive() }),
  ramp: z.object({ from: z.number().positive(), to: z.number().positive() }),
  bucket_fractions: z.array(z.number().positive()).min(1),
  switching: z.object({ headroom: z.number().positive() }),
});
type Config = z.infer<typeof Config>;

interface Trace {
  name: string;
  rate: number;
  arrivals: ArrivalTrace;
}

interface Outcome {
  trace: string;
  rate: number;
  policy: string;
  summary: SimSummary;
}

export default async function run(ctx: ExperimentContext): Promise<void> {
  const cfg = Config.parse(YAML.parse(await readFile(path.join(ctx.dir, "config.yaml"), "utf8")));
  const quick = ctx.args.includes("--quick");
  const durationS = quick ? 60 : cfg.duration_s;
  const repo = await loadRepository(path.resolve("models"));
  const task = repo.tasks.get(cfg.task)!;
  const variant = task.variants.get(cfg.variant)!;
  const supernet = simVariantFromRepository(variant);
  const subnets = subnetVariants(supernet, variant.profile!);
  const sloMs = task.config.slo_ms;
  const largest = subnets.reduce((a, b) => (b.accuracy > a.accuracy ? b : a));

  const traces = cfg.rates.flatMap((rate) => makeTraces(cfg, rate, durationS));
  const results: Outcome[] = [];
  const sim = async (t: Trace, policy: string, simTask: SimTask, start: string, controller = false) => {
    const r = await simulate({
      tasks: [simTask],
      arrivals: [{ target: simTask.name, times: t.arrivals.times }],
      deployment: [{ task: simTask.name, variant: start, cores: 1, count: cfg.instances }],
      nodes: [cfg.instances],
      onDemand: false,
      seed: cfg.seed,
      mix: false,
      ...(controller ? { controller: { intervalMs: 1000, maxCores: 1 } } : {}),
    });
    results.push({ trace: t.name, rate: t.rate, policy, summary: r.summary });
    return r.summary;
  };
  const base = { name: cfg.task, sloMs, maxQueue: 100_000 };
  for (const t of traces) {
    ctx.log(`superserve: ${t.name} at ${t.rate} req/s (${t.arrivals.times.length} requests)`);
    await sim(t, "slackfit", { ...base, variants: [supernet], scheduling: "slackfit" }, supernet.name);
    await sim(t, "edf on the largest subnet", { ...base, variants: [supernet], scheduling: "edf" }, supernet.name);
    for (const s of subnets) await sim(t, `static ${s.name}`, { ...base, variants: [s], scheduling: "edf" }, s.name);
    await sim(
      t,
      "INFaaS-like switching",
      { ...base, variants: subnets, scheduling: "edf", scaling: () => new SwitchingPolicy(cfg.switching.headroom) },
      largest.name,
      true,
    );
  }

  // the bucket sweep: a bursty synthetic trace and the real one, at every rate
  const sweepTraces = traces.filter((t) => t.name === "gamma CV² 4" || t.name.startsWith("azure"));
  const sweep: { trace: string; rate: number; fraction: number; summary: SimSummary }[] = [];
  for (const t of sweepTraces) {
    for (const f of cfg.bucket_fractions) {
      ctx.log(`superserve: bucket ${f} × SLO on ${t.name}`);
      const r = await simulate({
        tasks: [{ ...base, variants: [supernet], scheduling: () => new SlackFitPolicy({ bucketFraction: f }) }],
        arrivals: [{ target: cfg.task, times: t.arrivals.times }],
        deployment: [{ task: cfg.task, variant: supernet.name, cores: 1, count: cfg.instances }],
        nodes: [cfg.instances],
        onDemand: false,
        seed: cfg.seed,
        mix: false,
      });
      sweep.push({ trace: t.name, rate: t.rate, fraction: f, summary: r.summary });
    }
  }

  await report(ctx, cfg, { traces, results, sweep, subnets, sloMs, durationS, quick });
}

/** Each Pareto subnet as a model of its own (static serving, switching): its measured points, fit and load time. */
function subnetVariants(
  supernet: SimVariant,
  profile: NonNullable<import("../../../src/repository/repository.js").Variant["profile"]>,
): SimVariant[] {
  return supernet.subnets!.map((s) => {
    const sp = profile.subnets![s.name]!;
    return {
      ...supernet,
      name: s.name,
      accuracy: s.accuracy,
      fit: sp.fit.p99,
      predict: s.predict,
      service: new ProfileServiceModel(sp.points),
      subnets: undefined,
    };
  });
}

function makeTraces(cfg: Config, rate: number, durationS: number): Trace[] {
  const out: Trace[] = cfg.gamma_cv2.map((cv2) => ({
    name: `gamma CV² ${cv2}`,
    rate,
    arrivals: gammaArrivals(rate, cv2, durationS, cfg.seed),
  }));
  const { series } = loadAzureAggregate(cfg.azure.file);
  const window = sliceSeries(series, {
    startS: cfg.azure.first_minute * 60,
    durationS: Math.min(cfg.azure.minutes * 60, Math.ceil(durationS / 60) * 60),
  });
  out.push({
    name: `azure min ${cfg.azure.first_minute}+${window.counts.length}`,
    rate,
    arrivals: arrivalsFromCounts(scaleToMeanRate(window, rate), {
      spread: "poisson",
      count: "poisson",
      seed: cfg.seed,
    }),
  });
  const { from, to } = cfg.ramp;
  const tri = Object.assign((tS: number) => rate * (from + (to - from) * (1 - Math.abs((2 * tS) / durationS - 1))), {
    label: `ramp ${from}→${to}→${from} × mean`,
  });
  out.push({
    name: `ramp ${from}×→${to}×→${from}×`,
    rate,
    arrivals: generateArrivals({ rate: tri, durationS, seed: cfg.seed }),
  });
  return out;
}

interface ReportInput {
  traces: Trace[];
  results: Outcome[];
  sweep: { trace: string; rate: number; fraction: number; summary: SimSummary }[];
  subnets: SimVariant[];
  sloMs: number;
  durationS: number;
  quick: boolean;
}

const pointOf = (o: Outcome): PlanePoint => ({
  name: o.policy,
  attainmentPct: o.summary.attainmentPct,
  accuracyPct: 100 * (Number.isFinite(o.summary.meanAccuracy) ? o.summary.meanAccuracy : 0),
});

async function report(ctx: ExperimentContext, cfg: Config, r: ReportInput): Promise<void> {
  const charts: Record<string, string> = {};
  const headline: (string | number)[][] = [];
  const everything: (string | number)[][] = [];
  const gains: number[] = [];
  const ratios: number[] = [];
  for (const t of r.traces) {
    const mine = r.results.filter((o) => o.trace === t.name && o.rate === t.rate);
    const statics = mine.filter((o) => o.policy.startsWith("static ")).map(pointOf);
    const get = (p: string) => pointOf(mine.find((o) => o.policy === p)!);
    const sf = get("slackfit");
    const sw = get("INFaaS-like switching");
    const m = matchAgainstStatic(sf, statics);
    const msw = matchAgainstStatic(sw, statics);
    gains.push(m.accuracyGain);
    ratios.push(m.attainmentRatio);
    headline.push([
      t.name,
      `${t.rate} req/s`,
      `${num(sf.attainmentPct, 1)} % / ${num(sf.accuracyPct, 2)} %`,
      m.beyondStatic
        ? `${num(m.accuracyGain, 2)} pts (beyond every static point; vs the best-attaining one)`
        : `${num(m.accuracyGain, 2)} pts (static ${num(m.staticAccuracyAtAttainment, 2)} %)`,
      `${num(m.attainmentRatio, 2)}× (static ${num(m.staticAttainmentAtAccuracy, 1)} %)`,
      `${num(sw.attainmentPct, 1)} % / ${num(sw.accuracyPct, 2)} %`,
      `${num(msw.accuracyGain, 2)} pts, ${num(msw.attainmentRatio, 2)}×`,
    ]);
    for (const o of mine)
      everything.push([
        t.name,
        `${t.rate}`,
        o.policy,
        o.summary.requests,
        num(o.summary.attainmentPct, 2),
        num(100 * o.summary.meanAccuracy, 2),
        num(o.summary.latencyP99Ms, 0),
        o.summary.dropped,
      ]);
    const front = new Set(staticFront(statics).map((p) => p.name));
    charts[`plane-${slug(t.name)}-${t.rate}.svg`] = await planeSvg(
      `SuperServe — ${t.name}, mean ${t.rate} req/s, ${cfg.instances} × 1-core instances, SLO ${r.sloMs} ms`,
      [
        {
          name: "static (each subnet alone)",
          line: true,
          points: statics
            .filter((p) => front.has(p.name))
            .map((p) => ({ x: p.accuracyPct, y: p.attainmentPct, label: p.name.replace("static r50-", "") })),
        },
        {
          name: "static, off the front",
          points: statics.filter((p) => !front.has(p.name)).map((p) => ({ x: p.accuracyPct, y: p.attainmentPct })),
        },
        { name: "SlackFit (supernet)", points: [{ x: sf.accuracyPct, y: sf.attainmentPct }] },
        { name: "INFaaS-like switching", points: [{ x: sw.accuracyPct, y: sw.attainmentPct }] },
        {
          name: "edf, largest subnet",
          points: [
            { x: get("edf on the largest subnet").accuracyPct, y: get("edf on the largest subnet").attainmentPct },
          ],
        },
      ],
      { x: "mean accuracy of served requests (%)", y: "SLO attainment (%)" },
    );
  }
  const sweepRows = r.sweep.map((s) => [
    s.trace,
    `${s.rate} req/s`,
    `${s.fraction} × SLO = ${num(s.fraction * r.sloMs, 0)} ms`,
    num(s.summary.attainmentPct, 2),
    num(100 * s.summary.meanAccuracy, 2),
  ]);
  const met = (ok: boolean) => (ok ? "met" : "missed");
  const minGain = Math.min(...gains);
  const minRatio = Math.min(...ratios);
  await writeResults(
    ctx.dir,
    {
      title: "SuperServe: SlackFit on a weight-shared supernet",
      command: `npm run experiment superserve${r.quick ? " -- --quick" : ""}`,
      intro: [
        `**Setting.** ${cfg.task}/${cfg.variant}: a ResNet-50 supernet with ${r.subnets.length} Pareto subnets (declared accuracies ${num(100 * Math.min(...r.subnets.map((s) => s.accuracy)), 2)}–${num(100 * Math.max(...r.subnets.map((s) => s.accuracy)), 2)} %, batch times drawn from each subnet's measured profile on this machine). ${cfg.instances} instances of 1 core, SLO ${r.sloMs} ms, max batch ${r.subnets[0]!.maxBatch}; ${r.durationS} s per trace at mean ${cfg.rates.join(" and ")} req/s. Traces: gamma renewal arrivals with CV² ∈ {${cfg.gamma_cv2.join(", ")}}; Azure Functions 2019 (all functions summed per minute, minutes ${cfg.azure.first_minute}+, scaled to the mean rate, each minute's count drawn as Poisson and spread uniformly); a ramp ${cfg.ramp.from}× → ${cfg.ramp.to}× → ${cfg.ramp.from}× the mean rate.`,
        `**Policies.** SlackFit (bucket width ${SLACKFIT_DEFAULT_BUCKET_FRACTION} × SLO, its default) on the supernet: one EDF queue, every subnet switch free. Static: each Pareto subnet alone with EDF batching (the trade-off curve). edf on the largest subnet: the supernet without switching. INFaaS-like switching: the subnets as separate models, one instance at a time reloaded (paying the supernet's measured load time, ${num(variantLoad(r.subnets[0]!), 0)} ms — separate exports of the small subnets would load somewhat faster) to the most accurate subnet whose pool capacity carries the forecast rate at ${cfg.switching.headroom} headroom. Attainment counts every request (drops and late answers are misses); accuracy is the mean over served requests.`,
        "**Matched points.** The static curve is the upper-left envelope of the static points. *Accuracy gain at equal attainment*: SlackFit's accuracy minus the static curve's at SlackFit's attainment (where SlackFit attains more than every static point, against the best-attaining static point — a lower bound on the gain). *Attainment ratio at equal accuracy*: SlackFit's attainment over the static curve's at SlackFit's accuracy.",
      ],
      sections: [
        {
          heading: "Headline deltas",
          body: [
            markdownTable(
              [
                "trace",
                "mean rate",
                "SlackFit attainment / accuracy",
                "accuracy gain at equal attainment",
                "attainment ratio at equal accuracy",
                "switching attainment / accuracy",
                "switching: gain, ratio",
              ],
              headline,
            ),
          ],
        },
        {
          heading: "Goals",
          body: [
            markdownTable(
              ["goal", "worst trace", "median trace", "verdict"],
              [
                [
                  "≥ +4.67 points accuracy at equal attainment",
                  `${num(minGain, 2)} pts`,
                  `${num(median(gains), 2)} pts`,
                  `${met(minGain >= 4.67)} (reached on ${gains.filter((g) => g >= 4.67).length} of ${gains.length} traces)`,
                ],
                [
                  "≥ 2.85× attainment at equal accuracy",
                  `${num(minRatio, 2)}×`,
                  `${num(median(ratios), 2)}×`,
                  `${met(minRatio >= 2.85)} (reached on ${ratios.filter((x) => x >= 2.85).length} of ${ratios.length} traces)`,
                ],
              ],
            ),
            ...READING,
          ],
        },
        { heading: "Attainment–accuracy planes", body: Object.keys(charts).map((f) => `![${f}](${f})`) },
        {
          heading: "Bucket width",
          body: [
            BUCKET_NOTE,
            markdownTable(["trace", "mean rate", "bucket width", "attainment %", "accuracy %"], sweepRows),
          ],
        },
        {
          heading: "Every run",
          body: [
            markdownTable(
              ["trace", "rate", "policy", "requests", "attainment %", "accuracy %", "p99 ms", "dropped"],
              everything,
            ),
          ],
        },
      ],
    },
    charts,
  );
}

function variantLoad(v: SimVariant): number {
  return v.loadMs ?? Number.NaN;
}

/** Written after reading the sweep (see the table under it). */
const BUCKET_NOTE =
  "SlackFit's default bucket width is 0.2 × the task's SLO (100 ms here): the narrowest width whose attainment is within 1 point of the best on every swept trace. Narrow buckets (0.02–0.1 × SLO) make SlackFit pick the configuration whose predicted latency is closest to the slack, so batches end at the deadline's edge and one that runs a little slower than its p99 fit is late: 2–4 points less attainment, for at most 0.4 points more accuracy. From 0.2 up, attainment is flat (0.5 and 1 × SLO add ≤ 0.6 points) and accuracy slowly falls, as one wide bucket degenerates to 'largest batch that fits'. Widths are relative to the SLO so that the same default serves the digits supernet (SLO 50 ms, sub-ms batches) and the vision one.";

/** Written after reading the results. */
const READING: string[] = [
  "**Both goals are missed, by a wide margin.** SlackFit beats the static curve on almost every trace — more accuracy at equal attainment (up to +1.7 points, on the Azure window) and up to 1.5× the attainment at equal accuracy (on the ramp) — and it is more accurate than the INFaaS-like switcher on every trace and attains more on all but one (the ramp at 50 req/s, by 0.1 point), but the paper's +4.67 points and 2.85× do not reproduce here. The gains grow with burstiness (CV² 1 → 8, Azure, ramp), as the paper's argument predicts.",
  "Why, as measured: (1) on this CPU the vision subnets gain nothing from batching (each subnet's batch of 8 takes ≈ 8 × its batch of 1, see models/vision-supernet/supernet/profile.json), so a burst cannot be absorbed by 'a fast subnet with a big batch' beyond that subnet's own 4.8× speed-up over the largest; the paper's GPU batching gains multiply that. SlackFit's lever here is the per-batch choice of subnet only, and at a given mean rate a well-chosen static subnet already sits close to it. (2) The whole Pareto front spans 6.45 points of accuracy (69.54–75.99 %), so +4.67 points at equal attainment would need SlackFit near the top of the front while the static subnet with the same attainment sits near the bottom. (3) 2.85× at equal accuracy needs the static subnet of SlackFit's accuracy to attain ≤ 35 %; at the loads swept it attains 65–100 %. Heavier overloads would raise the ratio, but they were not chosen to do so.",
  "The INFaaS-like switcher trails SlackFit because each switch takes an instance away for the measured 1.35 s load and it decides on a 1-s rate forecast rather than per batch; SlackFit's switches cost nothing (bench:supernet measures a subnet switch at well under 1 % of the smallest subnet's batch-1 latency). 'edf on the largest subnet' (the supernet without switching) is the static largest subnet: it collapses at these rates.",
];
