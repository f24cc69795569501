// The worker follows its pod's CPU allocation: `--threads auto --follow-cgroup` reads the cgroup v2 quota
// (cpu.max) and rebuilds its session when the quota changes, as an in-place pod resize rewrites it.
import { WORKER_TOKEN_ENV } from "../../src/worker/protocol.js";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkerClient } from "../../src/worker/client.js";
import { parseCpuMax, threadsFor } from "../../src/worker/cgroup-cpu.js";
import { tinyDigitsModel } from "../support/tiny-model.js";

const require = createRequire(import.meta.url);
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "sloserve-cgroup-"));
  await fs.writeFile(path.join(dir, "model.onnx"), tinyDigitsModel());
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const TOKEN = "a-test-secret";

describe("cgroup CPU quota", () => {
  it("reads cpu.max as cores, and whole cores as threads", () => {
    expect(parseCpuMax("200000 100000\n")).toBe(2);
    expect(parseCpuMax("50000 100000")).toBe(0.5);
    expect(parseCpuMax("max 100000")).toBeNull();
    expect(() => parseCpuMax("banana")).toThrow(/cannot read a CPU quota/);
    expect(threadsFor(0.5)).toBe(1);
    expect(threadsFor(1.5)).toBe(1);
    expect(threadsFor(3)).toBe(3);
  });

  it("a worker started with --threads auto --follow-cgroup resizes its session when cpu.max changes", async () => {
    const cpuMax = path.join(dir, "cpu.max");
    await fs.writeFile(cpuMax, "100000 100000\n");
    const proc = spawn(
      process.execPath,
      [
        "--import",
        require.resolve("tsx/esm"),
        path.resolve("src/worker/main.ts"),
        "--model",
        path.join(dir, "model.onnx"),
        "--threads",
        "auto",
        "--follow-cgroup",
        "--cgroup-cpu-max",
        cpuMax,
      ],
      { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, [WORKER_TOKEN_ENV]: TOKEN } },
    );
    try {
      const ready = await new Promise<{ port: number }>((resolve, reject) => {
        readline.createInterface({ input: proc.stdout! }).once("line", (l) => resolve(JSON.parse(l)));
        proc.once("exit", (code) => reject(new Error(`worker exited ${code}`)));
      });
      const client = await WorkerClient.connect("127.0.0.1", ready.port, TOKEN);
      const threads = async () => (await client.call("stats")).header.threads;
      expect(await threads()).toBe(1);
      await fs.writeFile(cpuMax, "200000 100000\n"); // the pod was resized to 2 cores
      const until = async (n: number) => {
        for (let i = 0; i < 100 && (await threads()) !== n; i++) await new Promise((r) => setTimeout(r, 50));
        return threads();
      };
      expect(await until(2)).toBe(2);
      await fs.writeFile(cpuMax, "150000 100000\n"); // 1.5 cores: one unthrottled thread
      expect(await until(1)).toBe(1);
      client.close();
    } finally {
      proc.kill("SIGKILL");
    }
  });
});
