// Puts a partition into a model repository: one task per stage (task.yaml with the crossing tensors as
// its inputs and outputs, one variant with the stage's model.onnx and a variant.yaml whose accuracy is
// declared from the source's), and a chain pipeline.yaml over them, with partition.json beside it
// recording the cuts, what crosses them and what each stage costs.
import fs from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import type { Task, Variant } from "../repository/repository.js";
import { nameProblem } from "../repository/safe-path.js";
import type { PipelineConfig, TaskConfig, VariantConfig } from "../repository/schema.js";
import type { Partition } from "./partition.js";
import { PartitionError } from "./plan.js";
import type { Equality } from "./verify.js";

export interface WriteOptions {
  root: string;
  /** Pipeline name; stage tasks are `<name>-s1`, `<name>-s2`, … */
  name: string;
  task: Task;
  variant: Variant;
  /** Replace folders of the same names. */
  force?: boolean;
  /** What verification found (written into variant.yaml and partition.json). */
  verified?: Equality;
}

export interface Written {
  pipeline: string;
  stages: string[];
  variant: string;
  files: string[];
}

export function defaultPartitionName(task: string, variant: string, parts: number): string {
  return `${task}-${variant}-p${parts}`;
}

export function stageTaskName(name: string, index: number): string {
  return `${name}-s${index}`;
}

export async function writePartition(p: Partition, o: WriteOptions): Promise<Written> {
  const k = p.stages.length;
  const stages = p.stages.map((s) => stageTaskName(o.name, s.index));
  for (const n of [o.name, ...stages]) {
    const problem = nameProblem(n);
    if (problem) throw new PartitionError(`'${n}' cannot name a task or pipeline: ${problem}; pass a shorter --name`);
  }
  const dirs = [o.name, ...stages].map((n) => path.join(o.root, n));
  const taken: string[] = [];
  for (const d of dirs) if (await exists(d)) taken.push(d);
  if (taken.length > 0 && !o.force)
    throw new PartitionError(
      `${taken.join(", ")} already exist(s); pass --force to replace, or --name to choose another`,
    );
  for (const d of taken)
    if (!(await writtenByPartition(d)))
      throw new PartitionError(
        `${d} exists and was not written by sloserve partition; --force replaces only earlier partitions: remove it yourself or pass another --name`,
      );
  for (const d of taken) await fs.rm(d, { recursive: true });

  const source = `${o.task.name}/${o.variant.name}`;
  const files: string[] = [];
  const put = async (file: string, data: string | Uint8Array) => {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, data);
    files.push(file);
  };
  const t = o.task.config;
  for (const s of p.stages) {
    const name = stages[s.index - 1]!;
    const task: TaskConfig = {
      name,
      description: `Stage ${s.index} of ${k} of ${source}, cut by sloserve partition (nodes ${s.cost.from}-${s.cost.to - 1} of ${p.analysis.n}): ${s.inputs.map((x) => x.name).join(", ")} -> ${s.outputs.map((x) => x.name).join(", ")}`,
      inputs: s.inputs,
      outputs: s.outputs,
      slo_ms: t.slo_ms,
      min_accuracy: 0,
      scheduling: t.scheduling,
      scaling: t.scaling,
      max_queue: t.max_queue,
      late: t.late,
      sharing: t.sharing,
    };
    const variant: VariantConfig = {
      name: o.variant.name,
      description: `Stage ${s.index}/${k} of ${source}`,
      architecture: `stage ${s.index}/${k} of ${o.variant.config.architecture ?? source}`,
      parameters: s.parameters,
      max_batch: o.variant.config.max_batch,
      accuracy: {
        value: o.variant.config.accuracy.value,
        source: "declared",
        reference: inheritedReference(source, o.variant, o.verified),
      },
    };
    const dir = path.join(o.root, name);
    await put(path.join(dir, "task.yaml"), yamlOf(task));
    await put(path.join(dir, o.variant.name, "variant.yaml"), yamlOf(variant));
    await put(path.join(dir, o.variant.name, "model.onnx"), s.bytes);
  }
  const pipeline: PipelineConfig = {
    name: o.name,
    description: `${source} cut into ${k} stages by sloserve partition (${p.plan.objective === "sum" ? "fewest bytes over all cuts" : "narrowest widest cut"})`,
    stages,
    slo_ms: t.slo_ms,
    min_accuracy: t.min_accuracy,
    ...(t.scaling === "none" ? {} : { scaling: t.scaling }),
  };
  await put(path.join(o.root, o.name, "pipeline.yaml"), yamlOf(pipeline));
  await put(path.join(o.root, o.name, "partition.json"), JSON.stringify(partitionRecord(p, o, stages), null, 2) + "\n");
  return { pipeline: o.name, stages, variant: o.variant.name, files };
}

