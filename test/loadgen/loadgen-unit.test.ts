// The load generator's logic without a server: the open-loop pacer against a virtual clock (its
// timer strategy and lag accounting), the sweep's search, schedules from the trace library, and
// the request encodings written from the protocol text.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runOpenLoop, summarizeLag, type PacerTimers } from "../../src/loadgen/pacer.js";
import { buildSchedule } from "../../src/loadgen/schedule.js";
import { missReason, parseSweep, sweepRates } from "../../src/loadgen/sweep.js";
import { concreteShape, rawBytes, toHalf } from "../../src/loadgen/tensors.js";
import { serverSide } from "../../src/loadgen/client.js";
import { percentiles } from "../../src/loadgen/recorder.js";

/** A virtual clock: sleeping wakes `overshootMs` late (as setTimeout does), a poll costs 20 µs, reading the clock 1 µs. */
function virtualTimers(overshootMs: number) {
  let t = 1000;
  const queue: (() => void)[] = [];
  const timers: PacerTimers = {
    now: () => (t += 0.001),
    sleep: (ms, then) =>
      queue.push(() => {
        t += ms + overshootMs;
        then();
      }),
    poll: (then) =>
      queue.push(() => {
        t += 0.02;
        then();
      }),
  };
  const drain = () => {
    while (queue.length) queue.shift()!();
  };
  return { timers, drain, sleeps: () => queue.length };
}

