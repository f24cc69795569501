// The `sloserve` command line.
import { Command, InvalidArgumentError } from "commander";
import { loadRepository, RepositoryError, type Variant } from "../repository/repository.js";
import { profileSteps, profileVariant, writeProfile } from "../profiler/profiler.js";
import { progress } from "./progress.js";
import { fmt, printTable } from "./table.js";
import { DEFAULT_MODELS_DIR as DEFAULT_MODELS, prepareZoo } from "./zoo-setup.js";


const log = (msg: string) => process.stderr.write(`${msg}\n`);

export function intList(value: string): number[] {
  const out = value.split(",").map((s) => Number(s.trim()));
  if (out.some((n) => !Number.isInteger(n) || n < 1)) throw new InvalidArgumentError(`'${value}' is not a comma-separated list of positive integers, e.g. 1,2,4`);
  return out;
}

const program = new Command()
  .name("sloserve")
  .description("SLO-aware, model-less inference server: meets each request's latency objective and accuracy floor with the fewest CPU cores.")
  .version("0.1.0")
  .showHelpAfterError("(run with --help for usage)");

program
  .command("serve")
  .description("serve the model repository (builds the vision zoo on first start)")
  .option("-m, --models <dir>", "model repository folder", DEFAULT_MODELS)
  .action(async (opts: { models: string }) => {
    await prepareZoo(opts.models, log);
    const repo = await loadRepository(opts.models);
    for (const task of repo.tasks.values()) {
      const variants = [...task.variants.values()];
      log(`task ${task.name}: ${variants.map((v) => `${v.name} (acc ${v.config.accuracy.value} ${v.config.accuracy.source}${v.profile ? "" : ", not profiled"})`).join(", ")}`);
    }
    log("repository loaded and checked. The serving path is not built yet: run 'sloserve profile' to measure the zoo.");
  });

program
  .command("profile")
  .description("measure variants in pinned worker processes over a (batch, cores) grid and write profile.json")
  .option("-m, --models <dir>", "model repository folder", DEFAULT_MODELS)
  .option("-t, --task <name>", "only this task")
  .option("-v, --variant <name>", "only this variant (with --task)")
  .option("--batches <list>", "batch sizes, e.g. 1,2,4,8 (default: powers of two up to the variant's max_batch, at most 64)", intList)
  .option("--cores <list>", "core counts (default: 1,2,4,6,8 up to the cores present)", intList)
  .option("--budget-ms <ms>", "time spent per grid point", (v) => Number(v), 600)
  .option("--missing", "profile only variants that have no profile.json yet")
  .option("--dry-run", "measure and print, but do not write profile.json")
  .action(async (opts: { models: string; task?: string; variant?: string; batches?: number[]; cores?: number[]; budgetMs: number; missing?: boolean; dryRun?: boolean }) => {
    if (opts.variant && !opts.task) throw new InvalidArgumentError("--variant needs --task");
    await prepareZoo(opts.models, log);
    const repo = await loadRepository(opts.models, { tasks: opts.task ? [opts.task] : undefined });
    const variants: Variant[] = [];
    for (const task of repo.tasks.values()) {
      for (const v of task.variants.values()) if ((!opts.variant || v.name === opts.variant) && (!opts.missing || !v.profile)) variants.push(v);
    }
    if (opts.variant && variants.length === 0) throw new InvalidArgumentError(`task '${opts.task}' has no variant '${opts.variant}'`);
    const settings = { batches: opts.batches, cores: opts.cores, budgetMs: opts.budgetMs };
    const total = variants.reduce((n, v) => n + profileSteps(v, settings), 0);
    const bar = progress("profiling");
    let offset = 0;
    const rows: string[][] = [];
    try {
      for (const v of variants) {
        const p = await profileVariant(v, { ...settings, onStep: (done, _t, label) => bar.step(offset + done, total, label) });
        offset += profileSteps(v, settings);
        if (!opts.dryRun) await writeProfile(v, p);
        rows.push([`${v.task}/${v.name}`, fmt(p.fit.p50.median_rel_error * 100) + "%", fmt(p.fit.p50.max_rel_error * 100) + "%", fmt(p.load_ms.p50), fmt(p.resize_ms.p50), fmt(p.peak_rss_mb)]);
      }
    } finally {
      bar.stop();
    }
    printTable(["variant", "fit median err", "fit max err", "cold start ms", "resize ms", "peak RSS MB"], rows);
    if (opts.dryRun) log("(dry run: no profile.json written)");
  });

const zoo = program.command("zoo").description("build the bundled model zoo");
zoo
  .command("train")
  .description("train the digits variants on the MNIST digits of the mnist package and export them to ONNX (needs devDependencies)")
  .option("-m, --models <dir>", "model repository folder", DEFAULT_MODELS)
  .option("--only <names>", "comma-separated variant names")
  .action(async (opts: { models: string; only?: string }) => {
    const { trainDigitsZoo } = await import("../zoo/digits-train.js");
    await trainDigitsZoo({ modelsDir: opts.models, only: opts.only?.split(","), onProgress: log });
  });
zoo
  .command("vision")
  .description("build the vision models (ResNet-18/34/50, MobileNetV2, seeded weights) if missing")
  .option("-m, --models <dir>", "model repository folder", DEFAULT_MODELS)
  .action(async (opts: { models: string }) => prepareZoo(opts.models, log));

program
  .command("validate")
  .description("check a model repository and list every problem with what to fix")
  .option("-m, --models <dir>", "model repository folder", DEFAULT_MODELS)
  .action(async (opts: { models: string }) => {
    const repo = await loadRepository(opts.models);
    for (const t of repo.tasks.values()) log(`ok: ${t.name} (${[...t.variants.keys()].join(", ")})`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof RepositoryError) log(err.message);
  else log(`error: ${(err as Error).message}`);
  process.exitCode = 1;
});
