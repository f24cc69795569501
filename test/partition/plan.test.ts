// The graph side of partitioning: what crosses a cut, where a cut may sit, and that the DP's choice is
// the best partition there is (checked against every partition, enumerated).
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { analyse, stageCost, type Analysis } from "../../src/partition/analysis.js";
import { readModelGraph } from "../../src/partition/graph.js";
import { partitionModel, DEFAULT_SLACK } from "../../src/partition/partition.js";
import {
  choosePartition,
  mostBalanced,
  planAt,
  PartitionError,
  type Budgets,
  type Objective,
} from "../../src/partition/plan.js";
import { probeTensors } from "../../src/partition/probe.js";
import { dynamicRowModel, fixedBatchModel, foldedBatchModel, skipModel } from "./graphs.js";

async function analysisOf(bytes: Uint8Array): Promise<Analysis> {
  const g = readModelGraph(bytes);
  return analyse(g, await probeTensors(g));
}

const model = (rel: string) => readFileSync(path.resolve("models", rel, "model.onnx"));

function* combinations(items: number[], r: number, start = 0, acc: number[] = []): Generator<number[]> {
  if (acc.length === r) {
    yield [...acc];
    return;
  }
  for (let i = start; i < items.length; i++) {
    acc.push(items[i]!);
    yield* combinations(items, r, i + 1, acc);
    acc.pop();
  }
}

/** The best partition by enumeration: (sum, widest cut, largest stage MACs) of the optimum. */
function bruteForce(a: Analysis, parts: number, b: Budgets, objective: Objective) {
  const positions = a.cuttable.map((ok, p) => (ok ? p : -1)).filter((p) => p >= 0);
  let best: { sum: number; widest: number; macs: number } | null = null;
  for (const cuts of combinations(positions, parts - 1)) {
    const bounds = [0, ...cuts, a.n];
    const stages = bounds.slice(1).map((to, i) => stageCost(a, bounds[i]!, to, b.batch));
    if (
      stages.some(
        (s) =>
          (b.maxMacs !== undefined && s.macs > b.maxMacs) ||
          (b.maxMemoryBytes !== undefined && s.memoryBytes > b.maxMemoryBytes),
      )
    )
      continue;
    const c = {
      sum: cuts.reduce((s, p) => s + a.crossBytes[p]!, 0),
      widest: Math.max(...cuts.map((p) => a.crossBytes[p]!)),
      macs: Math.max(...stages.map((s) => s.macs)),
    };
    const key = (x: typeof c) => (objective === "sum" ? [x.sum, x.macs] : [x.widest, x.sum, x.macs]);
    const lt = (x: number[], y: number[]) => {
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! < y[i]!;
      return false;
    };
    if (!best || lt(key(c), key(best))) best = c;
  }
  return best;
}

describe("what crosses a cut", () => {
  it("carries a tensor read by several later stages across every cut in between, and copies shared constants", async () => {
    const bytes = skipModel();
    const a = await analysisOf(bytes);
    expect(a.n).toBe(12);
    // `a` is made by node 1 and read by nodes 2, 7 and 11: it crosses every position 2..11
    for (let p = 2; p <= 11; p++) expect(a.crossing[p]).toContain("a");
    expect(a.crossing[1]).not.toContain("a");
    expect(a.crossing[3]).toHaveLength(2); // a, and a×k read by node 3
    expect(a.crossBytes[3]).toBe(2 * 8 * 4);
    const p = await partitionModel(bytes, { parts: 3, batch: 4, positions: [3, 6] });
    const [s1, s2, s3] = p.stages;
    expect(s1!.inputs.map((t) => t.name)).toEqual(["x"]);
    expect(s2!.inputs.map((t) => t.name)).toContain("a");
    expect(s2!.outputs.map((t) => t.name)).toContain("a"); // passes through stage 2 untouched
    expect(s3!.outputs.map((t) => t.name)).toEqual(["probabilities", "early"]);
    const constantsIn = (b: Uint8Array) =>
      readModelGraph(b).constants.filter((c) => c.proto.opType === "Constant").length;
    expect(p.stages.map((s) => constantsIn(s.bytes))).toEqual([1, 0, 1]);
    expect(p.plan.totalCrossBytes).toBe(a.crossBytes[3]! + a.crossBytes[6]!);
  });

  it("never cuts where the batch is folded away, and says why when asked to", async () => {
    const a = await analysisOf(foldedBatchModel());
    // 0 Reshape, 1 Relu, 2 Reshape: positions 1 and 2 carry a [batch·4] vector
    expect(a.cuttable.slice(1, 3)).toEqual([false, false]);
    expect(a.uncuttableWhy[1]).toMatch(/does not lead with the batch/);
    const plan = choosePartition(a, 2, { batch: 1 }, "sum");
    expect([1, 2]).not.toContain(plan.cuts[0]!.position);
    expect(() => planAt(a, [1], { batch: 1 }, "sum")).toThrow(/does not lead with the batch/);
  });

  it("refuses inputs with a dynamic dimension besides the batch or a fixed batch, and impossible part counts", async () => {
    await expect(partitionModel(dynamicRowModel(), { parts: 2, batch: 1 })).rejects.toThrow(
      /only its first \(batch\) dimension may be dynamic/,
    );
    await expect(partitionModel(fixedBatchModel(), { parts: 2, batch: 1 })).rejects.toThrow(
      /first dimension fixed at 1; export the model with a dynamic batch dimension/,
    );
    await expect(partitionModel(skipModel(), { parts: 1, batch: 1 })).rejects.toThrow(/--parts must be 2 or more/);
    await expect(partitionModel(skipModel(), { parts: 14, batch: 1 })).rejects.toThrow(/too few for 14 parts/);
  });
});

