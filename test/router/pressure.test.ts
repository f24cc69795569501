// Serving under pressure, on virtual time against the simulated cluster (exact and cheap): cancellation
// takes a request out of its queue, answers it once, and skips a batch nobody wants any more; priority
// classes shed the lower class first (a full queue makes room, a higher-class arrival refuses the lower-class
// requests it makes late), and under 10× overload the high class keeps its SLO; a task scales to zero after
// its quiet delay and wakes on the next request; a herd at wake-up gets what the plan says, and is held or told
// at once when to retry; a warm pool makes a start cost the model load only, and its size follows the starts.
import { describe, expect, it } from "vitest";
import { ServingCore } from "../../src/core/serving-core.js";
import { peakWithin, WarmPoolPlanner } from "../../src/autoscaler/warm-pool.js";
import { KpaPolicy } from "../../src/autoscaler/scaling/kpa.js";
import type { Failed, Outcome, Request } from "../../src/router/request.js";
import { Router } from "../../src/router/router.js";
import { EdfPolicy } from "../../src/router/scheduling/edf.js";
import { ConstantServiceModel } from "../../src/sim/service-model.js";
import { SimCluster, type SimRuntime } from "../../src/sim/sim-cluster.js";
import { simulate } from "../../src/sim/simulate.js";
import type { SimTask } from "../../src/sim/scenario.js";
import { VirtualClock } from "../../src/sim/virtual-clock.js";
import { oneVariantTask, request } from "../support/virtual-request.js";
import { poissonArrivals } from "../../src/traces/index.js";
import { MaxTrendForecaster } from "../../src/autoscaler/forecast/max-trend.js";

// one variant: 100 ms per batch of up to 4 rows whatever the cores; a 500-ms cold start, 50 ms from the pool
const model = oneVariantTask;
const runtime = (warm?: number): SimRuntime => ({
  service: new ConstantServiceModel(100),
  coldStart: 500,
  warmStart: warm,
  resize: 50,
});

function world(opts: { instances: number; maxQueue?: number; admission?: "queue" | "predictive"; warm?: number }) {
  const clock = new VirtualClock();
  const cluster = new SimCluster(clock, {
    nodes: [8],
    seed: 1,
    runtime: () => runtime(opts.warm),
    warmPool: opts.warm === undefined ? 0 : 1,
    poolSpawn: 300,
  });
  const core = new ServingCore({ clock, cluster, admission: opts.admission ?? "predictive" });
  core.addTask({
    model: model(opts.warm),
    scheduling: new EdfPolicy(),
    maxQueue: opts.maxQueue ?? 1024,
    lateOk: false,
  });
  for (let i = 0; i < opts.instances; i++) cluster.place("t", "v", 1);
  const router = core.router;
  const answers = new Map<number, { at: number; o: Outcome }[]>();
  const batches: number[] = [];
  const dropped: number[] = [];
  const cancelled: string[] = [];
  router.on("batch", (b) => batches.push(b.requests));
  router.on("dropped", (b) => dropped.push(b.requests));
  router.on("cancelled", (_r, where) => cancelled.push(where));
  const submit = (over: Partial<Request> = {}): Request => {
    const r: Request = request(
      router,
      clock,
      (o) => answers.set(r.seq, [...(answers.get(r.seq) ?? []), { at: clock.now(), o }]),
      over,
    );
    core.submit(r);
    return r;
  };
  const only = (r: Request) => {
    const got = answers.get(r.seq) ?? [];
    expect(got, `request ${r.seq} answered ${got.length} times`).toHaveLength(1);
    return got[0]!;
  };
  return { clock, cluster, core, router, submit, answers, batches, dropped, cancelled, only };
}

