// The gRPC front-end: KServe v2 / Triton's GRPCInferenceService and grpc.health.v1, translated
// to and from the `Gateway` types. Like Triton, outputs always travel in raw_output_contents,
// which is what stock clients read.
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { TypedArray } from "../engine/engine.js";
import type { ServerMetrics } from "../metrics/metrics.js";
import type { OipDatatype } from "../repository/datatypes.js";
import { quoted } from "../repository/safe-path.js";
import { checkAdminToken } from "./admin-guard.js";
import { checkCount, checkId } from "./limits.js";
import { repositoryParameters } from "./repository-params.js";
import { TritonView } from "./triton-view.js";
import { elementCount, parseDatatype, parseShape, tensorFromBytes, tensorToBytes } from "./tensor-codec.js";
import {
  ApiError,
  type Gateway,
  type InferRequest,
  type InferResponse,
  type ParamValue,
  type Tensor,
} from "./types.js";

export const GRPC_PROTO_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "proto");

export interface GrpcOptions {
  host: string;
  port: number;
  adminToken?: string;
  maxMessageBytes?: number;
  /** Calls one client connection may have open at once (HTTP/2 MAX_CONCURRENT_STREAMS). */
  maxStreams?: number;
  /** For Triton's compute input/output durations (decoding and encoding tensors here). */
  metrics?: ServerMetrics;
}

export interface GrpcServerHandle {
  port: number;
  close(graceMs?: number): Promise<void>;
}

/** Default of `maxStreams`: the floor RFC 9113 recommends is 100, Go's HTTP/2 server allows 250. */
export const GRPC_MAX_STREAMS = 128;

const INFERENCE_SERVICE = "inference.GRPCInferenceService";

// 64-bit integers arrive as decimal strings (longs: String) so INT64/UINT64 contents keep every
// bit on their way to BigInt; shapes and parameters become plain numbers below.
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [GRPC_PROTO_DIR],
};

interface WireParam {
  parameter_choice?: string;
  bool_param?: boolean;
  int64_param?: string;
  string_param?: string;
  double_param?: number;
  uint64_param?: string;
}

interface WireRepositoryParam {
  parameter_choice?: string;
  bool_param?: boolean;
  int64_param?: string;
  string_param?: string;
  bytes_param?: Uint8Array;
}

interface WireContents {
  bool_contents: boolean[];
  int_contents: number[];
  int64_contents: string[];
  uint_contents: number[];
  uint64_contents: string[];
  fp32_contents: number[];
  fp64_contents: number[];
  bytes_contents: Uint8Array[];
}

interface WireInput {
  name: string;
  datatype: string;
  shape: string[];
  contents: WireContents | null;
}

interface WireInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, WireParam>;
  inputs: WireInput[];
  outputs: { name: string; parameters: Record<string, WireParam> }[];
  raw_input_contents: Uint8Array[];
}

const CONTENTS_FIELD: Record<Exclude<OipDatatype, "FP16">, keyof WireContents> = {
  BOOL: "bool_contents",
  UINT8: "uint_contents",
  UINT16: "uint_contents",
  UINT32: "uint_contents",
  UINT64: "uint64_contents",
  INT8: "int_contents",
  INT16: "int_contents",
  INT32: "int_contents",
  INT64: "int64_contents",
  FP32: "fp32_contents",
  FP64: "fp64_contents",
  BYTES: "bytes_contents",
};

const NARROW_INTS = {
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
} as const;

const GRPC_CODE: Partial<Record<number, grpc.status>> = {
  400: grpc.status.INVALID_ARGUMENT,
  401: grpc.status.UNAUTHENTICATED,
  403: grpc.status.PERMISSION_DENIED,
  404: grpc.status.NOT_FOUND,
  413: grpc.status.RESOURCE_EXHAUSTED,
  429: grpc.status.RESOURCE_EXHAUSTED,
  499: grpc.status.CANCELLED,
  503: grpc.status.UNAVAILABLE,
  504: grpc.status.DEADLINE_EXCEEDED,
};

