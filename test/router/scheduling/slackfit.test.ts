import { fittedModel } from "../../../src/core/variant-model.js";
import { describe, expect, it } from "vitest";
import { makeSchedulingPolicy } from "../../../src/router/scheduling/index.js";
import { paretoSubnets, SlackFitPolicy } from "../../../src/router/scheduling/slackfit.js";
import { MeasuredLatency } from "../../../src/stats/measured-latency.js";
import type {
  InstanceView,
  NextBatch,
  PolicyContext,
  TaskModel,
  VariantModel,
} from "../../../src/router/scheduling/types.js";
import { RequestQueue } from "../../../src/router/queue.js";
import { Router } from "../../../src/router/router.js";
import { SimCluster } from "../../../src/sim/sim-cluster.js";
import { VirtualClock } from "../../../src/sim/virtual-clock.js";
import type { Request } from "../../../src/router/request.js";
import {
  ConstantServiceModel,
  FitServiceModel,
  simulate,
  type SimTask,
  type SimVariant,
} from "../../../src/sim/index.js";

// A supernet of three subnets, l(b) = fixed + per·b on one core (default buckets: 20 ms = 0.2 × the
// 100 ms SLO, from 3 ms): fast 3, 4, … 18 at b = 16; mid 8, 11, … ; accurate 18, 26, …
const sub = (subnet: string, accuracy: number, fixed: number, per: number): VariantModel => ({
  ...fittedModel({
    name: "super",
    accuracy,
    maxBatch: 16,
    fit: { alpha: per, beta: 0, gamma: fixed, zeta: 0 },
    loadMs: 500,
  }),
  subnet,
});
const FAST = sub("fast", 0.7, 2, 1);
const MID = sub("mid", 0.74, 5, 3);
const ACCURATE = sub("accurate", 0.76, 10, 8);
const SUPER: VariantModel = { ...ACCURATE, subnet: undefined, subnets: [FAST, MID, ACCURATE] };
const PLAIN = fittedModel({
  name: "plain",
  accuracy: 0.8,
  maxBatch: 8,
  fit: { alpha: 0, beta: 2, gamma: 0, zeta: 10 },
  loadMs: 500,
});
const TASK: TaskModel = { name: "t", sloMs: 100, variants: [SUPER, PLAIN] };

let seq = 0;
function req(over: Partial<Request> = {}): Request {
  seq += 1;
  return {
    seq,
    id: String(seq),
    task: "t",
    arrival: 0,
    deadline: 100,
    priority: 1,
    rows: 1,
    minAccuracy: 0,
    lateOk: false,
    input: null,
    done: () => undefined,
    ...over,
  };
}
const ctx = (now: number): PolicyContext => ({
  now,
  task: TASK,
  variant: (n) => TASK.variants.find((v) => v.name === n),
  instances: [],
  startAt: () => now,
  expectedStartAt: () => now,
});
const inst = (variant = "super", inFlight = 0): InstanceView => ({ id: `${variant}#1`, variant, cores: 1, inFlight });
function queueOf(rs: Request[]): RequestQueue {
  const q = new RequestQueue("deadline");
  for (const r of rs) q.push(r);
  return q;
}
function batch(next: NextBatch) {
  if (next.kind !== "batch") throw new Error(`expected a batch, got ${JSON.stringify(next)}`);
  return { subnet: next.choice.subnet, size: next.choice.take.length, take: next.choice.take, drop: next.choice.drop };
}