describe("cancellation", () => {
  it("takes a queued request out of its queue and answers it 499 once", async () => {
    const w = world({ instances: 1 });
    // the first two run alone (one batch running, one prefetched: the instance's two slots); ten wait
    const rs = Array.from({ length: 12 }, () => w.submit({ deadline: 10_000 }));
    expect(w.router.queueLength("t")).toBe(10);
    const queued = rs[11]!;
    expect(w.router.cancel(queued)).toBe(true);
    expect(w.router.cancel(queued)).toBe(false);
    expect(w.router.queueLength("t")).toBe(9);
    expect(w.only(queued).o).toMatchObject({ ok: false, status: 499, reason: "cancelled" });
    expect(w.cancelled).toEqual(["queued"]);
    await w.clock.runUntil(5000);
    for (const r of rs) w.only(r);
    expect(w.batches).toEqual([1, 1, 4, 4, 1]);
  });

  it("skips a prefetched batch whose requests were all cancelled, and does not answer a running batch's cancelled row twice", async () => {
    const w = world({ instances: 1 });
    const rs = Array.from({ length: 10 }, () => w.submit({ deadline: 10_000 }));
    // 0-100 rs[0], 100-200 rs[1], 200-300 rs[2..5], then rs[6..9] prefetched behind it
    await w.clock.runUntil(250);
    for (const r of rs.slice(6)) w.router.cancel(r);
    w.router.cancel(rs[2]!);
    await w.clock.runUntil(5000);
    expect(w.batches).toEqual([1, 1, 4]); // the running batch finished, its cancelled row included
    expect(w.dropped).toEqual([4]); // the prefetched one was skipped unrun
    expect(w.cancelled).toEqual(Array(5).fill("dispatched"));
    expect(w.only(rs[2]!).o).toMatchObject({ ok: false, reason: "cancelled" });
    expect(w.only(rs[2]!).at).toBe(250);
    for (const r of [...rs.slice(0, 2), ...rs.slice(3, 6)]) expect(w.only(r).o.ok).toBe(true);
    for (const r of rs.slice(6)) expect(w.only(r).o).toMatchObject({ ok: false, status: 499 });
  });

  it("1,000 clients that go away leave no queued work and no extra batch", async () => {
    const w = world({ instances: 1 });
    const rs = Array.from({ length: 1000 }, () => w.submit({ deadline: 1e9 }));
    await w.clock.runUntil(50); // one batch running, one prefetched behind it
    for (const r of rs) w.router.cancel(r);
    expect(w.router.queueLength("t")).toBe(0);
    await w.clock.runUntil(10_000);
    expect(w.batches).toEqual([1]); // only the one already running when they left
    // every other request was either still queued, or in a batch sent ahead that its instance then skipped
    expect(w.dropped.reduce((a, b) => a + b, 0)).toBe(999);
    expect(w.router.outstanding("t")).toBe(0);
    for (const r of rs) expect(w.only(r).o).toMatchObject({ ok: false, reason: "cancelled" });
  });
});

