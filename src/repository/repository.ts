// Loads a model repository from disk and checks it whole: every problem (missing file, bad YAML,
// schema error, corrupt ONNX, signature mismatch, unsafe name) is collected and reported at once,
// each with its path and what to do about it.
import fs from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import type { z } from "zod";
import { nameProblem, resolveInside } from "./safe-path.js";
import { readOnnxSignature, type OnnxSignature, type SignatureTensor } from "./onnx-signature.js";
import { graphOf, graphProblems, sinks, type PipelineGraph } from "../autoscaler/planner/pipeline-graph.js";
import {
  CONTROL_INPUT_PATTERN,
  PipelineConfig,
  PipelineRecord,
  SKIPPED,
  Profile,
  TaskConfig,
  VariantConfig,
  type SubnetDecl,
  type TensorDecl,
} from "./schema.js";

export interface Variant {
  name: string;
  task: string;
  dir: string;
  modelPath: string;
  config: VariantConfig;
  signature: OnnxSignature;
  modelBytes: number;
  profile?: Profile;
}

export interface Task {
  name: string;
  dir: string;
  config: TaskConfig;
  variants: Map<string, Variant>;
}

export interface Pipeline {
  name: string;
  dir: string;
  config: PipelineConfig;
  /** The stage graph of `config.stages`. */
  graph: PipelineGraph;
  /** accuracy.yaml: measured end-to-end accuracy per combination of stage variants, and fan-out. */
  record?: PipelineRecord;
}

/** The measured record of a pipeline, beside its pipeline.yaml. */
export const PIPELINE_RECORD_FILE = "accuracy.yaml";

export interface Repository {
  root: string;
  tasks: Map<string, Task>;
  pipelines: Map<string, Pipeline>;
}

export interface Problem {
  path: string;
  message: string;
}

export class RepositoryError extends Error {
  constructor(readonly problems: Problem[]) {
    super(
      `model repository has ${problems.length} problem${problems.length === 1 ? "" : "s"}:\n` +
        problems.map((p) => `  - ${p.path}: ${p.message}`).join("\n"),
    );
    this.name = "RepositoryError";
  }
}

export interface LoadOptions {
  /** Load only these tasks (default: all). */
  tasks?: string[];
  /**
   * The caller reads configurations and profiles only (the simulator): a variant whose model.onnx is
   * missing loads with an empty signature instead of being a problem (a present one is still checked).
   */
  profilesOnly?: boolean;
}

/** The signature of a variant loaded without its model (LoadOptions.profilesOnly). */
const NO_SIGNATURE: OnnxSignature = { inputs: [], outputs: [], opsets: {}, initializerBytes: 0 };

export async function loadRepository(root: string, options: LoadOptions = {}): Promise<Repository> {
  const problems: Problem[] = [];
  const realRoot = await realDir(root);
  const tasks = new Map<string, Task>();
  const entries = await fs.readdir(realRoot, { withFileTypes: true });
  const wanted = options.tasks ? new Set(options.tasks) : null;
  for (const name of options.tasks ?? []) {
    const problem = nameProblem(name);
    if (problem) problems.push({ path: name, message: problem });
    else if (!entries.some((e) => e.name === name))
      problems.push({ path: name, message: `no task folder '${name}' in ${realRoot}` });
  }
  const pipelines = new Map<string, Pipeline>();
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith(".") || !(entry.isDirectory() || entry.isSymbolicLink())) continue;
    if (wanted && !wanted.has(entry.name)) continue;
    if (!nameProblem(entry.name) && (await exists(path.join(realRoot, entry.name, "pipeline.yaml")))) {
      const config = await readYaml(realRoot, path.join(entry.name, "pipeline.yaml"), PipelineConfig, problems);
      const recordPath = path.join(entry.name, PIPELINE_RECORD_FILE);
      const record = (await exists(path.join(realRoot, recordPath)))
        ? await readYaml(realRoot, recordPath, PipelineRecord, problems)
        : undefined;
      if (config)
        pipelines.set(entry.name, {
          name: entry.name,
          dir: path.join(realRoot, entry.name),
          config,
          graph: graphOf(config.stages),
          ...(record ? { record } : {}),
        });
      continue;
    }
    const task = await loadTask(realRoot, entry.name, problems, options.profilesOnly ?? false);
    if (task) tasks.set(task.name, task);
  }
  for (const p of pipelines.values()) checkPipeline(p, tasks, problems, !wanted);
  if (problems.length > 0) throw new RepositoryError(problems);
  if (tasks.size === 0)
    throw new RepositoryError([
      {
        path: realRoot,
        message: "no tasks found: add <task>/task.yaml and <task>/<variant>/{model.onnx,variant.yaml}",
      },
    ]);
  return { root: realRoot, tasks, pipelines };
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

