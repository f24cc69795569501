import { describe, expect, it } from "vitest";
import { EdfPolicy, takeByDeadline } from "../../../src/router/scheduling/edf.js";
import { FifoPolicy } from "../../../src/router/scheduling/fifo.js";
import { InfaasPolicy } from "../../../src/router/scheduling/infaas.js";
import { fittedModel } from "../../../src/core/variant-model.js";
import type { InstanceView, PolicyContext, TaskModel, VariantModel } from "../../../src/router/scheduling/types.js";
import { RequestQueue } from "../../../src/router/queue.js";
import type { Request } from "../../../src/router/request.js";

// l(b,c) = per·b/c + fixed: a fast, a medium and an accurate variant
const variant = (name: string, accuracy: number, per: number, fixed: number, loadMs = 300): VariantModel =>
  fittedModel({ name, accuracy, maxBatch: 32, fit: { alpha: per, beta: 0, gamma: 0, zeta: fixed }, loadMs });
const FAST = variant("fast", 0.9, 0.2, 1);
const MID = variant("mid", 0.95, 1, 2);
const ACCURATE = variant("accurate", 0.99, 4, 5);
const TASK: TaskModel = { name: "t", sloMs: 100, variants: [FAST, MID, ACCURATE] };

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
function ctx(now: number, instances: InstanceView[] = []): PolicyContext {
  return {
    now,
    task: TASK,
    variant: (n) => TASK.variants.find((v) => v.name === n),
    instances,
    startAt: () => now,
    expectedStartAt: () => now,
  };
}
const inst = (variantName: string, cores = 1, inFlight = 0): InstanceView => ({
  id: `${variantName}#1`,
  variant: variantName,
  cores,
  inFlight,
});

describe("queue", () => {
  it("orders by priority, then deadline (EDF) or arrival (FIFO), then arrival sequence", () => {
    const q = new RequestQueue("deadline");
    const a = req({ deadline: 50 });
    const b = req({ deadline: 20 });
    const c = req({ deadline: 20 });
    const d = req({ deadline: 90, priority: 0 });
    for (const r of [a, b, c, d]) q.push(r);
    expect([...q]).toEqual([d, b, c, a]);
    const f = new RequestQueue("arrival");
    const x = req({ arrival: 5, deadline: 10 });
    const y = req({ arrival: 1, deadline: 99 });
    f.push(x);
    f.push(y);
    expect([...f]).toEqual([y, x]);
    expect(q.remove([b, a])).toBe(2);
    expect([...q]).toEqual([d, c]);
    expect(q.rows).toBe(2);
  });
});

describe("edf (Sponge)", () => {
  it("takes the largest batch that still meets the most urgent deadline", () => {
    const q = new RequestQueue("deadline");
    for (let i = 0; i < 20; i++) q.push(req({ deadline: 10 + i }));
    // mid on 1 core: l(b) = b + 2 ≤ 10 → b = 8
    const next = new EdfPolicy().nextBatch(inst("mid"), q, ctx(0, [inst("mid")]));
    expect(next.kind).toBe("batch");
    if (next.kind === "batch") {
      expect(next.choice.take).toHaveLength(8);
      expect(next.choice.take[0]!.deadline).toBe(10);
    }
    // on 2 cores: l(b) = b/2 + 2 ≤ 10 → b = 16
    const wide = takeByDeadline(inst("mid", 2), MID, q, 0);
    expect(wide.kind === "batch" && wide.choice.take.length).toBe(16);
  });

  it("skips requests whose floor the instance's variant does not reach, and honours pins", () => {
    const q = new RequestQueue("deadline");
    const strict = req({ deadline: 30, minAccuracy: 0.98 });
    const pinned = req({ deadline: 31, pinned: "accurate" });
    const loose = req({ deadline: 32 });
    for (const r of [strict, pinned, loose]) q.push(r);
    const fastNext = new EdfPolicy().nextBatch(inst("fast"), q, ctx(0));
    expect(fastNext.kind === "batch" && fastNext.choice.take).toEqual([loose]);
    const accNext = new EdfPolicy().nextBatch(inst("accurate"), q, ctx(0));
    expect(accNext.kind === "batch" && accNext.choice.take).toEqual([strict, pinned, loose]);
  });

  it("offers a request that cannot finish in time even alone for dropping, and serves it when late is allowed", () => {
    const q = new RequestQueue("deadline");
    const hopeless = req({ deadline: 4 }); // accurate needs 9 ms alone
    const fine = req({ deadline: 50 });
    q.push(hopeless);
    q.push(fine);
    const next = new EdfPolicy().nextBatch(inst("accurate"), q, ctx(0));
    expect(next.kind === "batch" && next.choice.drop).toEqual([hopeless]);
    expect(next.kind === "batch" && next.choice.take).toEqual([fine]);
    const late = new RequestQueue("deadline");
    late.push(req({ deadline: 4, lateOk: true }));
    const served = new EdfPolicy().nextBatch(inst("accurate"), late, ctx(0));
    expect(served.kind === "batch" && served.choice.take).toHaveLength(1);
  });
});

