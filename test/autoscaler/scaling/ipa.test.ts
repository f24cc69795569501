import { describe, expect, it } from "vitest";
import { makeScalingPolicy, SCALING_POLICY_NAMES } from "../../../src/autoscaler/scaling/index.js";
import { IpaPolicy, IPA_INTERVAL_MS } from "../../../src/autoscaler/scaling/ipa.js";
import { loadHighsSolver } from "../../../src/autoscaler/planner/ipa-milp.js";
import { ipaForecaster } from "../../../src/autoscaler/scaling/ipa-setup.js";
import { MaxTrendForecaster } from "../../../src/autoscaler/forecast/max-trend.js";
import type { Observation, PipelineObservation, PipelineScalingPolicy, Plan } from "../../../src/autoscaler/types.js";
import { fittedModel } from "../../../src/core/variant-model.js";
import type { VariantModel } from "../../../src/router/scheduling/types.js";
import { drive } from "../../support/policy-driver.js";

const v = (name: string, accuracy: number, alpha: number, zeta: number, loadMs: number): VariantModel =>
  fittedModel({ name, accuracy, maxBatch: 8, fit: { alpha, beta: alpha / 10, gamma: 2, zeta }, loadMs });

const DETECT = [v("yolo-n", 0.7, 12, 3, 400), v("yolo-s", 0.8, 35, 5, 900), v("yolo-m", 0.88, 100, 8, 2000)];
const CLASSIFY = [v("r18", 0.7, 8, 2, 300), v("r50", 0.76, 25, 3, 800), v("r152", 0.78, 70, 5, 1800)];

function stage(task: string, variants: VariantModel[], running: string, count: number, rate: number): Observation {
  return {
    now: 0,
    task,
    sloMs: 600,
    rateNow: rate,
    ratePred: rate,
    concurrency: 0,
    queueLength: 0,
    misses: 0,
    tightestBudgetMs: 600,
    avgBatch: 1,
    recent: [],
    served: [],
    busyMs: 0,
    sinceMs: 1000,
    instances: Array.from({ length: count }, (_, i) => ({
      id: `${task}-${i}`,
      variant: running,
      cores: 1,
      state: "ready" as const,
    })),
    variants,
    variant: running,
    coreBudget: 64,
    maxCores: 8,
  };
}

const pipeline = (rate: number, det = "yolo-m", cls = "r152", n = 1): PipelineObservation => ({
  now: 0,
  pipeline: "video",
  sloMs: 600,
  stages: [stage("detect", DETECT, det, n, rate), stage("classify", CLASSIFY, cls, n, rate)],
});

const variantsOf = (plans: Plan[]) => plans.map((p) => [...new Set(p.instances.map((i) => i.variant))]);

describe("the ipa policy", () => {
  it("decides every 10 s, and under a load step switches to lighter variants with the switch's measured cold start in its reason", () => {
    const d = drive(new IpaPolicy());
    expect(new IpaPolicy().intervalMs).toBe(IPA_INTERVAL_MS);
    const calm = d.decidePipeline(pipeline(2));
    expect(variantsOf(calm)).toEqual([["yolo-m"], ["r152"]]);
    expect(calm.every((p) => p.scope === "task")).toBe(true);
    const surge = d.decidePipeline(pipeline(80));
    const after = variantsOf(surge);
    expect(after).not.toEqual([["yolo-m"], ["r152"]]);
    const switched = surge.find((p, i) => p.instances[0]!.variant !== (i === 0 ? "yolo-m" : "r152"))!;
    const to = switched.instances[0]!.variant;
    const loadMs = [...DETECT, ...CLASSIFY].find((x) => x.name === to)!.loadMs;
    expect(switched.reason).toContain(`→ ${to} (load ${loadMs} ms`);
    expect(switched.reason).toMatch(/PAS 0\.\d+, \d+ cores, objective/);
  });

  it("keeps its plan within the cluster's core budget: cores priced up until the optimum fits", () => {
    const budget = (n: number): PipelineObservation => {
      const p = pipeline(40);
      return { ...p, stages: p.stages.map((s) => ({ ...s, coreBudget: n })) };
    };
    const cores = (plans: Plan[]) => plans.reduce((a, p) => a + p.instances.reduce((b, i) => b + i.cores, 0), 0);
    const free = new IpaPolicy({ preset: "accuracy-first" }).decidePipeline(budget(64), null).plans;
    expect(cores(free)).toBeGreaterThan(4);
    const tight = new IpaPolicy({ preset: "accuracy-first" }).decidePipeline(budget(4), null).plans;
    expect(cores(tight)).toBeLessThanOrEqual(4);
    expect(tight[0]!.reason).toMatch(/cores priced ×\d+ to fit the core budget of 4 \(\d+ wanted\)/);
    // fewer cores carry the same load with lighter variants
    const acc = (plans: Plan[]) =>
      plans.reduce(
        (a, p, i) => a * [DETECT, CLASSIFY][i]!.find((x) => x.name === p.instances[0]!.variant)!.accuracy,
        1,
      );
    expect(acc(tight)).toBeLessThan(acc(free));
  });

  it("the presets trace a trade-off at the same load", () => {
    const plans = (["accuracy-first", "balanced", "resource-first"] as const).map(
      (preset) => new IpaPolicy({ preset }).decidePipeline(pipeline(40), null).plans,
    );
    const cores = plans.map((ps) => ps.reduce((a, p) => a + p.instances.reduce((b, i) => b + i.cores, 0), 0));
    const pas = plans.map((ps) =>
      ps.reduce((a, p, i) => a * [DETECT, CLASSIFY][i]!.find((x) => x.name === p.instances[0]!.variant)!.accuracy, 1),
    );
    expect(cores[0]).toBeGreaterThanOrEqual(cores[1]!);
    expect(cores[1]).toBeGreaterThanOrEqual(cores[2]!);
    expect(pas[0]).toBeGreaterThan(pas[2]!);
  });

  it("the HiGHS solver and the DP give the same plan's objective through the policy", async () => {
    const highs = await loadHighsSolver();
    for (const rate of [1, 10, 40, 90]) {
      const dp = new IpaPolicy();
      const milp = new IpaPolicy({ highs });
      const objective = (ps: Plan[]) => Number(/objective (-?[\d.]+)/.exec(ps[0]!.reason)![1]);
      expect(objective(milp.decidePipeline(pipeline(rate), null).plans)).toBeCloseTo(
        objective(dp.decidePipeline(pipeline(rate), null).plans),
        3,
      );
    }
  });

  it("when nothing meets the SLO it serves the load as fast as it can and says so", () => {
    const p = pipeline(50);
    const tight = { ...p, sloMs: 5, stages: p.stages.map((s) => ({ ...s, sloMs: 5 })) };
    const plans = new IpaPolicy().decidePipeline(tight, null).plans;
    expect(plans[0]!.mode).toBe("fallback");
    expect(plans[0]!.reason).toMatch(/no configuration meets 5 ms/);
    expect(variantsOf(plans)).toEqual([["yolo-n"], ["r18"]]);
  });

  it("plans a single task too (decide)", () => {
    const plan = new IpaPolicy().decide(stage("detect", DETECT, "yolo-n", 1, 1), null).plan;
    expect(plan.instances).toEqual([{ variant: "yolo-m", cores: 1 }]);
  });
});

