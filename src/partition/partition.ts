// NetNN-style model partitioning, start to end: read the graph, measure its tensors, choose the cuts under
// the budgets, and build one ONNX model per stage.
import { analyse, type Analysis } from "./analysis.js";
import { buildStages, type StageModel } from "./build.js";
import { readModelGraph } from "./graph.js";
import { choosePartition, mostBalanced, planAt, PartitionError, type Objective, type PartitionPlan } from "./plan.js";
import { probeTensors } from "./probe.js";

export interface PartitionOptions {
  parts: number;
  /** Memory budget per stage, MB (2^20 bytes): weights + activations at `batch` rows. */
  maxMemoryMb?: number;
  /** Compute budget per stage, GMACs per row; default: DEFAULT_SLACK × the most balanced cut's largest stage. */
  maxGmacs?: number;
  objective?: Objective;
  /** Rows of the largest batch a stage will run (the source variant's max_batch). */
  batch: number;
  /** Cut at exactly these positions of the order instead of choosing (for tests and experiments). */
  positions?: number[];
  /** Written into every stage model's metadata. */
  metadata?: Record<string, string>;
}

export interface Partition {
  analysis: Analysis;
  plan: PartitionPlan;
  stages: StageModel[];
  /** The largest stage's multiply-accumulates per row in the most balanced cut the graph allows. */
  balancedMacs: number;
}

/**
 * Without a compute budget the fewest bytes would be had by cutting off a tiny last stage (after the
 * global pool, a ResNet carries 8 KB); a stage may take at most this much more compute than the most
 * balanced cut's largest stage, so that each instance does a fair share of the work.
 */
export const DEFAULT_SLACK = 1.25;

export async function partitionModel(bytes: Uint8Array, opts: PartitionOptions): Promise<Partition> {
  if (opts.maxMemoryMb !== undefined && !(opts.maxMemoryMb > 0))
    throw new PartitionError(`--max-memory-mb must be a positive number, got ${opts.maxMemoryMb}`);
  if (opts.maxGmacs !== undefined && !(opts.maxGmacs > 0))
    throw new PartitionError(`--max-gmacs must be a positive number, got ${opts.maxGmacs}`);
  const graph = readModelGraph(bytes);
  const analysis = analyse(graph, await probeTensors(graph));
  const objective = opts.objective ?? "sum";
  const balancedMacs = mostBalanced(analysis, opts.parts, opts.batch, "macs");
  const budgets = {
    batch: opts.batch,
    maxMemoryBytes: opts.maxMemoryMb !== undefined ? opts.maxMemoryMb * 2 ** 20 : undefined,
    maxMacs: opts.maxGmacs !== undefined ? opts.maxGmacs * 1e9 : Math.ceil(balancedMacs * DEFAULT_SLACK),
  };
  const plan = opts.positions
    ? planAt(analysis, opts.positions, budgets, objective)
    : choosePartition(analysis, opts.parts, budgets, objective);
  return { analysis, plan, stages: buildStages(analysis, plan, opts.metadata), balancedMacs };
}