function inheritedReference(source: string, v: Variant, verified?: Equality): string {
  const a = v.config.accuracy;
  const origin =
    a.source === "measured"
      ? `measured on ${a.evaluated_on}${a.correct !== undefined ? `, ${a.correct}/${a.total}` : ""}`
      : `declared: ${a.reference}`;
  const check = verified
    ? `; sloserve partition ran the stages in a chain against the whole model on ${verified.rows} seeded rows: ${verified.identical ? "identical outputs" : `outputs within ${verified.maxAbsDiff.toExponential(2)}`}`
    : "";
  return `inherited from ${source} (${origin}): the stages compute the same function as the whole model${check}`;
}

/** The plan as data: what crosses each cut and what each stage needs. */
export function partitionRecord(p: Partition, o: WriteOptions, stages: string[]): Record<string, unknown> {
  const facts = p.analysis.facts;
  return {
    source: `${o.task.name}/${o.variant.name}`,
    parts: p.stages.length,
    objective: p.plan.objective,
    budgets: {
      batch: p.plan.budgets.batch,
      max_memory_bytes: p.plan.budgets.maxMemoryBytes ?? null,
      max_macs_per_row: p.plan.budgets.maxMacs ?? null,
    },
    nodes: p.analysis.n,
    total_macs_per_row: p.analysis.macs.reduce((s, m) => s + m, 0),
    balanced_largest_stage_macs: p.balancedMacs,
    cuts: p.plan.cuts.map((c, i) => ({
      between: [stages[i], stages[i + 1]],
      position: c.position,
      bytes_per_row: c.bytesPerRow,
      tensors: c.tensors.map((t) => ({
        name: t.name,
        datatype: facts.get(t.name)!.datatype,
        shape: facts.get(t.name)!.rowShape,
        bytes_per_row: t.bytesPerRow,
      })),
    })),
    total_cross_bytes_per_row: p.plan.totalCrossBytes,
    stages: p.stages.map((s, i) => ({
      task: stages[i],
      nodes: [s.cost.from, s.cost.to - 1],
      macs_per_row: s.cost.macs,
      weight_bytes: s.cost.weightBytes,
      peak_activation_bytes_per_row: s.cost.peakBytesPerRow,
      memory_estimate_bytes: s.cost.memoryBytes,
      parameters: s.parameters,
      model_bytes: s.bytes.byteLength,
    })),
    verified: o.verified
      ? { rows: o.verified.rows, identical: o.verified.identical, max_abs_diff: o.verified.maxAbsDiff }
      : null,
  };
}

/** YAML as people write it: shapes and stage lists on one line. */
function yamlOf(value: unknown): string {
  const doc = new YAML.Document(value);
  YAML.visit(doc, {
    Pair(_, pair) {
      if (YAML.isScalar(pair.key) && ["shape", "stages"].includes(String(pair.key.value)) && YAML.isSeq(pair.value))
        pair.value.flow = true;
    },
  });
  return doc.toString({ lineWidth: 0 });
}

/** A pipeline folder with its partition.json, or a stage task whose task.yaml says partition cut it. */
async function writtenByPartition(dir: string): Promise<boolean> {
  if (await exists(path.join(dir, "partition.json"))) return true;
  const task = await fs.readFile(path.join(dir, "task.yaml"), "utf8").catch(() => "");
  return / cut by sloserve partition /.test(task);
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}
