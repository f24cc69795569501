// Open Inference Protocol v2 over REST with undici: JSON bodies, or the binary tensor extension
// (JSON header + raw little-endian tensors, `Inference-Header-Content-Length`). The body is built
// once and reused for every request; the pool opens a connection per concurrent request (up to
// `connections`) so that an open-loop burst is not queued inside the client.
import { Pool, type Dispatcher } from "undici";
import { BenchError, serverSide, type InferClient, type Reply, type Send } from "./client.js";
import type { RequestTemplate, TensorSpec } from "./tensors.js";

export interface RestOptions {
  url: string;
  binary: boolean;
  connections?: number;
  timeoutMs?: number;
}

export function modelPath(model: string, version?: string): string {
  const m = encodeURIComponent(model);
  return version ? `/v2/models/${m}/versions/${encodeURIComponent(version)}` : `/v2/models/${m}`;
}

export class RestClient implements InferClient {
  readonly protocol;
  private readonly pool: Pool;
  private readonly origin: string;

  constructor(private readonly o: RestOptions) {
    this.protocol = o.binary ? ("rest" as const) : ("rest-json" as const);
    let url: URL;
    try {
      url = new URL(o.url);
    } catch {
      throw new BenchError(`--url '${o.url}' is not a URL; give e.g. http://127.0.0.1:8000`);
    }
    this.origin = url.origin;
    const timeout = o.timeoutMs ?? 30_000;
    this.pool = new Pool(this.origin, {
      connections: o.connections ?? 256,
      pipelining: 1,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      keepAliveTimeout: 30_000,
    });
  }

  async inputs(model: string, version?: string): Promise<TensorSpec[]> {
    let res;
    try {
      res = await this.pool.request({ path: modelPath(model, version), method: "GET" });
    } catch (err) {
      throw new BenchError(
        `cannot reach ${this.origin}: ${(err as Error).message}; is the server running (sloserve serve) and is --url right?`,
      );
    }
    const text = await res.body.text();
    const body = parseJson(text);
    if (res.statusCode === 404)
      throw new BenchError(
        `model '${version ? `${model}/${version}` : model}' is unknown to ${this.origin}: ${body?.error ?? text}. Check --model (task[/variant]); GET ${this.origin}/v2/models/<name> lists a model's inputs.`,
      );
    if (res.statusCode !== 200 || !Array.isArray(body?.inputs))
      throw new BenchError(
        `GET ${this.origin}${modelPath(model, version)} answered ${res.statusCode}: ${body?.error ?? text.slice(0, 200)}`,
      );
    return body.inputs as TensorSpec[];
  }

  sender(t: RequestTemplate): Send {
    const path = `${modelPath(t.model, t.version)}/infer`;
    const { body, headers } = this.o.binary ? binaryBody(t) : jsonBody(t);
    // the SLO stated ahead of the body, so an overloaded server can refuse without decoding it
    if (typeof t.parameters.slo_ms === "number") headers["sloserve-slo-ms"] = String(t.parameters.slo_ms);
    if (typeof t.parameters.priority === "number") headers["sloserve-priority"] = String(t.parameters.priority);
    const timeout = this.o.timeoutMs ?? 30_000;
    // dispatch() with a bare handler rather than request(): no body stream and no extra promise
    // per response, which is most of the client's own CPU at thousands of requests a second.
    return () =>
      new Promise<Reply>((resolve) => {
        let status = 0;
        let headerLength = -1;
        const chunks: Buffer[] = [];
        const failed = (err: Error) => resolve({ status: networkStatus(err), ok: false, server: null });
        try {
          this.pool.dispatch({ path, method: "POST", headers, body, headersTimeout: timeout, bodyTimeout: timeout }, {
            // The pool validates the classic handler interface (onConnect/onHeaders/onData/onComplete/onError).
            onConnect: () => {},
            onHeaders: (statusCode: number, raw: Buffer[] | string[] | null) => {
              status = statusCode;
              headerLength = inferenceHeaderLength(raw);
              return true;
            },
            onData: (chunk: Buffer) => {
              chunks.push(chunk);
              return true;
            },
            onComplete: () => resolve(reply(status, chunks, headerLength)),
            onError: failed,
          } as unknown as Dispatcher.DispatchHandler);
        } catch (err) {
          failed(err as Error);
        }
      });
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

function jsonBody(t: RequestTemplate): { body: Buffer; headers: Record<string, string> } {
  for (const i of t.inputs)
    if (!i.data)
      throw new BenchError(
        `input '${i.name}' is ${i.datatype}, which JSON cannot carry; use --protocol rest (binary) or grpc`,
      );
  const req = {
    parameters: t.parameters,
    inputs: t.inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: i.shape, data: i.data })),
  };
  return { body: Buffer.from(JSON.stringify(req)), headers: { "content-type": "application/json" } };
}

function binaryBody(t: RequestTemplate): { body: Buffer; headers: Record<string, string> } {
  // Outputs come back binary too, so the server does not spend time printing floats as JSON.
  const header = {
    parameters: { ...t.parameters, binary_data_output: true },
    inputs: t.inputs.map((i) => ({
      name: i.name,
      datatype: i.datatype,
      shape: i.shape,
      parameters: { binary_data_size: i.raw.byteLength },
    })),
  };
  const json = Buffer.from(JSON.stringify(header));
  return {
    body: Buffer.concat([json, ...t.inputs.map((i) => Buffer.from(i.raw.buffer, i.raw.byteOffset, i.raw.byteLength))]),
    headers: { "content-type": "application/octet-stream", "inference-header-content-length": String(json.byteLength) },
  };
}

/** The binary extension's header, from undici's raw [name, value, …] header list. */
function inferenceHeaderLength(raw: Buffer[] | string[] | null): number {
  if (!raw) return -1;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (String(raw[i]).toLowerCase() === "inference-header-content-length") return Number(String(raw[i + 1]));
  }
  return -1;
}

function reply(status: number, chunks: Buffer[], headerLength: number): Reply {
  const ok = status === 200;
  const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  if (!ok) return { status: `HTTP ${status}`, ok, server: null, message: parseJson(buf.toString("utf8"))?.error };
  const json = parseJson(buf.toString("utf8", 0, headerLength >= 0 ? headerLength : buf.byteLength));
  return { status: "200", ok, server: serverSide(json?.parameters) };
}

function parseJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function networkStatus(err: unknown): string {
  const e = err as { code?: string; name?: string };
  if (e.code === "UND_ERR_HEADERS_TIMEOUT" || e.code === "UND_ERR_BODY_TIMEOUT") return "timeout";
  return `network ${e.code ?? e.name ?? "error"}`;
}