describe("priority classes", () => {
  it("a full queue makes room for a higher class by refusing its lowest class's last request", async () => {
    const w = world({ instances: 1, maxQueue: 4, admission: "queue" });
    // two run, four wait, six are refused
    const low = Array.from({ length: 12 }, () => w.submit({ priority: 2, deadline: 10_000 }));
    expect(w.router.queueLength("t")).toBe(4);
    for (const r of low.slice(6)) expect(w.only(r).o).toMatchObject({ status: 429, reason: "queue_full" });
    // a fifth low-class one is refused; a high-class one takes the last low-class place
    const lowMore = w.submit({ priority: 2, deadline: 10_000 });
    expect(w.only(lowMore).o).toMatchObject({ ok: false, status: 429, reason: "queue_full" });
    expect(w.router.admitEarly("t", 1000, undefined, 2)).toMatchObject({ status: 429 });
    expect(w.router.admitEarly("t", 1000, undefined, 1)).toBeNull();
    const high = w.submit({ priority: 1, deadline: 10_000 });
    const displaced = w.only(low[5]!).o as Failed;
    expect(displaced).toMatchObject({ ok: false, status: 429, reason: "queue_full" });
    expect(displaced.message).toMatch(/a priority-1 request took the place of this priority-2 one/);
    expect(displaced.retryAfterMs).toBeGreaterThan(0);
    await w.clock.runUntil(10_000);
    const h = w.only(high);
    expect(h.o.ok).toBe(true);
    // the low-class batch waiting on the instance behind the running one was taken back for it: it runs second
    expect(h.at).toBe(200);
  });

  it("a higher-class arrival refuses at once the lower-class requests it makes late", async () => {
    const w = world({ instances: 1 });
    // low class: 1-s SLO; the instance carries 40 rows/s: predictive admission takes about 36 of them
    const low = Array.from({ length: 60 }, () => w.submit({ priority: 2 }));
    const admitted = low.filter((r) => !w.answers.has(r.seq));
    expect(admitted.length).toBeGreaterThan(30);
    const highs = Array.from({ length: 8 }, () => w.submit({ priority: 1 }));
    for (const h of highs) expect(w.answers.has(h.seq)).toBe(false); // all admitted
    const shedNow = admitted.filter((r) => w.answers.has(r.seq));
    expect(shedNow.length).toBeGreaterThanOrEqual(4);
    for (const r of shedNow) {
      expect(w.only(r).at).toBe(0);
      expect(w.only(r).o).toMatchObject({ ok: false, status: 429, reason: "overloaded" });
      expect((w.only(r).o as Failed).message).toMatch(/shed: requests of a higher class/);
    }
    await w.clock.runUntil(10_000);
    for (const h of highs) expect(w.only(h).o).toMatchObject({ ok: true, sloMet: true });
    // what stayed admitted still makes its deadline: the shedding was exact enough
    const late = admitted
      .filter((r) => !shedNow.includes(r))
      .filter((r) => !(w.only(r).o as { sloMet?: boolean }).sloMet);
    expect(late).toHaveLength(0);
  });

  it("under 10× overload the high class keeps its SLO while the low class absorbs the shedding (simulated, 5 seeds)", async () => {
    const task: SimTask = {
      name: "t",
      sloMs: 1000,
      variants: [
        {
          name: "v",
          accuracy: 0.9,
          maxBatch: 4,
          fit: { alpha: 0, beta: 0, gamma: 0, zeta: 100 },
          service: new ConstantServiceModel(100),
          coldStart: 500,
          resize: 50,
        },
      ],
    };
    // one instance carries 40 req/s: the high class offers 10, the low class 390 (10× in all)
    for (const seed of [1, 2, 3, 4, 5]) {
      const tally = new Map<number, { n: number; met: number; lat: number[]; refused: number }>();
      await simulate({
        tasks: [task],
        arrivals: [
          { target: "t", priority: 1, times: poissonArrivals(10, 30, seed).times },
          { target: "t", priority: 2, times: poissonArrivals(390, 30, seed + 100).times },
        ],
        deployment: [{ task: "t", variant: "v", cores: 1 }],
        nodes: [1],
        admission: "predictive",
        onDemand: false,
        seed,
        observe: (core) =>
          core.router.on("finished", (r, o) => {
            const t = tally.get(r.priority) ?? { n: 0, met: 0, lat: [], refused: 0 };
            t.n++;
            if (o.ok && o.sloMet) t.met++;
            if (o.ok) t.lat.push(core.clock.now() - r.arrival);
            else if (o.status === 429) t.refused++;
            tally.set(r.priority, t);
          }),
      });
      const high = tally.get(1)!;
      const low = tally.get(2)!;
      const p99 = [...high.lat].sort((a, b) => a - b)[Math.ceil(0.99 * high.lat.length) - 1]!;
      expect(high.met / high.n, `seed ${seed}`).toBeGreaterThanOrEqual(0.99);
      expect(p99).toBeLessThanOrEqual(1000);
      expect(low.refused / low.n).toBeGreaterThan(0.85);
      expect(low.met).toBeGreaterThan(0); // the low class still gets what capacity is left
    }
  });
});

