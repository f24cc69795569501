// What the planner-based policies (themis, themis-v1, horizontal, vertical, il) read from an observation:
// each stage's variant, the latency model of what its scheduler runs, its instances, and its rates; and
// the planner options common to one decision.
import type { PlanOptions } from "../planner/dp.js";
import { unitFor, type QueueModel, type Semantics, type StageModel } from "../planner/model.js";
import { liveInstances, type Observation, type PipelineObservation } from "../types.js";
import type { VariantModel } from "../../router/scheduling/types.js";
import { servedFit } from "./served-model.js";

export interface StageView {
  obs: Observation;
  variant: VariantModel;
  /** The served mix's latency model (see servedFit) with the variant's memory. */
  model: StageModel;
  /** Live instances now (at least 1: the planner's n_s). */
  n: number;
  /** Largest instance's cores now. */
  cores: number;
  lambdaNow: number;
  lambdaPred: number;
}

/** The stage's variant, the model of what it serves, and what runs now. */
export function stageView(obs: Observation): StageView {
  const variant = obs.variants.find((x) => x.name === obs.variant)!;
  const live = liveInstances(obs);
  const lambdaNow = Math.max(obs.rateNow, 1e-3);
  return {
    obs,
    variant,
    model: { ...servedFit(variant, obs.served), ...(variant.memGb === undefined ? {} : { memGb: variant.memGb }) },
    n: Math.max(1, live.length),
    cores: Math.max(1, ...live.map((i) => i.cores)),
    lambdaNow,
    lambdaPred: Math.max(obs.ratePred, lambdaNow),
  };
}

/** Planner options common to a decision: B_max and C_max of the tightest stage, the DP's time unit. */
export function planOptions(
  views: StageView[],
  sloMs: number,
  semantics: Semantics,
  maxBatch: number,
  cMax?: number,
  queue?: QueueModel,
): Omit<PlanOptions, "lambda"> {
  const c = cMax ?? Math.min(...views.map((v) => v.obs.maxCores));
  return {
    sloMs,
    bMax: Math.min(maxBatch, ...views.map((v) => v.variant.maxBatch)),
    cMax: c,
    semantics,
    ...(queue === undefined ? {} : { queue }),
    unitMs: unitFor(
      views.map((v) => v.model),
      c,
      semantics,
      sloMs,
    ),
  };
}

export function singleStage(obs: Observation): PipelineObservation {
  return { now: obs.now, pipeline: obs.task, sloMs: obs.sloMs, stages: [obs] };
}

/** ceil(max of the last `seconds` whole-second arrival counts): the revised Themis loop's λ. */
export function recentMax(obs: Observation, seconds = 5): number {
  const r = obs.recent;
  let m = 0;
  for (let i = Math.max(0, r.length - seconds); i < r.length; i++) m = Math.max(m, r[i]!);
  return Math.ceil(m - 1e-9);
}

/**
 * Per-stage λ of the revised loop: the pipeline's entry rate (max of the last 5 s) for every stage, raised
 * where a stage sees more (direct traffic of its own).
 */
export function stageRates(stages: readonly Observation[], seconds = 5): number[] {
  const entry = recentMax(stages[0]!, seconds);
  return stages.map((o, i) => (i === 0 ? entry : Math.max(entry, recentMax(o, seconds))));
}