describe("slackfit", () => {
  it("with much slack runs the accurate subnet", () => {
    const one = batch(new SlackFitPolicy().nextBatch(inst(), queueOf([req({ deadline: 100 })]), ctx(0)));
    expect(one).toMatchObject({ subnet: "accurate", size: 1 });
    // three queued, 100 ms of slack: accurate at b = 3 (34 ms) is alone in the highest bucket that fits, [23, 43)
    const three = batch(new SlackFitPolicy().nextBatch(inst(), queueOf([req(), req(), req()]), ctx(0)));
    expect(three).toMatchObject({ subnet: "accurate", size: 3 });
  });

  it("with little slack runs a fast subnet with a big batch, in EDF order", () => {
    const rs = Array.from({ length: 20 }, (_, i) => req({ deadline: 20 + i }));
    const q = queueOf([...rs].reverse());
    // slack 20: everything that fits is in bucket [3, 23) ms: fast b = 16 (18 ms), mid b = 5 (20), accurate b = 1 (18)
    const b = batch(new SlackFitPolicy().nextBatch(inst(), q, ctx(0)));
    expect(b).toMatchObject({ subnet: "fast", size: 16 });
    expect(b.take).toEqual(rs.slice(0, 16));
  });

  it("drops a hopeless head (504) and schedules the next request by its own slack", () => {
    const hopeless = req({ deadline: 2 }); // the fastest configuration needs 3 ms
    const fine = req({ deadline: 100 });
    const b = batch(new SlackFitPolicy().nextBatch(inst(), queueOf([hopeless, fine]), ctx(0)));
    expect(b.drop).toEqual([hopeless]);
    expect(b).toMatchObject({ subnet: "accurate", size: 1 });
    const alone = new SlackFitPolicy().nextBatch(inst(), queueOf([req({ deadline: 2 })]), ctx(0));
    expect(alone.kind).toBe("idle");
    expect(alone.kind === "idle" && alone.drop).toHaveLength(1);
  });

  it("serves hopeless requests late on the fastest subnet with the largest batch when the task serves late", () => {
    const rs = Array.from({ length: 20 }, () => req({ deadline: 1, lateOk: true }));
    const b = batch(new SlackFitPolicy().nextBatch(inst(), queueOf(rs), ctx(0)));
    expect(b).toMatchObject({ subnet: "fast", size: 16, drop: [] });
  });

  it("respects accuracy floors: the head's floor bounds the subnet, stricter requests wait", () => {
    const picky = req({ deadline: 20, minAccuracy: 0.74 });
    const loose = Array.from({ length: 10 }, (_, i) => req({ deadline: 21 + i }));
    const strict = req({ deadline: 22, minAccuracy: 0.76 });
    const b = batch(new SlackFitPolicy().nextBatch(inst(), queueOf([picky, strict, ...loose]), ctx(0)));
    // fast is below the head's floor: mid at b = 5 (20 ms) is the largest batch in the top bucket
    expect(b.subnet).toBe("mid");
    expect(b.size).toBe(5);
    expect(b.take).toContain(picky);
    expect(b.take).not.toContain(strict);
    // a floor no subnet reaches: the request is not this variant's to serve
    const none = new SlackFitPolicy().nextBatch(inst(), queueOf([req({ minAccuracy: 0.9 })]), ctx(0));
    expect(none).toEqual({ kind: "idle", drop: [] });
  });

  it("honours pins: requests pinned elsewhere are skipped, a pin to the supernet lets it pick the subnet", () => {
    const elsewhere = req({ deadline: 20, pinned: "plain" });
    const here = req({ deadline: 100, pinned: "super", minAccuracy: 0.99 });
    const b = batch(new SlackFitPolicy().nextBatch(inst(), queueOf([elsewhere, here]), ctx(0)));
    expect(b.take).toEqual([here]);
    expect(b.subnet).toBe("accurate"); // the pin caps its floor at the most accurate subnet
    // an ordinary variant is one subnet: SlackFit still batches by slack
    const p = batch(new SlackFitPolicy().nextBatch(inst("plain"), queueOf([elsewhere, req({ deadline: 30 })]), ctx(0)));
    expect(p).toMatchObject({ subnet: undefined, size: 2 });
  });

  it("counts the slack from when a prefetched batch would start, behind the running one", () => {
    const rs = [req({ deadline: 100 }), req({ deadline: 100 }), req({ deadline: 100 })];
    // idle: 100 ms of slack, accurate at b = 3 (34 ms, bucket [23, 43)); behind a batch predicted to end
    // at 80: 20 ms, all in bucket [3, 23), where the largest batch queued (3) on the most accurate
    // subnet that fits it is mid (14 ms; accurate b = 3 needs 34)
    const idle = batch(new SlackFitPolicy().nextBatch(inst(), queueOf(rs), ctx(0)));
    expect(idle).toMatchObject({ subnet: "accurate", size: 3 });
    const behind = { ...ctx(0), startAt: () => 80 };
    const prefetched = new SlackFitPolicy().nextBatch(inst("super", 1), queueOf(rs), behind);
    expect(batch(prefetched)).toMatchObject({ subnet: "mid", size: 3 });
    // what it predicts for the batch is what the router times the instance's queue with
    expect(prefetched.kind === "batch" && prefetched.choice.predictedMs).toBe(14);
    // decided late: while the running batch is expected to run on for longer than the lead, it waits
    const early = { ...ctx(0), startAt: () => 80, expectedStartAt: () => 60 };
    expect(new SlackFitPolicy().nextBatch(inst("super", 1), queueOf(rs), early)).toEqual({ kind: "wait", until: 58 });
    const eager = new SlackFitPolicy({ prefetch: "eager" }).nextBatch(inst("super", 1), queueOf(rs), early);
    expect(batch(eager)).toMatchObject({ subnet: "mid", size: 3 });
    // behind a batch ending at 99, nothing fits the 1 ms left: dropped here (the router keeps it if
    // another instance can still make it)
    const hopeless = new SlackFitPolicy().nextBatch(inst("super", 1), queueOf([req()]), {
      ...ctx(0),
      startAt: () => 99,
    });
    expect(hopeless).toMatchObject({ kind: "idle", drop: [expect.anything()] });
  });

  it("with one bucket takes the largest batch that fits, then the most accurate subnet", () => {
    const rs = Array.from({ length: 6 }, () => req({ deadline: 60 }));
    // every configuration is in one 1000 ms bucket: b = 6 on the most accurate subnet that fits (accurate: 58 ms ≤ 60)
    const wide = batch(new SlackFitPolicy({ bucketMs: 1000 }).nextBatch(inst(), queueOf(rs), ctx(0)));
    expect(wide).toMatchObject({ subnet: "accurate", size: 6 });
    const rs2 = Array.from({ length: 6 }, () => req({ deadline: 40 }));
    // with 40 ms, accurate no longer fits six: mid (23 ms)
    const wide2 = batch(new SlackFitPolicy({ bucketMs: 1000 }).nextBatch(inst(), queueOf(rs2), ctx(0)));
    expect(wide2).toMatchObject({ subnet: "mid", size: 6 });
  });

  it("picks from the measured points, spread included, not from the fitted curve", () => {
    // two subnets whose p99 fits say b = 4 takes 24 ms (accurate) and 12 ms (fast), but whose measured
    // points disagree: the accurate subnet's b = 4 ran at 30 ms p50 / 45 ms p99 (a jump off the curve)
    const points = (rows: [number, number, number][]) =>
      new MeasuredLatency(rows.map(([batch, p50_ms, p99_ms]) => ({ batch, cores: 1, p50_ms, p99_ms })));
    const fitted = (subnet: string, accuracy: number, zeta: number, beta: number, measured: MeasuredLatency) => ({
      ...fittedModel({ name: "pts", accuracy, maxBatch: 4, fit: { alpha: 0, beta, gamma: 0, zeta }, loadMs: 1 }),
      subnet,
      measured,
    });
    const fast = fitted(
      "fast",
      0.7,
      4,
      2,
      points([
        [1, 5, 6],
        [2, 7, 8],
        [4, 10, 12],
      ]),
    );
    const accurate = fitted(
      "accurate",
      0.76,
      8,
      4,
      points([
        [1, 10, 12],
        [2, 15, 18],
        [4, 30, 45],
      ]),
    );
    const table: TaskModel = {
      name: "t",
      sloMs: 100,
      variants: [{ ...accurate, subnet: undefined, subnets: [fast, accurate] }],
    };
    const c: PolicyContext = { ...ctx(0), task: table, variant: (n) => table.variants.find((v) => v.name === n) };
    const four = () => queueOf(Array.from({ length: 4 }, () => req({ deadline: 30 })));
    // 30 ms of slack, 5-ms buckets: the fit puts accurate b = 4 (24 ms) in the top bucket; the points know it
    // takes up to 45 ms, so the top bucket that fits is accurate b = 2 (18 ms, p99), then fast b = 4 (12 ms)
    const byFit = batch(new SlackFitPolicy({ bucketMs: 5, predictFrom: "fit" }).nextBatch(inst("pts"), four(), c));
    expect(byFit).toMatchObject({ subnet: "accurate", size: 4 });
    const byPoints = batch(new SlackFitPolicy({ bucketMs: 5 }).nextBatch(inst("pts"), four(), c));
    expect(byPoints).toMatchObject({ subnet: "accurate", size: 2 });
    // the spread counts: a slack between the points' p50 (30) and p99 (45) still does not admit accurate b = 4
    const later = () => queueOf(Array.from({ length: 4 }, () => req({ deadline: 40 })));
    expect(batch(new SlackFitPolicy({ bucketMs: 100 }).nextBatch(inst("pts"), later(), c))).toMatchObject({
      subnet: "fast",
      size: 4,
    });
    // between measured batch sizes the points are interpolated: accurate b = 3's p99 is (18 + 45) / 2 = 31.5 ms
    const three = () => queueOf(Array.from({ length: 3 }, () => req({ deadline: 32 })));
    expect(batch(new SlackFitPolicy({ bucketMs: 100 }).nextBatch(inst("pts"), three(), c))).toMatchObject({
      subnet: "accurate",
      size: 3,
    });
  });

  it("checks floors per subnet: a request is served on a subnet below the default's accuracy only if its floor allows", () => {
    // the supernet's default subnet is mid (0.74): a floor of 0.75 is still the supernet's to serve, on accurate
    const midDefault: VariantModel = { ...MID, subnet: undefined, subnets: [FAST, MID, ACCURATE] };
    const t: TaskModel = { name: "t", sloMs: 100, variants: [midDefault] };
    const c: PolicyContext = { ...ctx(0), task: t, variant: (n) => t.variants.find((v) => v.name === n) };
    const strict = req({ deadline: 30, minAccuracy: 0.75 });
    const b = batch(new SlackFitPolicy().nextBatch(inst(), queueOf([strict]), c));
    expect(b).toMatchObject({ subnet: "accurate", size: 1 });
    // 12 ms of slack: fast and mid would fit, accurate (18 ms) does not: dropped, never run below its floor
    const tight = new SlackFitPolicy().nextBatch(inst(), queueOf([req({ deadline: 12, minAccuracy: 0.75 })]), c);
    expect(tight).toMatchObject({ kind: "idle", drop: [expect.anything()] });
  });

  it("keeps only Pareto subnets in its table", () => {
    const dominated = sub("slow-and-worse", 0.72, 20, 10);
    expect(paretoSubnets([FAST, dominated, MID, ACCURATE], 16, 1).map((s) => s.subnet)).toEqual([
      "fast",
      "mid",
      "accurate",
    ]);
  });

  it("is what task.yaml's `scheduling: slackfit` makes", () => {
    const p = makeSchedulingPolicy("slackfit");
    expect(p.name).toBe("slackfit");
    expect(p.switchesSubnets).toBe(true);
  });
});

