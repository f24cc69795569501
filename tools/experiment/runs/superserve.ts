// SuperServe's headline (EXPERIMENTS.md): SlackFit on one weight-shared supernet against the static
// trade-off curve (each Pareto subnet served alone) and INFaaS-like switching between separately
// loaded subnets, on gamma traces (CV² sweep), an Azure Functions window and a ramp, each over
// several seeds (arrivals and batch-time draws). The simulator drives the product's own router and
// SlackFit; every subnet's batch times come from its measured profile: the CPU profile of the
// repository, and, when one was measured (tools/gpu/profile_subnets.py), a GPU profile of the same
// subnets. Also: what SlackFit's two changes did (measured points instead of the fit, the prefetch
// slot), and the bucket-width sweep behind its default.
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import {
  SLACKFIT_DEFAULT_BUCKET_FRACTION,
  SLACKFIT_DEFAULT_PREFETCH_LEAD,
  SlackFitPolicy,
} from "../../../src/router/scheduling/slackfit.js";
import { loadRepository, type Variant } from "../../../src/repository/repository.js";
import { Profile } from "../../../src/repository/schema.js";
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
import { simVariantModel } from "../../../src/sim/scenario.js";
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
import { SwitchingPolicy, throughputAt } from "./superserve-switching.js";

const Config = z.object({
  task: z.string(),
  variant: z.string(),
  seeds: z.array(z.number().int()).min(1),
  instances: z.number().int().positive(),
  rates: z.array(z.number().positive()).min(1),
  duration_s: z.number().positive(),
  gamma_cv2: z.array(z.number().positive()),
  azure: z.object({ file: z.string(), first_minute: z.number().int().min(0), minutes: z.number().int().positive() }),
  ramp: z.object({ from: z.number().positive(), to: z.number().positive() }),
  bucket_fractions: z.array(z.number().positive()).min(1),
  switching: z.object({ headroom: z.number().positive() }),
  gpu: z
    .object({
      profile: z.string(),
      instances: z.number().int().positive(),
      max_batch: z.number().int().positive(),
      slo_ms: z.number().positive(),
      rate_factors: z.array(z.number().positive()).min(1),
    })
    .optional(),
});
type Config = z.infer<typeof Config>;

interface Trace {
  name: string;
  rate: number;
  arrivals: ArrivalTrace;
}

interface Outcome {
  seed: number;
  trace: string;
  rate: number;
  policy: string;
  summary: SimSummary;
}

/** One place the experiment runs: the supernet timed by one profile, with its own pool, SLO and rates. */
interface Setting {
  key: "cpu" | "gpu";
  label: string;
  /** Where the batch times come from, in words. */
  source: string;
  supernet: SimVariant;
  subnets: SimVariant[];
  sloMs: number;
  instances: number;
  rates: number[];
  profile: Profile;
}

/** The SlackFit runs: the default (measured points, prefetch slot) and the two steps from the earlier one. */
const SLACKFIT = "slackfit";
const SLACKFIT_EAGER = "slackfit, eager prefetch";
const SLACKFIT_ONE_SLOT = "slackfit, one slot";
const SLACKFIT_BEFORE = "slackfit as before (p99 fit, one slot)";
const SWITCHING = "INFaaS-like switching";

