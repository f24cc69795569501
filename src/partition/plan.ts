// Chooses the k − 1 cuts by dynamic programming over (stages so far, position of the last cut).
//
// Objective `sum` (the default): the fewest bytes crossing all cuts together, i.e. the least one request
// carries between instances. Objective `max`: the smallest largest cut (the worst single hop), and among
// the cuts that achieve it the smallest sum. Either way every stage must fit the memory budget (weights +
// activations at the largest batch) and the compute budget (multiply-accumulates per row); ties go to the
// partition whose largest stage computes least. Both objectives decompose over prefixes: a prefix that is
// worse in (sum, largest stage) stays worse whatever follows it, so the DP is exact.
import { stageCost, sweepStages, type Analysis, type StageCost } from "./analysis.js";

export type Objective = "sum" | "max";

export interface Budgets {
  /** Most memory (bytes) one stage may take: weights + activations at `batch` rows. */
  maxMemoryBytes?: number;
  /** Most multiply-accumulates per row one stage may take. */
  maxMacs?: number;
  /** Rows of the largest batch a stage runs (the source variant's max_batch). */
  batch: number;
}

export interface CutPlan {
  /** Position in the order: the stage before it ends there. */
  position: number;
  tensors: { name: string; bytesPerRow: number }[];
  bytesPerRow: number;
}

export interface PartitionPlan {
  stages: StageCost[];
  cuts: CutPlan[];
  objective: Objective;
  budgets: Budgets;
  /** Bytes of one row crossing all cuts. */
  totalCrossBytes: number;
}

export class PartitionError extends Error {}

interface Score {
  /** sum: bytes over the cuts so far; max: the same, restricted to cuts no wider than the bottleneck. */
  sum: number;
  largestStageMacs: number;
  from: number;
}

/**
 * Lexicographic on (sum, largest stage). On a full tie the later previous cut wins (candidates come in
 * ascending order): a stage then keeps the zero-compute ops that trail its last layer (a ReLU after an
 * Add), which the runtime fuses into that layer.
 */
const better = (a: Score, b: Score | undefined) =>
  !b || a.sum < b.sum || (a.sum === b.sum && a.largestStageMacs <= b.largestStageMacs);

export function choosePartition(a: Analysis, parts: number, budgets: Budgets, objective: Objective): PartitionPlan {
  checkParts(a, parts);
  const fits = (c: StageCost) =>
    (budgets.maxMacs === undefined || c.macs <= budgets.maxMacs) &&
    (budgets.maxMemoryBytes === undefined || c.memoryBytes <= budgets.maxMemoryBytes);
  let widest = Infinity;
  if (objective === "max") {
    widest = bottleneck(a, parts, budgets.batch, fits);
    if (!Number.isFinite(widest)) throw infeasible(a, parts, budgets);
  }
  const best: (Score | undefined)[][] = Array.from({ length: parts + 1 }, () => new Array(a.n + 1));
  best[0]![0] = { sum: 0, largestStageMacs: 0, from: -1 };
  for (let j = 0; j < parts; j++) {
    const last = j === parts - 1;
    for (let from = 0; from < a.n; from++) {
      const prev = best[j]![from];
      if (!prev) continue;
      sweepStages(a, from, budgets.batch, (c) => {
        if (!fits(c)) return false;
        const at = c.to;
        if (last ? at !== a.n : at >= a.n || !a.cuttable[at] || a.crossBytes[at]! > widest) return true;
        const score: Score = {
          sum: prev.sum + (last ? 0 : a.crossBytes[at]!),
          largestStageMacs: Math.max(prev.largestStageMacs, c.macs),
          from,
        };
        if (better(score, best[j + 1]![at])) best[j + 1]![at] = score;
        return true;
      });
    }
  }
  if (!best[parts]![a.n]) throw infeasible(a, parts, budgets);
  const positions: number[] = [];
  let at = a.n;
  for (let j = parts; j > 0; j--) {
    const s = best[j]![at]!;
    if (j > 1) positions.unshift(s.from);
    at = s.from;
  }
  return planAt(a, positions, budgets, objective);
}

