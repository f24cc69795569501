import { describe, expect, it } from "vitest";
import {
  allocateCores,
  blocking,
  trimInstances,
  violationModel,
  type ShareClaim,
} from "../../src/autoscaler/sharing.js";
import { fittedModel } from "../../src/core/variant-model.js";
import { Xoshiro128 } from "../../src/stats/random.js";

// one core serves a request in 50 ms (20 req/s at b = 1, no batching gain)
const model = fittedModel({
  name: "m",
  accuracy: 1,
  maxBatch: 4,
  fit: { alpha: 50, beta: 0, gamma: 0, zeta: 0 },
  loadMs: 0,
});

/** Every allocation of `budget` within the claims' bounds, by brute force: the least Σ w·V. */
function exhaustive(claims: ShareClaim[], budget: number): number {
  let best = Infinity;
  const walk = (i: number, left: number, cost: number): void => {
    if (i === claims.length) {
      best = Math.min(best, cost);
      return;
    }
    const c = claims[i]!;
    for (let g = Math.min(c.minCores, c.want); g <= Math.min(c.want, left); g++)
      walk(i + 1, left - g, cost + c.weight * c.violations(g));
  };
  walk(0, budget, 0);
  return best;
}

describe("fair sharing of a short core budget", () => {
  it("expected violations fall with cores: all arrivals with none, fewer than 1 % with twice the load's cores", () => {
    const v = violationModel({ lambda: 60, model, sloMs: 500 });
    expect(v(0)).toBe(60);
    expect(v(2)).toBeCloseTo(20, 0); // 40 carried of 60: 20/s lost
    for (let g = 0; g < 12; g++) expect(v(g + 1)).toBeLessThanOrEqual(v(g) + 1e-12);
    expect(v(6) / 60).toBeLessThan(0.01);
    expect(violationModel({ lambda: 0, model, sloMs: 500 })(0)).toBe(0);
    // M/M/c/K against textbook values: Erlang B (K = c), 2 servers offered 1 erlang → 1/5; M/M/1/1 → a/(1+a)
    expect(blocking(2, 2, 1)).toBeCloseTo(1 / 5, 12);
    expect(blocking(1, 1, 3)).toBeCloseTo(3 / 4, 12);
    // M/M/1/K at ρ = 1: every state equally likely
    expect(blocking(1, 9, 1)).toBeCloseTo(1 / 10, 12);
  });

  it("the DP finds the exhaustive optimum on 300 random problems", () => {
    const rng = new Xoshiro128(9);
    for (let k = 0; k < 300; k++) {
      const claims: ShareClaim[] = Array.from({ length: 2 + rng.int(3) }, (_, i) => {
        const v = violationModel({ lambda: 5 + 80 * rng.uniform(), model, sloMs: 100 + 900 * rng.uniform() });
        return {
          task: `t${i}`,
          weight: 0.5 + 2 * rng.uniform(),
          minCores: rng.int(3),
          want: 1 + rng.int(8),
          violations: v,
        };
      });
      const budget = 1 + rng.int(14);
      const a = allocateCores(claims, budget);
      expect(a.solver).toBe("dp");
      let used = 0;
      for (const c of claims) {
        const g = a.grants.get(c.task)!;
        expect(g).toBeLessThanOrEqual(c.want);
        used += g;
      }
      expect(used).toBeLessThanOrEqual(budget);
      const mins = claims.reduce((n, c) => n + Math.min(c.minCores, c.want), 0);
      if (mins <= budget) {
        for (const c of claims) expect(a.grants.get(c.task)!).toBeGreaterThanOrEqual(Math.min(c.minCores, c.want));
        expect(a.objective).toBeCloseTo(exhaustive(claims, budget), 9);
      }
      // no core is left idle while a task wants more
      if (claims.reduce((n, c) => n + c.want, 0) >= budget) expect(used).toBe(budget);
    }
  });

  it("a heavier weight takes cores from an equal task; a guaranteed minimum is kept; the cut is stated", () => {
    const same = (weight: number, minCores = 0): ShareClaim => ({
      task: `w${weight}m${minCores}`,
      weight,
      minCores,
      want: 8,
      violations: violationModel({ lambda: 100, model, sloMs: 500 }),
    });
    const even = allocateCores([same(1), { ...same(1), task: "other" }], 8);
    expect([...even.grants.values()].sort()).toEqual([4, 4]);
    const heavy = allocateCores([same(3), same(1)], 8);
    expect(heavy.grants.get("w3m0")).toBeGreaterThan(heavy.grants.get("w1m0")!);
    const kept = allocateCores([same(3), same(1, 3)], 8);
    expect(kept.grants.get("w1m3")).toBeGreaterThanOrEqual(3);
    expect(kept.cut.map((c) => c.task).sort()).toEqual(["w1m3", "w3m0"]);
    // minimums beyond the budget: the heaviest task's first
    const over = allocateCores([same(1, 6), same(2, 6)], 8);
    expect(over.grants.get("w2m6")).toBe(6);
    expect(over.grants.get("w1m6")).toBe(2);
  });

  it("cores nobody's objective needs go to whoever is furthest below its want", () => {
    const idle: ShareClaim = { task: "idle", weight: 1, minCores: 0, want: 4, violations: () => 0 };
    const busy: ShareClaim = {
      task: "busy",
      weight: 1,
      minCores: 0,
      want: 4,
      violations: violationModel({ lambda: 30, model, sloMs: 500 }),
    };
    const a = allocateCores([idle, busy], 6);
    expect(a.grants.get("busy")).toBe(4);
    expect(a.grants.get("idle")).toBe(2);
  });

  it("trims a plan to its grant: whole instances first, the last one shrunk", () => {
    const plan = [
      { variant: "a", cores: 1 },
      { variant: "a", cores: 4 },
      { variant: "a", cores: 2 },
    ];
    expect(trimInstances(plan, 7)).toEqual([
      { variant: "a", cores: 4 },
      { variant: "a", cores: 2 },
      { variant: "a", cores: 1 },
    ]);
    expect(trimInstances(plan, 5)).toEqual([
      { variant: "a", cores: 4 },
      { variant: "a", cores: 1 },
    ]);
    expect(trimInstances(plan, 0)).toEqual([]);
  });

  it("refuses a weight that is not positive", () => {
    expect(() => allocateCores([{ task: "x", weight: 0, minCores: 0, want: 1, violations: () => 0 }], 1)).toThrow(
      /weight must be > 0/,
    );
  });
});
