import { describe, expect, it } from "vitest";
import { horizontal } from "../../../src/autoscaler/planner/dp.js";
import { fa2Plan, type Fa2Graph } from "../../../src/autoscaler/planner/fa2.js";
import { lat, queueMs, throughput, unitFor, type StageModel } from "../../../src/autoscaler/planner/model.js";
import { THEMIS_PIPELINES } from "../../../src/autoscaler/planner/pipelines.js";
import { seededRandom } from "../../../src/stats/random.js";
import { Fa2Policy } from "../../../src/autoscaler/scaling/fa2.js";
import { HorizontalPolicy } from "../../../src/autoscaler/scaling/horizontal.js";
import type { Observation, PipelineScalingPolicy } from "../../../src/autoscaler/types.js";
import { fittedModel } from "../../../src/core/variant-model.js";

/** Every combination of (batch, cores) per stage, the longest path within the SLO: FA2's reference. */
function bruteForce(g: Fa2Graph, sloMs: number, bMax: number, unit: number): number | null {
  const T = Math.floor(sloMs / unit + 1e-9);
  const configs = g.stages.map((s) => {
    const out: { span: number; cost: number }[] = [];
    for (const c of s.cores ?? [1])
      for (let b = 1; b <= Math.min(bMax, s.maxBatch); b++) {
        const span = lat(s.model, b, c, "v1", unit) + queueMs(b, s.lambda, "v1", unit);
        const h = throughput(s.model, b, c, "v1", unit);
        if (!Number.isFinite(span) || span > T || h <= 0) continue;
        out.push({ span, cost: Math.max(1, Math.ceil(s.lambda / h - 1e-12)) * c });
      }
    return out;
  });
  const index = new Map(g.stages.map((s, i) => [s.name, i]));
  const edges = g.edges ?? g.stages.slice(1).map((s, i) => ({ from: g.stages[i]!.name, to: s.name }));
  const pred: number[][] = g.stages.map(() => []);
  for (const e of edges) pred[index.get(e.to)!]!.push(index.get(e.from)!);
  let best: number | null = null;
  const pick: { span: number; cost: number }[] = [];
  const walk = (s: number) => {
    if (s === configs.length) {
      const done: number[] = [];
      // stages are listed in topological order in these tests
      g.stages.forEach((_, i) => (done[i] = pick[i]!.span + Math.max(0, ...pred[i]!.map((j) => done[j]!))));
      if (Math.max(...done) > T) return;
      const cost = pick.reduce((a, p) => a + p.cost, 0);
      if (best === null || cost < best) best = cost;
      return;
    }
    for (const c of configs[s]!) {
      pick[s] = c;
      walk(s + 1);
    }
  };
  walk(0);
  return best;
}

function randomModel(r: () => number): StageModel {
  return { alpha: 5 + r() * 150, beta: r() * 40, gamma: r() * 60 - 10, zeta: r() * 30 - 10 };
}

