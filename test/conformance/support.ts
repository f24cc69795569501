// What the conformance test files share: the Python environment that scripts/python-env.sh builds
// outside the repository, a real sloserve with an admin token, real held-out digits for the clients,
// and a driver that runs one named Python check at a time, so that each is a test of its own.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type DeploySpec, type RunningServer } from "../../src/server/server.js";
import { loadDigits } from "../../src/zoo/digits-data.js";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const CACHE = process.env.SLOSERVE_CACHE ?? path.join(os.homedir(), ".cache", "sloserve");
export const PYTHON = path.join(CACHE, "venv", "bin", "python");
export const PERF_ANALYZER = path.join(CACHE, "bin", "perf_analyzer");
export const ADMIN_TOKEN = "conformance-token";

/** Fails with the command to run when the Python side is missing (npm test installs it first). */
export function requirePythonEnv(): void {
  if (!existsSync(PYTHON) || !existsSync(PERF_ANALYZER))
    throw new Error(`the conformance suite's Python environment is missing; run: bash scripts/python-env.sh`);
}

export interface ConformanceServer {
  server: RunningServer;
  http: string;
  grpc: string;
  /** Folder with digits.f32 / digits.labels for the Python checks. */
  data: string;
  close(): Promise<void>;
}

/**
 * A copy of the digits tasks and pipeline, and of vision with only MobileNetV2, whose objectives are
 * `sloMs`: for load tools that cannot
 * send an SLO (perf_analyzer over HTTP) on a machine whose scheduling hiccups exceed the 50-ms default.
 */
export async function relaxedRepository(into: string, sloMs: number): Promise<string> {
  const root = path.join(into, "models");
  for (const name of ["digits", "mnist-prep", "mnist-e2e", "vision/task.yaml", "vision/mobilenetv2"])
    await fs.cp(path.resolve("models", name), path.join(root, name), { recursive: true });
  for (const file of ["digits/task.yaml", "mnist-prep/task.yaml", "mnist-e2e/pipeline.yaml", "vision/task.yaml"]) {
    const p = path.join(root, file);
    await fs.writeFile(p, (await fs.readFile(p, "utf8")).replace(/^slo_ms: .*$/m, `slo_ms: ${sloMs}`));
  }
  return root;
}

export async function startConformanceServer(
  deploy: DeploySpec[] = [
    { task: "digits", variant: "mlp-small", cores: 1 },
    { task: "mnist-prep", variant: "scale", cores: 1 },
  ],
  sloMs?: number,
): Promise<ConformanceServer> {
  const data = await fs.mkdtemp(path.join(os.tmpdir(), "sloserve-conformance-"));
  const server = await startServer({
    modelsDir: sloMs === undefined ? path.resolve("models") : await relaxedRepository(data, sloMs),
    httpPort: 0,
    grpcPort: 0,
    metricsPort: 0,
    cores: 2,
    deploy,
    adminToken: ADMIN_TOKEN,
    autoscaler: "none",
    logLevel: "warn",
  });
  const digits = loadDigits().test;
  const n = 64;
  await fs.writeFile(path.join(data, "digits.f32"), Buffer.from(digits.images.slice(0, n * 784).buffer));
  await fs.writeFile(path.join(data, "digits.labels"), Buffer.from(digits.labels.slice(0, n)));
  return {
    server,
    http: new URL(server.httpUrl).host,
    grpc: `127.0.0.1:${server.grpcPort}`,
    data,
    close: async () => {
      await server.close(2000);
      await fs.rm(data, { recursive: true, force: true });
    },
  };
}

interface Reply {
  id: number;
  ok: boolean;
  error: string;
  names?: string[];
}

/** One long-lived Python process per group; checks run one at a time over JSON lines. */
export class PyDriver {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private seq = 0;
  private stderr = "";

  constructor(group: string, env: Record<string, string>) {
    this.child = spawn(PYTHON, [path.join(HERE, "py", "driver.py"), group], {
      env: { ...process.env, ...env, PYTHONDONTWRITEBYTECODE: "1", PYTHONUNBUFFERED: "1" },
      cwd: path.join(HERE, "py"),
    });
    this.child.stderr.on("data", (b: Buffer) => (this.stderr = (this.stderr + b.toString()).slice(-4000)));
    createInterface({ input: this.child.stdout }).on("line", (line) => {
      const reply = JSON.parse(line) as Reply;
      this.waiting.get(reply.id)?.(reply);
      this.waiting.delete(reply.id);
    });
    this.child.on("exit", (code) => {
      for (const done of this.waiting.values())
        done({ id: -1, ok: false, error: `python exited with ${code}: ${this.stderr}` });
      this.waiting.clear();
    });
  }

  run(check: string): Promise<Reply> {
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.stdin.write(JSON.stringify({ id, check }) + "\n");
    });
  }

  async names(): Promise<string[]> {
    const r = await this.run("__list__");
    if (!r.ok) throw new Error(r.error);
    return r.names!;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve();
      this.child.once("exit", () => resolve());
      this.child.stdin.end();
      setTimeout(() => this.child.kill("SIGKILL"), 5000).unref();
    });
  }
}

export interface Check {
  name: string;
}

/**
 * A describe block per client group: every check of the Python module is a test, and the list
 * here must match the module's, so a check cannot be written and silently never run.
 */
export function clientGroup(
  group: string,
  checks: Check[],
  extraEnv: (s: ConformanceServer) => Promise<Record<string, string>> = async () => ({}),
  extra?: (ctx: () => ConformanceServer) => void,
): void {
  describe(group, () => {
    let s: ConformanceServer;
    let py: PyDriver;
    beforeAll(async () => {
      requirePythonEnv();
      s = await startConformanceServer();
      py = new PyDriver(group, {
        SLOSERVE_HTTP: s.http,
        SLOSERVE_GRPC: s.grpc,
        SLOSERVE_ADMIN_TOKEN: ADMIN_TOKEN,
        SLOSERVE_DATA: s.data,
        SLOSERVE_MODELS: s.server.repo.root,
        ...(await extraEnv(s)),
      });
    });
    afterAll(async () => {
      await py?.close();
      await s?.close();
    });

    it("runs every check the Python module defines", async () => {
      expect(await py.names()).toEqual(checks.map((c) => c.name).sort());
    });
    for (const c of checks) {
      const run = async () => {
        const r = await py.run(c.name);
        if (!r.ok) throw new Error(`${c.name}:\n${r.error}`);
      };
      it(c.name, run);
    }
    extra?.(() => s);
  });
}
