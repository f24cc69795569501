// `sloserve variants generate`, as a user runs it, and the generator end to end on a small repository.
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { loadRepository } from "../../src/repository/repository.js";
import { ensureGeneratedVariants, generateVariants } from "../../src/variants/generate.js";
import { sha256 } from "../../src/variants/recipe.js";
import { taskSupport } from "../../src/variants/tasks.js";

const run = (args: string[]) =>
  promisify(execFile)(process.execPath, ["bin/sloserve.js", "variants", ...args], { timeout: 120_000 });

async function failure(args: string[]): Promise<string> {
  try {
    await run(args);
  } catch (err) {
    const e = err as { code: number; stderr: string };
    expect(e.code).toBe(1);
    return e.stderr;
  }
  throw new Error(`'sloserve variants ${args.join(" ")}' succeeded`);
}

/** A repository holding only the digits task with the `linear` and `cnn-small` variants. */
async function digitsRepo(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "sloserve-variants-test-"));
  await cp(path.resolve("models/digits/task.yaml"), path.join(dir, "digits/task.yaml"));
  for (const v of ["linear", "cnn-small"])
    await cp(path.resolve("models/digits", v), path.join(dir, "digits", v), { recursive: true });
  return dir;
}

describe("sloserve variants generate", () => {
  it("refuses a task it cannot measure, an unknown source and a corrupt model, with a message", async () => {
    expect(await failure(["generate", "--task", "vision"])).toMatch(
      /no accuracy measurement is known for task 'vision'/,
    );
    expect(await failure(["generate", "--task", "digits", "--from", "nope"])).toMatch(/has no variant 'nope'/);
    expect(await failure(["generate", "--task", "digits", "--recipes", "fp4"])).toMatch(/no recipe 'fp4'/);
    const dir = await digitsRepo();
    try {
      await writeFile(path.join(dir, "digits/linear/model.onnx"), "not onnx");
      expect(await failure(["generate", "--task", "digits", "--models", dir])).toMatch(
        /digits\/linear\/model.onnx: cannot be read as ONNX/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("generates, measures, profiles and writes the Pareto front, and rebuilds a variant from its recipe", async () => {
    const dir = await digitsRepo();
    try {
      const result = await generateVariants({
        modelsDir: dir,
        task: "digits",
        from: ["cnn-small"],
        recipes: ["int8", "opt"],
        profile: { batches: [1, 2], cores: [1, 2], budgetMs: 50, minSamples: 3, loadSamples: 1, resizeRounds: 1 },
      });
      expect(result.candidates.map((c) => c.name).sort()).toEqual(["cnn-small-int8", "cnn-small-opt"]);
      const kept = result.candidates.filter((c) => c.kept);
      expect(kept.length).toBeGreaterThan(0);
      const repo = await loadRepository(dir, { tasks: ["digits"] });
      for (const c of result.candidates) {
        const v = repo.tasks.get("digits")!.variants.get(c.name);
        expect(Boolean(v), c.name).toBe(c.kept);
        if (!v) continue;
        expect(v.profile).toBeDefined();
        expect(v.config.derived_from!.variant).toBe("cnn-small");
        const measured = await taskSupport("digits").measure(new Uint8Array(await readFile(v.modelPath)));
        expect(measured.correct).toBe(v.config.accuracy.correct);
      }
      // the recipe alone rebuilds the same bytes (calibration is seeded)
      const first = kept[0]!;
      const yaml = YAML.parse(await readFile(path.join(dir, "digits", first.name, "variant.yaml"), "utf8"));
      await rm(path.join(dir, "digits", first.name, "model.onnx"));
      const rebuilt = await ensureGeneratedVariants(dir, ["digits"]);
      expect(rebuilt.built).toEqual([`digits/${first.name}`]);
      expect(sha256(new Uint8Array(await readFile(path.join(dir, "digits", first.name, "model.onnx"))))).toBe(
        yaml.derived_from.sha256,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
