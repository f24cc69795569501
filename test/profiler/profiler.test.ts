import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadRepository } from "../../src/repository/repository.js";
import { Profile } from "../../src/repository/schema.js";
import { profileVariant, writeProfile } from "../../src/profiler/profiler.js";
import { DIGITS_TASK_YAML, tinyDigitsModel, variantYaml } from "../support/tiny-model.js";

describe("profiler", () => {
  it("profiles a real model in pinned worker processes and reports the fit's error on real points", async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), "sloserve-prof-"));
    try {
      await fs.mkdir(path.join(root, "digits/small"), { recursive: true });
      await fs.writeFile(path.join(root, "digits/task.yaml"), DIGITS_TASK_YAML);
      await fs.writeFile(path.join(root, "digits/small/variant.yaml"), variantYaml("small"));
      await fs.writeFile(path.join(root, "digits/small/model.onnx"), tinyDigitsModel());
      const variant = (await loadRepository(root)).tasks.get("digits")!.variants.get("small")!;
      const steps: number[] = [];
      const p = await profileVariant(variant, {
        batches: [1, 4, 16],
        cores: [1, 2],
        budgetMs: 50,
        minSamples: 5,
        loadSamples: 3,
        resizeRounds: 2,
        onStep: (d) => steps.push(d),
      });
      expect(p.points).toHaveLength(6);
      for (const pt of p.points) {
        expect(pt.p50_ms).toBeGreaterThan(0);
        expect(pt.p99_ms).toBeGreaterThanOrEqual(pt.p50_ms);
      }
      for (const f of Object.values(p.fit)) {
        expect(Number.isFinite(f.median_rel_error)).toBe(true);
        expect(f.max_rel_error).toBeGreaterThanOrEqual(f.median_rel_error);
      }
      expect(p.load_ms.samples).toHaveLength(3);
      expect(p.resize_ms.samples).toHaveLength(4);
      expect(p.peak_rss_mb).toBeGreaterThan(10);
      expect(Object.keys(p.infaas)).toEqual(["1", "2"]);
      expect(steps.at(-1)).toBe(steps.length);
      await writeProfile(variant, p);
      const reloaded = (await loadRepository(root)).tasks.get("digits")!.variants.get("small")!;
      expect(Profile.parse(reloaded.profile)).toEqual(p);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
