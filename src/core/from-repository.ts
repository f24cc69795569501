// A model repository's tasks and pipelines as the serving core takes them: their task.yaml and
// pipeline.yaml settings, their variants' measured profiles, and the scaling policy an operator chose.
import { makeScalingPolicy, type ScalingSettings } from "../autoscaler/scaling/index.js";
import type { Pipeline, Task } from "../repository/repository.js";
import { makeSchedulingPolicy } from "../router/scheduling/index.js";
import type { CorePipeline, CoreTask } from "./serving-core.js";
import { variantModel } from "./variant-model.js";

export interface ScalingChoice {
  /** One scaling policy for every task and pipeline ("none": no autoscaling); default: each one's yaml. */
  autoscaler?: string;
  /** The variant a task's scaling policy scales while it has no instance (default: its first). */
  scaleVariant?: (task: string) => string | undefined;
  /** Settings of the policies (each reads its own); default: the policies' own defaults. */
  settings?: ScalingSettings;
  /** Scale every task to zero after this long without a request (ms); default: each task.yaml's scale_to_zero_after. */
  scaleToZeroAfterMs?: number;
}

export function coreTaskOf(task: Task, choice: ScalingChoice = {}): CoreTask {
  const c = task.config;
  const scaling = choice.autoscaler ?? c.scaling;
  return {
    model: { name: task.name, sloMs: c.slo_ms, variants: [...task.variants.values()].map(variantModel) },
    scheduling: makeSchedulingPolicy(c.scheduling),
    maxQueue: c.max_queue,
    lateOk: c.late === "serve",
    scaling: scaling === "none" ? undefined : makeScalingPolicy(scaling, choice.settings),
    scaleVariant: choice.scaleVariant?.(task.name),
    scaleToZeroAfterMs:
      choice.scaleToZeroAfterMs ?? (c.scale_to_zero_after === undefined ? undefined : c.scale_to_zero_after * 1000),
    weight: c.sharing.weight,
    minCores: c.sharing.min_cores,
  };
}

/** A pipeline is planned as a whole only when its pipeline.yaml asks for it (and autoscaling is on). */
export function corePipelineOf(p: Pipeline, choice: ScalingChoice = {}): CorePipeline {
  const c = p.config;
  const scaling = c.scaling === undefined ? undefined : (choice.autoscaler ?? c.scaling);
  return {
    name: p.name,
    graph: p.graph,
    sloMs: c.slo_ms,
    ...(p.record ? { accuracy: p.record.combinations, ...(p.record.fan_out ? { fanOut: p.record.fan_out } : {}) } : {}),
    scaling: scaling === undefined || scaling === "none" ? undefined : makeScalingPolicy(scaling, choice.settings),
  };
}
