// The REST front-end (fastify): every call of API.md, JSON and the binary tensor extension,
// errors as {"error": "..."} with the right status, Prometheus metrics at /metrics.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { ServerMetrics } from "../metrics/metrics.js";
import { compressFor, decompressBody } from "./http-compression.js";
import { repositoryParameters } from "./repository-params.js";
import { encodeInferResponse, parseInferRequest, splitBody } from "./rest-codec.js";
import { TritonView } from "./triton-view.js";
import { ApiError, type Gateway } from "./types.js";

export interface RestOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  adminToken?: string;
  metrics: ServerMetrics;
  /** Extra routes (the dashboard) registered on the same server. */
  extend?: (app: FastifyInstance) => void;
}

type Params = { m?: string; v?: string };

export async function startRestServer(
  inner: Gateway,
  opts: RestOptions,
): Promise<{ app: FastifyInstance; url: string }> {
  const gateway = TritonView.of(inner);
  const app = Fastify({ bodyLimit: opts.maxBodyBytes, logger: false, keepAliveTimeout: 65_000 });
  // Every body arrives as bytes: JSON and binary-extension bodies are both parsed by the codec,
  // after undoing a Content-Encoding (tritonclient's request_compression_algorithm).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (req, body, done) => {
    try {
      done(null, decompressBody(body as Buffer, req.headers["content-encoding"], opts.maxBodyBytes));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof ApiError) return reply.code(err.status).send({ error: err.message });
    if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return reply.code(413).send({
        error: `request body is larger than the ${opts.maxBodyBytes} byte limit; send fewer rows per request or raise --max-body-mb`,
      });
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500)
      return reply.code(err.statusCode).send({ error: err.message });
    return reply.code(500).send({ error: `internal error: ${err.message}` });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({
      error: `no such endpoint: ${req.method} ${req.url} (see the Open Inference Protocol v2 paths in the README)`,
    }),
  );

  const health = (r: { ready: boolean; reason?: string }, key: "live" | "ready", reply: FastifyReply) =>
    r.ready ? reply.send({ [key]: true }) : reply.code(503).send({ error: r.reason ?? "not ready" });
  const admin = (req: FastifyRequest) => {
    if (opts.adminToken && req.headers.authorization !== `Bearer ${opts.adminToken}`) {
      throw new ApiError(401, "repository changes need 'Authorization: Bearer <token>' (SLOSERVE_ADMIN_TOKEN)");
    }
  };
  const body = (req: FastifyRequest): Buffer => (Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));

  app.get("/v2/health/live", (_req, reply) => health(gateway.live(), "live", reply));
  app.get("/v2/health/ready", (_req, reply) => health(gateway.ready(), "ready", reply));
  app.get("/v2", () => gateway.metadata());
  app.get("/metrics", async (_req, reply) => reply.type(opts.metrics.contentType).send(await opts.metrics.text()));

  for (const prefix of ["/v2/models/:m", "/v2/models/:m/versions/:v"]) {
    app.get<{ Params: Params }>(`${prefix}/ready`, (req, reply) => {
      const r = gateway.modelReady(req.params.m!, req.params.v);
      return r.ready
        ? reply.send({ name: req.params.m, ready: true })
        : reply.code(503).send({ error: r.reason ?? "not ready" });
    });
    app.get<{ Params: Params }>(prefix, (req) => gateway.modelMetadata(req.params.m!, req.params.v));
    app.get<{ Params: Params }>(`${prefix}/config`, (req) => gateway.modelConfig(req.params.m!, req.params.v));
    app.get<{ Params: Params }>(`${prefix}/stats`, (req) => gateway.statistics(req.params.m!, req.params.v));
    app.post<{ Params: Params }>(`${prefix}/infer`, async (req, reply) => {
      const receivedAt = Date.now();
      const t0 = performance.now();
      const { json, binary } = splitBody(body(req), header(req, "inference-header-content-length"));
      const request = parseInferRequest(json, binary, req.params.m!, req.params.v, receivedAt);
      const inputMs = performance.now() - t0;
      const response = await gateway.infer(request);
      const t1 = performance.now();
      const encoded = encodeInferResponse(response, request);
      const compressed = compressFor(encoded.body, header(req, "accept-encoding"));
      const outputMs = performance.now() - t1;
      opts.metrics.computeInputOutput(request.model, response.model_version, inputMs, outputMs);
      gateway.computeInputOutput(request.model, response.model_version, inputMs, outputMs);
      if (compressed.encoding) reply.header("Content-Encoding", compressed.encoding);
      if (encoded.headerLength === undefined) return reply.type("application/json").send(compressed.body);
      return reply
        .type("application/octet-stream")
        .header("Inference-Header-Content-Length", String(encoded.headerLength))
        .send(compressed.body);
    });
  }
  app.get("/v2/models/stats", () => gateway.statistics());
  app.post("/v2/repository/index", (req) => {
    const raw = body(req);
    let readyOnly = false;
    if (raw.byteLength > 0) {
      try {
        readyOnly = (JSON.parse(raw.toString("utf8")) as { ready?: boolean }).ready === true;
      } catch (err) {
        throw new ApiError(400, `malformed JSON: ${(err as Error).message}`);
      }
    }
    return gateway.repositoryIndex(readyOnly);
  });
  app.post<{ Params: Params }>("/v2/repository/models/:m/load", async (req) => {
    admin(req);
    repositoryParameters("load", jsonParameters(body(req)));
    await gateway.load(req.params.m!);
    return {};
  });
  app.post<{ Params: Params }>("/v2/repository/models/:m/unload", async (req) => {
    admin(req);
    const { unloadDependents } = repositoryParameters("unload", jsonParameters(body(req)));
    if (unloadDependents) await gateway.unloadWithDependents(req.params.m!);
    else await gateway.unload(req.params.m!);
    return {};
  });
  opts.extend?.(app);
  const url = await app.listen({ host: opts.host, port: opts.port });
  return { app, url };
}

/** The `parameters` object of a repository request's (optional) JSON body. */
function jsonParameters(raw: Buffer): Record<string, unknown> {
  if (raw.byteLength === 0) return {};
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch (err) {
    throw new ApiError(400, `malformed JSON: ${(err as Error).message}`);
  }
  const p = (json as { parameters?: unknown } | null)?.parameters;
  if (p === undefined) return {};
  if (typeof p !== "object" || p === null || Array.isArray(p))
    throw new ApiError(400, "'parameters' must be an object");
  return p as Record<string, unknown>;
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
