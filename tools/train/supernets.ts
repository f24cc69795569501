// npm run zoo:supernet [-- --only digits|vision] [--no-profile]: the zoo's two supernets, from nothing to served —
// trains/builds them, cuts each to its Pareto subnets, profiles every subnet, prints the table.
import path from "node:path";
import { Command } from "commander";
import { DEFAULT_MODELS_DIR } from "../../src/bundled-zoo/prepare.js";
import { profileSteps, profileVariant, writeProfile, type ProfileOptions } from "../../src/profiler/profiler.js";
import { loadRepository } from "../../src/repository/repository.js";
import { DIGITS_SUPERNET_TASK } from "../../src/zoo/supernet/digits-arch.js";
import { VISION_SUPERNET_TASK } from "../../src/zoo/supernet/vision-arch.js";
import { ensureVisionSupernet, recutVisionSupernet } from "../../src/zoo/supernet/vision-zoo.js";
import { progress } from "../../src/terminal/progress.js";
import { fmt, printTable } from "../../src/terminal/table.js";

/** The vision supernet's subnets cost up to ResNet-50 each: a shorter grid keeps profiling to minutes. */
const PROFILE_SETTINGS: Record<string, ProfileOptions> = {
  [DIGITS_SUPERNET_TASK]: { budgetMs: 400 },
  [VISION_SUPERNET_TASK]: { batches: [1, 2, 4, 8], budgetMs: 300, minSamples: 3, loadSamples: 2, resizeRounds: 1 },
};

export async function buildSupernetZoo(opts: {
  modelsDir: string;
  only?: "digits" | "vision";
  profile: boolean;
  log: (m: string) => void;
}): Promise<void> {
  const t0 = performance.now();
  const tasks: string[] = [];
  if (opts.only !== "vision") {
    const { buildDigitsSupernetZoo } = await import("./digits-supernet-zoo.js");
    const r = await buildDigitsSupernetZoo({ modelsDir: opts.modelsDir, onProgress: opts.log });
    printTable(
      ["candidate", "accuracy", "correct", "batch-8 ms (1 thread)", "served"],
      r.candidates.map((c) => [
        c.name,
        `${(c.accuracy * 100).toFixed(2)}%`,
        `${c.correct}/${c.total}`,
        fmt(c.latencyMs),
        c.served ? "yes" : "",
      ]),
    );
    opts.log(`digits supernet: trained in ${r.trainSeconds.toFixed(0)} s`);
    tasks.push(DIGITS_SUPERNET_TASK);
  }
  if (opts.only !== "digits") {
    await ensureVisionSupernet(opts.modelsDir, opts.log);
    const r = await recutVisionSupernet(opts.modelsDir, opts.log);
    opts.log(
      `vision supernet: serving ${r.served.length} of ${r.latencyMs.length} candidates (batch-1 ms: ${r.latencyMs.map((l) => l.toFixed(1)).join(", ")})`,
    );
    tasks.push(VISION_SUPERNET_TASK);
  }
  if (opts.profile) {
    const repo = await loadRepository(path.resolve(opts.modelsDir), { tasks });
    for (const task of tasks) {
      for (const v of repo.tasks.get(task)!.variants.values()) {
        const settings = PROFILE_SETTINGS[task] ?? {};
        const bar = progress(`profiling ${task}/${v.name}`);
        try {
          const total = profileSteps(v, settings);
          const p = await profileVariant(v, { ...settings, onStep: (d, _t, label) => bar.step(d, total, label) });
          await writeProfile(v, p);
          const rows = (v.config.subnets ?? []).map((s) => {
            const b1 = p.subnets?.[s.name]?.points.find((pt) => pt.batch === 1 && pt.cores === 1);
            return [
              s.name,
              JSON.stringify(s.controls),
              `${(s.accuracy.value * 100).toFixed(2)}% (${s.accuracy.source})`,
              b1 ? fmt(b1.p50_ms) : "-",
            ];
          });
          bar.stop();
          printTable(["subnet", "controls", "accuracy", "batch-1 p50 ms (1 core)"], rows);
        } finally {
          bar.stop();
        }
      }
    }
  }
  opts.log(`zoo supernet: done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

const program = new Command()
  .name("zoo:supernet")
  .option("-m, --models <dir>", "model repository folder", DEFAULT_MODELS_DIR)
  .option("--only <which>", "digits or vision")
  .option("--no-profile", "skip profiling the subnets")
  .parse();
const opts = program.opts<{ models: string; only?: string; profile: boolean }>();
if (opts.only && opts.only !== "digits" && opts.only !== "vision") {
  process.stderr.write(`--only takes digits or vision, got '${opts.only}'\n`);
  process.exit(2);
}
await buildSupernetZoo({
  modelsDir: opts.models,
  only: opts.only as "digits" | "vision" | undefined,
  profile: opts.profile,
  log: (m) => process.stderr.write(`${m}\n`),
});
