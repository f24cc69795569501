import { beforeAll, describe, expect, it } from "vitest";
import { solveIpaChain } from "../../../src/autoscaler/planner/ipa-dp.js";
import { loadHighsSolver, solveIpaMilp, type HighsSolver } from "../../../src/autoscaler/planner/ipa-milp.js";
import {
  bruteForce,
  IPA_PRESETS,
  stageOptions,
  stageRates,
  type IpaProblem,
  type IpaSolution,
  type IpaStage,
} from "../../../src/autoscaler/planner/ipa-problem.js";
import { seededRandom } from "../../../src/stats/random.js";

let highs: HighsSolver;
beforeAll(async () => {
  highs = await loadHighsSolver();
});

/** A random pipeline stage: 1–3 variants, heavier ones slower and more accurate. */
function randomStage(r: () => number, name: string): IpaStage {
  const k = 1 + Math.floor(r() * 3);
  let acc = 0.5 + r() * 0.2;
  let scale = 1;
  const variants = Array.from({ length: k }, (_, i) => {
    const v = {
      name: `v${i}`,
      accuracy: Math.min(1, acc),
      fit: { alpha: (5 + r() * 40) * scale, beta: r() * 6 * scale, gamma: r() * 15, zeta: 1 + r() * 10 },
      maxBatch: 1 + Math.floor(r() * 8),
      loadMs: 200 + r() * 3000,
    };
    acc += 0.05 + r() * 0.15;
    scale *= 1.5 + r() * 2;
    return v;
  });
  return {
    name,
    variants,
    cores: r() < 0.3 ? [1, 2] : [1],
    current: r() < 0.5 ? `v${Math.floor(r() * k)}` : undefined,
    maxReplicas: r() < 0.2 ? 1 + Math.floor(r() * 6) : undefined,
    fixedReplicas: r() < 0.15 ? 1 + Math.floor(r() * 4) : undefined,
  };
}

/** A random chain whose SLO is sometimes too tight and whose load is sometimes too high for the caps. */
function randomChain(seed: number): IpaProblem {
  const r = seededRandom(seed);
  const n = 1 + Math.floor(r() * 4);
  const stages = Array.from({ length: n }, (_, i) => randomStage(r, `s${i}`));
  const base = stages.reduce((a, s) => a + s.variants[0]!.fit.alpha + s.variants[0]!.fit.zeta, 0);
  const sloMs = base * (0.7 + r() * 3);
  const presets = Object.values(IPA_PRESETS);
  return {
    stages,
    lambda: 1 + r() * 60,
    sloMs,
    weights: r() < 0.7 ? presets[Math.floor(r() * presets.length)]! : { alpha: r() * 500, beta: r() * 3, gamma: r() },
    bMax: 1 + Math.floor(r() * 8),
    unitMs: sloMs / (40 + Math.floor(r() * 160)),
    accuracy: r() < 0.8 ? "product" : "sum",
    switchWeight: r() * 2,
    intervalMs: 10_000,
  };
}

function sameOptimum(a: IpaSolution | null, b: IpaSolution | null, label: string): void {
  expect(a === null, `${label}: feasibility verdicts differ`).toBe(b === null);
  if (a && b)
    expect(Math.abs(a.objective - b.objective), `${label}: ${a.objective} vs ${b.objective}`).toBeLessThan(
      1e-6 * Math.max(1, Math.abs(a.objective)),
    );
}

