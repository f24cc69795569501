// What the load generator needs from a protocol client. Replies never throw: every outcome,
// including a refused connection, is a status to count, because under overload errors are data.
import type { RequestTemplate, TensorSpec } from "./tensors.js";

/** What the server said about a request in its response parameters (sloserve's; absent elsewhere). */
export interface ServerSide {
  latencyUs?: number;
  queueUs?: number;
  computeUs?: number;
  /** Rows of the batch that served the request. */
  batchSize?: number;
  sloMet?: boolean;
  variant?: string;
}

export interface Reply {
  /** "200" on success; else "HTTP 504", "gRPC UNAVAILABLE", "network ECONNREFUSED", "timeout"… */
  status: string;
  ok: boolean;
  server: ServerSide | null;
  /** The server's error text, when it gave one. */
  message?: string;
}

export type Send = () => Promise<Reply>;

export interface InferClient {
  readonly protocol: Protocol;
  /** The model's declared inputs; throws BenchError with what to do when the model is unknown. */
  inputs(model: string, version?: string): Promise<TensorSpec[]>;
  /** Builds the request once; the returned function sends it again each call. */
  sender(t: RequestTemplate): Send;
  close(): Promise<void>;
}

export const PROTOCOLS = ["rest", "rest-json", "grpc"] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** An error the user can act on; the CLI prints its message alone. */
export class BenchError extends Error {}

/** Response parameters → ServerSide, tolerant of how other servers type them (string numbers, etc.). */
export function serverSide(params: Record<string, unknown> | undefined | null): ServerSide | null {
  if (!params) return null;
  const num = (k: string) => {
    const v = params[k];
    const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
    return typeof n === "number" && Number.isFinite(n) ? n : undefined;
  };
  const met = params.slo_met;
  const out: ServerSide = {
    latencyUs: num("latency_us"),
    queueUs: num("queue_us"),
    computeUs: num("compute_us"),
    batchSize: num("batch_size"),
    sloMet: met === true || met === "true" ? true : met === false || met === "false" ? false : undefined,
    variant: typeof params.variant === "string" ? params.variant : undefined,
  };
  return Object.values(out).some((v) => v !== undefined) ? out : null;
}
