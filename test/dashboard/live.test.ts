// The dashboard's aggregator on its own: per-second frames from request outcomes, pipelines that
// sum their stages' instances, bounded history, and a per-request cost that stays tiny.
import { describe, expect, it } from "vitest";
import type { InstanceInfo } from "../../src/cluster/types.js";
import { LatencyHistogram } from "../../src/dashboard/latency-histogram.js";
import { LiveAggregator, type Target } from "../../src/dashboard/live.js";

const targets: Target[] = [
  { name: "a", kind: "task", sloMs: 50, stages: ["a"] },
  { name: "b", kind: "task", sloMs: 50, stages: ["b"] },
  { name: "ab", kind: "pipeline", sloMs: 80, stages: ["a", "b"] },
];
const fleet: InstanceInfo[] = [
  { id: "a-1", task: "a", variant: "v1", cores: 2, state: "ready", inFlight: 0 },
  { id: "a-2", task: "a", variant: "v1", cores: 1, state: "starting", inFlight: 0 },
  { id: "b-1", task: "b", variant: "w", cores: 1, state: "ready", inFlight: 0 },
  { id: "b-2", task: "b", variant: "w", cores: 4, state: "stopped", inFlight: 0 },
];

describe("LatencyHistogram", () => {
  it("reports percentiles within its bucket width", () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) h.add(i / 10); // 0.1 … 100 ms
    expect(h.quantile(0.5)!).toBeCloseTo(50, -0.5);
    expect(Math.abs(h.quantile(0.5)! / 50 - 1)).toBeLessThan(0.03);
    expect(Math.abs(h.quantile(0.99)! / 99 - 1)).toBeLessThan(0.03);
    h.reset();
    expect(h.quantile(0.5)).toBeNull();
  });
});

describe("LiveAggregator", () => {
  it("closes one frame per second per target", () => {
    let now = 10_000;
    const live = new LiveAggregator({ targets: () => targets, instances: () => fleet, now: () => now });
    const seen: string[] = [];
    live.subscribe((e) => seen.push(e.kind));
    for (let i = 0; i < 100; i++) {
      live.arrived("a");
      live.finished("a", i < 90 ? "v1" : "v2", i < 98 ? 5 : 80, i < 98);
    }
    live.arrived("a");
    live.finished("a", null, 50, false);
    live.batch("a", 4);
    live.batch("a", 2);
    live.arrived("ab");
    live.finished("ab", "a:v1,b:w", 12, true);
    now += 1000;
    const f = live.tick();
    const a = f.series.a!;
    expect(a.rate).toBe(101);
    expect(a.served).toBe(100);
    expect(a.failed).toBe(1);
    expect(a.attainment).toBeCloseTo(98 / 101, 2);
    expect(Math.abs(a.p50! / 5 - 1)).toBeLessThan(0.03);
    expect(Math.abs(a.p99! / 80 - 1)).toBeLessThan(0.03);
    expect(a.mix).toEqual({ v1: 90, v2: 10 });
    expect(a.batch).toBe(3);
    expect([a.instances, a.cores, a.starting]).toEqual([2, 3, 1]);
    expect(f.series.b).toMatchObject({ rate: 0, attainment: null, p99: null, instances: 1, cores: 1 });
    expect(f.series.ab).toMatchObject({ rate: 1, attainment: 1, instances: 3, cores: 4, mix: { "a:v1,b:w": 1 } });
    // the next second starts empty
    now += 1000;
    expect(live.tick().series.a).toMatchObject({ rate: 0, served: 0, p50: null, mix: {} });
    expect(seen).toEqual(["frame", "frame"]);
  });

  it("keeps the last ten minutes and the latest decisions", () => {
    let now = 0;
    const live = new LiveAggregator({ targets: () => targets, instances: () => [], now: () => now, maxDecisions: 3 });
    for (let i = 0; i < 700; i++) {
      now += 1000;
      live.tick();
    }
    for (let i = 0; i < 5; i++)
      live.decision({
        at: i,
        task: "a",
        policy: "themis",
        mode: "vertical",
        reason: "r",
        changes: [],
        before: [],
        after: [],
        rateNow: 0,
        ratePred: 0,
        queueLength: 0,
        misses: 0,
        solverMs: 0,
        actuation: null,
      });
    const h = live.history();
    expect(h.frames).toHaveLength(600);
    expect(h.frames.at(-1)!.t).toBe(700_000);
    expect(h.decisions.map((d) => d.at)).toEqual([2, 3, 4]);
  });

  it("costs well under a microsecond per request", () => {
    const live = new LiveAggregator({ targets: () => targets, instances: () => fleet });
    const n = 1_000_000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      live.arrived("a");
      live.finished("a", i % 10 ? "v1" : "v2", 1 + (i % 97), i % 50 !== 0);
    }
    const perRequestUs = ((performance.now() - t0) * 1000) / n;
    const t1 = performance.now();
    live.tick();
    const tickMs = performance.now() - t1;
    console.log(
      `aggregator: ${perRequestUs.toFixed(3)} µs per request (arrival + outcome), ${tickMs.toFixed(3)} ms per one-second frame`,
    );
    expect(perRequestUs).toBeLessThan(2);
  });
});
