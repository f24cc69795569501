// `sloserve partition`: cut one variant's ONNX graph into k stages that each fit a per-instance memory and
// compute budget, with the fewest bytes crossing the cuts, and write them into the model repository as a
// chain pipeline the server serves across instances.
import fs from "node:fs/promises";
import { InvalidArgumentError, type Command } from "commander";
import { loadRepository } from "../repository/repository.js";
import { partitionModel, DEFAULT_SLACK } from "../partition/partition.js";
import { gmacs, mb, PartitionError, type Objective } from "../partition/plan.js";
import { randomFeeds } from "../partition/probe.js";
import { compareWithWhole, tensorsOf, type Equality } from "../partition/verify.js";
import { defaultPartitionName, partitionRecord, writePartition } from "../partition/write.js";
import { readModelGraph } from "../partition/graph.js";
import { profileSteps, profileVariant, writeProfile } from "../profiler/profiler.js";
import { progress } from "../terminal/progress.js";
import { fmt, printTable } from "../terminal/table.js";
import { DEFAULT_MODELS_DIR, prepareZoo } from "../bundled-zoo/prepare.js";

interface PartitionFlags {
  model: string;
  parts: number;
  maxMemoryMb?: number;
  maxGmacs?: number;
  objective: Objective;
  name?: string;
  models: string;
  force?: boolean;
  verify: boolean;
  profile?: boolean;
  json?: boolean;
}

const log = (msg: string) => process.stderr.write(`${msg}\n`);

const positive = (flag: string) => (v: string) => {
  const x = Number(v);
  if (!(x > 0) || !Number.isFinite(x)) throw new InvalidArgumentError(`${flag} must be a positive number, got '${v}'`);
  return x;
};

export function registerPartitionCommand(program: Command): void {
  program
    .command("partition")
    .description(
      "cut a variant's ONNX graph into k stages that fit a per-instance memory and compute budget (fewest bytes crossing the cuts) and write them as a pipeline",
    )
    .requiredOption("--model <task/variant>", "the variant to cut, e.g. vision/resnet50")
    .requiredOption("--parts <k>", "number of stages (2 or more)", (v) => {
      const k = Number(v);
      if (!Number.isInteger(k) || k < 2) throw new InvalidArgumentError(`--parts needs a whole number ≥ 2, got '${v}'`);
      return k;
    })
    .option(
      "--max-memory-mb <mb>",
      "memory budget per stage: its weights + activations at the variant's max_batch (default: none)",
      positive("--max-memory-mb"),
    )
    .option(
      "--max-gmacs <g>",
      `compute budget per stage, GMACs per row (default: ${DEFAULT_SLACK} × the most balanced cut's largest stage)`,
      positive("--max-gmacs"),
    )
    .option(
      "--objective <sum|max>",
      "sum: fewest bytes over all cuts; max: narrowest widest cut",
      (v) => {
        if (v !== "sum" && v !== "max") throw new InvalidArgumentError(`--objective takes sum or max, got '${v}'`);
        return v;
      },
      "sum",
    )
    .option("--name <name>", "pipeline name; stages are <name>-s1, <name>-s2, … (default: <task>-<variant>-p<k>)")
    .option("-m, --models <dir>", "model repository folder (read from and written to)", DEFAULT_MODELS_DIR)
    .option("--force", "replace existing folders of the same names")
    .option("--no-verify", "skip running the stages against the whole model before writing")
    .option("--profile", "profile every stage (sloserve profile's default grid) once written")
    .option("--json", "print the plan as one JSON object")
    .action(async (flags: PartitionFlags) => {
      try {
        await run(flags);
      } catch (err) {
        if (err instanceof PartitionError) throw new InvalidArgumentError(err.message);
        throw err;
      }
    });
}

