// The `Cluster` contract: what the router and the autoscaler may ask of instances, the same for the
// local backend (worker processes), a Kubernetes backend and the simulator.
import type { Tensors } from "../engine/engine.js";

export type InstanceState = "starting" | "ready" | "draining" | "stopped";

export interface InstanceInfo {
  id: string;
  task: string;
  variant: string;
  cores: number;
  state: InstanceState;
  /** Batches sent and not yet answered. */
  inFlight: number;
  /** It was started from a warm pool (a started worker given its model): its start costs the model load only. */
  warmStart?: boolean;
}

/** One request's share of a batch: its rows and its tensors (null in the simulator, which computes nothing). */
export interface WorkItem {
  rows: number;
  input: Tensors | null;
}

export interface BatchWork {
  task: string;
  variant: string;
  subnet?: string;
  items: readonly WorkItem[];
}

/** `outputs[i]` answers `items[i]` (null where nothing was computed: the simulator). */
export type BatchResult =
  | { ok: true; outputs: (Tensors | null)[]; computeMs: number }
  | { ok: false; gone: boolean; message: string; cancelled?: boolean };

export interface Instance extends InstanceInfo {
  run(work: BatchWork, done: (result: BatchResult) => void): void;
  /**
   * The router no longer wants a batch it sent (every request in it was cancelled): one not yet started is
   * skipped and its `done` answered `{ ok: false, cancelled: true }`; one already running finishes as usual.
   * Absent: every batch sent runs.
   */
  cancel?(work: BatchWork): void;
}

export interface ActuationResult {
  ok: boolean;
  /** Measured time the actuation took (cold start, resize, drain). */
  ms: number;
  message: string;
  instance?: string;
  /** A resize the cluster cannot do in place (e.g. Kubernetes' Infeasible): add an instance instead. */
  scaleOutInstead?: boolean;
}

export interface Cluster {
  /** Cores this cluster may hand out in total. */
  readonly coreBudget: number;
  /** A 1-core start succeeds even when no core is free, on a core shared with other instances. */
  readonly sharesCores?: boolean;
  coresInUse(): number;
  /**
   * Warm pool: worker processes started ahead with no model and no core. `pooled` are ready to take a model
   * now; `warmPoolSize` is how many the cluster keeps; `setWarmPool` changes that (the pool is part of the plan).
   * Absent: the backend has no pool.
   */
  readonly pooled?: number;
  readonly warmPoolSize?: number;
  setWarmPool?(size: number): void;
  instances(): readonly Instance[];
  /** Called whenever instances appear, become ready, change size or go away. */
  onChange(listener: () => void): void;
  start(task: string, variant: string, cores: number): Promise<ActuationResult>;
  /** Stops taking work, lets running batches finish, then stops. */
  stop(id: string): Promise<ActuationResult>;
  /** In-place vertical scaling. */
  resize(id: string, cores: number): Promise<ActuationResult>;
  /**
   * The router has waited far longer than predicted for a batch of this instance. The backend probes it
   * (is the process answering at all, or merely slow?) and, when it is hung, ends it at once: its batches
   * fail (and may be retried elsewhere) and it is replaced as a dead instance is.
   */
  suspect(id: string, why: string): void;
  /**
   * Where an instance runs, in words (its node, or the cores it is pinned to): instances in one place share
   * its speed, so the online latency model starts a new one there from what the others showed.
   */
  placeOf?(id: string): string | undefined;
}
