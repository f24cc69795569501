import { describe, expect, it } from "vitest";
import { diff } from "../../src/autoscaler/actuator.js";
import { InfaasScalingPolicy } from "../../src/autoscaler/scaling/infaas.js";
import { KpaPolicy } from "../../src/autoscaler/scaling/kpa.js";
import { RayPolicy } from "../../src/autoscaler/scaling/ray.js";
import { SpongePolicy } from "../../src/autoscaler/scaling/sponge.js";
import { ThemisV1Policy } from "../../src/autoscaler/scaling/themis-v1.js";
import { HorizontalPolicy } from "../../src/autoscaler/scaling/horizontal.js";
import type { Observation, Plan } from "../../src/autoscaler/types.js";
import { fittedModel } from "../../src/core/variant-model.js";
import type { VariantModel } from "../../src/router/scheduling/types.js";
import { drive } from "../support/policy-driver.js";
import type { Instance } from "../../src/cluster/types.js";

// Themis' video detector stage (EXPERIMENTS.md), ms
const DETECTOR: VariantModel = fittedModel({
  name: "detector",
  accuracy: 0.9,
  maxBatch: 8,
  fit: { alpha: 148.82, beta: 37.49, gamma: 5.43, zeta: -15.48 },
  loadMs: 3000,
});
const FASTER: VariantModel = fittedModel({
  name: "faster",
  accuracy: 0.8,
  maxBatch: 8,
  fit: { alpha: 30, beta: 8, gamma: 1, zeta: 2 },
  loadMs: 2000,
});

function obs(over: Partial<Observation> & { now: number }, instances: [number, string?][] = [[1]]): Observation {
  return {
    task: "video",
    sloMs: 780,
    rateNow: 5,
    recent: Array.from({ length: 10 }, () => over.rateNow ?? 5),
    served: [],
    busyMs: 0,
    sinceMs: 1000,
    ratePred: 5,
    concurrency: 0,
    queueLength: 0,
    misses: 0,
    tightestBudgetMs: 780,
    avgBatch: 1,
    instances: instances.map(([cores, variant], i) => ({
      id: `i${i}`,
      variant: variant ?? "detector",
      cores,
      state: "ready",
    })),
    variants: [DETECTOR, FASTER],
    variant: "detector",
    coreBudget: 64,
    maxCores: 8,
    ...over,
  };
}
const shape = (p: Plan) => p.instances.map((i) => i.cores);
const apply = (p: Plan): [number, string?][] => p.instances.map((i) => [i.cores, i.variant]);

describe("themis-v1 (the July-2024 rule)", () => {
  it("absorbs a surge vertically at once, holds cores while vertical, and consolidates horizontally after 5 agreeing decisions", () => {
    const t = drive(new ThemisV1Policy());
    let inst: [number, string?][] = [[1], [1]];
    // plateau: horizontal at 5 req/s
    let p = t.decide(obs({ now: 0, rateNow: 5, ratePred: 5 }, inst));
    expect(p.mode).toBe("horizontal");
    inst = apply(p);
    const base = inst.length;
    // surge ×3: the two... instances cannot carry it with their cores → vertical, more cores in place
    p = t.decide(obs({ now: 1000, rateNow: 15, ratePred: 15 }, inst));
    expect(p.mode).toBe("vertical");
    expect(p.instances.length).toBeGreaterThanOrEqual(base);
    expect(Math.max(...shape(p))).toBeGreaterThan(1);
    inst = apply(p);
    const peakCores = shape(p).reduce((a, b) => a + b, 0);
    // load drops back: while vertical, cores never go down; stabilisation counts 1..4
    for (let k = 1; k <= 4; k++) {
      p = t.decide(obs({ now: 1000 + k * 1000, rateNow: 5, ratePred: 5 }, inst));
      expect(p.mode).toBe("vertical");
      expect(p.reason).toMatch(new RegExp(`${k}/5 agreeing`));
      expect(shape(p).reduce((a, b) => a + b, 0)).toBe(peakCores);
      inst = apply(p);
    }
    // fifth agreeing decision: consolidate onto 1-core instances
    p = t.decide(obs({ now: 6000, rateNow: 5, ratePred: 5 }, inst));
    expect(p.mode).toBe("horizontal");
    expect(shape(p).every((c) => c === 1)).toBe(true);
  });

  it("a rising forecast alone triggers vertical, and a vertical decision resets the counter", () => {
    const t = drive(new ThemisV1Policy());
    const steady = t.decide(obs({ now: 0, rateNow: 5, ratePred: 5 }, [[1], [1]]));
    const inst = apply(steady);
    const p = t.decide(obs({ now: 1000, rateNow: 5, ratePred: 20 }, inst));
    expect(p.mode).toBe("vertical");
    expect(p.reason).toMatch(/forecast/);
    expect(t.state.stable).toBe(0);
  });
});

