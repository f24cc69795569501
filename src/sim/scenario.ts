// What a simulation is made of: tasks with their variants (what policies believe about a variant,
// and how the simulator makes it behave), a starting deployment, and arrivals. Built from a model
// repository with its measured profiles, or by hand (the papers' fitted parameters, queueing checks).
import { fittedModel, variantModel } from "../core/variant-model.js";
import type { ScalingSettings } from "../autoscaler/scaling/index.js";
import type { PipelineScalingPolicy, ScalingPolicy } from "../autoscaler/types.js";
import type { LatencyParams } from "../stats/latency-model.js";
import type { SchedulingPolicy, VariantModel } from "../router/scheduling/types.js";
import type { Pipeline, Task, Variant } from "../repository/repository.js";
import { stageTasks, type PipelineGraph } from "../autoscaler/planner/pipeline-graph.js";
import type { MeasuredCombination } from "../core/pipeline-accuracy.js";
import { medianDuration, ProfileServiceModel, type Duration, type ServiceModel } from "./service-model.js";
import type { LatencyQuantiles } from "../stats/measured-latency.js";

export interface SimVariant {
  name: string;
  accuracy: number;
  maxBatch: number;
  /** The latency fit scaling policies plan with (the profile's p99 fit). */
  fit: LatencyParams;
  /** What scheduling policies predict for a batch (default: the fit, at least 0.01 ms). */
  predict?: (rows: number, cores: number) => number;
  /** Cold start the policies assume (default: the median of `coldStart`). */
  loadMs?: number;
  /** Resident memory of one instance in GB (the revised Themis cost); unknown when absent. */
  memGb?: number;
  /** How long a batch really takes in the simulator. */
  service: ServiceModel;
  coldStart: Duration;
  /** Cold start from a warm-pool worker (model load only); absent: a start of it takes no pooled worker. */
  warmStart?: Duration;
  resize: Duration;
  /** A supernet's served subnets: a batch naming one runs (and is predicted) as that subnet. */
  subnets?: SimSubnet[];
}

/** One subnet of a simulated supernet variant: its accuracy, what policies predict, how long it really takes. */
export interface SimSubnet {
  name: string;
  accuracy: number;
  predict: (rows: number, cores: number) => number;
  /** The subnet's latency fit (planners size instances for the served mix); default: the variant's. */
  fit?: LatencyParams;
  service: ServiceModel;
}

/**
 * The points policies that predict from measurements see: a profile's points are what the simulator
 * draws batch times from, so they are what was measured; a service model of another kind (a fit, a
 * constant) has no points, and such policies fall back on `predict`.
 */
function measuredOf(service: ServiceModel): LatencyQuantiles | undefined {
  return service instanceof ProfileServiceModel ? service.measured : undefined;
}

export interface SimTask {
  name: string;
  sloMs: number;
  variants: SimVariant[];
  /** Scheduling policy by name (edf, fifo, infaas) or a factory; default edf. */
  scheduling?: string | (() => SchedulingPolicy);
  /** Scaling policy by name (themis, horizontal, vertical, static, kpa, ray, infaas) or a factory; none by default. */
  scaling?: string | (() => ScalingPolicy);
  scalingSettings?: ScalingSettings;
  /** The variant the scaling policy scales while the task has no instance (default: the deployed one, else the first). */
  scaleVariant?: string;
  /** Admission bound (task.yaml's max_queue, default 1024). */
  maxQueue?: number;
  /** Serve hopeless requests late instead of answering 504 (task.yaml's late: serve). */
  lateOk?: boolean;
  minAccuracy?: number;
  /** Stop the task's last instances after this long without a request (ms; task.yaml's scale_to_zero_after). */
  scaleToZeroAfterMs?: number;
  /** Weight and guaranteed cores when a short budget is shared fairly (task.yaml's sharing). */
  weight?: number;
  minCores?: number;
}

export interface SimDeployment {
  task: string;
  variant: string;
  cores: number;
  /** Instances of this shape (default 1). */
  count?: number;
}

/** A pipeline of tasks with one end-to-end SLO; each stage queues by the pipeline's deadline. */
export interface SimPipeline {
  name: string;
  /** Stage task names, in order (a chain, unless `graph` says otherwise). */
  stages: string[];
  /** The stage graph (DAG); absent: `stages` as a chain. */
  graph?: PipelineGraph;
  /** Measured end-to-end accuracy per combination of stage variants (absent: the product of the stages'). */
  accuracy?: readonly MeasuredCombination[];
  /**
   * Rows one row of a stage becomes for the stages after it, sampled per variant of that stage (OCR: boxes
   * per image, by detector); a stage not listed passes its rows on.
   */
  fanOut?: Readonly<Record<string, Readonly<Record<string, readonly number[]>>>>;
  sloMs: number;
  /** Accuracy floor of the end-to-end accuracy (as the gateway applies it). */
  minAccuracy?: number;
  /** Plans the stages jointly under the end-to-end SLO (themis, horizontal); otherwise each stage task scales on its own. */
  scaling?: string | (() => PipelineScalingPolicy);
}