async function run(f: PartitionFlags): Promise<void> {
  const m = /^([^/]+)\/([^/]+)$/.exec(f.model);
  if (!m) throw new InvalidArgumentError(`--model takes task/variant, e.g. vision/resnet50; got '${f.model}'`);
  const [, taskName, variantName] = m as unknown as [string, string, string];
  await prepareZoo(f.models, log);
  const repo = await loadRepository(f.models, { tasks: [taskName] });
  const task = repo.tasks.get(taskName);
  if (!task) throw new InvalidArgumentError(`'${taskName}' is a pipeline, not a task; partition one of its stages`);
  const variant = task.variants.get(variantName);
  if (!variant)
    throw new InvalidArgumentError(
      `task '${taskName}' has no variant '${variantName}' (it has: ${[...task.variants.keys()].join(", ")})`,
    );
  if (variant.config.subnets)
    throw new InvalidArgumentError(
      `${f.model} is a supernet (its subnets are chosen per batch by control inputs); partition one of its exported subnets instead`,
    );
  const name = f.name ?? defaultPartitionName(taskName, variantName, f.parts);
  const bytes = await fs.readFile(variant.modelPath);
  log(`partitioning ${f.model} (${(bytes.byteLength / 2 ** 20).toFixed(1)} MB) into ${f.parts} stages…`);
  const p = await partitionModel(bytes, {
    parts: f.parts,
    maxMemoryMb: f.maxMemoryMb,
    maxGmacs: f.maxGmacs,
    objective: f.objective,
    batch: variant.config.max_batch,
    metadata: { partition_source: f.model },
  });
  let verified: Equality | undefined;
  if (f.verify) {
    const inputs = tensorsOf(randomFeeds(readModelGraph(bytes), 2, 2024));
    verified = await compareWithWhole(
      bytes,
      p.stages.map((s) => s.bytes),
      inputs,
    );
    if (!verified.identical && !(verified.maxAbsDiff <= 1e-4 * Math.max(1, ...verified.outputs.map((o) => o.maxAbs))))
      throw new Error(
        `the stages do not compute what the whole model does (max |Δ| = ${verified.maxAbsDiff}); nothing was written — please report this model`,
      );
  }
  const written = await writePartition(p, { root: repo.root, name, task, variant, force: f.force, verified });
  // the loader checks every stage against its task.yaml and each stage's inputs against the one before
  const check = await loadRepository(repo.root, { tasks: [...written.stages, written.pipeline] });

  if (f.profile) {
    const variants = written.stages.map((s) => check.tasks.get(s)!.variants.get(written.variant)!);
    const bar = progress("profiling");
    const total = variants.reduce((n, v) => n + profileSteps(v), 0);
    let offset = 0;
    try {
      for (const v of variants) {
        await writeProfile(v, await profileVariant(v, { onStep: (d, _t, l) => bar.step(offset + d, total, l) }));
        offset += profileSteps(v);
      }
    } finally {
      bar.stop();
    }
  }

  if (f.json) {
    process.stdout.write(
      JSON.stringify(partitionRecord(p, { root: repo.root, name, task, variant, verified }, written.stages)) + "\n",
    );
    return;
  }
  const cutAfter = (i: number) => p.plan.cuts[i];
  printTable(
    ["stage", "nodes", "GMACs/row", "weights MB", "est. memory MB", "out: tensors crossing", "KB/row"],
    p.stages.map((s, i) => [
      written.stages[i]!,
      `${s.cost.from}-${s.cost.to - 1}`,
      gmacs(s.cost.macs),
      mb(s.cost.weightBytes),
      mb(s.cost.memoryBytes),
      cutAfter(i)
        ? cutAfter(i)!
            .tensors.map((t) => t.name)
            .join(", ")
        : "(pipeline outputs)",
      cutAfter(i) ? fmt(cutAfter(i)!.bytesPerRow / 1024) : "",
    ]),
  );
  const budget = p.plan.budgets;
  log(
    `\nobjective ${p.plan.objective}: ${fmt(p.plan.totalCrossBytes / 1024)} KB per row cross the cuts; budgets per stage: ` +
      `${budget.maxMacs !== undefined ? `${gmacs(budget.maxMacs)} GMACs/row` : "any compute"}, ` +
      `${budget.maxMemoryBytes !== undefined ? `${mb(budget.maxMemoryBytes)} MB` : "any memory"} (memory = weights + activations at batch ${budget.batch})`,
  );
  if (verified)
    log(
      `verified: the stages in a chain ${verified.identical ? "give exactly" : `are within ${verified.maxAbsDiff.toExponential(2)} of`} the whole model's outputs on ${verified.rows} seeded rows`,
    );
  log(`wrote pipeline '${written.pipeline}' (${written.stages.join(" -> ")}) into ${repo.root}`);
  if (!f.profile)
    log(
      `profile the stages before serving: ${written.stages.map((s) => `sloserve profile --task ${s}`).join("; ")} (serve profiles missing ones itself)`,
    );
}
