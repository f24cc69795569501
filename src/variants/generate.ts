// INFaaS' variant generator for sloserve: from one ONNX variant of a task, derive candidates by
// recipe (int8, graph-optimised, other input resolutions), profile each as it would be deployed
// (pinned worker processes, the profiler's batch × cores grid), measure its accuracy on the task's
// labelled set, keep those on the accuracy/latency Pareto front, and write each kept one as a
// variant of the task: model.onnx, variant.yaml (accuracy measured, `derived_from` recipe) and
// profile.json.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { profileVariant, type ProfileOptions } from "../profiler/profiler.js";
import { loadRepository, type Variant } from "../repository/repository.js";
import { readOnnxSignature } from "../repository/onnx-signature.js";
import { VariantConfig, type Profile } from "../repository/schema.js";
import { writeAtomic } from "../repository/write-atomic.js";
import { decodeModel } from "../engine/onnx-model.js";
import { applyRecipe, describeTransforms, parseTransforms, sha256, type Transform } from "./recipe.js";
import { cpuCostPerRun } from "./cost.js";
import { taskSupport, type MeasuredAccuracy } from "./tasks.js";

export const GENERATED_BY = "sloserve variants generate";

export interface Candidate {
  name: string;
  transforms: Transform[];
  bytes: Uint8Array;
  accuracy: MeasuredAccuracy;
  config: VariantConfig;
  modelPath: string;
  dir: string;
  /** Kept variants only: their profile, and its p50 wall ms at batch 1 on 1 core. */
  profile?: Profile;
  latencyMs?: number;
  /** Median CPU ms per inference (task's cost batch) on one thread: the cost the Pareto front is cut on. */
  cpuMs: number;
  kept: boolean;
  reason: string;
}

export interface GenerateOptions {
  modelsDir: string;
  task: string;
  /** Source variant (default: every variant of the task that was not itself generated). */
  from?: string[];
  /** Only these recipe names (default: all the task offers). */
  recipes?: string[];
  profile?: ProfileOptions;
  /** Images of the labelled set to measure on (default: the whole set). */
  evalImages?: number;
  dryRun?: boolean;
  log?: (msg: string) => void;
}

export interface GenerateResult {
  task: string;
  sources: { name: string; accuracy: number; latencyMs: number; cpuMs: number }[];
  candidates: Candidate[];
}

export const GENERATION_PROFILE: ProfileOptions = {
  batches: [1, 2, 4, 8],
  warmup: 2,
  minSamples: 5,
  budgetMs: 300,
  loadSamples: 2,
  resizeRounds: 1,
};

export function latencyAt(p: Profile, batch = 1, cores = 1): number {
  const pt = p.points.find((x) => x.batch === batch && x.cores === cores) ?? p.points[0]!;
  return pt.p50_ms;
}

/** Items not dominated by another: no other is at least as accurate and at least as cheap, and better in one. */
export function paretoFront<T extends { accuracy: number; cost: number }>(items: T[]): Set<T> {
  const front = new Set<T>();
  for (const a of items) if (!items.some((b) => dominates(b, a))) front.add(a);
  return front;
}

export function dominates(b: { accuracy: number; cost: number }, a: { accuracy: number; cost: number }): boolean {
  return b !== a && b.accuracy >= a.accuracy && b.cost <= a.cost && (b.accuracy > a.accuracy || b.cost < a.cost);
}

export function variantYaml(
  name: string,
  source: Variant,
  transforms: Transform[],
  accuracy: MeasuredAccuracy,
  sourceSha: string,
  sha: string,
): string {
  const doc = {
    name,
    description: `${source.name}, ${describeTransforms(transforms)} (generated)`,
    ...(source.config.architecture ? { architecture: source.config.architecture } : {}),
    max_batch: source.config.max_batch,
    accuracy: { source: "measured", ...accuracy },
    derived_from: {
      variant: source.name,
      transforms,
      source_sha256: sourceSha,
      sha256: sha,
      generated_by: GENERATED_BY,
    },
  };
  const text = YAML.stringify(doc, { lineWidth: 0 });
  VariantConfig.parse(YAML.parse(text)); // what is written must load
  return text;
}