describe("slackfit in the simulator", () => {
  // batch times per subnet: fast 2 + b, accurate 10 + 8b (deterministic), on one 1-core instance
  const fit = (fixed: number, per: number) => ({ alpha: 0, beta: per, gamma: 0, zeta: fixed });
  const supernet: SimVariant = {
    name: "super",
    accuracy: 0.76,
    maxBatch: 16,
    fit: fit(10, 8),
    service: new FitServiceModel(fit(10, 8)),
    coldStart: 500,
    resize: 10,
    subnets: [
      { name: "fast", accuracy: 0.7, predict: (b) => 2 + b, service: new FitServiceModel(fit(2, 1)) },
      { name: "accurate", accuracy: 0.76, predict: (b) => 10 + 8 * b, service: new FitServiceModel(fit(10, 8)) },
    ],
  };
  const task = (scheduling: string): SimTask => ({ name: "t", sloMs: 100, scheduling, variants: [supernet] });
  const run = (scheduling: string, gapMs: number) =>
    simulate({
      tasks: [task(scheduling)],
      arrivals: [{ target: "t", times: Array.from({ length: 2000 }, (_, i) => i * gapMs) }],
      deployment: [{ task: "t", variant: "super", cores: 1 }],
      nodes: [1],
      onDemand: false,
      records: true,
    });

  it("switches subnets with the load, and a batch takes its subnet's time", async () => {
    const light = await run("slackfit", 50); // 20 req/s: the accurate subnet keeps up
    expect(light.summary.attainmentPct).toBe(100);
    expect(light.summary.meanAccuracy).toBeCloseTo(0.76, 6);
    expect(light.summary.latencyP50Ms).toBeCloseTo(18, 0);
    const heavy = await run("slackfit", 2); // 500 req/s: only fast batches keep up (accurate peaks at 125/s)
    expect(heavy.summary.attainmentPct).toBeGreaterThan(99);
    expect(heavy.summary.meanAccuracy).toBeLessThan(0.75);
    expect(heavy.summary.meanAccuracy).toBeGreaterThanOrEqual(0.7);
    expect(new Set(heavy.records!.variants)).toEqual(new Set(["super/fast", "super/accurate"]));
    // edf runs every batch on the default (accurate) subnet and falls behind
    const edf = await run("edf", 2);
    expect(edf.summary.attainmentPct).toBeLessThan(50);
    expect(edf.summary.meanAccuracy).toBeCloseTo(0.76, 6);
  });

  it("charges a constant-time subnet its own time", async () => {
    const timed: SimVariant = {
      ...supernet,
      subnets: [{ name: "fast", accuracy: 0.7, predict: () => 7, service: new ConstantServiceModel(7) }],
    };
    const r = await simulate({
      tasks: [{ name: "t", sloMs: 100, scheduling: "slackfit", variants: [timed] }],
      arrivals: [{ target: "t", times: [0, 1000] }],
      deployment: [{ task: "t", variant: "super", cores: 1 }],
      nodes: [1],
      onDemand: false,
    });
    expect(r.summary.latencyP50Ms).toBeCloseTo(7, 0);
    expect(r.summary.meanAccuracy).toBeCloseTo(0.7, 6);
  });
});

