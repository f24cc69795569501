// FA2 as a scaling policy, for one task or a pipeline under its end-to-end SLO: each stage keeps one
// variant and gets the batch, cores per replica and replicas of FA2's plan (planner/fa2.ts) for the
// larger of the present rate and the forecast. `horizontal` is this with 1-core replicas only.
//
// IPA's scale-only baselines are FA2 with the variant pinned: FA2-low the lightest variant of every
// stage, FA2-high the heaviest (by batch-1 latency on one core), deciding every 10 s like IPA.
import { fa2Plan } from "../planner/fa2.js";
import type { Semantics } from "../planner/model.js";
import { latencyOf } from "../../stats/latency-model.js";
import type { VariantModel } from "../../router/scheduling/types.js";
import {
  currentPlan,
  liveInstances,
  uniform,
  type Observation,
  type PipelineObservation,
  type PipelineScalingPolicy,
  type Plan,
  type Stateless,
} from "../types.js";
import { StatelessPipelinePolicy } from "./stateless-pipeline.js";
import { IPA_INTERVAL_MS, pipelineRates } from "./ipa.js";

export interface Fa2Options {
  /** Which variant each stage runs: the one serving now, or pinned to the lightest / heaviest. */
  variant: "current" | "lightest" | "heaviest";
  semantics: Semantics;
  maxBatch: number;
  /** Cores a replica may have (capped by the task's C_max). */
  cores: readonly number[];
  /** Decision interval (ms); absent, the control loop's. */
  intervalMs?: number;
  name: string;
}

export const FA2_DEFAULTS: Fa2Options = {
  variant: "current",
  semantics: "v1",
  maxBatch: 8,
  cores: [1, 2, 4],
  name: "fa2",
};

export class Fa2Policy extends StatelessPipelinePolicy implements PipelineScalingPolicy<Stateless> {
  readonly name: string;
  readonly intervalMs?: number;
  private readonly o: Fa2Options;

  constructor(o: Partial<Fa2Options> = {}) {
    super();
    this.o = { ...FA2_DEFAULTS, ...o };
    if (this.o.cores.length === 0) throw new Error("FA2: give at least one core count per replica");
    this.name = this.o.name;
    this.intervalMs = this.o.intervalMs;
  }

  describe(): string {
    return `FA2: batch × cores (${this.o.cores.join("/")}) × replicas per stage by its DP, ${this.o.variant === "current" ? "the serving variant" : `pinned to the ${this.o.variant} variant`}, ${this.o.semantics} latency model, B_max ${this.o.maxBatch}${this.intervalMs ? `, every ${this.intervalMs / 1000} s` : ""}`;
  }

  decidePipeline(p: PipelineObservation, _state: Stateless): { plans: Plan[]; state: Stateless } {
    const variants = p.stages.map((obs) => pick(obs, this.o.variant));
    const lambda = pipelineRates(p);
    const cMax = Math.min(...p.stages.map((obs) => obs.maxCores));
    const cores = this.o.cores.filter((c) => c <= cMax);
    const plan = fa2Plan(
      {
        stages: p.stages.map((obs, i) => ({
          name: obs.task,
          model: { ...variants[i]!.fit },
          maxBatch: variants[i]!.maxBatch,
          lambda: lambda[i]!,
          cores: cores.length > 0 ? cores : [1],
        })),
      },
      { sloMs: p.sloMs, bMax: this.o.maxBatch, semantics: this.o.semantics },
    );
    const pinned = this.o.variant !== "current";
    if (!plan)
      return {
        plans: p.stages.map((obs, i) => {
          const why = `${this.name}: no configuration of ${variants[i]!.name} meets ${p.sloMs} ms`;
          if (!pinned) return currentPlan(obs, `${why}; keeping the configuration`, this.name);
          const n = Math.max(1, liveInstances(obs, variants[i]!.name).length);
          return {
            instances: uniform(variants[i]!.name, n, 1),
            mode: this.name,
            scope: "task",
            reason: `${why}; keeping ${n} instance(s)`,
          };
        }),
        state: null,
      };
    const named = p.stages.length > 1;
    return {
      plans: p.stages.map((obs, i) => {
        const s = plan.stages[i]!;
        return {
          instances: uniform(variants[i]!.name, s.replicas, s.cores),
          batch: s.batch,
          mode: this.name,
          ...(pinned ? { scope: "task" as const } : {}),
          reason: `${this.name}: ${named ? `${obs.task} ` : ""}${variants[i]!.name} b=${s.batch}, ${s.replicas} × ${s.cores} core${s.cores > 1 ? "s" : ""} for ${lambda[i]!.toFixed(1)} req/s (budget ${s.budgetMs.toFixed(0)} ms of ${p.sloMs}; graph ${plan.shape}; cost ${plan.cost})`,
        };
      }),
      state: null,
    };
  }
}

/** The variant a stage runs under the policy. */
function pick(obs: Observation, how: Fa2Options["variant"]): VariantModel {
  if (how === "current") return obs.variants.find((v) => v.name === obs.variant) ?? obs.variants[0]!;
  const byWeight = [...obs.variants].sort((a, b) => latencyOf(a.fit, 1, 1) - latencyOf(b.fit, 1, 1));
  return how === "lightest" ? byWeight[0]! : byWeight[byWeight.length - 1]!;
}

/** IPA's scale-only baselines. */
export const fa2Low = () => new Fa2Policy({ variant: "lightest", name: "fa2-low", intervalMs: IPA_INTERVAL_MS });
export const fa2High = () => new Fa2Policy({ variant: "heaviest", name: "fa2-high", intervalMs: IPA_INTERVAL_MS });
