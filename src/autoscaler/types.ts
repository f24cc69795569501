// The scaling-policy contract: a pure function of an observation and the policy's state to a plan and
// the next state. Policies see numbers the control loop measured and hand back what they want; the loop
// keeps their state (as Ray Serve's policies return theirs), logs it with each decision, and the cluster
// backend makes the plan so.
import type { VariantModel } from "../router/scheduling/types.js";

export interface InstanceObservation {
  id: string;
  variant: string;
  cores: number;
  state: "starting" | "ready" | "draining" | "stopped";
}

export interface Observation {
  /** Clock ms. */
  now: number;
  task: string;
  sloMs: number;
  /** Arrival rate over the last 2 s (req/s). */
  rateNow: number;
  /**
   * Arrivals in each of the last RECENT_SECONDS whole seconds, oldest first (the current second excluded);
   * requests refused at admission count, since they are load the task did not carry.
   */
  recent: readonly number[];
  /** Forecast of the max per-second rate over the next 10 s. */
  ratePred: number;
  /** Requests queued or running right now (Knative's and Ray's concurrency signal). */
  concurrency: number;
  queueLength: number;
  /** Deadline misses since the last decision. */
  misses: number;
  /** Tightest remaining budget among recent requests (ms), Sponge's dynamic SLO. */
  tightestBudgetMs: number;
  /** Average rows per executed batch lately (INFaaS). */
  avgBatch: number;
  /**
   * What the scheduling policy ran since the previous decision: rows per variant and subnet (the last
   * non-empty mix when nothing ran since). Planners size instances for this mix, not for the variant's
   * default subnet: a scheduler that serves faster subnets under load needs fewer cores.
   */
  served: readonly ServedShare[];
  /** Compute time of the task's batches that finished since the previous decision (ms, summed over instances). */
  busyMs: number;
  /** Time since the previous decision of this task (ms); the window busyMs covers. */
  sinceMs: number;
  instances: InstanceObservation[];
  variants: readonly VariantModel[];
  /** The variant the task scales (policies that do not switch variants keep it). */
  variant: string;
  coreBudget: number;
  /** Cores a single instance may have (C_max). */
  maxCores: number;
}

/** Seconds of per-second arrival counts an observation carries. */
export const RECENT_SECONDS = 10;

export interface ServedShare {
  variant: string;
  subnet?: string;
  rows: number;
}

export interface Plan {
  /** Desired instances: variant and cores each. */
  instances: { variant: string; cores: number }[];
  /** Largest batch the scheduler should form (informational for EDF). */
  batch?: number;
  mode?: string;
  reason: string;
  /**
   * "variants" (default): only the variants the plan names are converged; instances of other variants —
   * started on demand for pinned requests or requests a floor sends elsewhere — are left to the on-demand
   * scaler. "task": the plan is the task's whole deployment (a policy that switches variants).
   */
  scope?: "variants" | "task";
}

export interface Decided<S> {
  plan: Plan;
  state: S;
}

/**
 * `S` is everything the policy remembers between decisions (windows, delays, counters, its mode). The
 * controller holds it: it starts from `initialState()`, passes it to every decision, keeps what comes back.
 */