describe("the cuts the DP chooses", () => {
  it("are the best partition there is, for both objectives, with and without a memory budget", async () => {
    for (const [name, bytes, partsList] of [
      ["skip", skipModel(), [2, 3, 4]],
      ["digits/cnn-large", model("digits/cnn-large"), [2, 3]],
      ["vision/resnet18", model("vision/resnet18"), [2, 3]],
    ] as const) {
      const a = await analysisOf(bytes);
      for (const parts of partsList) {
        const balanced = mostBalanced(a, parts, 8, "macs");
        const memory = mostBalanced(a, parts, 8, "memoryBytes");
        const budgetsList: Budgets[] = [
          { batch: 8, maxMacs: Math.ceil(balanced * DEFAULT_SLACK) },
          { batch: 8, maxMacs: Math.ceil(balanced * 1.6), maxMemoryBytes: Math.ceil(memory * 1.1) },
        ];
        for (const b of budgetsList)
          for (const objective of ["sum", "max"] as const) {
            const want = bruteForce(a, parts, b, objective);
            const where = `${name}, ${parts} parts, ${objective}, ${JSON.stringify(b)}`;
            expect(want, where).not.toBeNull();
            const plan = choosePartition(a, parts, b, objective);
            const widest = Math.max(...plan.cuts.map((c) => c.bytesPerRow));
            const largest = Math.max(...plan.stages.map((s) => s.macs));
            if (objective === "sum") expect([plan.totalCrossBytes, largest], where).toEqual([want!.sum, want!.macs]);
            else expect([widest, plan.totalCrossBytes, largest], where).toEqual([want!.widest, want!.sum, want!.macs]);
            for (const s of plan.stages) {
              expect(s.macs).toBeLessThanOrEqual(b.maxMacs!);
              if (b.maxMemoryBytes !== undefined) expect(s.memoryBytes).toBeLessThanOrEqual(b.maxMemoryBytes);
            }
          }
      }
    }
  });

  it("cut a ResNet at block boundaries, where one tensor crosses, within the compute budget", async () => {
    const a = await analysisOf(model("vision/resnet18"));
    for (const parts of [2, 3]) {
      const budgets = { batch: 16, maxMacs: Math.ceil(mostBalanced(a, parts, 16, "macs") * DEFAULT_SLACK) };
      const plan = choosePartition(a, parts, budgets, "sum");
      expect(plan.stages).toHaveLength(parts);
      for (const c of plan.cuts) {
        expect(c.tensors).toHaveLength(1);
        // after a block's ReLU, so the runtime still fuses Conv+Add+ReLU inside the stage
        expect(c.tensors[0]!.name).toMatch(/^relu_/);
      }
      for (const s of plan.stages) expect(s.macs).toBeLessThanOrEqual(budgets.maxMacs);
      const total = a.macs.reduce((x, m) => x + m, 0);
      expect(plan.stages.reduce((x, s) => x + s.macs, 0)).toBe(total);
      expect(total / 1e9).toBeGreaterThan(1.7); // ResNet-18 at 224×224: 1.8 GMACs
      expect(total / 1e9).toBeLessThan(1.9);
    }
  });

  it("fit a memory budget by moving the cut, and say what would fit when nothing does", async () => {
    const a = await analysisOf(model("vision/resnet18"));
    const free = choosePartition(a, 2, { batch: 16 }, "sum");
    const largest = Math.max(...free.stages.map((s) => s.memoryBytes));
    const tight = mostBalanced(a, 2, 16, "memoryBytes");
    expect(tight).toBeLessThan(largest);
    const fitted = choosePartition(a, 2, { batch: 16, maxMemoryBytes: tight }, "sum");
    for (const s of fitted.stages) expect(s.memoryBytes).toBeLessThanOrEqual(tight);
    expect(fitted.cuts[0]!.position).not.toBe(free.cuts[0]!.position);
    expect(() => choosePartition(a, 2, { batch: 16, maxMemoryBytes: tight - 1 }, "sum")).toThrow(PartitionError);
    expect(() => choosePartition(a, 2, { batch: 16, maxMemoryBytes: tight - 1 }, "sum")).toThrow(
      /raise --max-memory-mb/,
    );
  });
});