export interface SimArrivals {
  /** A task or a pipeline. */
  target: string;
  /** Arrival times in ms from the start of the run, sorted ascending. */
  times: ArrayLike<number>;
  /** Per-request remaining budget in ms (Sponge's dynamic SLO); default: the task's SLO. */
  budgets?: ArrayLike<number>;
  /** Rows per request (default 1). */
  rows?: number;
  /** Accuracy floor per request (default: the task's or pipeline's). */
  minAccuracy?: number;
  /** Priority class of these requests (1 = highest; default 1). */
  priority?: number;
  /** Optional pipeline stages these requests skip (the gateway's `skip_stages`). */
  skip?: readonly string[];
}

/**
 * A repository variant with a measured profile, as the simulator sees it. Actuations take the local
 * backend's measured times, or another backend's (`kubernetes`) where its profile records them.
 */
export function simVariantFromRepository(v: Variant, actuation = "local"): SimVariant {
  const model = variantModel(v); // throws with advice when the profile is missing
  const p = v.profile!;
  const timed = actuation === "local" ? p : p.actuation?.[actuation];
  if (!timed)
    throw new Error(
      `profile of ${v.task}/${v.name} records no ${actuation} actuation times; measure them (npm run bench:k8s -- --variant ${v.name} --write-profile) or simulate with local ones`,
    );
  return {
    name: v.name,
    accuracy: model.accuracy,
    maxBatch: model.maxBatch,
    fit: model.fit,
    predict: model.latency,
    loadMs: timed.load_ms.p50,
    memGb: model.memGb,
    service: new ProfileServiceModel(p.points),
    coldStart: timed.load_ms.samples.length > 0 ? timed.load_ms.samples : timed.load_ms.p50,
    // the warm pool is the local backend's: another backend's starts take no pooled worker
    ...(actuation === "local" && p.warm_load_ms
      ? { warmStart: p.warm_load_ms.samples.length > 0 ? p.warm_load_ms.samples : p.warm_load_ms.p50 }
      : {}),
    resize: timed.resize_ms.samples.length > 0 ? timed.resize_ms.samples : timed.resize_ms.p50,
    ...(v.config.subnets ? { subnets: simSubnetsFromRepository(v) } : {}),
  };
}

/** A supernet variant's subnets, each with its own measured points. */
export function simSubnetsFromRepository(v: Variant): SimSubnet[] {
  return (variantModel(v).subnets ?? []).map((m) => ({
    name: m.subnet!,
    accuracy: m.accuracy,
    predict: m.latency,
    fit: m.fit,
    service: new ProfileServiceModel(v.profile!.subnets![m.subnet!]!.points),
  }));
}

/** A repository task (its profiled variants only) with its task.yaml settings; `overrides` win. */
export function simTaskFromRepository(t: Task, overrides: Partial<SimTask> = {}, actuation = "local"): SimTask {
  const variants = [...t.variants.values()].filter((v) => v.profile).map((v) => simVariantFromRepository(v, actuation));
  if (variants.length === 0)
    throw new Error(`task '${t.name}' has no profiled variant; run 'sloserve profile --task ${t.name}'`);
  const c = t.config;
  return {
    name: t.name,
    sloMs: c.slo_ms,
    variants,
    scheduling: c.scheduling,
    scaling: c.scaling === "none" ? undefined : c.scaling,
    maxQueue: c.max_queue,
    lateOk: c.late === "serve",
    minAccuracy: c.min_accuracy,
    ...(c.scale_to_zero_after === undefined ? {} : { scaleToZeroAfterMs: c.scale_to_zero_after * 1000 }),
    weight: c.sharing.weight,
    minCores: c.sharing.min_cores,
    ...overrides,
  };
}

/** A repository pipeline with its pipeline.yaml settings; `overrides` win. */
export function simPipelineFromRepository(p: Pipeline, overrides: Partial<SimPipeline> = {}): SimPipeline {
  const c = p.config;
  return {
    name: p.name,
    stages: stageTasks(p.graph),
    graph: p.graph,
    ...(p.record ? { accuracy: p.record.combinations, ...(p.record.fan_out ? { fanOut: p.record.fan_out } : {}) } : {}),
    sloMs: c.slo_ms,
    minAccuracy: c.min_accuracy,
    scaling: c.scaling === "none" ? undefined : c.scaling,
    ...overrides,
  };
}

/** A simulated variant as policies see it (what a repository variant's profile gives the server). */
export function simVariantModel(v: SimVariant): VariantModel {
  const m = fittedModel({
    ...v,
    loadMs: v.loadMs ?? medianDuration(v.coldStart),
    warmLoadMs: v.warmStart === undefined ? undefined : medianDuration(v.warmStart),
    measured: measuredOf(v.service),
  });
  if (!v.subnets) return m;
  return {
    ...m,
    subnets: v.subnets.map((s) => {
      const measured = measuredOf(s.service);
      return { ...m, subnet: s.name, accuracy: s.accuracy, latency: s.predict, fit: s.fit ?? m.fit, measured };
    }),
  };
}
