// The pieces of bench:peers that decide its figures without a peer installed: a process tree's
// CPU and its teardown read from /proc, the CPU-profile reducer on a real V8 profile, Ray Serve's
// knobs from a real profile, and the scratch repository sloserve serves in the data-path runs.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { rayKnobsFromProfile } from "../../tools/peers/autoscale.js";
import { selfTimes } from "../../tools/peers/cpuprofile-top.js";
import { cpuBetween, processTree, stopTree, treeCpu } from "../../tools/peers/proc.js";
import { scratchRepository } from "../../tools/peers/servers.js";

const repoRoot = path.resolve(__dirname, "../..");
const linux = process.platform === "linux";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(linux)("process trees from /proc", () => {
  it("counts the CPU of a grandchild that left the process group, and stops it", async () => {
    // parent → detached grandchild burning CPU (as Ray's actors leave the group)
    const parent = spawn(
      process.execPath,
      [
        "-e",
        `const c = require("node:child_process").spawn(process.execPath, ["-e", "const e = Date.now() + 60000; while (Date.now() < e);"], { detached: true, stdio: "ignore" });
         console.log(c.pid); setInterval(() => {}, 1000);`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const grandchild = Number(await new Promise<string>((r) => parent.stdout!.once("data", (d) => r(String(d)))));
    try {
      expect(processTree(parent.pid!).map((s) => s.pid)).toContain(grandchild);
      const before = treeCpu(parent.pid!);
      await sleep(600);
      const used = cpuBetween(before, treeCpu(parent.pid!));
      // a busy loop for 0.6 s: at least a fifth of a core even on a crowded machine, at most all of it
      expect(used).toBeGreaterThan(0.1);
      expect(used).toBeLessThan(1.5);
    } finally {
      await stopTree(parent.pid!, 2000);
    }
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
      } catch {
        return false;
      }
    };
    expect(alive(parent.pid!)).toBe(false);
    expect(alive(grandchild)).toBe(false);
  });
});

describe("CPU profile reducer", () => {
  it("puts the function that burned the CPU at the top of a real V8 profile, inside the window asked", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sloserve-prof-test-"));
    try {
      const code = `
        function spinHere(ms) { const e = Date.now() + ms; let x = 0; while (Date.now() < e) x += Math.sqrt(x + 1); return x; }
        const t0 = process.hrtime.bigint() / 1000n;
        spinHere(400);
        const t1 = process.hrtime.bigint() / 1000n;
        console.log(JSON.stringify({ from: Number(t0), to: Number(t1) }));`;
      const child = spawn(process.execPath, ["--cpu-prof", "--cpu-prof-dir", dir, "-e", code], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      child.stdout!.on("data", (d) => (out += d));
      await new Promise((r) => child.once("exit", r));
      const window = JSON.parse(out) as { from: number; to: number };
      const file = fs.readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))!;
      const profile = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8"));
      const all = selfTimes(profile);
      const inWindow = selfTimes(profile, repoRoot, { fromUs: window.from, toUs: window.to });
      expect(inWindow.top[0]!.function).toBe("spinHere");
      expect(inWindow.top[0]!.share).toBeGreaterThan(0.8);
      expect(inWindow.totalMs).toBeLessThan(all.totalMs);
      expect(inWindow.totalMs).toBeGreaterThan(300);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Ray Serve's knobs from a measured profile", () => {
  it("picks the largest batch whose 1-core p99 fits half the objective", () => {
    const file = path.join(repoRoot, "models/vision/resnet18/profile.json");
    const points = (
      JSON.parse(fs.readFileSync(file, "utf8")) as { points: { batch: number; cores: number; p99_ms: number }[] }
    ).points
      .filter((p) => p.cores === 1)
      .sort((a, b) => a.batch - b.batch);
    for (const slo of [100, 500, 2000]) {
      const k = rayKnobsFromProfile(file, slo, 2);
      const chosen = points.find((p) => p.batch === k.maxBatch)!;
      const next = points.find((p) => p.batch > k.maxBatch);
      if (chosen !== points[0]) expect(chosen.p99_ms).toBeLessThanOrEqual(slo / 2);
      if (next) expect(next.p99_ms).toBeGreaterThan(slo / 2);
      expect(k.targetOngoingRequests).toBe(k.maxBatch);
      expect(k.maxOngoingRequests).toBe(2 * k.maxBatch);
      expect(k.maxReplicas).toBe(2);
    }
  });
});

describe("the scratch repository sloserve serves in the data-path runs", () => {
  it("holds one task and one variant with the objective replaced, the model copied in", () => {
    const dir = scratchRepository(repoRoot, path.join(repoRoot, "models"), "digits", "cnn-large", 123_456);
    try {
      expect(fs.readdirSync(dir)).toEqual(["digits"]);
      expect(fs.readdirSync(path.join(dir, "digits")).sort()).toEqual(["cnn-large", "task.yaml"]);
      const task = parseYaml(fs.readFileSync(path.join(dir, "digits", "task.yaml"), "utf8")) as { slo_ms: number };
      expect(task.slo_ms).toBe(123_456);
      const model = path.join(dir, "digits", "cnn-large", "model.onnx");
      expect(fs.lstatSync(model).isSymbolicLink()).toBe(false);
      expect(fs.statSync(model).size).toBe(fs.statSync(path.join(repoRoot, "models/digits/cnn-large/model.onnx")).size);
      expect(() => scratchRepository(repoRoot, path.join(repoRoot, "models"), "digits", "no-such", 1)).toThrow(
        /missing/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