describe("fifo (Triton dynamic batcher)", () => {
  it("waits up to the max queue delay from the oldest request, then sends what it has", () => {
    const p = new FifoPolicy({ maxQueueDelayMs: 5, maxBatch: 4 });
    const q = new RequestQueue("arrival");
    q.push(req({ arrival: 10 }));
    q.push(req({ arrival: 11 }));
    expect(p.nextBatch(inst("fast"), q, ctx(12))).toEqual({ kind: "wait", until: 15 });
    const later = p.nextBatch(inst("fast"), q, ctx(15));
    expect(later.kind === "batch" && later.choice.take).toHaveLength(2);
  });

  it("sends a full batch at once", () => {
    const p = new FifoPolicy({ maxQueueDelayMs: 100, maxBatch: 4 });
    const q = new RequestQueue("arrival");
    for (let i = 0; i < 6; i++) q.push(req({ arrival: i }));
    const next = p.nextBatch(inst("fast"), q, ctx(6));
    expect(next.kind === "batch" && next.choice.take.map((r) => r.arrival)).toEqual([0, 1, 2, 3]);
  });
});

describe("infaas (model-less selection on arrival)", () => {
  it("picks the loaded variant with the smallest positive slack that meets the floor", () => {
    const p = new InfaasPolicy();
    const c = ctx(0, [inst("fast"), inst("mid"), inst("accurate")]);
    const r = req({ deadline: 10 }); // fast 1.2 (slack 8.8), mid 3 (7), accurate 9 (1) → accurate
    p.onArrival(r, c);
    expect(r.assigned).toBe("accurate");
    const tight = req({ deadline: 4 }); // only fast (2.8) and mid (1) → mid
    p.onArrival(tight, c);
    expect(tight.assigned).toBe("mid");
    const floor = req({ deadline: 100, minAccuracy: 0.96 });
    p.onArrival(floor, ctx(0, [inst("fast"), inst("mid")]));
    // accurate is not loaded: the cheapest loadable counting its load time (needs 9 + 300 ms) does not fit → fallback
    expect(floor.assigned).toBeUndefined();
  });

  it("assigns the cheapest loadable variant that fits when none loaded qualifies (the router's demand hook starts it)", () => {
    const p = new InfaasPolicy();
    const r = req({ deadline: 1000, minAccuracy: 0.95 });
    p.onArrival(r, ctx(0, [inst("fast")]));
    expect(r.assigned).toBe("mid");
  });

  it("flags a variant overloaded when its backlog exceeds 0.8 × instances × 1000/lat and clears it", () => {
    const p = new InfaasPolicy();
    const c = ctx(0, [inst("accurate")]);
    const q = new RequestQueue("deadline");
    // accurate: lat(1,1) = 9 ms → 111 req/s per instance; backlog threshold 0.8 × 111 = 88.9
    for (let i = 0; i < 90; i++) q.push(req({ assigned: "accurate" }));
    p.tick(c, q);
    expect(p.isOverloaded("accurate")).toBe(true);
    const r = req({ deadline: 20 });
    p.onArrival(r, { ...c, instances: [inst("accurate"), inst("mid")] });
    expect(r.assigned).toBe("mid");
    p.onBatchDone("accurate", 1, 9);
    p.tick({ ...c, now: 1000 }, new RequestQueue("deadline"));
    expect(p.isOverloaded("accurate")).toBe(false);
  });

  it("flags a variant whose latency runs 2.5× over the prediction under load", () => {
    const p = new InfaasPolicy();
    const c = ctx(0, [inst("fast")]);
    // fast: predicted 1.2 ms → 833 req/s; qps threshold 0.5 × 833 = 417 rows/s
    for (let i = 0; i < 500; i++) p.onBatchDone("fast", 1, 3.1);
    p.tick(c, new RequestQueue("deadline"));
    expect(p.isOverloaded("fast")).toBe(true);
  });
});
