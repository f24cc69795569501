// The on-disk contract of a model repository (DESIGN.md, "Model repository"): task.yaml,
// variant.yaml and profile.json, validated with zod so that a typo is reported, not ignored.
import { z } from "zod";
import { SCALING_POLICY_NAMES } from "../autoscaler/scaling/index.js";
import { SCHEDULING_POLICY_NAMES } from "../router/scheduling/index.js";
import { OIP_DATATYPES } from "./datatypes.js";
import { GLUE_NAMES } from "./glue-names.js";
import { NAME_PATTERN } from "./safe-path.js";

const name = z.string().regex(NAME_PATTERN, "use 1-64 lowercase letters, digits, '.', '_' or '-'");

export const TensorDecl = z
  .object({
    name: z.string().min(1),
    datatype: z.enum(OIP_DATATYPES),
    /** Shape of one row: the batch dimension is implicit and comes first. */
    shape: z.array(z.number().int().positive()),
    /** Class names by index of an output's last dimension, for the classification extension. */
    labels: z.array(z.string()).optional(),
  })
  .strict();
export type TensorDecl = z.infer<typeof TensorDecl>;

const SCALING_CHOICES = [...SCALING_POLICY_NAMES, "none"] as const;

export const TaskConfig = z
  .object({
    name,
    description: z.string().default(""),
    inputs: z.array(TensorDecl).min(1),
    outputs: z.array(TensorDecl).min(1),
    slo_ms: z.number().positive(),
    min_accuracy: z.number().min(0).max(1).default(0),
    scheduling: z.enum(SCHEDULING_POLICY_NAMES).default("edf"),
    scaling: z.enum(SCALING_CHOICES).default("themis"),
    /** Admission bound: requests beyond this many queued are refused at once (429). */
    max_queue: z.number().int().positive().default(1024),
    /** What to do with a request that can no longer meet its deadline: answer 504 now, or serve it late. */
    late: z.enum(["drop", "serve"]).default("drop"),
    /**
     * Seconds without a request after which the task's last instances stop (scale to zero); the next request
     * starts one again. A step of its own, after whatever the scaling policy keeps while traffic flows. Absent:
     * the task keeps its instances (cores are still reclaimed for other tasks when short).
     */
    scale_to_zero_after: z.number().positive().optional(),
    /**
     * The class of a request that names none (Triton's priority: 1 = highest; default 1). Under overload,
     * requests of a larger number queue behind and are shed before those of a smaller one.
     */
    priority: z.number().int().min(1).max(1000).optional(),
    /**
     * Its share when the tasks' plans want more cores than the budget (`serve --core-sharing fair`): the
     * weight of its expected SLO violations in the objective, and cores it keeps however short the budget.
     */
    sharing: z
      .object({ weight: z.number().positive().default(1), min_cores: z.number().int().nonnegative().default(0) })
      .strict()
      .default({ weight: 1, min_cores: 0 }),
  })
  .strict();
export type TaskConfig = z.infer<typeof TaskConfig>;

export const AccuracyDecl = z
  .object({
    value: z.number().min(0).max(1),
    source: z.enum(["measured", "declared"]),
    evaluated_on: z.string().optional(),
    reference: z.string().optional(),
    correct: z.number().int().nonnegative().optional(),
    total: z.number().int().positive().optional(),
  })
  .strict()
  .refine((a) => a.source !== "measured" || a.evaluated_on, {
    message: "a measured accuracy must say what it was evaluated_on",
  })
  .refine((a) => a.source !== "declared" || a.reference, { message: "a declared accuracy must name its reference" });

/** Control inputs of a supernet graph (see zoo/supernet/subnetact.ts): int64 vectors fed per batch. */
export const CONTROL_INPUT_PATTERN = /^subnet_[a-z0-9_]+$/;

/** One subnet a supernet variant serves: the control values that select it, and its own accuracy. */
export const SubnetDecl = z
  .object({
    name,
    controls: z.record(
      z.string().regex(CONTROL_INPUT_PATTERN, "control inputs are named subnet_<something>"),
      z.array(z.number().int().nonnegative()).min(1),
    ),
    accuracy: AccuracyDecl,
    parameters: z.number().int().nonnegative().optional(),
    /** Multiply-accumulates per input row. */
    macs: z.number().nonnegative().optional(),
  })
  .strict();
export type SubnetDecl = z.infer<typeof SubnetDecl>;

/**
 * A variant generated from another variant of the same task (`sloserve variants generate`): the
 * transforms applied, in order, and the hashes that let the model be rebuilt and checked.
 */
export const DerivedFrom = z
  .object({
    variant: name,
    transforms: z
      .array(z.object({ kind: z.string().min(1) }).catchall(z.union([z.string(), z.number(), z.array(z.string())])))
      .min(1),
    source_sha256: z.string().regex(/^[0-9a-f]{64}$/),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    generated_by: z.string().optional(),
  })
  .strict();
