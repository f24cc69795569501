// The router's failure paths, on virtual time against the simulated cluster (cheap and exact): a
// batch lost with its instance is retried once where it can still make its deadline; a queued request
// is answered 504 the moment it becomes hopeless, not at its deadline; a request hopeless on one
// instance waits for one where it is not; a full queue answers 429 through the same event as any other
// answer; every request is answered exactly once.
import { describe, expect, it } from "vitest";
import { fittedModel } from "../../src/core/variant-model.js";
import type { Outcome, Request } from "../../src/router/request.js";
import { drainTime, Router } from "../../src/router/router.js";
import { EdfPolicy } from "../../src/router/scheduling/edf.js";
import { SlackFitPolicy } from "../../src/router/scheduling/slackfit.js";
import type { TaskModel } from "../../src/router/scheduling/types.js";
import { ConstantServiceModel } from "../../src/sim/service-model.js";
import { SimCluster } from "../../src/sim/sim-cluster.js";
import { VirtualClock } from "../../src/sim/virtual-clock.js";
import { oneVariantTask, request } from "../support/virtual-request.js";

const MODEL = oneVariantTask();

function setup(opts: {
  instances: number;
  maxQueue?: number;
  watchdog?: { factor: number; floorMs: number };
  admission?: "queue" | "predictive";
}) {
  const clock = new VirtualClock();
  const cluster = new SimCluster(clock, {
    nodes: [8],
    seed: 1,
    runtime: () => ({ service: new ConstantServiceModel(100), coldStart: 500, resize: 50 }),
  });
  const router = new Router(clock, cluster, { watchdog: opts.watchdog, admission: opts.admission });
  router.addTask({ model: MODEL, policy: new EdfPolicy(), maxQueue: opts.maxQueue ?? 1024 });
  for (let i = 0; i < opts.instances; i++) cluster.place("t", "v", 1);
  const answers = new Map<number, { at: number; o: Outcome }[]>();
  const events: { seq: number; o: Outcome }[] = [];
  router.on("finished", (r, o) => events.push({ seq: r.seq, o }));
  const submit = (over: Partial<Request> = {}): Request => {
    const r: Request = request(
      router,
      clock,
      (o) => answers.set(r.seq, [...(answers.get(r.seq) ?? []), { at: clock.now(), o }]),
      over,
    );
    router.submit(r);
    return r;
  };
  return { clock, cluster, router, submit, answers, events };
}

