import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer } from "../support/server.js";
import type { RunningServer } from "../../src/server/server.js";
import { loadDigits } from "../../src/zoo/digits-data.js";
import { freePort } from "../../tools/bench/net.js";
import { float32Bytes, get, infer, post } from "../support/oip-client.js";

const digits = loadDigits().test;
const batch = (n: number) => float32Bytes(digits.images.subarray(0, n * 784));
let repo: string;

/** A copy of the digits task with a small admission bound, so overflow is easy to reach. */
beforeAll(async () => {
  repo = await fs.mkdtemp(path.join(os.tmpdir(), "sloserve-life-"));
  await fs.cp(path.resolve("models/digits"), path.join(repo, "digits"), { recursive: true });
  const task = path.join(repo, "digits", "task.yaml");
  await fs.writeFile(task, (await fs.readFile(task, "utf8")) + "max_queue: 4\n");
});
afterAll(async () => {
  await fs.rm(repo, { recursive: true, force: true });
});

describe("admission control and admin token", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startTestServer({
      modelsDir: repo,
      cores: 1,
      deploy: [{ task: "digits", variant: "cnn-large", cores: 1 }],
      adminToken: "s3cret",
    });
  });
  afterAll(async () => {
    await server?.close(2000);
  });

  it("refuses requests beyond the queue bound at once with 429, and serves the rest", async () => {
    const body = batch(64);
    const results = await Promise.all(
      Array.from({ length: 30 }, () =>
        infer(
          server.httpUrl,
          "/v2/models/digits/infer",
          [{ name: "image", datatype: "FP32", shape: [64, 1, 28, 28], binary: body }],
          { parameters: { slo_ms: 60_000 } },
        ),
      ),
    );
    const refused = results.filter((r) => r.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]!.json.error).toMatch(/queue of 'digits' is full \(4 requests waiting\)/);
    expect(results.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(4);
    expect(results.every((r) => r.status === 200 || r.status === 429)).toBe(true);
  });

  it("guards repository changes with the bearer token", async () => {
    const denied = await post(server.httpUrl, "/v2/repository/models/digits/unload");
    expect(denied.status).toBe(401);
    expect(denied.json.error).toMatch(/Authorization: Bearer/);
    expect(
      (await post(server.httpUrl, "/v2/repository/models/digits/load", undefined, { authorization: "Bearer s3cret" }))
        .status,
    ).toBe(200);
  });
});

describe("scale from zero", () => {
  it("starts an instance of a task that has none, making room by stopping an idle one", async () => {
    const server = await startTestServer({
      cores: 1,
      deploy: [{ task: "digits", variant: "mlp-small", cores: 1 }],
    });
    try {
      await new Promise((r) => setTimeout(r, 1100)); // digits becomes idle
      const raw = Array.from(digits.images.subarray(0, 784), (x) => Math.round(x * 255));
      const r = await infer(
        server.httpUrl,
        "/v2/models/mnist-prep/infer",
        [{ name: "raw", datatype: "UINT8", shape: [1, 28, 28], data: raw }],
        { parameters: { slo_ms: 30_000 } },
      );
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      expect(r.json.parameters.variant).toBe("scale");
      expect(server.cluster.instances().map((i) => i.task)).toEqual(["mnist-prep"]);
      // a busy machine with no idle instance shares a core with the newcomer; a request whose deadline its
      // cold start cannot make is answered at once, with when to come back
      const busy = Array.from({ length: 3 }, () =>
        infer(
          server.httpUrl,
          "/v2/models/mnist-prep/infer",
          [{ name: "raw", datatype: "UINT8", shape: [64, 28, 28], binary: new Uint8Array(64 * 784) }],
          { parameters: { slo_ms: 30_000 } },
        ),
      );
      const denied = await infer(server.httpUrl, "/v2/models/digits/infer", [
        { name: "image", datatype: "FP32", shape: [1, 1, 28, 28], binary: batch(1) },
      ]);
      expect(denied.status).toBe(503);
      expect(denied.json.error).toMatch(/one is starting and should be ready in ~\d+ ms/);
      await Promise.all(busy);
    } finally {
      await server.close(2000);
    }
  });
});

describe("graceful shutdown", () => {
  it("on SIGTERM stops admission, answers everything in flight and exits 0", async () => {
    const [http, grpc] = await Promise.all([freePort(), freePort()]);
    const child = spawn(
      process.execPath,
      [
        "bin/sloserve.js",
        "serve",
        "--models",
        repo,
        "--port",
        String(http),
        "--grpc-port",
        String(grpc),
        "--cores",
        "1",
        "--deploy",
        "digits=cnn-large:1",
        "--log-level",
        "warn",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const base = `http://127.0.0.1:${http}`;
    for (let i = 0; i < 300 && !stderr.includes("sloserve is serving"); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(stderr).toContain("sloserve is serving");
    const body = batch(32);
    const inflight = Array.from({ length: 4 }, () =>
      infer(
        base,
        "/v2/models/digits/infer",
        [{ name: "image", datatype: "FP32", shape: [32, 1, 28, 28], binary: body }],
        { parameters: { slo_ms: 60_000 } },
      ),
    );
    await new Promise((r) => setTimeout(r, 100));
    child.kill("SIGTERM");
    const results = await Promise.all(inflight);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(await exited).toBe(0);
    await expect(get(base, "/v2/health/live")).rejects.toThrow();
  });
});