export type DerivedFrom = z.infer<typeof DerivedFrom>;

export const VariantConfig = z
  .object({
    name,
    description: z.string().default(""),
    architecture: z.string().optional(),
    parameters: z.number().int().nonnegative().optional(),
    max_batch: z.number().int().positive().default(32),
    /** Of the default subnet, for a supernet variant. */
    accuracy: AccuracyDecl,
    /** A supernet variant: the subnets it serves (the Pareto front), selected per batch by control inputs. */
    subnets: z.array(SubnetDecl).min(1).optional(),
    /** The subnet a batch that names none runs on (default: the most accurate listed). */
    default_subnet: name.optional(),
    derived_from: DerivedFrom.optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (!v.subnets) {
      if (v.default_subnet)
        ctx.addIssue({ code: "custom", path: ["default_subnet"], message: "default_subnet needs a subnets list" });
      return;
    }
    const seen = new Set<string>();
    const controlKeys = Object.keys(v.subnets[0]!.controls).sort().join(",");
    v.subnets.forEach((s, i) => {
      if (seen.has(s.name))
        ctx.addIssue({
          code: "custom",
          path: ["subnets", i, "name"],
          message: `subnet '${s.name}' is listed twice; give each subnet its own name`,
        });
      seen.add(s.name);
      const keys = Object.keys(s.controls).sort().join(",");
      if (keys !== controlKeys) {
        ctx.addIssue({
          code: "custom",
          path: ["subnets", i, "controls"],
          message: `subnet '${s.name}' sets controls [${keys}] but '${v.subnets![0]!.name}' sets [${controlKeys}]; every subnet must set the same control inputs`,
        });
      }
    });
    if (v.default_subnet && !seen.has(v.default_subnet)) {
      ctx.addIssue({
        code: "custom",
        path: ["default_subnet"],
        message: `'${v.default_subnet}' is not one of the subnets (${[...seen].join(", ")})`,
      });
    }
  });
export type VariantConfig = z.infer<typeof VariantConfig>;

/** The subnet a batch naming none runs on: `default_subnet`, else the most accurate listed. */
export function defaultSubnetOf(v: VariantConfig): SubnetDecl | undefined {
  if (!v.subnets) return undefined;
  if (v.default_subnet) return v.subnets.find((s) => s.name === v.default_subnet);
  return v.subnets.reduce((a, b) => (b.accuracy.value > a.accuracy.value ? b : a));
}

/** A stage of a pipeline: a task name (waiting for the stage listed before it), or the task with its inputs. */
export const PipelineStageEntry = z.union([
  name,
  z
    .object({
      task: name,
      /** Stages whose outputs this one waits for (default: the stage listed before it; [] for a source). */
      after: z.array(name).optional(),
      /** A request may skip it with the parameter `skip_stages` (comma-separated stage names). */
      optional: z.boolean().optional(),
    })
    .strict(),
]);
export type PipelineStageEntry = z.infer<typeof PipelineStageEntry>;

export const PipelineConfig = z
  .object({
    name,
    description: z.string().default(""),
    /**
     * The stage graph: a list of tasks is a chain (every input of stage k+1 is an output of stage k with
     * the same name); objects with `after` make a DAG (fan-out to several stages, fan-in of several).
     */
    stages: z.array(PipelineStageEntry).min(2),
    slo_ms: z.number().positive(),
    /** Applies to the pipeline's measured accuracy (accuracy.yaml), else to the product of its stages'. */
    min_accuracy: z.number().min(0).max(1).default(0),
    /**
     * Code between the stages (src/pipelines): the pipeline's own inputs and outputs, each stage's input from
     * the outputs it waits for, fan-out to many rows. Absent: tensors pass between stages by name.
     */
    glue: z.enum(GLUE_NAMES).optional(),
    /**
     * Scaling of the stages as a whole under the end-to-end SLO by a policy that plans pipelines (themis,
     * horizontal, vertical, ipa, fa2…); absent, "none", or a policy that plans tasks one by one: each stage
     * task scales on its own by its task.yaml.
     */
    scaling: z.enum(SCALING_CHOICES).optional(),
  })
  .strict();
export type PipelineConfig = z.infer<typeof PipelineConfig>;

export const ProfilePoint = z.object({
  batch: z.number().int().positive(),
  cores: z.number().int().positive(),
  p50_ms: z.number().nonnegative(),
  p99_ms: z.number().nonnegative(),
  mean_ms: z.number().nonnegative(),
  samples: z.number().int().positive(),
});
export type ProfilePoint = z.infer<typeof ProfilePoint>;

