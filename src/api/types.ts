// The contract between the protocol front-ends (REST, gRPC) and the server core: each front-end
// only translates its wire format to these types and back; all behaviour lives behind `Gateway`.
import type { OipDatatype } from "../repository/datatypes.js";
import type { TypedArray } from "../engine/engine.js";

/** A decoded tensor. BYTES tensors hold one Uint8Array per element; FP16 is carried as raw Uint16 bits. */
export interface Tensor {
  name: string;
  datatype: OipDatatype;
  /** Full shape, batch dimension first. */
  shape: number[];
  data: TypedArray | Uint8Array[];
}

export type ParamValue = string | number | boolean;

export interface RequestedOutput {
  name: string;
  /**
   * Binary tensor extension: return this output as raw bytes after the JSON header. Unset: the
   * request's `binary_data_output` decides; set, it wins over it (as in Triton).
   */
  binary?: boolean;
  /** Classification extension: the top `classCount` classes as "score:index[:label]" BYTES. */
  classCount?: number;
}

export interface InferRequest {
  /** Task or pipeline name, as addressed by the client. */
  model: string;
  /** Pinned variant, when the client addressed /versions/{v}. */
  version?: string;
  id?: string;
  inputs: Tensor[];
  outputs?: RequestedOutput[];
  parameters: Record<string, ParamValue>;
  /** Wall-clock arrival (Date.now()), for deadline_unix_ms / sent_at_unix_ms arithmetic. */
  receivedAtUnixMs: number;
  /**
   * Aborted when the client gives up (its connection closed, its gRPC call cancelled or past its deadline): the
   * request leaves its queue, and its row of a batch already sent is not answered.
   */
  signal?: AbortSignal;
}

export interface InferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  /** variant, subnet?, batch_size, queue_us, compute_us, slo_met */
  parameters: Record<string, ParamValue>;
  outputs: Tensor[];
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

export interface TensorMetadata {
  name: string;
  datatype: OipDatatype;
  /** -1 for the variable batch dimension. */
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export interface Readiness {
  ready: boolean;
  reason?: string;
}

/** Triton-style per-model statistics (counts and cumulative nanoseconds). */
export interface ModelStats {
  name: string;
  version: string;
  /** The variant's name where `version` is its Triton version number (see triton-view.ts). */
  variant?: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: Record<
    "success" | "fail" | "queue" | "compute_input" | "compute_infer" | "compute_output",
    { count: number; ns: number }
  >;
  batch_stats: { batch_size: number; compute_infer: { count: number; ns: number } }[];
}

export interface RepositoryEntry {
  name: string;
  version?: string;
  state: "READY" | "UNAVAILABLE" | "LOADING" | "UNLOADING";
  reason: string;
}

/** HTTP status carried by every error the core raises; front-ends map it to their own codes. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 408 | 413 | 414 | 415 | 429 | 431 | 499 | 500 | 503 | 504;

export class ApiError extends Error {
  constructor(
    readonly status: ErrorStatus,
    message: string,
    /** When a retry could succeed (overload, a cold start): REST sends Retry-After, gRPC retry pushback. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface Gateway {
  metadata(): ServerMetadata;
  live(): Readiness;
  ready(): Readiness;
  /** Throws ApiError(404) for an unknown model or version. */
  modelReady(model: string, version?: string): Readiness;
  modelMetadata(model: string, version?: string): ModelMetadata;
  /** Triton-style model configuration JSON. */
  modelConfig(model: string, version?: string): Record<string, unknown>;
  statistics(model?: string, version?: string): { model_stats: ModelStats[] };
  infer(request: InferRequest): Promise<InferResponse>;
  /**
   * Admission before a request's body is read: throws the ApiError a request to `model` gets now anyway
   * (shutting down, queue full, or overloaded for the SLO the client states ahead, `sloMs`), so shedding
   * costs no decoding. `sloMs` and `priority` are the client's hints (headers), if any; the body's parameters
   * decide once it is read.
   */
  admit(model: string, version?: string, sloMs?: number, priority?: number): void;
  repositoryIndex(readyOnly?: boolean): RepositoryEntry[];
  /** Admin: needs the bearer token when SLOSERVE_ADMIN_TOKEN is set (checked by the front-end). */
  load(model: string): Promise<void>;
  unload(model: string): Promise<void>;
}