describe("open-loop pacer", () => {
  it("fires every request at its time, in order, without waiting for answers", async () => {
    const v = virtualTimers(0.8);
    const times = [0, 3, 3.5, 10, 10, 25, 100];
    const fired: { i: number; scheduled: number; sent: number }[] = [];
    const done = runOpenLoop(times, (i, scheduled, sent) => fired.push({ i, scheduled, sent }), { timers: v.timers });
    v.drain();
    const r = await done;
    expect(r.fired).toBe(times.length);
    expect(fired.map((f) => f.i)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    for (const f of fired) {
      expect(f.scheduled - r.startMs).toBeCloseTo(times[f.i]!, 6);
      expect(f.sent).toBeGreaterThanOrEqual(f.scheduled);
    }
    // a late setTimeout (0.8 ms) is absorbed by the 1.5-ms polling stretch: lag stays in the µs
    const lag = summarizeLag(r.lagMs);
    expect(lag.maxMs).toBeLessThan(0.05);
    expect(lag.lagged).toBe(false);
  });

  it("reports the lag when its timers wake later than the polling stretch covers", async () => {
    const v = virtualTimers(5);
    const times = Array.from({ length: 100 }, (_, i) => i * 20);
    const done = runOpenLoop(times, () => {}, { timers: v.timers, spinMs: 2 });
    v.drain();
    const lag = summarizeLag((await done).lagMs);
    // each sleep ends 5 ms late, 2 ms of which were meant for polling: ~3 ms behind
    expect(lag.p50Ms).toBeGreaterThan(2.9);
    expect(lag.p99Ms).toBeLessThan(3.1);
    expect(lag.lagged).toBe(true);
  });

  it("fires a burst that is already due back to back, and its lag grows with the backlog", async () => {
    const v = virtualTimers(0);
    const r = runOpenLoop(new Float64Array(50), () => {}, { timers: v.timers });
    v.drain();
    const lags = Array.from((await r).lagMs);
    expect(lags.every((l, i) => i === 0 || l >= lags[i - 1]!)).toBe(true);
  });

  it("stops firing when aborted", async () => {
    const v = virtualTimers(0);
    const ac = new AbortController();
    const r = runOpenLoop(
      [0, 1, 2, 50, 60],
      (i) => {
        if (i === 2) ac.abort();
      },
      { timers: v.timers, signal: ac.signal },
    );
    v.drain();
    expect((await r).fired).toBe(3);
  });

  // Real timers on a shared machine: only what holds however busy it is (never early, all fired).
  it("keeps a real 1,000 req/s schedule, never firing early", async () => {
    const times = Array.from({ length: 300 }, (_, i) => i);
    const r = await runOpenLoop(times, () => {});
    const lag = summarizeLag(r.lagMs);
    expect(r.fired).toBe(300);
    expect(Math.min(...r.lagMs)).toBeGreaterThanOrEqual(0);
    expect(Number.isFinite(lag.maxMs)).toBe(true);
  });
});

describe("sweep", () => {
  it("parses from:to:step and rejects nonsense", () => {
    expect(parseSweep("100:500:100")).toEqual([100, 200, 300, 400, 500]);
    expect(parseSweep("0.5:1.5:0.5")).toEqual([0.5, 1, 1.5]);
    expect(() => parseSweep("100:50:10")).toThrow(/from:to:step/);
    expect(() => parseSweep("100:500")).toThrow(/from:to:step/);
  });

  it("finds the highest rate meeting a p99 target and stops at the first miss", async () => {
    const asked: number[] = [];
    // p99 grows with the rate: 300 req/s → 30 ms
    const fake = async (rate: number) => {
      asked.push(rate);
      const p = rate / 10;
      return {
        summary: { ok: 100, attainment: null, latencyMs: { p50: p / 2, p90: p, p95: p, p99: p, mean: p / 2, max: p } },
      };
    };
    const r = await sweepRates(parseSweep("100:1000:100"), { p99Ms: 45 }, fake);
    expect(r.best).toBe(400);
    expect(asked).toEqual([100, 200, 300, 400, 500]);
    expect(r.steps.at(-1)!.miss).toMatch(/p99 50\.00 ms > 45 ms/);
  });

  it("judges attainment targets, and needs an SLO for them", async () => {
    const fake = async (rate: number) => ({
      summary: {
        ok: 100,
        attainment: rate <= 200 ? 0.995 : 0.9,
        latencyMs: { p50: 1, p90: 1, p95: 1, p99: 1, mean: 1, max: 1 },
      },
    });
    expect((await sweepRates([100, 200, 300], { attainment: 0.99 }, fake)).best).toBe(200);
    expect((await sweepRates([300], { attainment: 0.99 }, fake)).best).toBeNull();
    expect(() =>
      missReason(
        { ok: 1, attainment: null, latencyMs: { p50: 1, p90: 1, p95: 1, p99: 1, mean: 1, max: 1 } },
        { attainment: 0.99 },
      ),
    ).toThrow(/--slo-ms/);
    expect(() =>
      missReason({ ok: 1, attainment: 1, latencyMs: { p50: 1, p90: 1, p95: 1, p99: 1, mean: 1, max: 1 } }, {}),
    ).toThrow(/--target/);
  });
});

describe("schedules", () => {
  it("draws Poisson, gamma and evenly spaced arrivals at the rate asked", () => {
    const p = buildSchedule({ kind: "synthetic", rate: 500, durationS: 20, arrival: "poisson" });
    expect(p.times.length / 20).toBeGreaterThan(480);
    expect(p.times.length / 20).toBeLessThan(520);
    const g = buildSchedule({ kind: "synthetic", rate: 500, durationS: 20, arrival: "gamma", cv2: 4 });
    expect(g.times.length / 20).toBeGreaterThan(440);
    expect(g.times.length / 20).toBeLessThan(560);
    const u = buildSchedule({ kind: "synthetic", rate: 100, durationS: 1, arrival: "uniform" });
    expect(Array.from(u.times.slice(0, 3))).toEqual([0, 10, 20]);
    // a sweep overrides the rate
    expect(buildSchedule({ kind: "synthetic", rate: 500, durationS: 2, arrival: "uniform" }, 50).times.length).toBe(
      100,
    );
  });

  it("slices and damps a Twitter-format trace, and rescales it to a target rate", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loadgen-"));
    const file = path.join(dir, "tw.txt");
    fs.writeFileSync(file, Array.from({ length: 100 }, (_, i) => (i < 50 ? 80 : 400)).join(" "));
    const t = buildSchedule({ kind: "trace", file, format: "twitter", startS: 40, durationS: 20, divideBy: 8 });
    expect(t.durationMs).toBe(20_000);
    // 10 s at 80/8 = 10/s, then 10 s at 400/8 = 50/s
    expect(t.times.length).toBe(600);
    const r = buildSchedule({ kind: "trace", file, format: "twitter", startS: 40, durationS: 20 }, 30);
    expect(r.times.length).toBeGreaterThan(570);
    expect(r.times.length).toBeLessThan(630);
    expect(() => buildSchedule({ kind: "trace", file: path.join(dir, "nope"), format: "twitter" })).toThrow(
      /does not exist/,
    );
    expect(() => buildSchedule({ kind: "trace", file, format: "twitter", startS: 500 })).toThrow(/past the end/);
  });

  it("reads the Azure per-minute aggregate and the Azure LLM request trace", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loadgen-"));
    const agg = path.join(dir, "agg.csv");
    fs.writeFileSync(agg, "minute,total_invocations,active_functions\n1,600,3\n2,1200,4\n");
    const a = buildSchedule({ kind: "trace", file: agg, format: "azure-functions", startS: 30, durationS: 60 });
    expect(a.durationMs).toBe(60_000);
    expect(a.times.length).toBeGreaterThan(700); // ~300 + ~600
    expect(a.times.length).toBeLessThan(1100);
    const llm = path.join(dir, "llm.csv");
    fs.writeFileSync(
      llm,
      "TIMESTAMP,ContextTokens,GeneratedTokens\n" +
        Array.from(
          { length: 40 },
          (_, i) => `2023-11-16 18:15:${String(Math.floor(i / 2)).padStart(2, "0")}.${i % 2 ? "5" : "0"}000000,10,20`,
        ).join("\n") +
        "\n",
    );
    const l = buildSchedule({ kind: "trace", file: llm, format: "azure-llm", startS: 5, durationS: 10 });
    expect(l.times.length).toBe(20);
    expect(l.times[0]).toBeCloseTo(0, 6);
    expect(
      buildSchedule({ kind: "trace", file: llm, format: "azure-llm", startS: 5, durationS: 10, divideBy: 2 }).times
        .length,
    ).toBeLessThan(20);
    // a rate above the window's mean (2/s) scales each second's count and keeps the window, shape included
    const up = buildSchedule({ kind: "trace", file: llm, format: "azure-llm", startS: 0, durationS: 20, rate: 6 });
    expect(up.durationMs).toBe(20_000);
    expect(up.times.length).toBe(120);
    expect(up.times[up.times.length - 1]).toBeGreaterThan(19_000);
    expect(
      Math.min(...Array.from({ length: 20 }, (_, s) => up.times.filter((t) => Math.floor(t / 1000) === s).length)),
    ).toBe(6);
  });
});