describe("IPA's two solvers", () => {
  it("the chain DP and the HiGHS MILP agree on 400 random chains (objective and feasibility), and both match exhaustive search where it is small", () => {
    let feasible = 0;
    let checkedByBrute = 0;
    let switched = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const p = randomChain(seed);
      const dp = solveIpaChain(p);
      const milp = solveIpaMilp(p, highs);
      sameOptimum(dp, milp, `seed ${seed}`);
      const rates = stageRates(p);
      const combos = p.stages.reduce((a, _, s) => a * Math.max(1, stageOptions(p, s, rates[s]!).length), 1);
      if (combos <= 5_000) {
        sameOptimum(dp, bruteForce(p), `seed ${seed} (exhaustive)`);
        checkedByBrute++;
      }
      if (dp) {
        feasible++;
        expect(dp.latencyMs).toBeLessThanOrEqual(p.sloMs + 1e-9);
        for (const [i, s] of dp.stages.entries()) {
          // the plan carries the stage's load
          const v = p.stages[i]!.variants.find((x) => x.name === s.variant)!;
          expect(s.replicas * ((1000 * s.batch) / s.latencyMs)).toBeGreaterThanOrEqual(rates[i]! - 1e-6);
          expect(s.batch).toBeLessThanOrEqual(Math.min(p.bMax, v.maxBatch));
          if (p.stages[i]!.fixedReplicas) expect(s.replicas).toBe(p.stages[i]!.fixedReplicas);
          if (s.switchCost > 0) switched++;
        }
      }
    }
    // the random instances exercise both verdicts and the switch cost
    expect(feasible).toBeGreaterThan(100);
    expect(400 - feasible).toBeGreaterThan(20);
    expect(checkedByBrute).toBeGreaterThan(100);
    expect(switched).toBeGreaterThan(10);
  });

  it("PAS is the product of the chosen accuracies and the objective is α·PAS − β·cores − γ·Σb − switch cost", () => {
    const p = randomChain(7);
    const sol = solveIpaChain(p)!;
    expect(sol).not.toBeNull();
    const pas =
      p.accuracy === "sum"
        ? sol.stages.reduce((a, s) => a + s.accuracy, 0)
        : sol.stages.reduce((a, s) => a * s.accuracy, 1);
    expect(sol.pas).toBeCloseTo(pas, 12);
    const w = p.weights;
    expect(sol.objective).toBeCloseTo(w.alpha * pas - w.beta * sol.cores - w.gamma * sol.batchSum - sol.switchCost, 9);
  });

  it("the DP refuses a graph that is not a chain and says where it belongs", () => {
    const p = randomChain(3);
    const stages = [p.stages[0]!, { ...p.stages[0]!, name: "b" }, { ...p.stages[0]!, name: "c" }];
    expect(() =>
      solveIpaChain({
        ...p,
        stages,
        edges: [
          { from: stages[0]!.name, to: "b" },
          { from: stages[0]!.name, to: "c" },
        ],
      }),
    ).toThrow(/MILP/);
  });
});

describe("IPA on DAGs (MILP)", () => {
  const variant = (name: string, accuracy: number, alpha: number, zeta: number) => ({
    name,
    accuracy,
    fit: { alpha, beta: alpha / 10, gamma: 2, zeta },
    maxBatch: 8,
    loadMs: 1000,
  });
  const stage = (name: string, k: number): IpaStage => ({
    name,
    variants: [variant("small", 0.8, 10 * k, 3), variant("large", 0.95, 40 * k, 5)],
  });

  it("fan-out multiplies the downstream stage's rate by the measured mean fan-out; fan-in takes its largest input", () => {
    const p: IpaProblem = {
      stages: [stage("det", 1), stage("cls", 1), stage("rec", 1), stage("join", 1)],
      edges: [
        { from: "det", to: "cls", fanOut: 3.5 },
        { from: "det", to: "rec", fanOut: 2 },
        { from: "cls", to: "join" },
        { from: "rec", to: "join" },
      ],
      lambda: 10,
      sloMs: 800,
      weights: IPA_PRESETS.balanced,
      bMax: 8,
    };
    expect(stageRates(p)).toEqual([10, 35, 20, 35]);
  });

  it("the MILP's optimum equals exhaustive search on 60 random fork-join pipelines (latency per source-to-sink path)", () => {
    for (let seed = 1; seed <= 60; seed++) {
      const r = seededRandom(1000 + seed);
      const stages = ["a", "b", "c", "d"].map((n) => randomStage(r, n));
      const p: IpaProblem = {
        stages,
        edges: [
          { from: "a", to: "b", fanOut: 1 + r() * 3 },
          { from: "a", to: "c" },
          { from: "b", to: "d" },
          { from: "c", to: "d" },
        ],
        lambda: 1 + r() * 20,
        sloMs: 100 + r() * 600,
        weights: IPA_PRESETS["balanced"],
        bMax: 4,
        unitMs: 5,
        accuracy: r() < 0.8 ? "product" : "sum",
      };
      const milp = solveIpaMilp(p, highs);
      sameOptimum(milp, bruteForce(p), `seed ${seed}`);
      if (milp) {
        // parallel branches: the path through the slower branch bounds the latency, not the sum of all stages
        const [a, b, c, d] = milp.stages.map((s) => s.span);
        expect(milp.span).toBe(a! + Math.max(b!, c!) + d!);
      }
    }
  });

  it("a branch in parallel gets the whole budget: the fork-join plan is more accurate than the same stages in a chain", () => {
    const stages = [stage("a", 1), stage("b", 2), stage("c", 2), stage("d", 1)];
    const base = { stages, lambda: 5, sloMs: 250, weights: IPA_PRESETS["accuracy-first"], bMax: 4, unitMs: 1 };
    const dag = solveIpaMilp(
      {
        ...base,
        edges: [
          { from: "a", to: "b" },
          { from: "a", to: "c" },
          { from: "b", to: "d" },
          { from: "c", to: "d" },
        ],
      },
      highs,
    )!;
    const chain = solveIpaChain(base)!;
    expect(dag.pas).toBeGreaterThan(chain.pas);
  });
});