describe("scale to zero", () => {
  const task = (after?: number): SimTask => ({
    name: "t",
    sloMs: 2000,
    scaleToZeroAfterMs: after,
    variants: [
      {
        name: "v",
        accuracy: 0.9,
        maxBatch: 4,
        fit: { alpha: 0, beta: 0, gamma: 0, zeta: 100 },
        service: new ConstantServiceModel(100),
        coldStart: 500,
        warmStart: 50,
        resize: 50,
      },
    ],
  });

  it("stops a quiet task's last instance after its delay and starts one for the next request, held within its SLO", async () => {
    const zeroed: number[] = [];
    const r = await simulate({
      tasks: [task(3000)],
      arrivals: [{ target: "t", times: [0, 500, 1000, 20_000, 20_100] }],
      deployment: [{ task: "t", variant: "v", cores: 1 }],
      nodes: [2],
      admission: "predictive",
      records: true,
      observe: (core) => core.zero.on(() => zeroed.push(core.clock.now())),
    });
    expect(zeroed).toEqual([4000]); // 3 s after the last batch was sent
    expect(r.summary.met).toBe(5);
    const finish = Array.from(r.records!.finish);
    expect(finish[3]).toBe(20_600); // cold start 500 ms, then the 100-ms batch
    expect(r.series.instances[10]).toBe(0);
    // cores held: 1 until 4.1 s, then none until the wake-up at 20 s
    expect(r.summary.meanCores).toBeLessThan(0.5);
  });

  it("a quiet time that rounds to the re-check's own time does not spin the clock", async () => {
    // 1096.2857142857142 + 3000 rounds to a float whose distance from it is just short of 3000: re-armed at
    // that same time, the check fired again at once, for ever
    const last = 1096.2857142857142;
    expect(last + 3000 - last).toBeLessThan(3000);
    const zeroed: number[] = [];
    await simulate({
      tasks: [task(3000)],
      arrivals: [{ target: "t", times: [0, last, 20_000] }],
      deployment: [{ task: "t", variant: "v", cores: 1 }],
      nodes: [2],
      observe: (core) => core.zero.on(() => zeroed.push(core.clock.now())),
    });
    expect(zeroed).toHaveLength(1);
    expect(zeroed[0]).toBeCloseTo(last + 3000, 1);
  }, 5000);

  it("without scale_to_zero_after the task keeps its instance", async () => {
    const r = await simulate({
      tasks: [task(undefined)],
      arrivals: [{ target: "t", times: [0, 20_000] }],
      deployment: [{ task: "t", variant: "v", cores: 1 }],
      nodes: [2],
    });
    expect(r.series.instances[10]).toBe(1);
  });

  it("a request at zero whose SLO the cold start cannot meet is answered 503 at once with when to retry; the warm pool makes it fit", async () => {
    for (const pool of [false, true]) {
      const w = world({ instances: 0, warm: pool ? 50 : undefined });
      await w.clock.runUntil(1000); // the pool worker is up
      const r = w.submit({ deadline: w.clock.now() + 300 });
      await w.clock.runUntil(5000);
      const a = w.only(r);
      if (pool) {
        expect(a.o).toMatchObject({ ok: true, sloMet: true });
        expect(a.at).toBe(1150); // 50-ms load from the pool, then the 100-ms batch
      } else {
        expect(a.at).toBe(1000);
        expect(a.o).toMatchObject({ ok: false, status: 503, reason: "no_capacity" });
        expect((a.o as Failed).retryAfterMs).toBe(500);
        expect((a.o as Failed).message).toMatch(/one is starting and should be ready in ~500 ms/);
      }
    }
  });

  it("a herd at wake-up starts one instance, holds what it can serve in time, and tells the rest at once when to retry", async () => {
    const w = world({ instances: 0 });
    const rs = Array.from({ length: 100 }, () => w.submit({ deadline: 1000 }));
    expect(w.cluster.instances()).toHaveLength(1);
    // ready at 500 ms, 4 rows per 100 ms: about 16-20 rows make the 1-s deadline
    const refusedNow = rs.filter((r) => w.answers.has(r.seq));
    for (const r of refusedNow) {
      expect(w.only(r).o).toMatchObject({ ok: false, status: 503, reason: "no_capacity" });
      expect((w.only(r).o as Failed).retryAfterMs).toBeGreaterThanOrEqual(500);
      expect((w.only(r).o as Failed).message).toMatch(/rows queued ahead of it/);
    }
    await w.clock.runUntil(5000);
    const served = rs.filter((r) => w.only(r).o.ok);
    expect(served.length).toBeGreaterThanOrEqual(16);
    expect(served.length + refusedNow.length).toBe(100);
    for (const r of served) expect(w.only(r).o).toMatchObject({ sloMet: true });
    expect(w.cluster.instances()).toHaveLength(1);
  });

  it("with a scaling policy, the herd at wake-up gets the instances its plan says at once, not one per request", async () => {
    const clock = new VirtualClock();
    const cluster = new SimCluster(clock, { nodes: [16], seed: 1, runtime: () => runtime() });
    const core = new ServingCore({
      clock,
      cluster,
      admission: "predictive",
      control: { intervalMs: 2000, maxCores: 16, forecaster: new MaxTrendForecaster() },
    });
    core.addTask({
      model: { ...model(), sloMs: 5000 },
      scheduling: new EdfPolicy(),
      maxQueue: 1024,
      lateOk: false,
      scaling: new KpaPolicy({ containerConcurrency: 10 }),
    });
    core.start();

    const starts: number[] = [];
    cluster.onChange(() => {
      for (const i of cluster.instances())
        if (i.state === "starting" && !starts.includes(Number(i.id.split("#")[1])))
          starts.push(Number(i.id.split("#")[1]));
    });
    for (let i = 0; i < 60; i++)
      core.submit({
        seq: core.router.nextSeq(),
        id: "",
        task: "t",
        arrival: 0,
        deadline: 5000,
        priority: 1,
        rows: 1,
        minAccuracy: 0,
        lateOk: false,
        input: null,
        done: () => undefined,
      });
    await clock.runUntil(100);
    const decided = core.controller!.decisions.map((d) => ({ at: d.at, instances: d.plan.instances.length }));
    expect(decided[0]?.at).toBe(0); // decided at once, not at the loop's next 2-s tick
    // kpa: 60 in flight / (10 × 70 %) → 9 instances: the one started on demand plus 8
    expect(decided[0]!.instances).toBe(9);
    expect(starts).toHaveLength(9);
    core.stop();
  });
});

