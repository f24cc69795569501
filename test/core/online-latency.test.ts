import { describe, expect, it } from "vitest";
import { OnlineLatencyModel, batchBucket } from "../../src/core/online-latency.js";
import { fittedModel } from "../../src/core/variant-model.js";
import { MeasuredLatency } from "../../src/stats/measured-latency.js";
import { latencyOf } from "../../src/stats/latency-model.js";
import { Xoshiro128 } from "../../src/stats/random.js";
import type { TaskModel, VariantModel } from "../../src/router/scheduling/types.js";

// A variant whose profile says l(b, c) = 10·b/c + 2 ms (p50), p99 10 % above.
const fit = { alpha: 11, beta: 0, gamma: 0, zeta: 2.2 };
const points = [1, 2].flatMap((c) =>
  [1, 2, 4, 8].map((b) => ({ batch: b, cores: c, p50_ms: (10 * b) / c + 2, p99_ms: 1.1 * ((10 * b) / c + 2) })),
);
const variant = fittedModel({
  name: "v",
  accuracy: 0.9,
  maxBatch: 8,
  fit,
  loadMs: 1000,
  measured: new MeasuredLatency(points),
});
const task: TaskModel = { name: "t", sloMs: 200, variants: [variant] };
const median = (b: number, c: number) => (10 * b) / c + 2;

/** Runs `n` batches on `instance`, each `factor(b)` times the profile's median with a 5 % lognormal spread. */
function serve(
  m: OnlineLatencyModel,
  instance: string,
  n: number,
  factor: (rows: number) => number,
  rng: Xoshiro128,
  cores = 1,
): void {
  for (let i = 0; i < n; i++) {
    const rows = 1 + rng.int(8);
    const computeMs = median(rows, cores) * factor(rows) * Math.exp(0.05 * rng.normal());
    m.observe({ task: "t", variant: "v", instance, rows, computeMs }, cores);
  }
}