/**
 * The graph must be acyclic with every stage in the repository; without glue, every input of a stage must
 * come, by name, type and shape, from exactly one of the stages it waits for; the record must name stages
 * and variants of this pipeline.
 */
function checkPipeline(p: Pipeline, tasks: Map<string, Task>, problems: Problem[], allLoaded: boolean): void {
  const rel = path.join(p.name, "pipeline.yaml");
  if (p.config.name !== p.name)
    problems.push({
      path: rel,
      message: `name '${p.config.name}' differs from its folder '${p.name}'; make them equal`,
    });
  if (tasks.has(p.name))
    problems.push({ path: rel, message: `a task is also called '${p.name}'; rename the pipeline` });
  const graphIssues = graphProblems(p.graph);
  for (const message of graphIssues) problems.push({ path: rel, message });
  p.graph.stages.forEach((s, i) => {
    if (!tasks.get(s.task) && allLoaded)
      problems.push({ path: rel, message: `stage ${i + 1} names task '${s.task}', which is not in the repository` });
  });
  if (graphIssues.length > 0) return;
  if (p.config.glue === undefined) checkTensorFlow(p, tasks, rel, problems);
  if (p.record) checkRecord(p, tasks, path.join(p.name, PIPELINE_RECORD_FILE), problems);
}

function checkTensorFlow(p: Pipeline, tasks: Map<string, Task>, rel: string, problems: Problem[]): void {
  for (const s of p.graph.stages) {
    const to = tasks.get(s.task);
    if (!to || s.after.length === 0) continue;
    const from = s.after.map((a) => tasks.get(a));
    if (from.some((f) => !f)) continue;
    for (const input of to.config.inputs) {
      const makers = from.filter((f) => f!.config.outputs.some((o) => o.name === input.name));
      if (makers.length === 0) {
        problems.push({
          path: rel,
          message: `stage '${to.name}' needs input '${input.name}', which ${from.length === 1 ? `stage '${from[0]!.name}' does not produce (it produces: ${from[0]!.config.outputs.map((o) => o.name).join(", ")})` : `none of the stages it waits for (${s.after.join(", ")}) produces`}`,
        });
        continue;
      }
      if (makers.length > 1) {
        problems.push({
          path: rel,
          message: `stage '${to.name}' gets input '${input.name}' from several stages (${makers.map((m) => m!.name).join(", ")}); rename one output or give the pipeline glue`,
        });
        continue;
      }
      const out = makers[0]!.config.outputs.find((o) => o.name === input.name)!;
      if (out.datatype !== input.datatype || out.shape.join(",") !== input.shape.join(",")) {
        problems.push({
          path: rel,
          message: `'${input.name}' leaves '${makers[0]!.name}' as ${out.datatype}[${out.shape}] but '${to.name}' takes ${input.datatype}[${input.shape}]`,
        });
      }
    }
    if (s.optional)
      problems.push({
        path: rel,
        message: `stage '${s.task}' is optional, but without glue a skipped stage leaves the stages after it without their inputs; make it required or give the pipeline glue`,
      });
  }
  const outs = new Map<string, string>();
  for (const s of sinks(p.graph)) {
    for (const o of tasks.get(s.task)?.config.outputs ?? []) {
      const other = outs.get(o.name);
      if (other)
        problems.push({
          path: rel,
          message: `the last stages '${other}' and '${s.task}' both answer with output '${o.name}'; a pipeline's outputs need distinct names`,
        });
      outs.set(o.name, s.task);
    }
  }
}

function checkRecord(p: Pipeline, tasks: Map<string, Task>, rel: string, problems: Problem[]): void {
  const r = p.record!;
  const stages = new Map(p.graph.stages.map((s) => [s.task, s]));
  r.combinations.forEach((c, i) => {
    for (const [task, variant] of Object.entries(c.stages)) {
      const s = stages.get(task);
      if (!s) {
        problems.push({
          path: rel,
          message: `combination ${i + 1} names '${task}', which is not a stage of '${p.name}'`,
        });
        continue;
      }
      if (variant === SKIPPED && !s.optional)
        problems.push({ path: rel, message: `combination ${i + 1} skips '${task}', which is not optional` });
    }
    for (const s of p.graph.stages)
      if (!(s.task in c.stages))
        problems.push({
          path: rel,
          message: `combination ${i + 1} does not say which variant of '${s.task}' it measured (or '${SKIPPED}')`,
        });
  });
  for (const task of Object.keys(r.fan_out ?? {}))
    if (!stages.has(task) || !tasks.has(task))
      problems.push({ path: rel, message: `fan_out names '${task}', which is not a stage of '${p.name}'` });
}