export default async function run(ctx: ExperimentContext): Promise<void> {
  const cfg = Config.parse(YAML.parse(await readFile(path.join(ctx.dir, "config.yaml"), "utf8")));
  const quick = ctx.args.includes("--quick");
  const durationS = quick ? 60 : cfg.duration_s;
  const seeds = quick ? cfg.seeds.slice(0, 2) : cfg.seeds;
  const repo = await loadRepository(path.resolve("models"), { tasks: [cfg.task] });
  const task = repo.tasks.get(cfg.task)!;
  const variant = task.variants.get(cfg.variant)!;
  const settings: Setting[] = [cpuSetting(cfg, variant, task.config.slo_ms)];
  const gpu = await gpuSetting(cfg, variant);
  if (gpu) settings.push(gpu);
  else ctx.log(`superserve: no GPU profile at ${cfg.gpu?.profile ?? "(none configured)"}; CPU only`);

  const results: Outcome[] = [];
  const sweep: { trace: string; rate: number; fraction: number; summary: SimSummary }[] = [];
  const perSetting = new Map<string, { traces: Trace[]; results: Outcome[] }>();
  for (const st of settings) {
    const mine: Outcome[] = [];
    let firstTraces: Trace[] = [];
    for (const seed of seeds) {
      const traces = st.rates.flatMap((rate) => makeTraces(cfg, rate, durationS, seed));
      if (seed === seeds[0]) firstTraces = traces;
      const sim = async (t: Trace, policy: string, simTask: SimTask, start: string, o: SimOptions = {}) => {
        const r = await simulate({
          tasks: [simTask],
          arrivals: [{ target: simTask.name, times: t.arrivals.times }],
          deployment: [{ task: simTask.name, variant: start, cores: 1, count: st.instances }],
          nodes: [st.instances],
          onDemand: false,
          seed,
          mix: false,
          ...(o.slots ? { slotsPerInstance: o.slots } : {}),
          ...(o.controller ? { controller: { intervalMs: 1000, maxCores: 1 } } : {}),
        });
        mine.push({ seed, trace: t.name, rate: t.rate, policy, summary: r.summary });
        return r.summary;
      };
      const base = { name: cfg.task, sloMs: st.sloMs, maxQueue: 100_000 };
      const largest = st.subnets.reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
      for (const t of traces) {
        ctx.log(
          `superserve ${st.key} seed ${seed}: ${t.name} at ${t.rate} req/s (${t.arrivals.times.length} requests)`,
        );
        const sf = { ...base, variants: [st.supernet] };
        await sim(t, SLACKFIT, { ...sf, scheduling: "slackfit" }, st.supernet.name);
        const eager = () => new SlackFitPolicy({ prefetch: "eager" });
        await sim(t, SLACKFIT_EAGER, { ...sf, scheduling: eager }, st.supernet.name);
        await sim(t, SLACKFIT_ONE_SLOT, { ...sf, scheduling: "slackfit" }, st.supernet.name, { slots: 1 });
        const before = () => new SlackFitPolicy({ predictFrom: "fit" });
        await sim(t, SLACKFIT_BEFORE, { ...sf, scheduling: before }, st.supernet.name, { slots: 1 });
        for (const s of st.subnets)
          await sim(t, `static ${s.name}`, { ...base, variants: [s], scheduling: "edf" }, s.name);
        const scaling = () => new SwitchingPolicy(cfg.switching.headroom);
        const sw = { ...base, variants: st.subnets, scheduling: "edf", scaling };
        await sim(t, SWITCHING, sw, largest.name, { controller: true });
      }
      // the bucket sweep, on the first seed of the CPU setting: a bursty synthetic trace and the real one
      if (st.key !== "cpu" || seed !== seeds[0]) continue;
      for (const t of traces.filter((x) => x.name === "gamma CV² 4" || x.name.startsWith("azure"))) {
        for (const f of cfg.bucket_fractions) {
          ctx.log(`superserve: bucket ${f} × SLO on ${t.name}`);
          const r = await simulate({
            tasks: [{ ...base, variants: [st.supernet], scheduling: () => new SlackFitPolicy({ bucketFraction: f }) }],
            arrivals: [{ target: cfg.task, times: t.arrivals.times }],
            deployment: [{ task: cfg.task, variant: st.supernet.name, cores: 1, count: st.instances }],
            nodes: [st.instances],
            onDemand: false,
            seed,
            mix: false,
          });
          sweep.push({ trace: t.name, rate: t.rate, fraction: f, summary: r.summary });
        }
      }
    }
    results.push(...mine);
    perSetting.set(st.key, { traces: firstTraces, results: mine });
  }

  await report(ctx, cfg, { settings, perSetting, sweep, seeds, durationS, quick });
}

interface SimOptions {
  slots?: number;
  controller?: boolean;
}

function cpuSetting(cfg: Config, variant: Variant, sloMs: number): Setting {
  const supernet = simVariantFromRepository(variant);
  const p = variant.profile!;
  return {
    key: "cpu",
    label: "CPU",
    source: `each subnet's measured profile on this machine's CPU (${p.machine.cpu}, 1 core per instance, onnxruntime ${p.machine.onnxruntime})`,
    supernet,
    subnets: subnetVariants(supernet, p),
    sloMs,
    instances: cfg.instances,
    rates: cfg.rates,
    profile: p,
  };
}

