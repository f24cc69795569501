// A request as the router holds it: when it arrived, when it must be done, what it may be served
// by, and how to answer it.
import type { Tensors } from "../engine/engine.js";

/** 499: the client closed the request before it was answered (nginx's code; the answer goes nowhere). */
export type FailStatus = 429 | 499 | 500 | 503 | 504;

export interface Served {
  ok: true;
  variant: string;
  subnet?: string;
  batchSize: number;
  queueMs: number;
  computeMs: number;
  finishedAt: number;
  sloMet: boolean;
  /** The model's outputs for this request (null in the simulator). */
  output: Tensors | null;
}

export interface Failed {
  ok: false;
  status: FailStatus;
  /** Short machine-readable cause, used as a metrics label. */
  reason:
    | "queue_full"
    | "overloaded"
    | "deadline"
    | "no_capacity"
    | "instance_failed"
    | "shutdown"
    | "internal"
    | "cancelled";
  message: string;
  /** When trying again could succeed (a cold start under way): the front ends send it as Retry-After. */
  retryAfterMs?: number;
}

export type Outcome = Served | Failed;

/** Refused at admission, before it was queued: load the task was offered and did not carry. */
export function refusedAtAdmission(reason: Failed["reason"]): boolean {
  return reason === "queue_full" || reason === "overloaded" || reason === "no_capacity";
}

/** Which stage of which pipeline request a stage request is (absent for a request to a task). */
export interface StageRef {
  pipeline: string;
  index: number;
}

export interface Request {
  seq: number;
  id: string;
  task: string;
  /** Clock ms. */
  arrival: number;
  /** Clock ms by which the answer is due. */
  deadline: number;
  /** Triton's priority: 1 is the highest; larger numbers wait behind smaller ones. */
  priority: number;
  /** Rows (batch items) this request carries. */
  rows: number;
  minAccuracy: number;
  /** Variant the client pinned (`/versions/{v}`). */
  pinned?: string;
  /** Variant a policy chose on arrival (INFaaS). */
  assigned?: string;
  /**
   * The only variants that may serve it (a pipeline's stage: those that keep the pipeline's end-to-end
   * accuracy at its floor given what served the stages before); absent: any that meets `minAccuracy`.
   */
  allowed?: ReadonlySet<string>;
  /** Serve it even when late (counted as a miss) instead of answering 504. */
  lateOk: boolean;
  /** Retried once already after an instance died under it. */
  retried?: boolean;
  /** The tensors an instance runs (null in the simulator, which computes nothing). */
  input: Tensors | null;
  stage?: StageRef;
  /** Answered already (set by the router): a later answer, e.g. a cancelled row of a running batch, is dropped. */
  answered?: boolean;
  /** The batch it was sent in, while that batch is out (set by the router). */
  batch?: object;
  done(outcome: Outcome): void;
}

/** What served a request as records and mixes name it: the variant, or `variant/subnet`. */
export function servedBy(variant: string, subnet: string | undefined): string {
  return subnet === undefined ? variant : `${variant}/${subnet}`;
}