describe("themis-v1 on a pipeline", () => {
  // A1's stages as two tasks of one pipeline under a 1000-ms end-to-end SLO
  const S0: VariantModel = fittedModel({
    name: "s0",
    accuracy: 0.9,
    maxBatch: 8,
    fit: { alpha: 84.7798, beta: 21.8676, gamma: 0.34754, zeta: -3.39346 },
    loadMs: 3000,
  });
  const S1: VariantModel = fittedModel({
    name: "s1",
    accuracy: 0.9,
    maxBatch: 8,
    fit: { alpha: 61.4977, beta: 3.81527, gamma: 14.9014, zeta: 11.0415 },
    loadMs: 3000,
  });
  const stage = (v: VariantModel, rate: number, cores: number[]): Observation => ({
    ...obs({ now: 0, rateNow: rate, ratePred: rate, sloMs: 1000 }),
    task: v.name,
    variants: [v],
    variant: v.name,
    instances: cores.map((c, i) => ({ id: `${v.name}#${i}`, variant: v.name, cores: c, state: "ready" as const })),
  });

  it("plans both stages jointly: A1's vertical answer on a surge, A1's horizontal answer once stable", () => {
    const t = drive(new ThemisV1Policy());
    const surge = t.decidePipeline({
      now: 0,
      pipeline: "p",
      sloMs: 1000,
      stages: [stage(S0, 30, [1]), stage(S1, 30, [1])],
    });
    expect(surge.map((p) => p.mode)).toEqual(["vertical", "vertical"]);
    expect(surge.map(shape)).toEqual([[6], [4]]);
    let plans = surge;
    for (let k = 1; k <= 5; k++)
      plans = t.decidePipeline({
        now: k * 1000,
        pipeline: "p",
        sloMs: 1000,
        stages: [stage(S0, 30, shape(plans[0]!)), stage(S1, 30, shape(plans[1]!))],
      });
    expect(plans.map((p) => p.mode)).toEqual(["horizontal", "horizontal"]);
    expect(plans.map(shape)).toEqual([
      [1, 1, 1, 1],
      [1, 1, 1],
    ]);
  });

  it("gives each stage its own rate when a stage also serves direct traffic", () => {
    const h = drive(new HorizontalPolicy()).decidePipeline({
      now: 0,
      pipeline: "p",
      sloMs: 1000,
      stages: [stage(S0, 30, [1]), stage(S1, 60, [1])],
    });
    // stage 1 at 60 req/s batches 2: int(l(2,1)) = 156 ms → 12 req/s per instance → 5 (queue 16 ms)
    expect(h.map((p) => p.instances.length)).toEqual([4, 5]);
    expect(h.map((p) => p.batch)).toEqual([1, 2]);
  });
});

describe("horizontal (FA2-like)", () => {
  it("scales 1-core instances with the load, up and down", () => {
    const h = drive(new HorizontalPolicy());
    const low = h.decide(obs({ now: 0, rateNow: 5, ratePred: 5 }));
    const high = h.decide(obs({ now: 1000, rateNow: 30, ratePred: 30 }));
    expect(shape(low).every((c) => c === 1)).toBe(true);
    expect(high.instances.length).toBeGreaterThan(low.instances.length);
    expect(h.decide(obs({ now: 2000, rateNow: 5, ratePred: 5 })).instances.length).toBe(low.instances.length);
  });
});

describe("vertical (Sponge)", () => {
  it("keeps the instances and takes the fewest cores, then the smallest batch, for the tightest budget", () => {
    const v = drive(new SpongePolicy());
    const calm = v.decide(obs({ now: 0, rateNow: 2, ratePred: 2 }, [[1]]));
    const busy = v.decide(obs({ now: 1000, rateNow: 12, ratePred: 12 }, [[1]]));
    const tight = v.decide(obs({ now: 2000, rateNow: 12, ratePred: 12, tightestBudgetMs: 400 }, [[1]]));
    expect(calm.instances).toHaveLength(1);
    expect(busy.instances).toHaveLength(1);
    expect(shape(busy)[0]).toBeGreaterThan(shape(calm)[0]!);
    expect(shape(tight)[0]).toBeGreaterThanOrEqual(shape(busy)[0]!);
    expect(calm.batch).toBe(1);
  });
});