describe("request encoding", () => {
  it("writes little-endian tensors and length-prefixed BYTES, as the binary extension specifies", () => {
    expect(Array.from(rawBytes("FP32", [1]))).toEqual([0, 0, 0x80, 0x3f]);
    expect(Array.from(rawBytes("INT64", [-2]))).toEqual([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(Array.from(rawBytes("BYTES", ["hi"]))).toEqual([2, 0, 0, 0, 104, 105]);
    expect(Array.from(rawBytes("BOOL", [true, false]))).toEqual([1, 0]);
    expect([toHalf(1), toHalf(-2), toHalf(0.5), toHalf(65504), toHalf(1e6)]).toEqual([
      0x3c00, 0xc000, 0x3800, 0x7bff, 0x7c00,
    ]);
    expect(concreteShape([-1, 1, 28, 28], 4)).toEqual([4, 1, 28, 28]);
    expect(concreteShape([-1, -1], 2)).toEqual([2, 1]);
  });

  it("reads sloserve's response parameters and tolerates servers without them", () => {
    expect(serverSide({ slo_met: true, latency_us: 1500, queue_us: "200", variant: "linear", batch_size: 3 })).toEqual({
      sloMet: true,
      latencyUs: 1500,
      queueUs: 200,
      computeUs: undefined,
      batchSize: 3,
      variant: "linear",
    });
    expect(serverSide({})).toBeNull();
    expect(serverSide(undefined)).toBeNull();
    // the project's one quantile rule: interpolated between order statistics, as numpy reports
    expect(percentiles([3, 1, 2, 4]).p50).toBe(2.5);
    expect(percentiles([3, 1, 2, 4]).p99).toBeCloseTo(3.97, 12);
  });
});