/** The same supernet timed by a GPU profile (one GPU per instance), if one was measured. */
async function gpuSetting(cfg: Config, variant: Variant): Promise<Setting | null> {
  const g = cfg.gpu;
  if (!g || !existsSync(path.resolve(g.profile))) return null;
  const parsed = Profile.safeParse(JSON.parse(await readFile(path.resolve(g.profile), "utf8")));
  if (!parsed.success) throw new Error(`${g.profile} is not a valid profile: ${parsed.error.message}`);
  const p = parsed.data;
  const missing = (variant.config.subnets ?? []).filter((s) => !p.subnets?.[s.name]).map((s) => s.name);
  if (missing.length) throw new Error(`${g.profile} lacks subnets ${missing.join(", ")}; re-run the measurement tool`);
  const onGpu: Variant = { ...variant, profile: p, config: { ...variant.config, max_batch: g.max_batch } };
  const supernet = simVariantFromRepository(onGpu);
  const subnets = subnetVariants(supernet, p);
  const largest = subnets.reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
  const carried = g.instances * throughputAt(simVariantModel(largest), g.slo_ms);
  return {
    key: "gpu",
    label: "GPU",
    source: `each subnet's profile measured on ${p.machine.accelerator ?? "a GPU"} by tools/gpu/profile_subnets.py (${g.profile}; its method in results.json)`,
    supernet,
    subnets,
    sloMs: g.slo_ms,
    instances: g.instances,
    rates: g.rate_factors.map((f) => Math.round(f * carried)),
    profile: p,
  };
}

/** Each Pareto subnet as a model of its own (static serving, switching): its measured points, fit and load time. */
function subnetVariants(supernet: SimVariant, profile: Profile): SimVariant[] {
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

function makeTraces(cfg: Config, rate: number, durationS: number, seed: number): Trace[] {
  const out: Trace[] = cfg.gamma_cv2.map((cv2) => ({
    name: `gamma CV² ${cv2}`,
    rate,
    arrivals: gammaArrivals(rate, cv2, durationS, seed),
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
      seed,
    }),
  });
  const { from, to } = cfg.ramp;
  const tri = Object.assign((tS: number) => rate * (from + (to - from) * (1 - Math.abs((2 * tS) / durationS - 1))), {
    label: `ramp ${from}→${to}→${from} × mean`,
  });
  out.push({
    name: `ramp ${from}×→${to}×→${from}×`,
    rate,
    arrivals: generateArrivals({ rate: tri, durationS, seed }),
  });
  return out;
}

interface ReportInput {
  settings: Setting[];
  perSetting: Map<string, { traces: Trace[]; results: Outcome[] }>;
  sweep: { trace: string; rate: number; fraction: number; summary: SimSummary }[];
  seeds: number[];
  durationS: number;
  quick: boolean;
}

const pointOf = (o: Outcome): PlanePoint => ({
  name: o.policy,
  attainmentPct: o.summary.attainmentPct,
  accuracyPct: 100 * (Number.isFinite(o.summary.meanAccuracy) ? o.summary.meanAccuracy : 0),
});

/** Median and range over seeds. */
interface Spread {
  median: number;
  min: number;
  max: number;
  perSeed: number[];
}

function spread(xs: number[]): Spread {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), perSeed: xs };
}

const showPts = (s: Spread) => `${num(s.median, 2)} pts [${num(s.min, 2)}, ${num(s.max, 2)}]`;
const showX = (s: Spread) => `${num(s.median, 2)}× [${num(s.min, 2)}, ${num(s.max, 2)}]`;

/** A policy's two deltas against the static curve, per seed, on one trace. */
function deltas(runs: Outcome[], policy: string, seeds: number[]): { gain: Spread; ratio: Spread; beyond: number } {
  const gains: number[] = [];
  const ratios: number[] = [];
  let beyond = 0;
  for (const seed of seeds) {
    const mine = runs.filter((o) => o.seed === seed);
    const statics = mine.filter((o) => o.policy.startsWith("static ")).map(pointOf);
    const m = matchAgainstStatic(pointOf(mine.find((o) => o.policy === policy)!), statics);
    gains.push(m.accuracyGain);
    ratios.push(m.attainmentRatio);
    if (m.beyondStatic) beyond++;
  }
  return { gain: spread(gains), ratio: spread(ratios), beyond };
}