async function writeVariant(dir: string, bytes: Uint8Array, yaml: string, profile: Profile): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeAtomic(path.join(dir, "model.onnx"), bytes);
  await writeAtomic(path.join(dir, "variant.yaml"), yaml);
  await writeAtomic(path.join(dir, "profile.json"), JSON.stringify(profile, null, 2) + "\n");
}

export async function generateVariants(opts: GenerateOptions): Promise<GenerateResult> {
  const log = opts.log ?? (() => {});
  const support = taskSupport(opts.task);
  const repo = await loadRepository(opts.modelsDir, { tasks: [opts.task] });
  const task = repo.tasks.get(opts.task)!;
  const all = [...task.variants.values()];
  const sources = opts.from
    ? opts.from.map((n) => {
        const v = task.variants.get(n);
        if (!v)
          throw new Error(`task '${opts.task}' has no variant '${n}' (it has: ${all.map((x) => x.name).join(", ")})`);
        if (v.config.derived_from)
          throw new Error(`'${n}' is itself generated (from '${v.config.derived_from.variant}'); generate from that`);
        return v;
      })
    : all.filter((v) => !v.config.derived_from);
  const recipes = support.recipes();
  const recipeNames = opts.recipes ?? Object.keys(recipes);
  for (const r of recipeNames)
    if (!recipes[r])
      throw new Error(
        `task '${opts.task}' has no recipe '${r}' (it has: ${Object.keys(recipes).join(", ") || "none"})`,
      );
  if (recipeNames.length === 0) throw new Error(`task '${opts.task}' has no variant recipes`);
  const scratch = await mkdtemp(path.join(os.tmpdir(), `sloserve-variants-${opts.task}-`));
  const result: GenerateResult = { task: opts.task, sources: [], candidates: [] };
  let calibration: Awaited<ReturnType<typeof support.calibration>> | undefined;
  const calibrate = async () => (calibration ??= await support.calibration());
  const profileOpts = { ...GENERATION_PROFILE, ...opts.profile };

  try {
    for (const source of sources) await generateFrom(source);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return result;

  async function generateFrom(source: Variant): Promise<void> {
    const sourceBytes = new Uint8Array(await readFile(source.modelPath));
    decodeModel(sourceBytes, `${opts.task}/${source.name}/model.onnx`);
    const sourceSha = sha256(sourceBytes);
    log(`${opts.task}/${source.name}: measuring the source`);
    const sourceAccuracy = await support.measure(sourceBytes, { images: opts.evalImages });
    const sourceProfile = source.profile ?? (await profileVariant(source, profileOpts));
    const sourceLatency = latencyAt(sourceProfile);
    const sourceCpu = (await cpuCostPerRun(sourceBytes, support.costBatch)).cpuMs;
    result.sources.push({
      name: source.name,
      accuracy: sourceAccuracy.value,
      latencyMs: sourceLatency,
      cpuMs: sourceCpu,
    });
    const mine: Candidate[] = [];
    for (const recipe of recipeNames) {
      const name = `${source.name}-${recipe}`;
      const transforms = recipes[recipe]!;
      log(`${opts.task}/${name}: ${describeTransforms(transforms)}`);
      const bytes = await applyRecipe(sourceBytes, transforms, calibrate);
      readOnnxSignature(bytes);
      const dir = path.join(scratch, name);
      await mkdir(dir, { recursive: true });
      const modelPath = path.join(dir, "model.onnx");
      await writeAtomic(modelPath, bytes);
      const accuracy = await support.measure(bytes, { images: opts.evalImages });
      const config = VariantConfig.parse({
        name,
        max_batch: source.config.max_batch,
        accuracy: { source: "measured", ...accuracy },
      });
      const cpuMs = (await cpuCostPerRun(bytes, support.costBatch)).cpuMs;
      log(`${opts.task}/${name}: ${support.metric} ${accuracy.value}, ${cpuMs.toFixed(1)} CPU ms per inference`);
      mine.push({ name, transforms, bytes, accuracy, config, modelPath, dir, cpuMs, kept: false, reason: "" });
    }
    const points = [
      { name: source.name, accuracy: sourceAccuracy.value, cost: sourceCpu, candidate: undefined },
      ...mine.map((c) => ({ name: c.name, accuracy: c.accuracy.value, cost: c.cpuMs, candidate: c })),
    ];
    const front = paretoFront(points);
    const [sourcePoint] = points;
    for (const p of points) {
      if (!p.candidate) continue;
      // a candidate no better than its source in either respect adds nothing to serve
      const same = p.accuracy === sourcePoint!.accuracy && p.cost >= sourcePoint!.cost;
      p.candidate.kept = front.has(p) && !same;
      if (same) {
        p.candidate.reason = `no better than ${source.name}`;
        continue;
      }
      const by = points.find((q) => dominates(q, p) && front.has(q));
      p.candidate.reason = p.candidate.kept ? "on the Pareto front" : `dominated by ${by?.name ?? "another variant"}`;
    }
    // only what is kept is profiled: profile.json is for variants the server will serve
    for (const c of mine) {
      if (!c.kept || opts.dryRun) continue;
      log(`${opts.task}/${c.name}: profiling`);
      const variant: Variant = {
        name: c.name,
        task: opts.task,
        dir: c.dir,
        modelPath: c.modelPath,
        config: c.config,
        signature: readOnnxSignature(c.bytes),
        modelBytes: c.bytes.byteLength,
      };
      c.profile = await profileVariant(variant, profileOpts);
      c.latencyMs = latencyAt(c.profile);
    }
    result.candidates.push(...mine);
    if (opts.dryRun) return;
    // a regeneration replaces what an earlier run of the same recipes generated from this source
    for (const v of all)
      if (
        v.config.derived_from?.variant === source.name &&
        mine.some((c) => c.name === v.name) &&
        !mine.some((c) => c.kept && c.name === v.name)
      )
        await rm(v.dir, { recursive: true, force: true });
    for (const c of mine) {
      if (!c.kept) continue;
      const dir = path.join(task.dir, c.name);
      const yaml = variantYaml(c.name, source, c.transforms, c.accuracy, sourceSha, sha256(c.bytes));
      await writeVariant(dir, c.bytes, yaml, { ...c.profile!, task: opts.task, variant: c.name });
      log(`${opts.task}/${c.name}: written`);
    }
  }
}

/**
 * Builds the model.onnx of every generated variant whose file is missing, from its source by its
 * recipe, and says when the result differs from the recorded hash (another onnxruntime or CPU can
 * round calibration differently; the recorded accuracy was measured on the recorded bytes).
 */
export async function ensureGeneratedVariants(
  modelsDir: string,
  tasks: string[],
  log?: (msg: string) => void,
): Promise<{ built: string[]; mismatched: string[] }> {
  const out = { built: [] as string[], mismatched: [] as string[] };
  for (const task of tasks) {
    const taskDir = path.join(modelsDir, task);
    if (!existsSync(taskDir)) continue;
    for (const entry of await readdir(taskDir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = path.join(taskDir, entry.name);
      const yamlPath = path.join(dir, "variant.yaml");
      if (!existsSync(yamlPath) || existsSync(path.join(dir, "model.onnx"))) continue;
      const config = VariantConfig.parse(YAML.parse(await readFile(yamlPath, "utf8")));
      const d = config.derived_from;
      if (!d) continue;
      const sourcePath = path.join(taskDir, d.variant, "model.onnx");
      const sourceBytes = new Uint8Array(await readFile(sourcePath));
      if (sha256(sourceBytes) !== d.source_sha256)
        throw new Error(
          `${task}/${entry.name}: its source ${task}/${d.variant}/model.onnx is not the one it was generated from (sha256 differs); regenerate with 'sloserve variants generate --task ${task}'`,
        );
      log?.(`${task}: building generated variant ${entry.name} (${describeTransforms(parseTransforms(d.transforms))})`);
      const support = taskSupport(task);
      const bytes = await applyRecipe(sourceBytes, parseTransforms(d.transforms), () => support.calibration());
      await writeAtomic(path.join(dir, "model.onnx"), bytes);
      out.built.push(`${task}/${entry.name}`);
      if (sha256(bytes) !== d.sha256) {
        out.mismatched.push(`${task}/${entry.name}`);
        log?.(
          `${task}/${entry.name}: rebuilt model differs from the recorded one (sha256); its recorded accuracy and profile may be slightly off here — regenerate to re-measure`,
        );
      }
    }
  }
  return out;
}