describe("IPA's objective", () => {
  const twoStage = (lambda: number): IpaProblem => ({
    stages: [
      {
        name: "det",
        variants: [
          { name: "n", accuracy: 0.7, fit: { alpha: 15, beta: 2, gamma: 3, zeta: 4 }, maxBatch: 8, loadMs: 400 },
          { name: "s", accuracy: 0.8, fit: { alpha: 40, beta: 4, gamma: 5, zeta: 6 }, maxBatch: 8, loadMs: 900 },
          { name: "m", accuracy: 0.88, fit: { alpha: 110, beta: 9, gamma: 8, zeta: 8 }, maxBatch: 8, loadMs: 2000 },
        ],
      },
      {
        name: "cls",
        variants: [
          { name: "r18", accuracy: 0.7, fit: { alpha: 10, beta: 1, gamma: 2, zeta: 3 }, maxBatch: 8, loadMs: 300 },
          { name: "r50", accuracy: 0.76, fit: { alpha: 30, beta: 3, gamma: 3, zeta: 4 }, maxBatch: 8, loadMs: 800 },
          { name: "r152", accuracy: 0.78, fit: { alpha: 80, beta: 6, gamma: 5, zeta: 6 }, maxBatch: 8, loadMs: 1800 },
        ],
      },
    ],
    lambda,
    sloMs: 600,
    weights: IPA_PRESETS.balanced,
    bMax: 8,
    unitMs: 1,
  });

  it("the presets trace a trade-off: accuracy-first ≥ balanced ≥ resource-first in both PAS and cores", () => {
    for (const lambda of [20, 60, 80]) {
      const sol = (["accuracy-first", "balanced", "resource-first"] as const).map((k) =>
        solveIpaChain({ ...twoStage(lambda), weights: IPA_PRESETS[k] })!,
      );
      expect(sol[0]!.pas).toBeGreaterThanOrEqual(sol[1]!.pas);
      expect(sol[1]!.pas).toBeGreaterThanOrEqual(sol[2]!.pas);
      expect(sol[0]!.cores).toBeGreaterThanOrEqual(sol[1]!.cores);
      expect(sol[1]!.cores).toBeGreaterThanOrEqual(sol[2]!.cores);
      // and the ends differ: the weights matter
      expect(sol[0]!.pas).toBeGreaterThan(sol[2]!.pas);
    }
  });

  it("more load makes the same preset trade accuracy for cores", () => {
    const low = solveIpaChain(twoStage(2))!;
    const high = solveIpaChain(twoStage(80))!;
    expect(high.pas).toBeLessThan(low.pas);
    expect(high.cores).toBeGreaterThan(low.cores);
  });

  it("a switch's cold start is charged: a long enough load keeps the running variant", () => {
    const p = twoStage(20);
    const free = solveIpaChain(p)!;
    const running = free.stages[0]!.variant === "m" ? "s" : "m";
    const stages = p.stages.map((s, i) => (i === 0 ? { ...s, current: running } : s));
    const cheap = solveIpaChain({ ...p, stages })!;
    expect(cheap.stages[0]!.variant).toBe(free.stages[0]!.variant);
    expect(cheap.switchCost).toBeGreaterThan(0);
    expect(cheap.objective).toBeCloseTo(free.objective - cheap.switchCost, 9);
    const slow = stages.map((s, i) =>
      i === 0 ? { ...s, variants: s.variants.map((v) => ({ ...v, loadMs: 10_000_000 })) } : s,
    );
    expect(solveIpaChain({ ...p, stages: slow })!.stages[0]!.variant).toBe(running);
  });

  it("bad problems get clear errors", () => {
    const p = twoStage(5);
    expect(() => solveIpaChain({ ...p, sloMs: 0 })).toThrow(/SLO/);
    expect(() =>
      solveIpaChain({
        ...p,
        stages: [{ ...p.stages[0]!, variants: [{ ...p.stages[0]!.variants[0]!, accuracy: 71 }] }],
      }),
    ).toThrow(/\[0, 1\]/);
    expect(() => solveIpaMilp({ ...p, edges: [{ from: "det", to: "nope" }] }, highs)).toThrow(/unknown stage/);
    expect(() =>
      solveIpaMilp(
        {
          ...p,
          edges: [
            { from: "det", to: "cls" },
            { from: "cls", to: "det" },
          ],
        },
        highs,
      ),
    ).toThrow(/cycle/);
  });
});
