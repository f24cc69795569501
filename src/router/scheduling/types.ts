// The scheduling-policy contract. A policy is a pure function of queue state, profiles and the
// time it is handed: it never reads the wall clock or touches processes, so the simulator runs the
// very same code as the live router.
import type { LatencyParams } from "../../stats/latency-model.js";
import type { LatencyQuantiles } from "../../stats/measured-latency.js";
import type { RequestQueue } from "../queue.js";
import type { Request } from "../request.js";

/**
 * What policies know about a variant (or a supernet's subnet): its accuracy, what a batch is predicted to
 * take (scheduling policies), the profiled latency model it comes from (scaling policies' planners) and
 * its cold start.
 */
export interface VariantModel {
  name: string;
  accuracy: number;
  maxBatch: number;
  /** Predicted latency in ms of a batch of `rows` rows on `cores` cores (profiled fit, p99). */
  latency(rows: number, cores: number): number;
  /** The profile's p99 fit l(b,c) = α·b/c + β·b + γ/c + ζ, which planners reason with. */
  fit: LatencyParams;
  /**
   * The profile's measured points, interpolated (p50 and p99 per batch and cores), for policies that
   * predict from what was measured rather than from the fit (SlackFit). Absent for a variant known only
   * by a fit.
   */
  measured?: LatencyQuantiles;
  /** Cold start in ms (spawn + load + warm-up). */
  loadMs: number;
  /** Cold start from a warm pool (a started worker loads the model: no spawn), when measured. */
  warmLoadMs?: number;
  /** Resident memory of one instance in GB (the revised Themis cost n·(mem + 18·cores)); unknown when absent. */
  memGb?: number;
  subnet?: string;
  /**
   * A supernet variant's served subnets (the Pareto front), each with its own accuracy and
   * latency fit; the instances are the variant's. Only policies that switch subnets look here.
   */
  subnets?: readonly VariantModel[];
  /**
   * The same model as it predicts for one instance, where predictions differ between instances (the online
   * correction learns each instance's speed, src/core/online-latency.ts); absent: the same for every instance.
   */
  on?(instanceId: string): VariantModel;
  /** Changes whenever the model's predictions change (a correction republished): caches of them recheck it. */
  readonly revision?: number;
}

/** What `v` predicts on this instance (see VariantModel.on). */
export function onInstance(v: VariantModel, inst: InstanceView): VariantModel {
  return v.on ? v.on(inst.id) : v;
}

export interface TaskModel {
  name: string;
  sloMs: number;
  variants: readonly VariantModel[];
}

export interface InstanceView {
  id: string;
  variant: string;
  cores: number;
  /** Batches sent and not yet answered. */
  inFlight: number;
}

export interface PolicyContext {
  now: number;
  task: TaskModel;
  variant(name: string): VariantModel | undefined;
  /** Ready instances of this task. */
  instances: readonly InstanceView[];
  /**
   * When a batch handed to `inst` now is predicted to start: now for an idle instance; behind a busy
   * one, when the batches it holds are predicted to end (a prefetched batch waits for the running one).
   */
  startAt(inst: InstanceView): number;
  /** The same by the held batches' expected (median) times: when the instance will most likely be free. */
  expectedStartAt(inst: InstanceView): number;
}

export interface BatchChoice {
  variant: string;
  subnet?: string;
  /** Requests to run, in queue order. */
  take: Request[];
  /** Requests that cannot meet their deadline anywhere and are answered at once (504). */
  drop: Request[];
  /** What the policy predicts the batch takes (ms, a high quantile); the router times the instance's queue with it. */
  predictedMs?: number;
  /** Its expected (median) time, where the policy knows it; default `predictedMs`. */
  expectedMs?: number;
}

/** `batch`: run it now; `wait`: nothing yet, ask again at that time; `idle`: nothing for this instance. */
export type NextBatch =
  | { kind: "batch"; choice: BatchChoice }
  | { kind: "wait"; until: number; drop?: Request[] }
  | { kind: "idle"; drop?: Request[] };

export interface SchedulingPolicy {
  readonly name: string;
  readonly order: "deadline" | "arrival";
  /** Runs a supernet's batches on any of its subnets: the router then judges deadlines by the fastest one. */
  readonly switchesSubnets?: boolean;
  /** Called once per request as it is queued; may set `request.assigned`. */
  onArrival?(request: Request, ctx: PolicyContext): void;
  /** Called when `instance` has room for another batch. */
  nextBatch(instance: InstanceView, queue: RequestQueue, ctx: PolicyContext): NextBatch;
  /** Called when a batch finished, with its measured compute time. */
  onBatchDone?(variant: string, rows: number, computeMs: number, ctx: PolicyContext): void;
  /** Called every second (INFaaS' overload check). */
  tick?(ctx: PolicyContext, queue: RequestQueue): void;
}

/**
 * May `instance` (of `variant`) serve `r`? Pins, a pipeline stage's allowed variants, on-arrival
 * assignments and accuracy floors. A policy
 * that switches subnets may serve a request on any subnet that meets its floor; any other policy runs a
 * supernet's default subnet, whose accuracy is the variant's.
 */
export function eligible(r: Request, variant: VariantModel, switchesSubnets = false): boolean {
  if (r.pinned) return r.pinned === variant.name;
  if (r.allowed && !r.allowed.has(variant.name)) return false;
  if (r.assigned) return r.assigned === variant.name;
  return (
    (switchesSubnets && variant.subnets?.length ? topAccuracy(variant.subnets) : variant.accuracy) >= r.minAccuracy
  );
}

/** The latency a policy that predicts from measured points sees: their p99, else the fit. */
export function measuredP99(v: VariantModel, rows: number, cores: number): number {
  return v.measured ? v.measured.p99(rows, cores) : v.latency(rows, cores);
}

/**
 * Least predicted latency of `r` on `variant` (on `cores`): the variant itself, or, when the policy
 * switches subnets, its fastest subnet that meets the request's floor by the measured points' p99, as
 * SlackFit predicts (the pin or the variant's floor check has already admitted the request).
 */
export function fastestOn(r: Request, variant: VariantModel, cores: number, switchesSubnets: boolean): number {
  if (!switchesSubnets || !variant.subnets?.length) return variant.latency(r.rows, cores);
  const floor = subnetFloor(r, variant.subnets);
  let best = Infinity;
  for (const s of variant.subnets) if (s.accuracy >= floor) best = Math.min(best, measuredP99(s, r.rows, cores));
  return best;
}

/**
 * The least subnet accuracy `r` accepts. A pin names the model, not a subnet, so a pinned
 * request's floor is capped at the most accurate subnet (a pin always gets served, as for an
 * ordinary variant).
 */
export function subnetFloor(r: Request, subnets: readonly VariantModel[]): number {
  if (!r.pinned) return r.minAccuracy;
  return Math.min(r.minAccuracy, topAccuracy(subnets));
}

function topAccuracy(subnets: readonly VariantModel[]): number {
  let top = 0;
  for (const s of subnets) top = Math.max(top, s.accuracy);
  return top;
}
