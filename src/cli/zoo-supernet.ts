// `sloserve zoo supernet` (npm run zoo:supernet): the zoo's two supernets, from nothing to served —
// trains/builds them, cuts each to its Pareto subnets, profiles every subnet, prints the table.
import path from "node:path";
import { profileSteps, profileVariant, writeProfile, type ProfileOptions } from "../profiler/profiler.js";
import { loadRepository } from "../repository/repository.js";
import { DIGITS_SUPERNET_TASK } from "../zoo/supernet/digits-arch.js";
import { VISION_SUPERNET_TASK } from "../zoo/supernet/vision-arch.js";
import { ensureVisionSupernet, recutVisionSupernet } from "../zoo/supernet/vision-zoo.js";
import { progress } from "./progress.js";
import { fmt, printTable } from "./table.js";

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
    const { buildDigitsSupernetZoo } = await import("../zoo/supernet/digits-zoo.js");
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