describe("Router", () => {
  it("retries a batch lost with its instance once on another instance, and answers it once", async () => {
    const { clock, cluster, submit, answers, events } = setup({ instances: 2 });
    const r = submit();
    const first = cluster.instances().find((i) => i.inFlight > 0)!;
    await clock.runUntil(50);
    cluster.crash(first.id, false);
    await clock.runUntil(2000);
    const got = answers.get(r.seq)!;
    expect(got).toHaveLength(1);
    expect(got[0]!.o.ok).toBe(true);
    expect(got[0]!.at).toBe(150); // crashed at 50, rerun for 100 ms on the other instance
    expect(r.retried).toBe(true);
    expect(events.filter((e) => e.seq === r.seq)).toHaveLength(1);
  });

  it("does not retry a second time: a request lost twice is answered 503", async () => {
    const { clock, cluster, submit, answers } = setup({ instances: 2 });
    const r = submit();
    await clock.runUntil(50);
    cluster.crash(cluster.instances().find((i) => i.inFlight > 0)!.id, false);
    await clock.runUntil(100);
    cluster.crash(cluster.instances().find((i) => i.inFlight > 0)!.id, false);
    await clock.runUntil(2000);
    const got = answers.get(r.seq)!;
    expect(got).toHaveLength(1);
    expect(got[0]!.o).toMatchObject({ ok: false, status: 503, reason: "instance_failed" });
    expect(got[0]!.at).toBe(100);
  });

  it("does not retry what can no longer make its deadline elsewhere", async () => {
    const { clock, cluster, submit, answers } = setup({ instances: 2 });
    const r = submit({ deadline: 120 });
    await clock.runUntil(50); // 50 ms left, the batch takes 100 ms
    cluster.crash(cluster.instances().find((i) => i.inFlight > 0)!.id, false);
    await clock.runUntil(2000);
    expect(answers.get(r.seq)!.map((a) => [a.at, a.o.ok])).toEqual([[50, false]]);
    expect(r.retried).toBeUndefined();
  });

  it("answers a queued request 504 as soon as it cannot make its deadline, not at the deadline", async () => {
    const { clock, submit, answers } = setup({ instances: 1 });
    const busy = [submit({ rows: 4 }), submit({ rows: 4 })]; // one running, one prefetched: both slots taken
    const late = submit({ deadline: 150 }); // waits in the queue; needs 100 ms once it runs
    await clock.runUntil(1000);
    const got = answers.get(late.seq)!;
    expect(got).toHaveLength(1);
    expect(got[0]!.o).toMatchObject({ ok: false, status: 504, reason: "deadline" });
    expect((got[0]!.o as { message: string }).message).toMatch(/deadline cannot be met/);
    expect(got[0]!.at).toBe(50); // the moment only 100 ms were left
    for (const r of busy) expect(answers.get(r.seq)).toHaveLength(1);
  });

  it("serves a request that asked to be served late instead of dropping it, and counts the miss", async () => {
    const { clock, submit, answers } = setup({ instances: 1 });
    submit({ rows: 4 });
    submit({ rows: 4 });
    const late = submit({ deadline: 150, lateOk: true });
    await clock.runUntil(1000);
    const got = answers.get(late.seq)!;
    expect(got).toHaveLength(1);
    expect(got[0]!.o).toMatchObject({ ok: true, sloMet: false });
    expect(got[0]!.at).toBe(300);
  });

  it("keeps a request hopeless on one instance when another can still make it", async () => {
    // 200 ms per row on one core, 100 on two: hopeless at a 150-ms deadline on the 1-core instance only
    const clock = new VirtualClock();
    const cluster = new SimCluster(clock, {
      nodes: [8],
      seed: 1,
      runtime: () => ({ service: new ConstantServiceModel(40), coldStart: 500, resize: 50 }),
    });
    const router = new Router(clock, cluster);
    const model = oneVariantTask(undefined, { alpha: 200, beta: 0, gamma: 0, zeta: 0 });
    router.addTask({ model, policy: new EdfPolicy(), maxQueue: 100 });
    cluster.place("t", "v", 2);
    const outcomes: Outcome[] = [];
    const answer = (o: Outcome) => void outcomes.push(o);
    router.submit(request(router, clock, answer)); // the 2-core instance now runs one batch, one slot left
    cluster.place("t", "v", 1); // an idle 1-core instance comes up
    router.submit(request(router, clock, answer, { deadline: 150 }));
    await clock.runUntil(1000);
    expect(outcomes.map((o) => o.ok)).toEqual([true, true]);
    expect(router.queueLength("t")).toBe(0);
  });

  it("replaces an instance that stops answering, and fails its batch over to another", async () => {
    const { clock, cluster, submit, answers } = setup({ instances: 2, watchdog: { factor: 5, floorMs: 200 } });
    const r = submit();
    const stuck = cluster.instances().find((i) => i.inFlight > 0)!;
    cluster.hang(stuck.id);
    await clock.runUntil(5000);
    // predicted 100 ms: declared hung at 5 × 100 + 200 = 700 ms, rerun for 100 ms elsewhere
    expect(answers.get(r.seq)!.map((a) => [a.at, a.o.ok])).toEqual([[800, true]]);
    expect(cluster.instances().map((i) => i.id)).not.toContain(stuck.id);
    expect(cluster.instances().filter((i) => i.state === "ready")).toHaveLength(2); // replaced
  });

  it("answers a full queue 429 through the same finished event as every other answer", async () => {
    const { clock, submit, answers, events } = setup({ instances: 1, maxQueue: 2 });
    const rs = Array.from({ length: 6 }, () => submit());
    await clock.runUntil(5000);
    const refused = rs.filter((r) => answers.get(r.seq)![0]!.o.ok === false);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(answers.get(r.seq)![0]!.o).toMatchObject({ status: 429, reason: "queue_full" });
      expect(events.filter((e) => e.seq === r.seq)).toHaveLength(1);
    }
    for (const r of rs) expect(answers.get(r.seq)).toHaveLength(1);
    expect(events).toHaveLength(rs.length);
  });

  it("with predictive admission refuses at once, with when to retry, what the queue ahead would make late", async () => {
    for (const admission of ["queue", "predictive"] as const) {
      const { clock, submit, answers } = setup({ instances: 1, admission });
      // 4 rows per 100 ms: of 40 one-row requests due in 1050 ms, ~38 can make it (2 batches are held at once)
      const rs = Array.from({ length: 40 }, () => submit({ deadline: 1050 }));
      await clock.runUntil(3000);
      const outcomes = rs.map((r) => answers.get(r.seq)!);
      expect(outcomes.every((a) => a.length === 1)).toBe(true);
      const got = outcomes.map((a) => a[0]!);
      const served = got.filter((a) => a.o.ok);
      expect(served.every((a) => a.o.ok && a.o.sloMet)).toBe(true);
      if (admission === "queue") {
        // the rest wait until they are hopeless and are answered 504 then
        expect(got.filter((a) => !a.o.ok).every((a) => !a.o.ok && a.o.status === 504 && a.at > 0)).toBe(true);
        continue;
      }
      const shed = got.filter((a) => !a.o.ok);
      expect(shed.length).toBeGreaterThan(0);
      expect(served.length).toBeGreaterThanOrEqual(32);
      for (const a of shed) {
        expect(a.at).toBe(0); // at arrival
        expect(a.o).toMatchObject({ ok: false, status: 429, reason: "overloaded" });
        expect(!a.o.ok && a.o.retryAfterMs).toBeGreaterThan(0);
      }
    }
  });

  it("with predictive admission judges a supernet under SlackFit by the fastest subnet a request accepts", async () => {
    const subnet = (name: string, accuracy: number, zeta: number) =>
      fittedModel({ name: "super", accuracy, maxBatch: 4, fit: { alpha: 0, beta: 0, gamma: 0, zeta }, loadMs: 500 });
    const big = subnet("super", 0.95, 100);
    const supernet: TaskModel = {
      name: "t",
      sloMs: 1000,
      variants: [
        {
          ...big,
          subnets: [
            { ...big, subnet: "big" },
            { ...subnet("super", 0.9, 10), subnet: "small" },
          ],
        },
      ],
    };
    const refusedAtArrival = (minAccuracy: number) => {
      const clock = new VirtualClock();
      const cluster = new SimCluster(clock, {
        nodes: [8],
        seed: 1,
        runtime: () => ({ service: new ConstantServiceModel(10), coldStart: 500, resize: 50 }),
      });
      const router = new Router(clock, cluster, { admission: "predictive" });
      router.addTask({ model: supernet, policy: new SlackFitPolicy(), maxQueue: 1024 });
      cluster.place("t", "super", 1);
      let refused = 0;
      for (let i = 0; i < 40; i++)
        router.submit(
          request(router, clock, (o) => (refused += !o.ok && o.status === 429 ? 1 : 0), {
            deadline: 250,
            minAccuracy,
          }),
        );
      return refused;
    };
    // 40 rows drain in ~100 ms on the small subnet (4 rows per 10 ms), ~1 s on the big one
    expect(refusedAtArrival(0)).toBe(0);
    expect(refusedAtArrival(0.93)).toBeGreaterThan(20);
  });

  it("with predictive admission leaves a deadline no idle instance could make to the deadline path (504)", async () => {
    const { clock, submit, answers } = setup({ instances: 1, admission: "predictive" });
    const r = submit({ deadline: 50 }); // one batch takes 100 ms: hopeless whatever the queue
    await clock.runUntil(1000);
    expect(answers.get(r.seq)![0]!.o).toMatchObject({ ok: false, status: 504, reason: "deadline" });
  });
});

describe("drainTime", () => {
  it("water-fills the rows over the lanes in the order they free up", () => {
    expect(drainTime([{ free: 0, rate: 1 }], 10)).toBe(10);
    // the second lane joins at 4 ms: 4 rows by then, 6 more at 3 rows per ms
    expect(
      drainTime(
        [
          { free: 4, rate: 2 },
          { free: 0, rate: 1 },
        ],
        10,
      ),
    ).toBe(6);
    expect(drainTime([{ free: 7, rate: 1 }], 0)).toBe(7);
    expect(drainTime([], 5)).toBe(0);
  });
});