describe("IPA's baselines", () => {
  const policy = (name: string) => makeScalingPolicy(name) as PipelineScalingPolicy;

  it("are registered by name, with IPA's 10-s interval", () => {
    for (const name of ["ipa", "fa2", "fa2-low", "fa2-high", "rim-low", "rim-high"])
      expect(SCALING_POLICY_NAMES).toContain(name);
    for (const name of ["ipa", "fa2-low", "fa2-high", "rim-low", "rim-high"])
      expect((makeScalingPolicy(name) as { intervalMs?: number }).intervalMs).toBe(IPA_INTERVAL_MS);
  });

  it("fa2-low and fa2-high only scale, on the lightest and the heaviest variant of every stage", () => {
    for (const rate of [2, 60]) {
      const low = policy("fa2-low").decidePipeline(pipeline(rate, "yolo-s", "r50", 2), null).plans;
      const high = policy("fa2-high").decidePipeline(pipeline(rate, "yolo-s", "r50", 2), null).plans;
      expect(variantsOf(low)).toEqual([["yolo-n"], ["r18"]]);
      expect(variantsOf(high)).toEqual([["yolo-m"], ["r152"]]);
      // the pinned variant replaces the running one: the whole stage is the plan's
      expect(low.every((p) => p.scope === "task")).toBe(true);
    }
    const cores = (ps: Plan[]) => ps.reduce((a, p) => a + p.instances.length, 0);
    expect(cores(policy("fa2-high").decidePipeline(pipeline(60), null).plans)).toBeGreaterThan(
      cores(policy("fa2-low").decidePipeline(pipeline(60), null).plans),
    );
  });

  it("rim-low and rim-high only switch: the replicas stay fixed whatever the load, the variant follows it", () => {
    for (const [name, n] of [
      ["rim-low", 1],
      ["rim-high", 4],
    ] as const) {
      const calm = policy(name).decidePipeline(pipeline(1, "yolo-s", "r50", n), null).plans;
      const busy = policy(name).decidePipeline(pipeline(30 * n, "yolo-s", "r50", n), null).plans;
      for (const p of [...calm, ...busy]) expect(p.instances.length).toBe(n);
      expect(variantsOf(calm)).not.toEqual(variantsOf(busy));
    }
    const custom = makeScalingPolicy("rim-low", { rimLowReplicas: [2, 3] }) as PipelineScalingPolicy;
    const plans = custom.decidePipeline(pipeline(5), null).plans;
    expect(plans.map((p) => p.instances.length)).toEqual([2, 3]);
  });
});

describe("IPA's experiment setup", () => {
  it("forecasts the next 20 s: a burst 15 s ago still counts, where the loop's 10-s forecaster has forgotten it", async () => {
    const history = Array.from({ length: 60 }, (_, i) => (i === 45 ? 50 : 10));
    expect(await ipaForecaster().predict(history)).toBeGreaterThanOrEqual(50);
    expect(await new MaxTrendForecaster().predict(history)).toBeLessThan(50);
  });
});
