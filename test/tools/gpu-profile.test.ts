// The GPU measurement tool (tools/gpu): its layer lists are the architectures' own, and the PyTorch
// tool writes a profile the repository's schema accepts. The tool's run needs PyTorch, installed by
// scripts/install-torch.sh (a GPU is not needed: it runs on the CPU here, on a tiny grid).
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { Profile, VariantConfig } from "../../src/repository/schema.js";
import { SPECS_FILE, specsText, zooSpecs } from "../../tools/gpu/export-specs.js";

const run = promisify(execFile);

/** A python that imports torch: $SLOSERVE_TORCH_PYTHON, the project's venv, or the system's. */
async function torchPython(): Promise<string | null> {
  const venv = path.join(process.env.SLOSERVE_TORCH_VENV ?? path.join(os.homedir(), ".cache/sloserve/torch-venv"));
  const candidates = [process.env.SLOSERVE_TORCH_PYTHON, path.join(venv, "bin/python"), "python3"].filter(
    (p): p is string => !!p && (p === "python3" || existsSync(p)),
  );
  for (const py of candidates) {
    try {
      await run(py, ["-c", "import torch, numpy"], { timeout: 60_000 });
      return py;
    } catch {
      // not this one
    }
  }
  return null;
}

const python = await torchPython();
if (!python) console.warn("gpu-profile test: no python with torch; run scripts/install-torch.sh to run the tool here");

describe("the GPU measurement tool", () => {
  it("measures the layer lists the architectures and variant.yaml give now", async () => {
    const specs = await zooSpecs("models");
    expect(await readFile(SPECS_FILE, "utf8"), "tools/gpu/subnets.json is stale: npm run gpu:specs").toBe(
      specsText(specs),
    );
    for (const sn of specs.supernets) {
      const yaml = VariantConfig.parse(
        YAML.parse(await readFile(path.join("models", sn.task, sn.variant, "variant.yaml"), "utf8")),
      );
      expect(sn.subnets.map((s) => s.name)).toEqual(yaml.subnets!.map((s) => s.name));
      // the walk that builds the ONNX graphs counted these multiply-accumulates (costOf): same layers, same shapes
      for (const s of sn.subnets) expect(s.macs).toBe(yaml.subnets!.find((y) => y.name === s.name)!.macs);
      for (const s of sn.subnets) expect(s.output).toEqual([sn.classes]);
    }
  });

  it.skipIf(!python)("writes a profile the repository's schema accepts (CPU, tiny grid)", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "sloserve-gpu-tool-"));
    try {
      const out = path.join(dir, "profile.json");
      const args = ["tools/gpu/profile_subnets.py", "--task", "digits-supernet", "--device", "cpu", "--out", out];
      const grid = ["--batches", "1,3", "--subnets", "2", "--warmup", "1", "--min-samples", "3", "--budget-ms", "5"];
      await run(python!, [...args, ...grid, "--load-samples", "1"], { timeout: 120_000 });
      const p = Profile.parse(JSON.parse(await readFile(out, "utf8")));
      const names = Object.keys(p.subnets!);
      expect(names).toHaveLength(2);
      for (const n of names) {
        expect(p.subnets![n]!.points.map((pt) => [pt.batch, pt.cores])).toEqual([
          [1, 1],
          [3, 1],
        ]);
        for (const pt of p.subnets![n]!.points) expect(pt.p99_ms).toBeGreaterThanOrEqual(pt.p50_ms);
      }
      expect(p.machine.accelerator).toMatch(/PyTorch/);
      expect(p.method).toMatch(/profile_subnets\.py/);
      // a bad task is refused with the names it knows
      const bad = await run(python!, [...args.slice(0, 2), "nope", "--out", out]).catch((e: { stderr: string }) => e);
      expect((bad as { stderr: string }).stderr).toMatch(/no supernet 'nope'.*digits-supernet/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
