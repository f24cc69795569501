// The fuzz suite: every case of cases.ts against the real server in a process of its own. What must hold
// of each answer: no status ≥ 500 (but API.md's 504 for a deadline that cannot be met) and no hang; every HTTP 4xx a JSON {"error": "..."} that says what is
// wrong (no framework boilerplate, no stack trace, no echo of a huge input); every gRPC error a client error
// with a short message; and after each case a good request still succeeds. Over the whole suite: the
// server's memory stays within 20 % of where it started and no process is left behind.
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GRPC_PROTO_DIR } from "../../src/api/grpc.js";
import { alive, rssMb, startServerProcess, workerPids, type ServerChild } from "../support/server-process.js";
import { fuzzCases, type Answer, type Target } from "./cases.js";

let server: ServerChild;
let target: Target;
let stub: any; // generated from the .proto at run time
const GOOD = JSON.stringify({
  inputs: [{ name: "image", datatype: "FP32", shape: [1, 1, 28, 28], data: new Array(784).fill(0.1) }],
});

const GRPC_CLIENT_ERRORS = new Set([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.UNAVAILABLE,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.UNAUTHENTICATED,
  grpc.status.PERMISSION_DENIED,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.OUT_OF_RANGE,
  grpc.status.UNIMPLEMENTED,
]);

beforeAll(async () => {
  // a stalled body is answered after 1 s (10 s by default), within the raw cases' 3-s wait
  server = await startServerProcess({
    cores: 1,
    deploy: [{ task: "digits", variant: "cnn-small", cores: 1 }],
    bodyTimeoutMs: 1000,
  });
  const url = new URL(server.httpUrl);
  const defs = protoLoader.loadSync(path.join(GRPC_PROTO_DIR, "grpc_service.proto"), {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(defs) as any;
  stub = new pkg.inference.GRPCInferenceService(server.grpcTarget, grpc.credentials.createInsecure(), {
    "grpc.max_send_message_length": 64 * 2 ** 20,
    "grpc.max_receive_message_length": 64 * 2 ** 20,
  });
  target = {
    httpUrl: server.httpUrl,
    host: url.hostname,
    port: Number(url.port),
    grpc: (method, request) =>
      new Promise<Answer>((resolve) =>
        stub[method](request, { deadline: Date.now() + 15_000 }, (err: grpc.ServiceError | null) =>
          resolve(err ? { status: err.code, body: err.details } : { status: 0, body: "" }),
        ),
      ),
  };
}, 120_000);
afterAll(async () => {
  stub?.close();
  await server?.stop();
});

async function goodRequest(): Promise<number> {
  const res = await fetch(`${server.httpUrl}/v2/models/digits/infer`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: GOOD,
    signal: AbortSignal.timeout(15_000),
  });
  await res.text();
  return res.status;
}

/** What is wrong with one answer, in words (null when nothing is). */
function judge(kind: string, a: Answer): string | null {
  if (kind === "grpc") {
    if (a.status === 0) return null; // a valid request after all
    if (!GRPC_CLIENT_ERRORS.has(a.status))
      return `gRPC status ${a.status} (${grpc.status[a.status]}): ${a.body.slice(0, 200)}`;
    if (!a.body || a.body.length > 2000) return `gRPC message empty or ${a.body.length} characters long`;
    return null;
  }
  if (a.status === 0) return "no answer (the connection closed or hung)";
  // API.md's answer to a deadline that passed before the request could run (a tiny slo_ms, say)
  const deadline = a.status === 504 && /^\{"error":"deadline cannot be met: /.test(a.body);
  if (a.status >= 500 && !deadline) return `status ${a.status}: ${a.body.slice(0, 300)}`;
  if (a.status < 400) return null;
  let error: unknown;
  try {
    error = (JSON.parse(a.body) as { error?: unknown }).error;
  } catch {
    return `status ${a.status} without a JSON body: ${JSON.stringify(a.body.slice(0, 200))}`;
  }
  if (typeof error !== "string" || error.length < 12) return `status ${a.status} with error ${JSON.stringify(error)}`;
  if (/^(Bad Request|Not Found|Payload Too Large)$/.test(error) || /\n\s+at /.test(error))
    return `status ${a.status}: framework text or a stack trace: ${error.slice(0, 200)}`;
  if (error.length > 2000) return `status ${a.status}: a ${error.length}-character error (an echoed input?)`;
  if (error.includes(path.resolve("models"))) return `status ${a.status}: the error reveals the repository's path`;
  return null;
}

describe("fuzzing the front ends", () => {
  it("answers every malformed or hostile request with a client error and keeps serving", async () => {
    const cases = fuzzCases(1);
    expect(cases.length).toBeGreaterThanOrEqual(400);
    expect(await goodRequest()).toBe(200);
    const workersBefore = await workerPids(server.pid);
    const rssBefore = (await rssMb(server.pid))!;
    const problems: string[] = [];
    for (const c of cases) {
      const t0 = performance.now();
      let answer: Answer;
      try {
        answer = await c.send(target);
      } catch (err) {
        answer = { status: 0, body: (err as Error).message };
      }
      const wrong = judge(c.kind, answer);
      if (wrong) problems.push(`[${c.kind}] ${c.name}: ${wrong}`);
      if (performance.now() - t0 > 14_000)
        problems.push(`[${c.kind}] ${c.name}: took ${(performance.now() - t0).toFixed(0)} ms`);
      const after = await goodRequest().catch((err: Error) => err.message);
      if (after !== 200) problems.push(`[${c.kind}] ${c.name}: the next good request got ${after}`);
    }
    const rssAfter = (await rssMb(server.pid))!;
    process.stdout.write(
      `fuzz: ${cases.length} cases, gateway RSS ${rssBefore.toFixed(0)} -> ${rssAfter.toFixed(0)} MB\n`,
    );
    expect(problems, problems.join("\n")).toEqual([]);
    expect(rssAfter).toBeLessThanOrEqual(rssBefore * 1.2);
    const workersAfter = await workerPids(server.pid);
    expect(workersAfter.length).toBeLessThanOrEqual(workersBefore.length + 1); // mnist-prep may have started
    for (const w of workersAfter) expect(await alive(w)).toBe(true);
  }, 600_000);
});