describe("online latency model", () => {
  it("learns a machine 0.42× as slow as profiled and predicts each batch within 10 %; planners see it in the fit", () => {
    const m = new OnlineLatencyModel();
    const [v] = m.wrap(task).variants as [VariantModel];
    expect(v.latency(4, 1)).toBeCloseTo(variant.latency(4, 1), 9); // nothing learnt yet: the profile
    serve(m, "a", 200, () => 0.42, new Xoshiro128(1));
    const inst = v.on!("a");
    expect(inst.latency(4, 1) / variant.latency(4, 1)).toBeCloseTo(0.42, 1);
    expect(inst.measured!.median(3, 1) / median(3, 1)).toBeCloseTo(0.42, 1);
    // the task-level view (planners, the router's deadline checks) carries the fleet's factor
    expect(v.fit.alpha / fit.alpha).toBeCloseTo(0.42, 1);
    expect(v.latency(1, 1) / variant.latency(1, 1)).toBeCloseTo(0.42, 1);
    const [c] = m.instances();
    expect(c!.error.median).toBeLessThan(0.1);
    expect(m.changes()).toEqual([]); // a steady speed is not a change
  });

  it("finds a 1.5× slowdown of one instance within a few batches, logs it, and corrects that instance only", () => {
    const drift: unknown[] = [];
    const m = new OnlineLatencyModel(
      {},
      () => undefined,
      () => 42,
      (e) => drift.push(e),
    );
    const [v] = m.wrap(task).variants as [VariantModel];
    const rng = new Xoshiro128(2);
    serve(m, "a", 100, () => 1, rng);
    serve(m, "b", 100, () => 1, rng);
    const before = m.correction("t");
    expect(before.variants.v).toBeCloseTo(1, 1);
    serve(m, "a", 12, () => 1.5, rng);
    expect(drift).toHaveLength(1);
    expect(drift[0]).toMatchObject({ instance: "a", direction: "slower", at: 42 });
    expect((drift[0] as { to: number }).to).toBeGreaterThan(1.4);
    expect((drift[0] as { to: number }).to).toBeLessThan(1.6);
    serve(m, "a", 20, () => 1.5, rng);
    expect(v.on!("a").latency(2, 1) / variant.latency(2, 1)).toBeCloseTo(1.5, 1);
    expect(v.on!("b").latency(2, 1) / variant.latency(2, 1)).toBeCloseTo(1, 1);
    // the fleet: what two instances carry together, 2 / (1/1.5 + 1/1) = 1.2
    expect(v.fit.zeta / fit.zeta).toBeCloseTo(1.2, 1);
    const after = m.correction("t");
    expect(after.changes).toHaveLength(1);
    expect(after.instances.a).toBeGreaterThan(1.4);
    expect(m.correction("t").changes).toEqual([]); // each change is reported once
  });

  it("keeps a factor per batch bucket where batching deviates from the profile differently", () => {
    const m = new OnlineLatencyModel();
    const [v] = m.wrap(task).variants as [VariantModel];
    // small batches as profiled, batches of 5-8 twice as slow (a cache that no longer holds them)
    serve(m, "a", 400, (rows) => (rows > 4 ? 2 : 1), new Xoshiro128(3));
    const a = v.on!("a");
    expect(batchBucket(8)).toBe(3);
    expect(a.latency(1, 1) / variant.latency(1, 1)).toBeCloseTo(1, 1);
    expect(a.latency(8, 1) / variant.latency(8, 1)).toBeCloseTo(2, 1);
    expect(m.changes()).toEqual([]);
  });

  it("starts a new instance from what its place showed, else from the whole cluster", () => {
    const places: Record<string, string> = { a: "node 0", b: "node 1", c: "node 0", d: "node 2" };
    const m = new OnlineLatencyModel({}, (id) => places[id]);
    const [v] = m.wrap(task).variants as [VariantModel];
    const rng = new Xoshiro128(4);
    serve(m, "a", 100, () => 2, rng);
    serve(m, "b", 100, () => 1, rng);
    // c shares node 0 with a; d's node has shown nothing: the cluster's mean speed
    expect(v.on!("c").latency(1, 1) / variant.latency(1, 1)).toBeCloseTo(2, 1);
    const d = v.on!("d").latency(1, 1) / variant.latency(1, 1);
    expect(d).toBeGreaterThan(1.1);
    expect(d).toBeLessThan(1.9);
  });

  it("republishes (and bumps the revision caches key on) only when a factor moves by more than 2 %", () => {
    const m = new OnlineLatencyModel();
    const [v] = m.wrap(task).variants as [VariantModel];
    const rng = new Xoshiro128(5);
    serve(m, "a", 50, () => 1, rng);
    const inst = v.on!("a");
    const r0 = inst.revision!;
    let bumps = 0;
    let last = r0;
    for (let i = 0; i < 200; i++) {
      serve(m, "a", 1, () => 1, rng);
      if (inst.revision !== last) bumps++;
      last = inst.revision!;
    }
    expect(bumps).toBeLessThan(40); // a steady instance rarely republishes
    serve(m, "a", 20, () => 3, rng);
    expect(inst.revision).toBeGreaterThan(last);
    expect(v.on!("a")).toBe(inst); // one view object per instance
  });

  it("forgets stopped instances: the fleet factor follows the ones left", () => {
    const m = new OnlineLatencyModel();
    const [v] = m.wrap(task).variants as [VariantModel];
    const rng = new Xoshiro128(6);
    serve(m, "slow", 100, () => 2, rng);
    serve(m, "fast", 100, () => 1, rng);
    expect(v.fit.alpha / fit.alpha).toBeCloseTo(4 / 3, 1);
    m.retain(new Set(["fast"]));
    expect(v.fit.alpha / fit.alpha).toBeCloseTo(1, 1);
    expect(m.speedOf("slow")).toBeUndefined();
  });

  it("keeps measured points per (variant, cores, batch) when asked to, as a profile would state them", () => {
    const m = new OnlineLatencyModel({ keepSamples: 64 });
    m.wrap(task);
    // the last 64 of 128 batches are kept: 10..73 ms
    for (let i = 0; i < 128; i++)
      m.observe({ task: "t", variant: "v", instance: "a", rows: 2, computeMs: i < 64 ? 500 : i - 54 }, 1);
    const pts = m.points();
    expect(pts).toHaveLength(1);
    expect(pts[0]).toMatchObject({ task: "t", variant: "v", batch: 2, cores: 1, samples: 64 });
    expect(pts[0]!.p50_ms).toBeCloseTo(41.5, 9);
    expect(pts[0]!.p99_ms).toBeCloseTo(72.37, 9);
    expect(pts[0]!.mean_ms).toBeCloseTo(41.5, 9);
    // profile points are of the uncorrected model: nothing learnt changes the fitted profile itself
    expect(latencyOf(variant.fit, 2, 1)).toBeCloseTo(latencyOf(fit, 2, 1), 9);
  });
});
