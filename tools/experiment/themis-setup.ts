// What the Themis experiment runs: pipelines (the paper's fitted ones and sloserve's measured vision
// models) under three traces, and each policy configured as its authors or operators would — with the
// starting deployment every policy gets and the settings printed next to its results.
import { horizontal, vertical } from "../../src/autoscaler/planner/dp.js";
import { unitFor, type StageModel } from "../../src/autoscaler/planner/model.js";
import { HORIZONTAL_REVISED } from "../../src/autoscaler/scaling/horizontal.js";
import { instanceCapacity } from "../../src/autoscaler/scaling/capacity.js";
import { makeScalingPolicy, type ScalingSettings } from "../../src/autoscaler/scaling/index.js";
import { staticForPeak } from "../../src/autoscaler/scaling/static.js";
import { VERTICAL_REVISED } from "../../src/autoscaler/scaling/sponge.js";
import { plansPipelines } from "../../src/autoscaler/types.js";
import { simVariantModel } from "../../src/sim/scenario.js";
import type { SimDeployment, SimVariant } from "../../src/sim/index.js";
import type { RateSeries } from "../../src/traces/index.js";
import { latencyOf } from "../../src/stats/latency-model.js";

export interface Scenario {
  pipeline: string;
  trace: string;
  sloMs: number;
  stages: SimVariant[];
  /** Per-second arrival counts (fractional; rounded at random per seed). */
  load: RateSeries;
}

export interface Limits {
  cMax: number;
  bMax: number;
}

/** The task name of stage i of a scenario's pipeline. */
export const stageTask = (pipeline: string, i: number) => `${pipeline}-s${i}`;

function models(s: Scenario): StageModel[] {
  return s.stages.map((v) => ({ ...v.fit, ...(v.memGb === undefined ? {} : { memGb: v.memGb }) }));
}

function peakOf(load: RateSeries, from = 0, to = load.counts.length): number {
  let m = 0;
  for (let i = from; i < Math.min(to, load.counts.length); i++) m = Math.max(m, load.counts[i]!);
  return Math.max(1, Math.ceil(m));
}

/**
 * The layout every policy starts from: per stage, the 1-core instances the revised horizontal DP gives for
 * the busiest of the first 30 s (+ √λ), so that no policy starts short while Themis waits out its warm-up.
 */
export function startLayout(s: Scenario, l: Limits): number[] {
  const m = models(s);
  const lambda = peakOf(s.load, 0, 30);
  const plan = horizontal(m, {
    sloMs: s.sloMs,
    lambda: lambda + Math.sqrt(lambda),
    bMax: l.bMax,
    cMax: 1,
    semantics: "revised",
    queue: "exp-p99",
    unitMs: unitFor(m, 1, "revised", s.sloMs),
  });
  return plan ? plan.stages.map((x) => x.replicas) : s.stages.map(() => 1);
}

/** VO's instances: what the window's peak (+ √λ) needs at C_max, per the vertical DP's fallback. */
export function verticalLayout(s: Scenario, l: Limits): number[] {
  const m = models(s);
  const peak = peakOf(s.load);
  const plan = vertical(m, {
    sloMs: s.sloMs,
    lambda: peak + Math.sqrt(peak),
    bMax: l.bMax,
    cMax: l.cMax,
    current: s.stages.map(() => 1),
    semantics: "revised",
    queue: "exp-p99",
    unitMs: unitFor(m, l.cMax, "revised", s.sloMs),
  });
  return s.stages.map((_, i) => 1 + (plan?.extra?.[i] ?? 0));
}

/**
 * Each stage's share of the end-to-end SLO, in proportion to its batch-1 latency on one core: what an
 * operator sizing one stage of a pipeline (Knative's containerConcurrency, Ray's target) would budget it.
 */
function sloShares(s: Scenario): number[] {
  const l = s.stages.map((v) => Math.max(latencyOf(v.fit, 1, 1), 0.01));
  const total = l.reduce((a, b) => a + b, 0);
  return l.map((x) => (s.sloMs * x) / total);
}

export interface PolicyRun {
  /** The row's label (a policy name, or a variant of it). */
  label: string;
  policy: string;
  /** Plans the pipeline as a whole (else each stage on its own). */
  joint: boolean;
  /** Settings per stage (per-stage policies) or for the pipeline (joint ones: index 0). */
  settings: ScalingSettings[];
  deployment: SimDeployment[];
  forecaster: "max-trend" | "lstm";
  /** The configuration in words, as printed next to the results. */
  configuration: string;
  /** A variant of the scenario this row runs on (another cold start); default the scenario itself. */
  scenario?: Scenario;
}

export function policyRun(
  s: Scenario,
  name: string,
  l: Limits,
  forecaster: "max-trend" | "lstm" = "max-trend",
): PolicyRun {
  const policy = name;
  const start = startLayout(s, l);
  const deploy = (counts: number[], cores: number): SimDeployment[] =>
    s.stages.map((v, i) => ({ task: stageTask(s.pipeline, i), variant: v.name, cores, count: counts[i]! }));
  const shared: ScalingSettings = {
    themis: { maxBatch: l.bMax },
    themisV1: { maxBatch: l.bMax },
    horizontal: { ...HORIZONTAL_REVISED, maxBatch: l.bMax },
    vertical: { ...VERTICAL_REVISED, maxBatch: l.bMax },
    il: { maxBatch: l.bMax },
  };
  let settings: ScalingSettings[] = s.stages.map(() => shared);
  let deployment = deploy(start, 1);
  if (name === "vertical") deployment = deploy(verticalLayout(s, l), l.cMax);
  if (name === "static") {
    const sized = staticForPeak(models(s), s.sloMs, peakOf(s.load), l.bMax) ?? start;
    settings = sized.map((n) => ({ staticInstances: n, staticCores: 1 }));
    deployment = deploy(sized, 1);
  }
  if (name === "kpa" || name === "ray") {
    const shares = sloShares(s);
    settings = s.stages.map((v, i) => {
      const c = instanceCapacity(
        simVariantModel({ ...v, maxBatch: Math.min(v.maxBatch, l.bMax) }),
        shares[i]!,
      ).concurrency;
      return name === "kpa" ? { kpa: { containerConcurrency: c } } : { ray: { targetOngoingRequests: c } };
    });
  }
  const joint = plansPipelines(makeScalingPolicy(name, settings[0]!));
  const words = (joint ? [settings[0]!] : settings).map((x, i) => {
    const d = makeScalingPolicy(name, x).describe?.() ?? "";
    return joint || s.stages.length === 1 ? d : `stage ${i}: ${d}`;
  });
  const layout = deployment.map((d) => `${d.count}×${d.cores}`).join(" + ");
  return {
    label: forecaster === "lstm" ? `${name} (lstm)` : name,
    policy,
    joint,
    settings,
    deployment,
    forecaster,
    configuration: `${[...new Set(words)].join("; ")}; starts at ${layout} cores${forecaster === "lstm" ? "; inc from the LSTM forecaster" : ""}`,
  };
}

/** Σ over instances of mem + 18·cores, per second, from a run's series (the authors' cost metric). */
export function authorsCost(s: Scenario, series: { cores: number[]; mix?: Record<string, number>[] }): number[] {
  const mem = new Map(s.stages.map((v, i) => [`${stageTask(s.pipeline, i)}/${v.name}`, v.memGb ?? 0]));
  return series.cores.map((c, t) => {
    let m = 0;
    for (const [key, n] of Object.entries(series.mix?.[t] ?? {})) m += (mem.get(key) ?? 0) * n;
    return m + 18 * c;
  });
}
