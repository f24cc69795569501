// The REST front-end (fastify): every call of API.md, JSON and the binary tensor extension,
// errors as {"error": "..."} with the right status, Prometheus metrics at /metrics.
import { STATUS_CODES } from "node:http";
import net, { type Socket } from "node:net";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { ServerMetrics } from "../metrics/metrics.js";
import { checkAdminRequest, checkAdminToken } from "./admin-guard.js";
import { compressFor, decompressBody } from "./http-compression.js";
import { repositoryParameters } from "./repository-params.js";
import { encodeInferResponse, parseInferRequest, splitBody } from "./rest-codec.js";
import { priorityHint } from "./slo-params.js";
import { TritonView } from "./triton-view.js";
import { ApiError, type Gateway } from "./types.js";

export interface RestOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  adminToken?: string;
  /** A request body that stalls this long (no bytes) is answered 408 and its connection closed (default 10 s). */
  bodyTimeoutMs?: number;
  /** Connections held at once; further ones are closed as they arrive (default 4096). */
  maxConnections?: number;
  metrics: ServerMetrics;
  /** Extra routes (the dashboard) registered on the same server. */
  extend?: (app: FastifyInstance) => void;
}

type Params = { m?: string; v?: string };

export interface RestServer {
  app: FastifyInstance;
  url: string;
  /**
   * Stops accepting connections and makes every answer close its connection. The open keep-alive connections
   * stay: a request already on its way on one is answered (503 once admission has stopped), not reset.
   */
  drain(): void;
  /** Waits until no request is in flight or has come for a moment, or `ms`; `app.close` then closes the idle. */
  settle(ms: number): Promise<void>;
}

/** Longest path segment routed; a model or variant name has at most 64 characters. */
const MAX_SEGMENT = 256;
/** An error message longer than this is cut: no answer echoes a huge input back. */
const MAX_MESSAGE = 2000;

const cut = (s: string) => (s.length <= MAX_MESSAGE ? s : `${s.slice(0, MAX_MESSAGE)}… (cut)`);

/** What a malformed HTTP message gets, by Node's parser error code: status and what to fix. */
function clientErrorAnswer(code: string | undefined, reason: string): [number, string] {
  switch (code) {
    case "HPE_HEADER_OVERFLOW":
      return [431, "the request line and headers exceed 16 KB; send shorter headers and put data in the body"];
    case "HPE_UNEXPECTED_CONTENT_LENGTH":
      return [400, "the request has both Content-Length and Transfer-Encoding; send one of them"];
    case "HPE_INVALID_CONTENT_LENGTH":
      return [400, "Content-Length must be a single decimal number of bytes"];
    case "HPE_INVALID_CHUNK_SIZE":
    case "HPE_INVALID_TRANSFER_ENCODING":
      return [400, "the chunked body is malformed; each chunk is a hex size line, the data and CRLF"];
    case "HPE_INVALID_METHOD":
      return [400, "unknown HTTP method; this server answers GET and POST"];
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return [408, "the request took too long to arrive; send it at once"];
    default:
      return [400, `the request is not valid HTTP/1.1 (${reason}); check the request line, headers and body framing`];
  }
}