interface TraceFigures {
  setting: string;
  trace: string;
  rate: number;
  slackfit: { attainmentPct: Spread; accuracyPct: Spread; gain: Spread; ratio: Spread; beyondStatic: number };
  switching: { attainmentPct: Spread; accuracyPct: Spread; gain: Spread; ratio: Spread };
  /** Seeds on which the switcher served more accurately than SlackFit. */
  switchingMoreAccurate: number;
  ablation: Record<string, { gain: Spread; ratio: Spread; attainmentPct: Spread; accuracyPct: Spread }>;
}

function figuresOf(st: Setting, t: Trace, results: Outcome[], seeds: number[]): TraceFigures {
  const runs = results.filter((o) => o.trace === t.name && o.rate === t.rate);
  const of = (policy: string, f: (o: Outcome) => number) =>
    spread(seeds.map((seed) => f(runs.find((o) => o.seed === seed && o.policy === policy)!)));
  const att = (o: Outcome) => o.summary.attainmentPct;
  const acc = (o: Outcome) => pointOf(o).accuracyPct;
  const sf = deltas(runs, SLACKFIT, seeds);
  const sw = deltas(runs, SWITCHING, seeds);
  const ablation: TraceFigures["ablation"] = {};
  for (const p of [SLACKFIT_BEFORE, SLACKFIT_ONE_SLOT, SLACKFIT_EAGER, SLACKFIT]) {
    const d = deltas(runs, p, seeds);
    ablation[p] = { gain: d.gain, ratio: d.ratio, attainmentPct: of(p, att), accuracyPct: of(p, acc) };
  }
  const moreAccurate = seeds.filter((seed) => {
    const get = (p: string) => acc(runs.find((o) => o.seed === seed && o.policy === p)!);
    return get(SWITCHING) > get(SLACKFIT);
  }).length;
  return {
    setting: st.key,
    trace: t.name,
    rate: t.rate,
    slackfit: { attainmentPct: of(SLACKFIT, att), accuracyPct: of(SLACKFIT, acc), ...sf, beyondStatic: sf.beyond },
    switching: { attainmentPct: of(SWITCHING, att), accuracyPct: of(SWITCHING, acc), gain: sw.gain, ratio: sw.ratio },
    switchingMoreAccurate: moreAccurate,
    ablation,
  };
}