describe("kpa (Knative)", () => {
  it("panics when the 6-s window wants twice the instances, never scales down while panicking, and halves at most", () => {
    const k = drive(
      new KpaPolicy({
        containerConcurrency: 10,
        targetUtilization: 1,
        stableWindowMs: 60_000,
        panicWindowMs: 6_000,
        panicThreshold: 2,
        maxScaleDownRate: 2,
        maxScaleUpRate: 1000,
        minInstances: 1,
        intervalMs: 1000,
      }),
    );
    let inst: [number, string?][] = [[1]];
    for (let t = 0; t < 60; t++) inst = apply(k.decide(obs({ now: t * 1000, concurrency: 5 }, inst)));
    expect(inst).toHaveLength(1);
    // burst: 6-s window sees 40 → wants 4 ≥ 2 × 1 ready → panic
    let p = k.decide(obs({ now: 60_000, concurrency: 240 }, inst));
    expect(p.mode).toBe("panic");
    expect(p.instances.length).toBeGreaterThanOrEqual(4);
    inst = apply(p);
    const peak = inst.length;
    // the burst ends: still panicking, no scale-down
    for (let t = 61; t < 100; t++) {
      p = k.decide(obs({ now: t * 1000, concurrency: 5 }, inst));
      expect(p.instances.length).toBeGreaterThanOrEqual(peak);
      inst = apply(p);
    }
    // after 60 s of calm: stable mode, and each step at most halves
    let prev = inst.length;
    for (let t = 130; t < 200; t++) {
      p = k.decide(obs({ now: t * 1000, concurrency: 5 }, inst));
      expect(p.instances.length).toBeGreaterThanOrEqual(Math.ceil(prev / 2));
      prev = p.instances.length;
      inst = apply(p);
    }
    expect(p.mode).toBe("stable");
    expect(inst).toHaveLength(1);
  });
});

describe("ray (Ray Serve)", () => {
  it("scales up only after the wish held 30 s and down only after 600 s", () => {
    const r = drive(new RayPolicy());
    let inst: [number, string?][] = [[1]];
    for (let t = 0; t < 30; t++) {
      const p = r.decide(obs({ now: t * 1000, concurrency: 8 }, inst));
      expect(p.instances).toHaveLength(1);
    }
    const up = r.decide(obs({ now: 30_000, concurrency: 8 }, inst));
    expect(up.instances).toHaveLength(4);
    inst = apply(up);
    // The 30-s look-back still averages the busy seconds: the wish first drops below 4 replicas at
    // t = 38 s (22 of its 30 samples at 8 → ceil(5.87 / 2) = 3), so the scale-down comes 600 s later.
    for (let t = 31; t < 638; t++) {
      const p = r.decide(obs({ now: t * 1000, concurrency: 0 }, inst));
      expect(p.instances).toHaveLength(4);
    }
    expect(r.decide(obs({ now: 638_000, concurrency: 0 }, inst)).instances).toHaveLength(1);
  });
});

describe("infaas (model autoscaler)", () => {
  it("replicates when demand passes 0.95 × capacity and removes one only after 10 low signals", () => {
    const p = drive(new InfaasScalingPolicy());
    // detector b=1 c=1: l = 176.26 ms → 5.67 req/s per instance
    const add = p.decide(obs({ now: 0, rateNow: 20 }, [[1]]));
    expect(add.mode).toBe("upgrade"); // 4 detectors (4 cores) vs 1 faster (27 req/s): 4 > 1.5 × 1
    const noUpgrade = drive(new InfaasScalingPolicy()).decide({
      ...obs({ now: 0, rateNow: 8 }, [[1]]),
      variants: [DETECTOR],
    });
    expect(noUpgrade.mode).toBe("replicate");
    expect(noUpgrade.instances).toHaveLength(2);
    const q = drive(new InfaasScalingPolicy());
    const inst: [number, string?][] = [[1], [1], [1]];
    for (let k = 1; k < 10; k++) expect(q.decide(obs({ now: k * 1000, rateNow: 1 }, inst)).instances).toHaveLength(3);
    expect(q.decide(obs({ now: 10_000, rateNow: 1 }, inst)).instances).toHaveLength(2);
  });
});

describe("actuation plan", () => {
  it("resizes in place where it can, stops and shrinks before it grows and starts", () => {
    const inst = (id: string, variant: string, cores: number) =>
      ({ id, variant, cores, task: "t", state: "ready", inFlight: 0, run: () => undefined }) as Instance;
    const current = [inst("a", "v", 1), inst("b", "v", 4), inst("c", "w", 1)];
    const want = [
      { variant: "v", cores: 2 },
      { variant: "v", cores: 2 },
      { variant: "v", cores: 1 },
    ];
    const show = (p: Plan) =>
      diff(current, p).map((a) => `${a.kind} ${a.instance ?? a.variant} ${a.from ?? ""}→${a.cores}`);
    // a plan for variant v leaves w's instance (started on demand for requests v cannot serve) alone …
    expect(show({ instances: want, reason: "" })).toEqual(["resize b 4→2", "resize a 1→2", "start v →1"]);
    // … unless it is the task's whole deployment
    expect(show({ instances: want, reason: "", scope: "task" })).toEqual([
      "stop c →1",
      "resize b 4→2",
      "resize a 1→2",
      "start v →1",
    ]);
  });
});