/** The plan that cuts at exactly these positions (ascending, each cuttable). */
export function planAt(a: Analysis, positions: number[], budgets: Budgets, objective: Objective): PartitionPlan {
  const bounds = [0, ...positions, a.n];
  for (let i = 1; i < bounds.length; i++)
    if (!(bounds[i]! > bounds[i - 1]!)) throw new PartitionError(`cut positions must ascend within 1..${a.n - 1}`);
  for (const p of positions)
    if (!a.cuttable[p]) throw new PartitionError(`no cut can sit at position ${p}: ${a.uncuttableWhy[p]}`);
  const stages = bounds.slice(1).map((to, i) => stageCost(a, bounds[i]!, to, budgets.batch));
  const cuts = positions.map((p) => ({
    position: p,
    tensors: a.crossing[p]!.map((name) => ({ name, bytesPerRow: a.facts.get(name)!.bytesPerRow })),
    bytesPerRow: a.crossBytes[p]!,
  }));
  return { stages, cuts, objective, budgets, totalCrossBytes: cuts.reduce((s, c) => s + c.bytesPerRow, 0) };
}

/** The narrowest the widest cut can be over all partitions whose stages fit. */
function bottleneck(a: Analysis, parts: number, batch: number, fits: (c: StageCost) => boolean): number {
  const best: number[][] = Array.from({ length: parts + 1 }, () => new Array<number>(a.n + 1).fill(Infinity));
  best[0]![0] = 0;
  for (let j = 0; j < parts; j++) {
    const last = j === parts - 1;
    for (let from = 0; from < a.n; from++) {
      const prev = best[j]![from]!;
      if (!Number.isFinite(prev)) continue;
      sweepStages(a, from, batch, (c) => {
        if (!fits(c)) return false;
        const at = c.to;
        if (last ? at !== a.n : at >= a.n || !a.cuttable[at]) return true;
        best[j + 1]![at] = Math.min(best[j + 1]![at]!, Math.max(prev, last ? 0 : a.crossBytes[at]!));
        return true;
      });
    }
  }
  return best[parts]![a.n]!;
}

/**
 * The smallest the largest stage can be, in compute (multiply-accumulates per row) or memory, over every
 * k-way partition at cuttable positions, ignoring budgets: the most balanced cut the graph allows.
 */
export function mostBalanced(a: Analysis, parts: number, batch: number, metric: "macs" | "memoryBytes"): number {
  checkParts(a, parts);
  const best: number[][] = Array.from({ length: parts + 1 }, () => new Array<number>(a.n + 1).fill(Infinity));
  best[0]![0] = 0;
  for (let j = 0; j < parts; j++) {
    const last = j === parts - 1;
    for (let from = 0; from < a.n; from++) {
      const prev = best[j]![from]!;
      if (!Number.isFinite(prev)) continue;
      sweepStages(a, from, batch, (c) => {
        const at = c.to;
        if (last ? at !== a.n : at >= a.n || !a.cuttable[at]) return true;
        best[j + 1]![at] = Math.min(best[j + 1]![at]!, Math.max(prev, c[metric]));
        return true;
      });
    }
  }
  return best[parts]![a.n]!;
}

function checkParts(a: Analysis, parts: number): void {
  if (!Number.isInteger(parts) || parts < 2) throw new PartitionError(`--parts must be 2 or more, got ${parts}`);
  const cuttable = a.cuttable.filter(Boolean).length;
  if (cuttable < parts - 1)
    throw new PartitionError(
      `the model has ${cuttable} position(s) where a cut can sit (${a.n} nodes), too few for ${parts} parts`,
    );
}

function infeasible(a: Analysis, parts: number, budgets: Budgets): PartitionError {
  const macs = mostBalanced(a, parts, budgets.batch, "macs");
  const mem = mostBalanced(a, parts, budgets.batch, "memoryBytes");
  const wanted = [
    budgets.maxMemoryBytes !== undefined ? `≤ ${mb(budgets.maxMemoryBytes)} MB` : "",
    budgets.maxMacs !== undefined ? `≤ ${gmacs(budgets.maxMacs)} GMACs per row` : "",
  ]
    .filter(Boolean)
    .join(" and ");
  return new PartitionError(
    `no cut into ${parts} stages fits ${wanted || "the budgets"} per stage: the most balanced cuts still need ` +
      `${gmacs(macs)} GMACs per row (by compute) or ${mb(mem)} MB (by memory, weights + activations at batch ${budgets.batch}) ` +
      `in their largest stage; raise --max-memory-mb / --max-gmacs or change --parts`,
  );
}

export const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
export const gmacs = (macs: number) => (macs / 1e9).toFixed(3);