export interface ScalingPolicy<S = unknown> {
  readonly name: string;
  initialState(): S;
  decide(obs: Observation, state: S): Decided<S>;
  /**
   * True when deciding again on an identical observation would give the same plan and the same state (no
   * windows, delays or counters running): the loop may then skip a quiet task.
   */
  steady(state: S): boolean;
  /**
   * Optional: after a decision on `obs` from state `before` that returned `after` and changed nothing, until
   * when (clock ms) each further decision would return the same instances and the state advance() makes of
   * the one before (`after`, then advance(after), …), as long as no request arrives for the task beyond the
   * `arriving` ones already counted in the current second, none is answered, and no instance of it changes.
   * Later observations then differ from `obs` only in `now`, `sinceMs`, the arrival figures as whole seconds
   * pass (`recent` and `rateNow` taking `arriving` and then zeros, `tightestBudgetMs`, and `ratePred`, which
   * stays at most `forecastCeiling`), and the figures of what happened since the last decision (`misses`,
   * `busyMs` 0, `avgBatch` 1). Null: no promise. The control loop skips the decisions the promise covers.
   */
  holdsUntil?(obs: Observation, before: S, after: S, forecastCeiling: number, arriving: number): number | null;
  /**
   * Optional, with holdsUntil: the state a decision the promise covers leaves, from the one before it (a
   * policy that counts agreeing decisions counts one more); absent, the state stays as it is.
   */
  advance?(state: S): S;
  /**
   * Optional, with holdsUntil: whether deciding on `now` from `state` — a state of a promise made on `held` —
   * would return the same instances and advance(state). The loop asks when something happened to a task on
   * a hold; true skips the decision.
   */
  unchangedBy?(held: Observation, now: Observation, state: S): boolean;
  /**
   * How often the policy decides (ms), when its algorithm fixes that (Themis' revised loop: 500; Kubernetes'
   * HPA: its 15-s sync period); absent, the control loop's default interval.
   */
  readonly intervalMs?: number;
  /** The policy's settings in words (reports print them next to its results). */
  describe?(): string;
}

/** The state of a policy that remembers nothing. */
export type Stateless = null;

export function currentPlan(obs: Observation, reason: string, mode?: string): Plan {
  return {
    instances: obs.instances
      .filter((i) => i.state !== "draining" && i.state !== "stopped")
      .map((i) => ({ variant: i.variant, cores: i.cores })),
    reason,
    mode,
  };
}

export function uniform(variant: string, count: number, cores: number): Plan["instances"] {
  return Array.from({ length: Math.max(0, count) }, () => ({ variant, cores }));
}

/**
 * One decision for a pipeline under a single end-to-end SLO: every stage task's own observation (its
 * rates include any direct traffic) and the pipeline's.
 */
export interface PipelineObservation {
  now: number;
  pipeline: string;
  sloMs: number;
  stages: Observation[];
  /**
   * The stage graph as measured, for policies that plan DAGs (ipa): absent, the stages form a chain in
   * order, one row each. Policies that plan chains read a DAG's stages in their listed (topological) order,
   * which over-counts parallel branches' latency, never under-counts it.
   */
  graph?: PipelineGraphObservation;
}

export interface PipelineGraphObservation {
  /** Each edge with the mean rows one row of `from` became for `to` (fan-out), and how many requests showed it. */
  edges: { from: string; to: string; fanOut: number; observed: number }[];
  /** Per stage task: rows one of its requests carries, at a high quantile (a fan-out stage's group of rows). */
  rows: Record<string, number>;
  /** Stages requests may skip. */
  optional: string[];
  /** Measured end-to-end accuracy per combination of stage variants (absent: the product of the stages'). */
  accuracy?: readonly { stages: Readonly<Record<string, string>>; value: number }[];
}

/** A policy that plans a pipeline's stages jointly (Themis' DPs); one plan per stage, in order. */
export interface PipelineScalingPolicy<S = unknown> extends ScalingPolicy<S> {
  decidePipeline(obs: PipelineObservation, state: S): { plans: Plan[]; state: S };
}

export function plansPipelines<S>(p: ScalingPolicy<S>): p is PipelineScalingPolicy<S> {
  return typeof (p as Partial<PipelineScalingPolicy<S>>).decidePipeline === "function";
}

/** Instances that count toward a plan: neither draining nor stopped. */
export function liveInstances(obs: Observation, variant = obs.variant): InstanceObservation[] {
  return obs.instances.filter((i) => i.variant === variant && i.state !== "draining" && i.state !== "stopped");
}

/** A change point of one instance. */
export interface DriftEvent {
  /** Clock ms. */
  at: number;
  task: string;
  variant: string;
  instance: string;
  place?: string;
  direction: "slower" | "faster";
  /** Factor over the profile before and after. */
  from: number;
  to: number;
  /** Batches the change was found over. */
  samples: number;
}

/** What a decision was made with (the serving core's online latency model): the factor per variant (fleet), per instance, and the changes since the last one. */
export interface LatencyCorrection {
  variants: Record<string, number>;
  instances: Record<string, number>;
  changes: DriftEvent[];
}