describe("the warm pool", () => {
  it("peakWithin counts the most starts within a span", () => {
    expect(peakWithin([], 1000)).toBe(0);
    expect(peakWithin([0, 100, 2000, 2500, 2900, 5000], 1000)).toBe(3);
  });

  it("is sized by the starts of the last minute, between its floor and ceiling, and counts as cost", async () => {
    const clock = new VirtualClock();
    const cluster = new SimCluster(clock, {
      nodes: [8],
      seed: 1,
      runtime: () => runtime(50),
      warmPool: 1,
      poolSpawn: 300,
    });
    const planner = new WarmPoolPlanner(cluster, clock, { min: 1, max: 3 });
    const sizes: number[] = [];
    planner.on((d) => sizes.push(d.size));
    planner.start();
    await clock.runUntil(1000);
    for (let i = 0; i < 4; i++) void cluster.start("t", "v", 1);
    await clock.runUntil(2500);
    expect(cluster.warmPoolSize).toBe(3); // 4 starts within a second, capped at 3
    await clock.runUntil(70_000);
    expect(cluster.warmPoolSize).toBe(1); // a minute without starts: back to the floor
    expect(sizes).toEqual([3, 1]);
    // the pool held ~1 worker before, 3 for a minute, then 1: about 1.9 workers on average
    const mean = cluster.poolWorkerMsUntilNow() / clock.now();
    expect(mean).toBeGreaterThan(1.5);
    expect(mean).toBeLessThan(3);
    planner.stop();
  });
});