async function report(ctx: ExperimentContext, cfg: Config, r: ReportInput): Promise<void> {
  const charts: Record<string, string> = {};
  const sections: { heading: string; body: string[] }[] = [];
  const json: Record<string, unknown> = { seeds: r.seeds, duration_s: r.durationS, settings: {} };
  const n = r.seeds.length;
  for (const st of r.settings) {
    const { traces, results } = r.perSetting.get(st.key)!;
    const figures = traces.map((t) => figuresOf(st, t, results, r.seeds));
    const gains = figures.map((f) => f.slackfit.gain.median);
    const ratios = figures.map((f) => f.slackfit.ratio.median);
    const met = (ok: boolean) => (ok ? "met" : "missed");
    const headline = figures.map((f) => [
      f.trace,
      `${f.rate} req/s`,
      `${num(f.slackfit.attainmentPct.median, 1)} % / ${num(f.slackfit.accuracyPct.median, 2)} %`,
      showPts(f.slackfit.gain) +
        (f.slackfit.beyondStatic ? ` (beyond every static point on ${f.slackfit.beyondStatic} of ${n} seeds)` : ""),
      showX(f.slackfit.ratio),
      `${num(f.switching.attainmentPct.median, 1)} % / ${num(f.switching.accuracyPct.median, 2)} %`,
      `${showPts(f.switching.gain)}, ${showX(f.switching.ratio)}`,
      `${f.switchingMoreAccurate} of ${n}`,
    ]);
    const ablationRows = figures.flatMap((f) =>
      [SLACKFIT_BEFORE, SLACKFIT_ONE_SLOT, SLACKFIT_EAGER, SLACKFIT].map((p) => {
        const a = f.ablation[p]!;
        return [
          f.trace,
          `${f.rate}`,
          p,
          `${num(a.attainmentPct.median, 2)} [${num(a.attainmentPct.min, 2)}, ${num(a.attainmentPct.max, 2)}]`,
          `${num(a.accuracyPct.median, 2)} [${num(a.accuracyPct.min, 2)}, ${num(a.accuracyPct.max, 2)}]`,
          showPts(a.gain),
          showX(a.ratio),
        ];
      }),
    );
    const policies = [...new Set(results.map((o) => o.policy))];
    const everyRun = traces.flatMap((t) =>
      policies.map((p) => {
        const runs = results.filter((o) => o.trace === t.name && o.rate === t.rate && o.policy === p);
        const m = (f: (o: Outcome) => number) => median(runs.map(f));
        return [
          t.name,
          `${t.rate}`,
          p,
          num(
            m((o) => o.summary.requests),
            0,
          ),
          num(
            m((o) => o.summary.attainmentPct),
            2,
          ),
          num(
            m((o) => 100 * o.summary.meanAccuracy),
            2,
          ),
          num(
            m((o) => o.summary.latencyP99Ms),
            0,
          ),
          num(
            m((o) => o.summary.dropped),
            0,
          ),
        ];
      }),
    );
    for (const t of traces) {
      const first = results.filter((o) => o.trace === t.name && o.rate === t.rate && o.seed === r.seeds[0]);
      charts[`plane-${st.key === "cpu" ? "" : `${st.key}-`}${slug(t.name)}-${t.rate}.svg`] = await plane(st, t, first);
    }
    const subnetAcc = st.subnets.map((s) => 100 * s.accuracy);
    const title = st.key === "cpu" ? "" : ` — ${st.label}`;
    sections.push(
      {
        heading: `Setting${title}`,
        body: [
          `${cfg.task}/${cfg.variant}: ${st.subnets.length} Pareto subnets (accuracies ${num(Math.min(...subnetAcc), 2)}–${num(Math.max(...subnetAcc), 2)} %), batch times drawn from ${st.source}. ${st.instances} instance${st.instances > 1 ? "s" : ""}, SLO ${st.sloMs} ms, max batch ${st.supernet.maxBatch}; ${r.durationS} s per trace at mean ${st.rates.join(" and ")} req/s; seeds ${r.seeds.join(", ")}.`,
        ],
      },
      {
        heading: `Headline deltas${title}`,
        body: [
          `Median over the ${n} seeds, [min, max] in brackets. The last column counts the seeds on which the INFaaS-like switcher served more accurately than SlackFit.`,
          markdownTable(
            [
              "trace",
              "mean rate",
              "SlackFit attainment / accuracy",
              "accuracy gain at equal attainment",
              "attainment ratio at equal accuracy",
              "switching attainment / accuracy",
              "switching: gain, ratio",
              "switcher more accurate",
            ],
            headline,
          ),
        ],
      },
      {
        heading: `Goals${title}`,
        body: [
          markdownTable(
            ["goal", "worst trace (median over seeds)", "median trace", "verdict"],
            [
              [
                "≥ +4.67 points accuracy at equal attainment",
                `${num(Math.min(...gains), 2)} pts`,
                `${num(median(gains), 2)} pts`,
                `${met(Math.min(...gains) >= 4.67)} (reached on ${gains.filter((g) => g >= 4.67).length} of ${gains.length} traces)`,
              ],
              [
                "≥ 2.85× attainment at equal accuracy",
                `${num(Math.min(...ratios), 2)}×`,
                `${num(median(ratios), 2)}×`,
                `${met(Math.min(...ratios) >= 2.85)} (reached on ${ratios.filter((x) => x >= 2.85).length} of ${ratios.length} traces)`,
              ],
            ],
          ),
          ...(READING[st.key] ?? []),
        ],
      },
      {
        heading: `What SlackFit's changes did${title}`,
        body: [
          `${SLACKFIT_BEFORE}: the earlier SlackFit, predicting from the p99 fit and deciding only when an instance is free. ${SLACKFIT_ONE_SLOT}: predicting from the measured points. ${SLACKFIT_EAGER}: the points and a prefetch slot filled as soon as it is free (two batches per instance, the second's slack counted from when the first is predicted to end). ${SLACKFIT}: the same, the prefetch slot filled late (${SLACKFIT_DEFAULT_PREFETCH_LEAD} × SLO before the running batch is expected to end). Attainment and accuracy in %, median [min, max] over the seeds.`,
          markdownTable(["trace", "rate", "SlackFit", "attainment %", "accuracy %", "gain", "ratio"], ablationRows),
          ...(ABLATION_READING[st.key] ?? []),
        ],
      },
      {
        heading: `Every policy${title}`,
        body: [
          `Medians over the ${n} seeds; every run is in results.json.`,
          markdownTable(
            ["trace", "rate", "policy", "requests", "attainment %", "accuracy %", "p99 ms", "dropped"],
            everyRun,
          ),
        ],
      },
    );
    (json.settings as Record<string, unknown>)[st.key] = {
      source: st.source,
      machine: st.profile.machine,
      method: st.profile.method ?? "sloserve profile",
      slo_ms: st.sloMs,
      instances: st.instances,
      rates: st.rates,
      max_batch: st.supernet.maxBatch,
      subnets: st.subnets.map((s) => ({ name: s.name, accuracy: s.accuracy })),
      goals: {
        gain: { worst_trace: Math.min(...gains), median_trace: median(gains) },
        ratio: { worst_trace: Math.min(...ratios), median_trace: median(ratios) },
      },
      traces: figures,
      runs: results.map(runRecord),
    };
  }
  if (!r.settings.some((s) => s.key === "gpu"))
    sections.push({
      heading: "GPU",
      body: [GPU_MISSING.replace("{profile}", cfg.gpu?.profile ?? "(none configured)")],
    });
  const cpuSlo = r.settings[0]!.sloMs;
  sections.push(
    { heading: "Attainment–accuracy planes (first seed)", body: Object.keys(charts).map((f) => `![${f}](${f})`) },
    {
      heading: "Bucket width",
      body: [
        BUCKET_NOTE,
        markdownTable(
          ["trace", "mean rate", "bucket width", "attainment %", "accuracy %"],
          r.sweep.map((s) => [
            s.trace,
            `${s.rate} req/s`,
            `${s.fraction} × SLO = ${num(s.fraction * cpuSlo, 0)} ms`,
            num(s.summary.attainmentPct, 2),
            num(100 * s.summary.meanAccuracy, 2),
          ]),
        ),
      ],
    },
  );
  json.bucket_sweep = r.sweep.map((s) => ({
    fraction: s.fraction,
    ...runRecord({ ...s, seed: r.seeds[0]!, policy: SLACKFIT }),
  }));
  await writeResults(
    ctx.dir,
    {
      title: "SuperServe: SlackFit on a weight-shared supernet",
      command: `npm run experiment superserve${r.quick ? " -- --quick" : ""}`,
      intro: [
        `**Traces.** gamma renewal arrivals with CV² ∈ {${cfg.gamma_cv2.join(", ")}}; Azure Functions 2019 (all functions summed per minute, minutes ${cfg.azure.first_minute}+, scaled to the mean rate, each minute's count drawn as Poisson and spread uniformly); a ramp ${cfg.ramp.from}× → ${cfg.ramp.to}× → ${cfg.ramp.from}× the mean rate. Each seed draws its own arrivals and batch times; every policy sees the same ones.`,
        `**Policies.** SlackFit (bucket width ${SLACKFIT_DEFAULT_BUCKET_FRACTION} × SLO, its default) on the supernet: one EDF queue, every subnet switch free, its table the measured (subnet, batch) points' p99, two batches per instance (the second decided ${SLACKFIT_DEFAULT_PREFETCH_LEAD} × SLO before the first is expected to end). Static: each Pareto subnet alone with EDF batching (the trade-off curve), two batches per instance, the second's deadline budget counted from when the first is predicted to end. INFaaS-like switching: the subnets as separate models, one instance at a time reloaded (paying the supernet's measured load time) to the most accurate subnet whose pool capacity carries the forecast rate at ${cfg.switching.headroom} headroom. Attainment counts every request (drops and late answers are misses); accuracy is the mean over served requests.`,
        "**Matched points.** The static curve is the upper-left envelope of the static points. *Accuracy gain at equal attainment*: SlackFit's accuracy minus the static curve's at SlackFit's attainment (where SlackFit attains more than every static point, against the best-attaining static point — a lower bound on the gain). *Attainment ratio at equal accuracy*: SlackFit's attainment over the static curve's at SlackFit's accuracy. Both are computed per seed; tables give the median over seeds (R-7, src/stats/quantile.ts) and the range.",
      ],
      sections,
    },
    charts,
  );
  await writeFile(path.join(ctx.dir, "results.json"), flatObjectsOnOneLine(JSON.stringify(json, null, 1)) + "\n");
}