async function realDir(root: string): Promise<string> {
  let real: string;
  try {
    real = await fs.realpath(root);
  } catch {
    throw new RepositoryError([{ path: root, message: "repository folder does not exist; pass --models <folder>" }]);
  }
  if (!(await fs.stat(real)).isDirectory()) throw new RepositoryError([{ path: root, message: "not a folder" }]);
  return real;
}

async function loadTask(root: string, name: string, problems: Problem[], profilesOnly: boolean): Promise<Task | null> {
  const rel = name;
  const problem = nameProblem(name);
  if (problem) {
    problems.push({ path: rel, message: `${problem}; rename the folder` });
    return null;
  }
  const dir = resolveInside(root, name);
  if (!(await staysInside(root, dir, rel, problems))) return null;
  const config = await readYaml(root, path.join(rel, "task.yaml"), TaskConfig, problems);
  if (!config) return null;
  if (config.name !== name) {
    problems.push({
      path: path.join(rel, "task.yaml"),
      message: `name '${config.name}' differs from its folder '${name}'; make them equal`,
    });
  }
  const variants = new Map<string, Variant>();
  for (const entry of (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith(".") || !(entry.isDirectory() || entry.isSymbolicLink())) continue;
    const variant = await loadVariant(root, name, entry.name, config, problems, profilesOnly);
    if (variant) variants.set(variant.name, variant);
  }
  if (variants.size === 0 && !problems.some((p) => p.path.startsWith(rel + path.sep))) {
    problems.push({
      path: rel,
      message: "task has no variants: add a folder <variant>/ with model.onnx and variant.yaml",
    });
  }
  return { name, dir, config, variants };
}

async function loadVariant(
  root: string,
  task: string,
  name: string,
  taskConfig: TaskConfig,
  problems: Problem[],
  profilesOnly: boolean,
): Promise<Variant | null> {
  const rel = path.join(task, name);
  const problem = nameProblem(name);
  if (problem) {
    problems.push({ path: rel, message: `${problem}; rename the folder` });
    return null;
  }
  const dir = resolveInside(root, task, name);
  if (!(await staysInside(root, dir, rel, problems))) return null;
  const config = await readYaml(root, path.join(rel, "variant.yaml"), VariantConfig, problems);
  const modelPath = path.join(dir, "model.onnx");
  let signature: OnnxSignature | null = null;
  let modelBytes = 0;
  const modelRel = path.join(rel, "model.onnx");
  try {
    if (await staysInside(root, modelPath, modelRel, problems)) {
      const bytes = await fs.readFile(modelPath);
      modelBytes = bytes.byteLength;
      signature = readOnnxSignature(bytes);
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ENOENT" && profilesOnly) signature = NO_SIGNATURE;
    else
      problems.push({
        path: modelRel,
        message:
          e.code === "ENOENT"
            ? "missing: every variant needs its model.onnx"
            : `cannot be read as ONNX: ${e.message}; re-export the model`,
      });
  }
  if (config && config.name !== name) {
    problems.push({
      path: path.join(rel, "variant.yaml"),
      message: `name '${config.name}' differs from its folder '${name}'; make them equal`,
    });
  }
  if (signature && signature !== NO_SIGNATURE)
    checkSignature(modelRel, taskConfig, signature, problems, config?.subnets);
  const profilePath = path.join(rel, "profile.json");
  let profile: Profile | undefined;
  try {
    const text = await fs.readFile(path.join(root, profilePath), "utf8");
    const parsed = Profile.safeParse(JSON.parse(text));
    if (parsed.success) profile = parsed.data;
    else
      problems.push({
        path: profilePath,
        message: `${zodMessage(parsed.error)}; re-run 'sloserve profile --task ${task} --variant ${name}'`,
      });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code !== "ENOENT")
      problems.push({
        path: profilePath,
        message: `unreadable (${e.message}); delete it or re-run 'sloserve profile'`,
      });
  }
  if (!config || !signature) return null;
  return { name, task, dir, modelPath, config, signature, modelBytes, profile };
}