export async function startGrpcServer(inner: Gateway, opts: GrpcOptions): Promise<GrpcServerHandle> {
  const gateway = TritonView.of(inner);
  const defs = protoLoader.loadSync(["grpc_service.proto", "health.proto"], LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(defs) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  const maxBytes = opts.maxMessageBytes ?? 64 * 2 ** 20;
  const server = new grpc.Server({
    "grpc.max_receive_message_length": maxBytes,
    "grpc.max_send_message_length": maxBytes,
    // HTTP/2 flow control as the bound on a flood: grpc-js reads every open stream's message at once, so
    // without a cap a client can park thousands of large bodies in this process faster than it decodes
    // them (10 s of 602 KB requests at 1,000/s: 4.5 GB); calls past the cap wait in the client
    "grpc.max_concurrent_streams": opts.maxStreams ?? GRPC_MAX_STREAMS,
  });

  const admin = (md: grpc.Metadata) => {
    const given = md.get("authorization")[0];
    checkAdminToken(
      { token: opts.adminToken, host: opts.host },
      typeof given === "string" ? given : undefined,
      "metadata 'authorization: Bearer <token>'",
    );
  };
  const repositoryChange = (
    action: "load" | "unload",
    req: { model_name: string; parameters: Record<string, WireRepositoryParam> },
    md: grpc.Metadata,
  ) => {
    admin(md);
    if (!req.model_name) throw new ApiError(400, "model_name is required");
    const params: Record<string, unknown> = {};
    for (const [key, p] of Object.entries(req.parameters))
      params[key] = p.parameter_choice ? p[p.parameter_choice as keyof WireRepositoryParam] : undefined;
    return { model: req.model_name, ...repositoryParameters(action, params) };
  };
  const version = (v: string) => v || undefined;

  server.addService(pkg.inference.GRPCInferenceService.service, {
    ServerLive: unary(() => ({ live: gateway.live().ready })),
    ServerReady: unary(() => ({ ready: gateway.ready().ready })),
    // Triton answers OK with ready=false for a model or version it does not know
    ModelReady: unary((req: { name: string; version: string }) => {
      try {
        return { ready: gateway.modelReady(req.name, version(req.version)).ready };
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return { ready: false };
        throw err;
      }
    }),
    ServerMetadata: unary(() => gateway.metadata()),
    ModelMetadata: unary((req: { name: string; version: string }) =>
      gateway.modelMetadata(req.name, version(req.version)),
    ),
    ModelInfer: unary(async (req: WireInferRequest, _md, cancelled) => {
      const t0 = performance.now();
      const request = inferRequestFromWire(req, Date.now());
      const inputMs = performance.now() - t0;
      request.signal = cancelled;
      const response = await gateway.infer(request);
      const t1 = performance.now();
      const wire = inferResponseToWire(response, request);
      const outputMs = performance.now() - t1;
      opts.metrics?.computeInputOutput(request.model, response.model_version, inputMs, outputMs);
      gateway.computeInputOutput(request.model, response.model_version, inputMs, outputMs);
      return wire;
    }),
    // Serialisation keeps the fields the proto declares and drops the rest of the Triton-style JSON.
    ModelConfig: unary((req: { name: string; version: string }) => ({
      config: gateway.modelConfig(req.name, version(req.version)),
    })),
    ModelStatistics: unary((req: { name: string; version: string }) =>
      gateway.statistics(req.name || undefined, version(req.version)),
    ),
    RepositoryIndex: unary((req: { ready: boolean }) => ({
      models: gateway
        .repositoryIndex(req.ready)
        .map((e) => ({ name: e.name, version: e.version ?? "", state: e.state, reason: e.reason })),
    })),
    RepositoryModelLoad: unary(async (req, md) => {
      await gateway.load(repositoryChange("load", req, md).model);
      return {};
    }),
    RepositoryModelUnload: unary(async (req, md) => {
      const { model, unloadDependents } = repositoryChange("unload", req, md);
      if (unloadDependents) await gateway.unloadWithDependents(model);
      else await gateway.unload(model);
      return {};
    }),
  });

  server.addService(pkg.grpc.health.v1.Health.service, {
    Check: unary((req: { service: string }) => {
      if (req.service !== "" && req.service !== INFERENCE_SERVICE) {
        throw new ApiError(404, `unknown service '${req.service}'; ask for "" or "${INFERENCE_SERVICE}"`);
      }
      return { status: gateway.ready().ready ? "SERVING" : "NOT_SERVING" };
    }),
  });

  const address = opts.host.includes(":") ? `[${opts.host}]:${opts.port}` : `${opts.host}:${opts.port}`;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  );
  return {
    port,
    close: (graceMs = 5000) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

// Request shapes come from the .proto at run time; each handler states the shape it reads.
function unary(
  fn: (request: any, metadata: grpc.Metadata, cancelled: AbortSignal) => unknown,
): grpc.handleUnaryCall<any, any> {
  return (call, callback) => {
    // a call the client cancels, or whose deadline passes, is cancelled here too
    const gone = new AbortController();
    call.once("cancelled", () => gone.abort());
    Promise.resolve()
      .then(() => fn(call.request, call.metadata, gone.signal))
      .then(
        (response) => callback(null, response),
        (err: unknown) => callback(toServiceError(err)),
      );
  };
}

// A status message travels in an HTTP/2 trailer, which a peer refuses past its header-list limit (8 KB by
// default): a longer one would lose the answer, and the connection with it.
const MAX_DETAILS = 1000;

function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  const cut = (s: string) => (s.length <= MAX_DETAILS ? s : `${s.slice(0, MAX_DETAILS)}… (cut)`);
  if (err instanceof ApiError) {
    const out: Partial<grpc.ServiceError> = {
      code: GRPC_CODE[err.status] ?? grpc.status.INTERNAL,
      details: cut(err.message),
    };
    if (err.retryAfterMs !== undefined) {
      // gRPC's retry pushback: clients with a retry policy wait this long before trying again
      out.metadata = new grpc.Metadata();
      out.metadata.set("grpc-retry-pushback-ms", String(Math.max(0, Math.round(err.retryAfterMs))));
    }
    return out;
  }
  const first = (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
  return { code: grpc.status.INTERNAL, details: cut(`internal error: ${first}`) };
}

export function inferRequestFromWire(req: WireInferRequest, receivedAtUnixMs: number): InferRequest {
  if (!req.model_name) throw new ApiError(400, "model_name is required");
  checkId(req.id);
  checkCount("inputs", req.inputs.length);
  checkCount("outputs", req.outputs.length);
  const raw = req.raw_input_contents;
  if (raw.length > 0) {
    const mixed = req.inputs.find((i) => hasContents(i.contents));
    if (mixed) {
      throw new ApiError(
        400,
        `input ${quoted(mixed.name)} has contents while raw_input_contents is used; send every input raw or every input in contents, not both`,
      );
    }
    if (raw.length !== req.inputs.length) {
      throw new ApiError(
        400,
        `raw_input_contents has ${raw.length} entries for ${req.inputs.length} inputs; send one per input, in input order`,
      );
    }
  }
  const inputs = req.inputs.map((input, i): Tensor => {
    const where = `input ${quoted(input.name)}`;
    const datatype = parseDatatype(input.datatype, where);
    const shape = parseShape(input.shape.map(Number), where);
    return raw.length > 0
      ? tensorFromBytes(input.name, datatype, shape, raw[i]!)
      : tensorFromContents(input.name, datatype, shape, input.contents);
  });
  return {
    model: req.model_name,
    version: req.model_version || undefined,
    id: req.id || undefined,
    inputs,
    outputs: req.outputs.length > 0 ? req.outputs.map(requestedOutput) : undefined,
    parameters: paramsFromWire(req.parameters),
    receivedAtUnixMs,
  };
}

function requestedOutput(o: WireInferRequest["outputs"][number]): { name: string; classCount?: number } {
  const params = paramsFromWire(o.parameters ?? {});
  const k = params.classification;
  if (k !== undefined && typeof k !== "number")
    throw new ApiError(400, `output ${quoted(o.name)}: classification must be an integer (how many top classes)`);
  return k === undefined ? { name: o.name } : { name: o.name, classCount: k };
}

function hasContents(c: WireContents | null): boolean {
  return c !== null && Object.values(c).some((v) => Array.isArray(v) && v.length > 0);
}

function tensorFromContents(
  name: string,
  datatype: OipDatatype,
  shape: number[],
  contents: WireContents | null,
): Tensor {
  const where = `input ${quoted(name)}`;
  if (datatype === "FP16")
    throw new ApiError(400, `${where}: FP16 has no typed contents field; send it in raw_input_contents`);
  const field = CONTENTS_FIELD[datatype];
  const stray =
    contents && (Object.keys(contents) as (keyof WireContents)[]).find((f) => f !== field && contents[f].length > 0);
  if (stray) throw new ApiError(400, `${where}: ${datatype} data goes in contents.${field}, not contents.${stray}`);
  const values = contents?.[field] ?? [];
  const n = elementCount(shape);
  if (values.length !== n)
    throw new ApiError(
      400,
      `${where}: shape [${shape.join(",")}] needs ${n} elements, contents.${field} has ${values.length}`,
    );
  return { name, datatype, shape, data: typedFromContents(datatype, values, where) };
}

function typedFromContents(
  datatype: Exclude<OipDatatype, "FP16">,
  values: unknown[],
  where: string,
): TypedArray | Uint8Array[] {
  switch (datatype) {
    case "BYTES":
      return (values as Uint8Array[]).map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    case "BOOL":
      return Uint8Array.from(values as boolean[], (v) => (v ? 1 : 0));
    case "FP32":
      return Float32Array.from(values as number[]);
    case "FP64":
      return Float64Array.from(values as number[]);
    case "INT64":
      return BigInt64Array.from(values as string[], (v) => BigInt(v));
    case "UINT64":
      return BigUint64Array.from(values as string[], (v) => BigInt(v));
    default: {
      // int_contents / uint_contents are 32-bit on the wire; narrower types must not wrap silently.
      const out = NARROW_INTS[datatype].from(values as number[]);
      const bad = out.findIndex((v, i) => v !== values[i]);
      if (bad >= 0)
        throw new ApiError(400, `${where}: element ${bad} (${String(values[bad])}) is out of range for ${datatype}`);
      return out;
    }
  }
}

function paramsFromWire(map: Record<string, WireParam>): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const [key, p] of Object.entries(map)) {
    switch (p.parameter_choice) {
      case "bool_param":
        out[key] = p.bool_param!;
        break;
      case "string_param":
        out[key] = p.string_param!;
        break;
      case "double_param":
        out[key] = p.double_param!;
        break;
      case "int64_param":
        out[key] = Number(p.int64_param);
        break;
      case "uint64_param":
        out[key] = Number(p.uint64_param);
        break;
      default:
        break; // no value chosen: nothing to pass on
    }
  }
  return out;
}

function paramsToWire(params: Record<string, ParamValue>): Record<string, object> {
  const out: Record<string, object> = {};
  for (const [key, v] of Object.entries(params)) {
    if (typeof v === "boolean") out[key] = { bool_param: v };
    else if (typeof v === "string") out[key] = { string_param: v };
    else out[key] = Number.isSafeInteger(v) ? { int64_param: v } : { double_param: v };
  }
  return out;
}

function inferResponseToWire(res: InferResponse, req: InferRequest): object {
  return {
    model_name: res.model_name,
    model_version: res.model_version,
    id: res.id ?? req.id ?? "",
    parameters: paramsToWire(res.parameters),
    outputs: res.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
    raw_output_contents: res.outputs.map((t) => tensorToBytes(t)),
  };
}