/** Arrays of numbers, then objects holding no object or array (every run), on one line each: short, diffable. */
function flatObjectsOnOneLine(text: string): string {
  const join = (inner: string) => inner.replace(/\n\s*/g, " ");
  return text
    .replace(/\[\n\s+([^{}[\]"]*?)\n\s*\]/g, (_m, inner: string) => `[${join(inner)}]`)
    .replace(/\{\n\s+([^{}[\]]*?)\n\s*\}/g, (_m, inner: string) => `{ ${join(inner)} }`);
}

/** One run as results.json keeps it: what it measured, one line, nothing that depends on the wall clock. */
function runRecord(o: Outcome) {
  const s = o.summary;
  return {
    seed: o.seed,
    trace: o.trace,
    rate: o.rate,
    policy: o.policy,
    requests: s.requests,
    met: s.met,
    late: s.late,
    dropped: s.dropped,
    rejected: s.rejected,
    attainment_pct: s.attainmentPct,
    accuracy_pct: 100 * s.meanAccuracy,
    latency_p50_ms: s.latencyP50Ms,
    latency_p99_ms: s.latencyP99Ms,
  };
}

async function plane(st: Setting, t: Trace, runs: Outcome[]): Promise<string> {
  const statics = runs.filter((o) => o.policy.startsWith("static ")).map(pointOf);
  const front = new Set(staticFront(statics).map((p) => p.name));
  const at = (p: string) => {
    const o = runs.find((x) => x.policy === p)!;
    return [{ x: pointOf(o).accuracyPct, y: pointOf(o).attainmentPct }];
  };
  return planeSvg(
    `SuperServe (${st.label}) — ${t.name}, mean ${t.rate} req/s, ${st.instances} instance${st.instances > 1 ? "s" : ""}, SLO ${st.sloMs} ms`,
    [
      {
        name: "static (each subnet alone)",
        line: true,
        points: statics
          .filter((p) => front.has(p.name))
          .map((p) => ({ x: p.accuracyPct, y: p.attainmentPct, label: p.name.replace(/^static [a-z0-9]+-/, "") })),
      },
      {
        name: "static, off the front",
        points: statics.filter((p) => !front.has(p.name)).map((p) => ({ x: p.accuracyPct, y: p.attainmentPct })),
      },
      { name: "SlackFit (supernet)", points: at(SLACKFIT) },
      { name: "SlackFit as before", points: at(SLACKFIT_BEFORE) },
      { name: "INFaaS-like switching", points: at(SWITCHING) },
    ],
    { x: "mean accuracy of served requests (%)", y: "SLO attainment (%)" },
  );
}

const GPU_MISSING =
  "No GPU profile was measured for this run ({profile} is absent), so the GPU case — where SuperServe's headline was measured — is not reported here. To measure it, on a machine with an NVIDIA GPU and PyTorch: `python3 tools/gpu/profile_subnets.py --task vision-supernet --out {profile}` (see tools/gpu/README.md), commit the file, and re-run this experiment.";

/** Written after reading the sweep (see the table under it). */
const BUCKET_NOTE =
  "SlackFit's default bucket width is 0.2 × the task's SLO (100 ms here), chosen by this sweep when SlackFit still predicted from the p99 fit: the narrowest width whose attainment was within 1 point of the best on every swept trace. The table is this run's, with the table built from the measured points and the prefetch slot. Widths are relative to the SLO so that the same default serves the digits supernet (SLO 50 ms, sub-ms batches) and the vision one.";

/** Written after reading the results, per setting. */
const READING: Record<string, string[]> = {
  cpu: [
    "**Both goals are missed on the CPU, by a wide margin**: +0.90 points at the median trace (worst +0.44) and 1.02× (worst 1.00×); no trace reaches either. SlackFit beats the static curve in accuracy at equal attainment on every trace and seed (trace medians +0.44 to +2.10 points, the largest on the Azure window and the ramp at 90 req/s) while attaining 99.8–100 %, and its gains grow with burstiness, as the paper argues. But the static curve is much stronger than in the previous run of this experiment: EDF now sizes a batch that waits in an instance's prefetch slot from when it will start, not from now (src/router/scheduling/edf.ts). Compared on the same arrivals (seed 2024, the 108 static runs of the previous results), that raised the static subnets' attainment by a median of 23 points (0 to +73): before, a prefetched batch sized as if it started at once ran late and dragged the requests behind it along. With honest baselines SlackFit's attainment ratio fell from 1.17× to 1.02× and its median gain from +1.40 to +0.90 points.",
    "Why the CPU misses, as measured: (1) the vision subnets gain little from batching on a CPU core — a batch of 8 serves only 1.05–1.38× the rows per second of a batch of 1 (p50, models/vision-supernet/supernet/profile.json) — so 'a fast subnet with a big batch' absorbs a burst by little more than the fast subnet's own 4.3× speed-up over the largest (29.6 against 126.9 ms at batch 1), and a static subnet two or three steps down the front already carries the swept loads; (2) the front spans 6.45 points (69.54–75.99 %), and +4.67 points at equal attainment needs SlackFit near its top while the static subnet of equal attainment sits near its bottom; (3) 2.85× at equal accuracy needs the static subnet of SlackFit's accuracy to attain ≤ 35 %, and the static subnets on either side of SlackFit's accuracy attain 81–100 % at these loads (Every policy). The GPU case, where batching pays and where the paper measured its headline, is not measured here (see GPU).",
    "The INFaaS-like switcher attains less than SlackFit on every trace (medians 60–99 % against ≥ 99.8 %). It served more accurately than SlackFit on 19 of the 60 (trace, seed) pairs, always at that lower attainment: it keeps larger subnets loaded into the bursts it then misses, and each switch takes an instance away for the measured load time.",
  ],
};
const ABLATION_READING: Record<string, string[]> = {
  cpu: [
    "Predicting from the measured points instead of the p99 fit raised attainment from 98.9–99.7 % to 99.8–100 % on every trace, at 0–0.3 points less accuracy, and so raised the gain at equal attainment on every trace: the fit misses some (subnet, batch) points by a wide margin (its max relative error is in the profile), and a batch sized to an underestimate ends late. A prefetch slot filled as soon as it frees (eager) cost up to 0.3 points of accuracy against one slot (on 11 of 12 traces) and, on the burstiest trace, attainment (gamma CV² 8 at 90 req/s: 98.88 % against 99.84 %): it takes whatever request arrives first and runs it alone, sized by that request's slack rather than by the backlog behind it. Filled late, 0.02 × SLO before the running batch is expected to end, it matches one slot (accuracy −0.01 to +0.14 points, attainment within 0.1 point); the simulator has no dispatch cost for it to hide.",
    "Live (test/e2e/slackfit-live.test.ts: the digits supernet on one 1-core worker, a closed loop of 16-row requests straight into the router, one slot and two slots measured in alternating windows): with the prefetch slot the worker computed a larger share of the time in every run (e.g. 93 % against 89 %, 73 % against 59 %), but saturated throughput moved by 0.94–1.32× over runs while other work loaded this 2-core machine, and by 1.00× on it quiet (load 1.8: 20,127 against 20,131 rows/s, the worker computing 90 % against 86 % of the time); with 1-row requests it fell to 0.83–0.87×, where a second slot splits pairs that one slot would have batched. The prefetched batch's transfer shares the worker's one core with the batch it waits behind, and the router's process, not the worker, limits a saturated digits instance here: a raise in live throughput was not shown.",
  ],
};