describe("slackfit behind the router", () => {
  // the three subnets of SUPER, timed by their fits (deterministic), on one 1-core instance with two slots
  const runtime = () => ({
    service: new FitServiceModel(ACCURATE.fit),
    subnets: new Map([FAST, MID, ACCURATE].map((m) => [m.subnet!, new FitServiceModel(m.fit)])),
    coldStart: 500,
    resize: 10,
  });
  function setup() {
    const clock = new VirtualClock();
    const cluster = new SimCluster(clock, { nodes: [1], seed: 1, runtime });
    const router = new Router(clock, cluster);
    const task: TaskModel = { name: "t", sloMs: 100, variants: [SUPER] };
    router.addTask({ model: task, policy: new SlackFitPolicy(), maxQueue: 10_000 });
    cluster.place("t", "super", 1);
    return { clock, cluster, router };
  }

  it("never serves a request on a subnet below its floor, under a load that wants the fast subnets", async () => {
    const { clock, router } = setup();
    const accuracyOf = new Map([FAST, MID, ACCURATE].map((m) => [m.subnet!, m.accuracy]));
    const served: { floor: number; subnet: string }[] = [];
    const floors = [0, 0.72, 0.75];
    for (let i = 0; i < 3000; i++) {
      const at = i * 0.5; // 2,000 req/s for 1.5 s: the fast subnet's big batches carry it, the accurate one cannot
      clock.setTimer(at, () => {
        const floor = floors[i % 3]!;
        const seq = router.nextSeq();
        router.submit({
          ...req({ seq, id: String(seq), arrival: at, deadline: at + 100, minAccuracy: floor }),
          done: (o) => {
            if (o.ok) served.push({ floor, subnet: o.subnet! });
          },
        });
      });
    }
    await clock.runUntil(5000);
    // the load drives SlackFit to the fast subnet, where every floor above 0.7 must not go
    expect(served.filter((s) => s.subnet === "fast").length).toBeGreaterThan(100);
    for (const floor of floors) expect(served.filter((s) => s.floor === floor).length).toBeGreaterThan(0);
    const below = served.filter((s) => accuracyOf.get(s.subnet)! < s.floor);
    expect(below, JSON.stringify(below.slice(0, 3))).toEqual([]);
  });

  it("fills the prefetch slot shortly before the running batch ends, timed from its predicted end", async () => {
    const { clock, cluster, router } = setup();
    const submit = () => {
      const seq = router.nextSeq();
      router.submit({ ...req({ seq, id: String(seq), arrival: clock.now(), deadline: 100 }), done: () => undefined });
    };
    // the first request runs alone on accurate (18 ms); the second waits for the prefetch slot's late
    // decision, 2 ms (0.02 × the SLO) before the first is expected to end, and is timed from 18 ms on
    submit();
    submit();
    const inst = cluster.instances()[0]!;
    const seen = [[inst.inFlight, router.predictedStart(inst.id)]];
    await clock.runUntil(15);
    submit(); // arrives while the first runs: rides in the prefetched batch
    seen.push([inst.inFlight, router.predictedStart(inst.id)]);
    await clock.runUntil(17);
    seen.push([inst.inFlight, router.predictedStart(inst.id)]);
    await clock.runUntil(60);
    seen.push([inst.inFlight, router.predictedStart(inst.id)]);
    // accurate at b = 2 takes 26 ms: busy until 18 + 26
    expect(seen).toEqual([
      [1, 18],
      [1, 18],
      [2, 44],
      [0, 60],
    ]);
  });
});
