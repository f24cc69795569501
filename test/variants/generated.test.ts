import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadRepository } from "../../src/repository/repository.js";
import { findCombination, readE2eRecord } from "../../src/ocr/e2e-record.js";
import { sha256 } from "../../src/variants/recipe.js";
import { taskSupport } from "../../src/variants/tasks.js";

const MODELS = path.resolve("models");

describe("generated variants in the repository", () => {
  it("each measures the accuracy its variant.yaml records (ocr-det, ocr-rec)", async () => {
    const repo = await loadRepository(MODELS, { tasks: ["ocr-det", "ocr-rec"] });
    let checked = 0;
    for (const task of repo.tasks.values()) {
      for (const v of task.variants.values()) {
        const d = v.config.derived_from;
        if (!d) continue;
        expect(task.variants.has(d.variant), `${v.name}'s source`).toBe(true);
        expect(v.profile, `${task.name}/${v.name} profile.json`).toBeDefined();
        const bytes = new Uint8Array(readFileSync(v.modelPath));
        const measured = await taskSupport(task.name).measure(bytes);
        expect({ correct: measured.correct, total: measured.total }, `${task.name}/${v.name}`).toEqual({
          correct: v.config.accuracy.correct,
          total: v.config.accuracy.total,
        });
        expect(measured.value).toBe(v.config.accuracy.value);
        if (sha256(bytes) !== d.sha256)
          console.warn(`${task.name}/${v.name}: rebuilt bytes differ from the recorded hash`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(3);
  }, 300_000);

  it("digits has generated int8 variants (their accuracy is re-measured by test/zoo/digits.test.ts)", async () => {
    const repo = await loadRepository(MODELS, { tasks: ["digits"] });
    const generated = [...repo.tasks.get("digits")!.variants.values()].filter((v) => v.config.derived_from);
    expect(generated.some((v) => v.config.derived_from!.transforms.some((t) => t.kind === "int8"))).toBe(true);
    for (const v of generated)
      expect(sha256(new Uint8Array(readFileSync(v.modelPath))), v.name).toBe(v.config.derived_from!.sha256);
  });

  it("the ocr end-to-end record covers every combination of stage variants, skipping the classifier too", async () => {
    const repo = await loadRepository(MODELS, { tasks: ["ocr-det", "ocr-cls", "ocr-rec"] });
    const record = (await readE2eRecord(MODELS))!;
    for (const det of repo.tasks.get("ocr-det")!.variants.keys())
      for (const cls of [...repo.tasks.get("ocr-cls")!.variants.keys(), "skip"])
        for (const rec of repo.tasks.get("ocr-rec")!.variants.keys())
          expect(findCombination(record, { det, cls, rec }), `${det} + ${cls} + ${rec}`).toBeDefined();
    for (const det of repo.tasks.get("ocr-det")!.variants.keys())
      expect(record.fan_out?.["ocr-det"]?.[det]?.length, `boxes per image of ${det}`).toBeGreaterThan(0);
  });
});
