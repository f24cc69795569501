// The `Cluster` interface: what the router and autoscaler may ask of instances, the same for the
// local backend (worker processes), a Kubernetes backend and the simulator.
import type { Request } from "../router/request.js";

export type InstanceState = "starting" | "ready" | "draining" | "stopped";

export interface InstanceInfo {
  id: string;
  task: string;
  variant: string;
  cores: number;
  state: InstanceState;
  /** Batches sent and not yet answered. */
  inFlight: number;
}

export interface BatchWork {
  task: string;
  variant: string;
  subnet?: string;
  requests: readonly Request[];
}

export type BatchResult =
  { ok: true; outputs: unknown[]; computeMs: number } | { ok: false; gone: boolean; message: string };

export interface Instance extends InstanceInfo {
  run(work: BatchWork, done: (result: BatchResult) => void): void;
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
  coresInUse(): number;
  instances(): readonly Instance[];
  /** Called whenever instances appear, become ready, change size or go away. */
  onChange(listener: () => void): void;
  start(task: string, variant: string, cores: number): Promise<ActuationResult>;
  /** Stops taking work, lets running batches finish, then stops. */
  stop(id: string): Promise<ActuationResult>;
  /** In-place vertical scaling. */
  resize(id: string, cores: number): Promise<ActuationResult>;
}