describe("FA2's planner", () => {
  it("its DP over the transformed graph is exact: equal to exhaustive search on 150 random chains and fork-joins", () => {
    let feasible = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const r = seededRandom(seed);
      const dag = seed % 3 === 0;
      const n = dag ? 4 : 1 + Math.floor(r() * 3);
      const lambda = 1 + r() * 40;
      const g: Fa2Graph = {
        stages: Array.from({ length: n }, (_, i) => ({
          name: `s${i}`,
          model: randomModel(r),
          maxBatch: 1 + Math.floor(r() * 8),
          lambda: lambda * (i > 0 && dag ? 1 + r() * 2 : 1),
          cores: r() < 0.5 ? [1, 2, 4] : [1],
        })),
        edges: dag
          ? [
              { from: "s0", to: "s1" },
              { from: "s0", to: "s2" },
              { from: "s1", to: "s3" },
              { from: "s2", to: "s3" },
            ]
          : undefined,
      };
      const sloMs = 200 + r() * 1500;
      const plan = fa2Plan(g, { sloMs, bMax: 8, semantics: "v1", unitMs: 5 });
      const ref = bruteForce(g, sloMs, 8, 5);
      expect(plan?.cost ?? null, `seed ${seed}`).toBe(ref);
      if (plan) {
        feasible++;
        expect(plan.latencyMs).toBeLessThanOrEqual(sloMs);
        if (dag) expect(plan.shape).toBe("s0 ; (s1 | s2) ; s3");
      }
    }
    expect(feasible).toBeGreaterThan(50);
    expect(feasible).toBeLessThan(150);
  });

  it("refuses a graph that is not series-parallel, saying why", () => {
    const m = { alpha: 10, beta: 1, gamma: 1, zeta: 1 };
    const st = (name: string) => ({ name, model: m, maxBatch: 4, lambda: 5 });
    // a → c, a → d, b → d: the two sources' branches cross
    const g: Fa2Graph = {
      stages: ["a", "b", "c", "d"].map(st),
      edges: [
        { from: "a", to: "c" },
        { from: "a", to: "d" },
        { from: "b", to: "d" },
      ],
    };
    expect(() => fa2Plan(g, { sloMs: 500, bMax: 4, semantics: "v1" })).toThrow(/series-parallel/);
  });

  it("with 1-core replicas it is Themis' horizontal DP: the same cost and verdict on 200 random chains and the three Themis pipelines", () => {
    const cases: { models: StageModel[]; sloMs: number; lambda: number; bMax: number }[] = [];
    for (const p of THEMIS_PIPELINES)
      for (const lambda of [1, 5, 12, 30, 60]) cases.push({ models: p.stages, sloMs: p.sloMs, lambda, bMax: p.bMax });
    for (let seed = 1; seed <= 200; seed++) {
      const r = seededRandom(500 + seed);
      const models = Array.from({ length: 1 + Math.floor(r() * 3) }, () => randomModel(r));
      cases.push({ models, sloMs: 200 + r() * 2000, lambda: 1 + r() * 50, bMax: 1 + Math.floor(r() * 8) });
    }
    let feasible = 0;
    for (const [k, c] of cases.entries()) {
      const unitMs = unitFor(c.models, 1, "v1", c.sloMs);
      const h = horizontal(c.models, {
        sloMs: c.sloMs,
        lambda: c.lambda,
        bMax: c.bMax,
        cMax: 1,
        semantics: "v1",
        unitMs,
      });
      const f = fa2Plan(
        { stages: c.models.map((model, i) => ({ name: `s${i}`, model, maxBatch: c.bMax, lambda: c.lambda })) },
        { sloMs: c.sloMs, bMax: c.bMax, semantics: "v1" },
      );
      expect(f?.cost ?? null, `case ${k}`).toBe(h?.cost ?? null);
      if (f) feasible++;
    }
    expect(feasible).toBeGreaterThan(100);
  });

  it("differs where the joint choice wins: a stage whose per-batch overhead is parallel gets a 2-core replica at b=6 instead of four 1-core ones at b=2", () => {
    // Stage A: l(b,c) = (10·b + 60)/c ms — a 60-ms setup per batch and 10 ms per row, all of it parallel.
    // SLO 120 ms, 100 req/s. On one core the setup eats half the budget: b = 2 takes 80 ms + 10 ms of batch
    // formation and serves 25 req/s (b = 3, 110 ms, serves 33), so four replicas. Two cores halve the
    // batch time, so a batch of 6 fits (60 ms + 50 ms of formation) and spreads the setup over 6 rows:
    // one replica serves 100 req/s — 2 cores for stage A instead of 4. Horizontal never asks what a
    // replica's cores do to the batch that fits; FA2 chooses batch, cores and replicas together.
    const A = { alpha: 10, beta: 0, gamma: 60, zeta: 0 };
    const B = { alpha: 5, beta: 1, gamma: 2, zeta: 2 };
    const stages = [A, B].map((model, i) => ({ name: `s${i}`, model, maxBatch: 8, lambda: 100 }));
    const h = horizontal([A, B], { sloMs: 120, lambda: 100, bMax: 8, cMax: 1, semantics: "v1", unitMs: 1 })!;
    const f = fa2Plan(
      { stages: stages.map((s) => ({ ...s, cores: [1, 2, 4] })) },
      { sloMs: 120, bMax: 8, semantics: "v1", unitMs: 1 },
    )!;
    expect(h.stages[0]).toMatchObject({ batch: 2, cores: 1, replicas: 4 });
    expect(f.stages[0]).toMatchObject({ batch: 6, cores: 2, replicas: 1 });
    expect(h.cost).toBe(5);
    expect(f.cost).toBe(3);
  });
});

describe("the fa2 policy against horizontal", () => {
  const obs = (task: string, fit: StageModel, rate: number, sloMs: number): Observation => ({
    now: 0,
    task,
    sloMs,
    rateNow: rate,
    ratePred: rate,
    concurrency: 0,
    queueLength: 0,
    misses: 0,
    tightestBudgetMs: sloMs,
    avgBatch: 1,
    recent: [],
    served: [],
    busyMs: 0,
    sinceMs: 1000,
    instances: [{ id: `${task}-1`, variant: "v", cores: 1, state: "ready" }],
    variants: [fittedModel({ name: "v", accuracy: 0.9, maxBatch: 8, fit, loadMs: 1000 })],
    variant: "v",
    coreBudget: 64,
    maxCores: 8,
  });
  const total = (plans: { instances: { cores: number }[] }[]) =>
    plans.map((p) => p.instances.reduce((a, i) => a + i.cores, 0));

  it("agree on the Themis pipelines when FA2 is held to 1-core replicas, and FA2 never needs more cores when it may use more", () => {
    for (const p of THEMIS_PIPELINES)
      for (const rate of [2, 8, 20, 40]) {
        const stages = p.stages.map((m, i) => obs(`${p.name}-${i}`, m, rate, p.sloMs));
        const po = { now: 0, pipeline: p.name, sloMs: p.sloMs, stages };
        const hp: PipelineScalingPolicy = new HorizontalPolicy();
        const one: PipelineScalingPolicy = new Fa2Policy({ cores: [1] });
        const joint: PipelineScalingPolicy = new Fa2Policy();
        const h = total(hp.decidePipeline(po, hp.initialState()).plans);
        const f1 = total(one.decidePipeline(po, one.initialState()).plans);
        const f = total(joint.decidePipeline(po, joint.initialState()).plans);
        expect(
          f1.reduce((a, b) => a + b),
          `${p.name} at ${rate}`,
        ).toBe(h.reduce((a, b) => a + b));
        expect(f.reduce((a, b) => a + b)).toBeLessThanOrEqual(h.reduce((a, b) => a + b));
      }
  });

  it("differ on the constructed stage: fa2 plans one 2-core replica where horizontal plans four 1-core ones", () => {
    const o = obs("setup-heavy", { alpha: 10, beta: 0, gamma: 60, zeta: 0 }, 100, 120);
    const hp: PipelineScalingPolicy = new HorizontalPolicy();
    const h = hp.decide(o, hp.initialState()).plan;
    const f = new Fa2Policy().decide(o, null).plan;
    expect(h.instances.map((i) => i.cores)).toEqual([1, 1, 1, 1]);
    expect(f.instances.map((i) => i.cores)).toEqual([2]);
    expect(f.batch).toBe(6);
    expect(f.reason).toMatch(/b=6, 1 × 2 cores/);
  });
});