export const LatencyFit = z.object({
  /** l(b,c) = alpha·b/c + beta·b + gamma/c + zeta, in ms. */
  alpha: z.number(),
  beta: z.number(),
  gamma: z.number(),
  zeta: z.number(),
  median_rel_error: z.number(),
  max_rel_error: z.number(),
  rmse_ms: z.number(),
});
export type LatencyFit = z.infer<typeof LatencyFit>;

export const LinearFit = z.object({ slope: z.number(), intercept: z.number(), max_rel_error: z.number() });
export type LinearFit = z.infer<typeof LinearFit>;

export const Stat = z.object({ p50: z.number(), max: z.number(), samples: z.array(z.number()) });
export type Stat = z.infer<typeof Stat>;

export const Machine = z.object({
  cpu: z.string(),
  cores: z.number().int().positive(),
  memory_gb: z.number(),
  os: z.string(),
  node: z.string(),
  onnxruntime: z.string(),
  /** The accelerator a profile was measured on (a GPU profile from tools/gpu), absent for CPU profiles. */
  accelerator: z.string().optional(),
});
export type Machine = z.infer<typeof Machine>;

/** One subnet's share of a supernet variant's profile. */
export const SubnetProfile = z.object({
  points: z.array(ProfilePoint).min(1),
  fit: z.object({ p50: LatencyFit, p99: LatencyFit, mean: LatencyFit }),
  infaas: z.record(z.string(), LinearFit),
});
export type SubnetProfile = z.infer<typeof SubnetProfile>;

export const Profile = z.object({
  task: name,
  variant: name,
  measured_at: z.string(),
  machine: Machine,
  /** How the points were measured, when not by `sloserve profile` (e.g. the PyTorch GPU tool). */
  method: z.string().optional(),
  settings: z.object({ warmup: z.number().int(), min_samples: z.number().int(), budget_ms: z.number() }),
  points: z.array(ProfilePoint).min(1),
  /** Cold start: process spawn + session creation + warm-up, until the instance can serve. */
  load_ms: Stat,
  /**
   * Cold start from the warm pool: a started worker with onnxruntime loaded and no model takes this one
   * (session + warm-up, no process spawn). Written by `npm run bench:pressure -- --write-profile`.
   */
  warm_load_ms: Stat.optional(),
  /** In-place resize: a new session with another thread count, swapped in. */
  resize_ms: Stat,
  peak_rss_mb: z.number(),
  fit: z.object({ p50: LatencyFit, p99: LatencyFit, mean: LatencyFit }),
  /** INFaaS's model: per core count, latency linear in batch size (fitted on p99). */
  infaas: z.record(z.string(), LinearFit),
  /**
   * Supernet variants: every served subnet measured on the same grid, by subnet name. The top-level
   * points and fits are the default subnet's, so readers that know nothing of subnets keep working.
   */
  subnets: z.record(z.string(), SubnetProfile).optional(),
  /**
   * Cold start and in-place resize as another cluster backend measured them (`kubernetes`: scale-out to
   * ready and pods/resize to done, through the API server), written by `npm run bench:k8s -- --write-profile`;
   * `sloserve simulate --actuation kubernetes` times actuations by them.
   */
  actuation: z.record(z.string(), z.object({ measured_at: z.string(), load_ms: Stat, resize_ms: Stat })).optional(),
  /**
   * Points measured while serving (the online latency model's batch times) that replaced or joined the
   * profiled ones, written by `sloserve profile --update-from-serving`, and when.
   */
  updated_from_serving: z
    .object({
      at: z.string(),
      source: z.string(),
      points: z.array(
        z.object({
          subnet: z.string().optional(),
          batch: z.number().int().positive(),
          cores: z.number().int().positive(),
        }),
      ),
    })
    .optional(),
});
export type Profile = z.infer<typeof Profile>;

/**
 * A pipeline's measured record (models/<pipeline>/accuracy.yaml): its end-to-end accuracy for each
 * combination of stage variants (a skipped optional stage as `skip`), which `min_accuracy` applies to,
 * and the measured fan-out: how many rows one input row of a stage becomes for the stages after it,
 * sampled per variant of that stage (the simulator draws from these, the planner starts from their mean).
 */
export const PipelineRecord = z
  .object({
    metric: z.string(),
    evaluated_on: z.string(),
    combinations: z
      .array(
        z
          .object({
            stages: z.record(name, z.string().min(1)),
            value: z.number().min(0).max(1),
            correct: z.number().int().nonnegative().optional(),
            total: z.number().int().positive().optional(),
          })
          .strict(),
      )
      .min(1),
    fan_out: z.record(name, z.record(name, z.array(z.number().int().nonnegative()).min(1))).optional(),
  })
  .strict();
export type PipelineRecord = z.infer<typeof PipelineRecord>;

/** What a skipped optional stage is called in a record's combinations. */
export const SKIPPED = "skip";