/** Refuses symlinks (or anything else) that resolve outside the repository root. */
async function staysInside(root: string, p: string, rel: string, problems: Problem[]): Promise<boolean> {
  let real: string;
  try {
    real = await fs.realpath(p);
  } catch {
    return true; // a missing file is reported by whoever reads it
  }
  if (real === root || real.startsWith(root + path.sep)) return true;
  problems.push({
    path: rel,
    message: `resolves to ${real}, outside the repository; copy the file in instead of linking to it`,
  });
  return false;
}

async function readYaml<T extends z.ZodType>(
  root: string,
  rel: string,
  schema: T,
  problems: Problem[],
): Promise<z.infer<T> | null> {
  let text: string;
  try {
    text = await fs.readFile(path.join(root, rel), "utf8");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    problems.push({
      path: rel,
      message:
        e.code === "ENOENT" ? `missing: create ${path.basename(rel)} (see README, "Bring your own model")` : e.message,
    });
    return null;
  }
  const doc = YAML.parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    problems.push({
      path: rel,
      message: `invalid YAML: ${doc.errors.map((e) => e.message.split("\n")[0]).join("; ")}`,
    });
    return null;
  }
  const parsed = schema.safeParse(doc.toJS());
  if (!parsed.success) {
    problems.push({ path: rel, message: zodMessage(parsed.error) });
    return null;
  }
  return parsed.data;
}

export function zodMessage(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`).join("; ");
}

/**
 * A supernet's control inputs are not part of the task's signature: the model must take each control
 * its subnets set, as an int64 vector as long as every subnet's values; they are then set aside.
 */
function checkControls(rel: string, sig: OnnxSignature, subnets: SubnetDecl[], problems: Problem[]): SignatureTensor[] {
  const controls = new Set(Object.keys(subnets[0]!.controls));
  for (const name of controls) {
    const t = sig.inputs.find((i) => i.name === name);
    if (!t) {
      problems.push({
        path: rel,
        message: `subnets set control '${name}', which the model does not take (its inputs: ${sig.inputs.map((i) => i.name).join(", ")}); fix the subnets in variant.yaml or re-export the supernet`,
      });
      continue;
    }
    if (t.datatype !== "INT64" || t.shape.length !== 1 || t.shape[0]! < 1) {
      problems.push({
        path: rel,
        message: `control input '${name}' is ${t.datatype}[${t.shape.join(",")}] in the model; a control input must be an INT64 vector of fixed length`,
      });
      continue;
    }
    for (const s of subnets) {
      const n = s.controls[name]!.length;
      if (n !== t.shape[0])
        problems.push({
          path: rel,
          message: `subnet '${s.name}' gives ${n} value(s) for control '${name}', but the model takes ${t.shape[0]}`,
        });
    }
  }
  return sig.inputs.filter((i) => !controls.has(i.name));
}

function checkSignature(
  rel: string,
  task: TaskConfig,
  sig: OnnxSignature,
  problems: Problem[],
  subnets?: SubnetDecl[],
): void {
  const inputs = subnets ? checkControls(rel, sig, subnets, problems) : sig.inputs;
  const compare = (kind: "input" | "output", decls: TensorDecl[], actual: SignatureTensor[]) => {
    const byName = new Map(actual.map((t) => [t.name, t]));
    for (const decl of decls) {
      const t = byName.get(decl.name);
      if (!t) {
        problems.push({
          path: rel,
          message: `${kind} '${decl.name}' of the task is missing from the model (it has: ${actual.map((a) => a.name).join(", ") || "none"}); rename the model's ${kind}`,
        });
        continue;
      }
      byName.delete(decl.name);
      if (t.datatype !== decl.datatype) {
        problems.push({
          path: rel,
          message: `${kind} '${decl.name}' is ${t.datatype} in the model but ${decl.datatype} in task.yaml; export the model with ${decl.datatype}`,
        });
      }
      const want = [-1, ...decl.shape];
      if (t.shape.length !== want.length || t.shape.some((d, i) => (i === 0 ? d !== -1 : d !== want[i]))) {
        problems.push({
          path: rel,
          message: `${kind} '${decl.name}' has shape [${t.shape.join(",")}] in the model but the task needs [${want.join(",")}] (-1 = variable batch); export with a dynamic first dimension and that row shape`,
        });
      }
    }
    for (const extra of byName.values()) {
      const hint =
        kind === "input" && CONTROL_INPUT_PATTERN.test(extra.name) && !subnets
          ? " (a supernet's control input? list the subnets and their controls in variant.yaml)"
          : "";
      problems.push({
        path: rel,
        message: `${kind} '${extra.name}' is not in the task's signature${hint}; remove it from the model or add it to task.yaml`,
      });
    }
  };
  compare("input", task.inputs, inputs);
  compare("output", task.outputs, sig.outputs);
}
