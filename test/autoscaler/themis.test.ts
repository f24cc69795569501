// The revised Themis rule (EXPERIMENTS.md, "the revised rule"; sloserve's `themis`), checked against a
// hand-made observation sequence whose numbers are worked out below by hand, not by the planner.
import { describe, expect, it } from "vitest";
import { ThemisPolicy, THEMIS_DEFAULTS } from "../../src/autoscaler/scaling/themis.js";
import type { Observation, Plan } from "../../src/autoscaler/types.js";
import { fittedModel } from "../../src/core/variant-model.js";
import { drive } from "../support/policy-driver.js";

// l(b,c) = 40·b/c + 8·b + 2/c + 0; the revised margin adds (40+8+2+0)/10 = 5 ms to ζ and rounds up:
//   c=1: b=1 55 ms → h 18, b=2 103 → 19, b=3 151 → 19, b=4 199 → 20
//   c=2: b=1 34 → 29, b=2 62 → 32, b=3 90 → 33
//   c=3: b=1 27 → 37, b=2 49 → 40
// Queue (exp-p99): ceil((b−1)·ln(100)·1000/λ) ms.
const STAGE = fittedModel({
  name: "m",
  accuracy: 0.9,
  maxBatch: 4,
  fit: { alpha: 40, beta: 8, gamma: 2, zeta: 0 },
  loadMs: 1000,
  memGb: 1,
});

function obs(now: number, lastSeconds: number[], forecast: number, cores: number[]): Observation {
  const recent = [...Array.from({ length: 10 - lastSeconds.length }, () => lastSeconds[0]!), ...lastSeconds];
  return {
    now,
    task: "m",
    sloMs: 300,
    rateNow: lastSeconds[lastSeconds.length - 1]!,
    recent,
    ratePred: forecast,
    concurrency: 0,
    queueLength: 0,
    misses: 0,
    tightestBudgetMs: 300,
    avgBatch: 1,
    served: [],
    busyMs: 0,
    sinceMs: 500,
    instances: cores.map((c, i) => ({ id: `m#${i}`, variant: "m", cores: c, state: "ready" as const })),
    variants: [STAGE],
    variant: "m",
    coreBudget: 64,
    maxCores: 4,
  };
}
const cores = (p: Plan) => p.instances.map((i) => i.cores).sort((a, b) => b - a);

describe("themis: the revised 2025 switching rule on a hand-made sequence", () => {
  it("waits 30 s, resizes in place on a surge, scales out with a spare, and scales in after 20 agreeing decisions", () => {
    const t = drive(new ThemisPolicy());
    expect(t.policy.intervalMs).toBe(500);
    // t = 0: the first observation starts the 30-s warm-up
    let p = t.decide(obs(0, [10], 12, [1]));
    expect(p.mode).toBe("warmup");
    expect(t.decide(obs(29_500, [10], 12, [1])).mode).toBe("warmup");

    // t = 30 s: λ = 10, target 10 + √10 = 13.2: the 1-core DP takes b = 1 (b = 2 would queue
    // ceil(4605.2/10) = 461 ms > 300), 1 instance. T = h(1,1) = 18; forecast 12 ≤ 18 and λ < T:
    // horizontal, nothing to add → the stabilisation count starts.
    p = t.decide(obs(30_000, [10], 12, [1]));
    expect(p.mode).toBe("horizontal");
    expect(p.reason).toMatch(/λ 10, T 18/);
    expect(t.state.stable).toBe(1);
    expect(cores(p)).toEqual([1]);

    // t = 30.5 s: the last second had 30 requests. λ = 30 ≥ T = 18 (and the forecast 30 > 18): vertical.
    // The vertical DP at 1 instance for 30 + √30 = 35.5 req/s: c = 1 and c = 2 carry at most 19 and 33;
    // c = 3, b = 1 carries 37 in 27 ms, cost 1 + 18·3 = 55 < c = 4's 73 → one 3-core instance, in place.
    p = t.decide(obs(30_500, [10, 30], 30, [1]));
    expect(p.mode).toBe("vertical");
    expect(cores(p)).toEqual([3]);
    expect(t.state.stable).toBe(0);

    // t = 31 s, resized: T = h(1,3) = 37 > λ = 30 and the forecast 30 ≤ 37: horizontal. The 1-core DP for
    // 35.5 req/s needs 2 instances (b = 1: ceil(35.5/18) = 2, cost 38, the shortest span of the cheapest)
    // and the stage has 1: scale out at once, and the 3-core instance shrinking to 1 core leaves a spare.
    p = t.decide(obs(31_000, [10, 30], 30, [3]));
    expect(p.mode).toBe("horizontal");
    expect(cores(p)).toEqual([1, 1, 1]);
    expect(p.reason).toMatch(/scale out now to 2 \+ 1 spare × 1 core, b=1/);
    expect(t.state.stable).toBe(0);

    // While the load holds, 2 instances would do but the stage has 3: nothing happens for 19 decisions …
    let now = 31_500;
    for (let k = 1; k < 20; k++, now += 500) {
      p = t.decide(obs(now, [30], 30, [1, 1, 1]));
      expect(p.mode).toBe("horizontal");
      expect(cores(p)).toEqual([1, 1, 1]);
      expect(t.state.stable).toBe(k);
    }
    // … the 20th agreeing decision (10 s) scales in to 2 × 1 core: no spare, nothing shrinks any more.
    p = t.decide(obs(now, [30], 30, [1, 1, 1]));
    expect(cores(p)).toEqual([1, 1]);
    expect(p.reason).toMatch(/20 agreeing decisions, 2 × 1 core/);
    expect(t.state.stable).toBe(0);
  });

  it("a forecast above capacity blocks scaling in without adding cores; vertical never takes cores back", () => {
    const t = drive(new ThemisPolicy({ ...THEMIS_DEFAULTS, warmupMs: 0 }));
    // 2 × 2 cores at b = 1 carry 2·29 = 58 req/s; λ = 10 but the forecast says 70 > 58: vertical, and the
    // vertical DP for 13.2 req/s would take 1 core — cores only go up, so the plan keeps 2 × 2.
    const p = t.decide(obs(0, [10], 70, [2, 2]));
    expect(p.mode).toBe("vertical");
    expect(cores(p)).toEqual([2, 2]);
    expect(t.state.stable).toBe(0);
    // the forecast falls back: horizontal, and only after 20 agreeing decisions 1 × 1 core + 1 spare
    let q = p;
    for (let k = 1; k <= 20; k++) q = t.decide(obs(k * 500, [10], 12, [2, 2]));
    expect(q.mode).toBe("horizontal");
    expect(cores(q)).toEqual([1, 1]);
  });

  it("goes horizontal once a stage is at C_max, whatever the forecast", () => {
    const t = drive(new ThemisPolicy({ ...THEMIS_DEFAULTS, warmupMs: 0 }));
    // λ = 60 with a 4-core instance (T = h(1,4) = 41): at C_max, so horizontal: the 1-core DP for
    // 60 + √60 = 67.7 req/s at b = 1 needs ceil(67.7/18) = 4 instances → out at once, + 1 spare
    const p = t.decide(obs(0, [60], 90, [4]));
    expect(p.mode).toBe("horizontal");
    expect(p.reason).toMatch(/at C_max = 4 cores/);
    expect(cores(p)).toEqual([1, 1, 1, 1, 1]);
  });
});