function answerClientError(err: Error & { code?: string; reason?: string }, socket: Socket): void {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, message] = clientErrorAnswer(err.code, err.reason ?? err.message);
  const body = JSON.stringify({ error: message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export async function startRestServer(inner: Gateway, opts: RestOptions): Promise<RestServer> {
  const gateway = TritonView.of(inner);
  const app = Fastify({
    bodyLimit: opts.maxBodyBytes,
    logger: false,
    keepAliveTimeout: 65_000,
    routerOptions: { maxParamLength: MAX_SEGMENT },
    clientErrorHandler: answerClientError,
    frameworkErrors: (err, req, reply) => {
      const long = err.code === "FST_ERR_MAX_PARAM_LENGTH";
      const r = reply as FastifyReply;
      void r.code(long ? 414 : 400).send({
        error: long
          ? `a path segment of the ${req.url.length}-character URL is longer than ${MAX_SEGMENT} characters; model and variant names have at most 64`
          : "the URL path is not valid percent-encoding; encode each path segment with encodeURIComponent",
      });
    },
  });
  app.server.maxConnections = opts.maxConnections ?? 4096;
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? 10_000;
  // A body that stops arriving holds its connection and buffer: after bodyTimeoutMs without a byte it is
  // answered 408 and the connection closed. Armed for bodies only, and disarmed once the body is in
  // (`bodyIn`): an inference may run long.
  const armBodyTimeout = (req: FastifyRequest, reply: FastifyReply) => {
    const socket = req.raw.socket;
    if (req.raw.complete || !socket) return;
    socket.setTimeout(bodyTimeoutMs);
    req.raw.once("timeout", () => {
      if (reply.sent) return;
      void reply
        .code(408)
        .header("Connection", "close")
        .send({
          error: `the request body stalled for ${bodyTimeoutMs} ms before its Content-Length was reached; send the whole body at once`,
        });
    });
  };
  const bodyIn = (req: FastifyRequest) => req.raw.socket?.setTimeout(0);
  const withBody = { onRequest: async (req: FastifyRequest, reply: FastifyReply) => armBodyTimeout(req, reply) };
  let draining = false;
  let inFlight = 0;
  let lastRequest = 0;
  app.server.on("request", (_req, res) => {
    inFlight++;
    lastRequest = Date.now();
    res.once("close", () => inFlight--);
    // while draining every answer closes its connection: a client does not reuse one that is about to go
    // away (and see it reset), it reconnects to another replica
    if (draining) res.shouldKeepAlive = false;
  });
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
    if (err instanceof ApiError) {
      if (err.retryAfterMs !== undefined) reply.header("Retry-After", String(Math.ceil(err.retryAfterMs / 1000)));
      return reply.code(err.status).send({
        error: cut(err.message),
        ...(err.retryAfterMs !== undefined ? { retry_after_ms: Math.ceil(err.retryAfterMs) } : {}),
      });
    }
    if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return reply.code(413).send({
        error: `request body is larger than the ${opts.maxBodyBytes} byte limit; send fewer rows per request or raise --max-body-mb`,
      });
    }
    if (err.code === "FST_ERR_CTP_INVALID_CONTENT_LENGTH")
      return reply.code(400).send({ error: "the body is shorter or longer than its Content-Length; send them equal" });
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500)
      return reply.code(err.statusCode).send({ error: cut(`${err.message} (${err.code ?? "client error"})`) });
    return reply.code(500).send({ error: cut(`internal error: ${err.message}`) });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({
      error: `no such endpoint: ${req.method} ${req.url.length > 200 ? `${req.url.slice(0, 200)}…` : req.url} (see the Open Inference Protocol v2 paths in the README)`,
    }),
  );

  const health = (r: { ready: boolean; reason?: string }, key: "live" | "ready", reply: FastifyReply) =>
    r.ready ? reply.send({ [key]: true }) : reply.code(503).send({ error: r.reason ?? "not ready" });
  const admin = (req: FastifyRequest) => {
    checkAdminRequest(header(req, "origin"), header(req, "host"), header(req, "content-type"));
    checkAdminToken(
      { token: opts.adminToken, host: opts.host },
      header(req, "authorization"),
      "'Authorization: Bearer <token>'",
    );
  };
  // Shedding before the body is read: an overloaded task refuses a request for the price of its headers.
  // The class comes from `sloserve-priority` here (Triton's priority parameter decides once the body is read).
  const admitEarly = async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
    const hint = Number(header(req, "sloserve-slo-ms"));
    gateway.admit(
      req.params.m!,
      req.params.v,
      Number.isFinite(hint) && hint > 0 ? hint : undefined,
      priorityHint(header(req, "sloserve-priority")),
    );
    armBodyTimeout(req, reply);
  };
  const body = (req: FastifyRequest): Buffer => (Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));

  app.get("/v2/health/live", (_req, reply) => health(gateway.live(), "live", reply));
  app.get("/v2/health/ready", (_req, reply) => health(gateway.ready(), "ready", reply));
  app.get("/v2", () => gateway.metadata());
  app.get("/metrics", async (_req, reply) => reply.type(opts.metrics.contentType).send(await opts.metrics.text()));

  for (const prefix of ["/v2/models/:m", "/v2/models/:m/versions/:v"]) {
    app.get<{ Params: Params }>(`${prefix}/ready`, (req, reply) => {
      const r = gateway.modelReady(req.params.m!, req.params.v);
      if (!r.ready) return reply.code(503).send({ error: r.reason ?? "not ready" });
      // the body keeps the protocol's exact shape ({name, ready}): strict clients parse it into a schema
      if (r.reason) reply.header("sloserve-ready-reason", r.reason);
      return reply.send({ name: req.params.m, ready: true });
    });
    app.get<{ Params: Params }>(prefix, (req) => gateway.modelMetadata(req.params.m!, req.params.v));
    app.get<{ Params: Params }>(`${prefix}/config`, (req) => gateway.modelConfig(req.params.m!, req.params.v));
    app.get<{ Params: Params }>(`${prefix}/stats`, (req) => gateway.statistics(req.params.m!, req.params.v));
    app.post<{ Params: Params }>(`${prefix}/infer`, { onRequest: admitEarly }, async (req, reply) => {
      bodyIn(req);
      const receivedAt = Date.now();
      const t0 = performance.now();
      const { json, binary } = splitBody(body(req), header(req, "inference-header-content-length"));
      const request = parseInferRequest(json, binary, req.params.m!, req.params.v, receivedAt);
      const inputMs = performance.now() - t0;
      // a client that disconnects before its answer takes its request out of the queue (and its batch)
      const gone = new AbortController();
      reply.raw.once("close", () => {
        if (!reply.raw.writableFinished) gone.abort();
      });
      request.signal = gone.signal;
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
  app.post("/v2/repository/index", withBody, (req) => {
    bodyIn(req);
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
  app.post<{ Params: Params }>("/v2/repository/models/:m/load", withBody, async (req) => {
    bodyIn(req);
    admin(req);
    repositoryParameters("load", jsonParameters(body(req)));
    await gateway.load(req.params.m!);
    return {};
  });
  app.post<{ Params: Params }>("/v2/repository/models/:m/unload", withBody, async (req) => {
    bodyIn(req);
    admin(req);
    const { unloadDependents } = repositoryParameters("unload", jsonParameters(body(req)));
    if (unloadDependents) await gateway.unloadWithDependents(req.params.m!);
    else await gateway.unload(req.params.m!);
    return {};
  });
  opts.extend?.(app);
  const url = await app.listen({ host: opts.host, port: opts.port });
  return {
    app,
    url,
    drain: () => {
      draining = true;
      // net's close, not http's: http's would also close the idle keep-alive connections at once
      if (app.server.listening) net.Server.prototype.close.call(app.server);
    },
    settle: async (ms) => {
      const until = Date.now() + ms;
      while (Date.now() < until && (inFlight > 0 || Date.now() - lastRequest < 100))
        await new Promise((r) => setTimeout(r, 10));
    },
  };
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
