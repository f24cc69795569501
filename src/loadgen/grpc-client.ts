// Open Inference Protocol v2 over gRPC: stubs generated at run time from the same published
// .proto the server serves (src/api/proto), with the request encoded here: inputs travel in
// raw_input_contents, parameters as InferParameter oneofs. One HTTP/2 channel multiplexes every
// concurrent request, so the open loop needs no connection pool.
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { BenchError, serverSide, type InferClient, type Reply, type Send } from "./client.js";
import type { ParamValue, RequestTemplate, TensorSpec } from "./tensors.js";

const PROTO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../api/proto");

export interface GrpcClientOptions {
  /** host:port (a grpc:// or http:// prefix is accepted). */
  target: string;
  timeoutMs?: number;
  maxMessageBytes?: number;
}

type Untyped = any;
type WireParam = {
  bool_param?: boolean;
  int64_param?: string;
  string_param?: string;
  double_param?: number;
  uint64_param?: string;
  parameter_choice?: string;
};

export class GrpcClient implements InferClient {
  readonly protocol = "grpc" as const;
  private readonly stub: Untyped;
  private readonly target: string;
  private readonly infer: protoLoader.MethodDefinition<object, Untyped>;

  constructor(private readonly o: GrpcClientOptions) {
    this.target = o.target.replace(/^(grpc|http):\/\//, "");
    const defs = protoLoader.loadSync("grpc_service.proto", {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
      includeDirs: [PROTO_DIR],
    });
    const pkg = grpc.loadPackageDefinition(defs) as Untyped;
    this.infer = (defs["inference.GRPCInferenceService"] as protoLoader.ServiceDefinition)
      .ModelInfer as protoLoader.MethodDefinition<object, Untyped>;
    const max = o.maxMessageBytes ?? 64 * 2 ** 20;
    this.stub = new pkg.inference.GRPCInferenceService(this.target, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": max,
      "grpc.max_send_message_length": max,
    });
  }

  async inputs(model: string, version?: string): Promise<TensorSpec[]> {
    const res = await new Promise<Untyped>((resolve, reject) =>
      this.stub.ModelMetadata(
        { name: model, version: version ?? "" },
        { deadline: Date.now() + 10_000 },
        (err: grpc.ServiceError | null, r: unknown) => (err ? reject(err) : resolve(r)),
      ),
    ).catch((err: grpc.ServiceError) => {
      const name = version ? `${model}/${version}` : model;
      if (err.code === grpc.status.NOT_FOUND)
        throw new BenchError(
          `model '${name}' is unknown to ${this.target}: ${err.details}. Check --model (task[/variant]).`,
        );
      if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED)
        throw new BenchError(
          `cannot reach the gRPC server at ${this.target} (${err.details}); is it running and is --grpc-url right?`,
        );
      throw new BenchError(`ModelMetadata for '${name}' failed: ${grpc.status[err.code]} ${err.details}`);
    });
    return (res.inputs as Untyped[]).map((i) => ({
      name: i.name,
      datatype: i.datatype,
      shape: (i.shape as string[]).map(Number),
    }));
  }

  sender(t: RequestTemplate): Send {
    const request = {
      model_name: t.model,
      model_version: t.version ?? "",
      parameters: Object.fromEntries(Object.entries(t.parameters).map(([k, v]) => [k, wireParam(v)])),
      inputs: t.inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: i.shape })),
      raw_input_contents: t.inputs.map((i) => Buffer.from(i.raw.buffer, i.raw.byteOffset, i.raw.byteLength)),
    };
    // Encoded once with the .proto's own serializer: every call sends the same bytes (grpc-js's
    // HTTP/2 stream setup, not protobuf, is most of a call's cost). Answers use its deserializer.
    const encoded = this.infer.requestSerialize(request);
    const timeoutMs = this.o.timeoutMs ?? 30_000;
    const identity = (b: Buffer) => b;
    return () =>
      new Promise<Reply>((resolve) => {
        (this.stub as grpc.Client).makeUnaryRequest(
          this.infer.path,
          identity,
          this.infer.responseDeserialize,
          encoded,
          { deadline: Date.now() + timeoutMs },
          (err: grpc.ServiceError | null, res?: Untyped) => {
            if (err)
              resolve({
                status: `gRPC ${grpc.status[err.code] ?? err.code}`,
                ok: false,
                server: null,
                message: err.details,
              });
            else resolve({ status: "200", ok: true, server: serverSide(plainParams(res?.parameters)) });
          },
        );
      });
  }

  async close(): Promise<void> {
    this.stub.close();
  }
}

function wireParam(v: ParamValue): WireParam {
  if (typeof v === "boolean") return { bool_param: v };
  if (typeof v === "string") return { string_param: v };
  return Number.isSafeInteger(v) ? { int64_param: String(v) } : { double_param: v };
}

function plainParams(params: Record<string, WireParam> | undefined): Record<string, unknown> | null {
  if (!params) return null;
  const out: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(params)) {
    const choice = p.parameter_choice as keyof WireParam | undefined;
    out[k] = choice ? p[choice] : undefined;
  }
  return out;
}
