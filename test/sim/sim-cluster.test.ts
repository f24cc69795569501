import { describe, expect, it } from "vitest";
import type { BatchResult, WorkItem } from "../../src/cluster/types.js";
import { ConstantServiceModel, FitServiceModel } from "../../src/sim/service-model.js";
import { SimCluster, type Placement, type SimRuntime } from "../../src/sim/sim-cluster.js";
import { VirtualClock } from "../../src/sim/virtual-clock.js";

const fit = { alpha: 100, beta: 0, gamma: 0, zeta: 0 }; // 100 ms per row on one core, perfect speed-up

function setup(nodes: number[], runtime: Partial<SimRuntime> = {}, placement?: Placement) {
  const clock = new VirtualClock();
  const rt: SimRuntime = { service: new FitServiceModel(fit), coldStart: 500, resize: 80, ...runtime };
  const cluster = new SimCluster(clock, { nodes, seed: 1, runtime: () => rt, placement });
  let changes = 0;
  cluster.onChange(() => changes++);
  return { clock, cluster, changes: () => changes };
}

const req = (rows = 1): WorkItem => ({ rows, input: null });

function runBatch(
  cluster: SimCluster,
  id: string,
  clock: VirtualClock,
  rows: number,
  log: [number, BatchResult][],
): void {
  const inst = cluster.instances().find((i) => i.id === id)!;
  inst.run({ task: "t", variant: "v", items: Array.from({ length: rows }, () => req()) }, (r) =>
    log.push([clock.now(), r]),
  );
}

describe("SimCluster", () => {
  it("cold-starts an instance in its measured load time", async () => {
    const { clock, cluster, changes } = setup([4]);
    const started = cluster.start("t", "v", 2);
    expect(cluster.instances()[0]!.state).toBe("starting");
    expect(cluster.coresInUse()).toBe(2);
    let result: Awaited<typeof started> | undefined;
    void started.then((r) => (result = r));
    await clock.runUntil(499);
    expect(result).toBeUndefined();
    await clock.runUntil(500);
    expect(result).toMatchObject({ ok: true, ms: 500 });
    expect(cluster.instances()[0]!.state).toBe("ready");
    expect(changes()).toBe(2);
  });

  it("draws cold starts from the measured samples, repeatably", async () => {
    const draw = async () => {
      const { clock, cluster } = setup([64], { coldStart: [100, 200, 300] });
      const ms: number[] = [];
      for (let i = 0; i < 20; i++) void cluster.start("t", "v", 1).then((r) => ms.push(r.ms));
      await clock.runUntil(1000);
      return ms;
    };
    const a = await draw();
    expect(a).toHaveLength(20);
    expect(new Set(a)).toEqual(new Set([100, 200, 300]));
    expect(await draw()).toEqual(a);
  });

  it("runs batches one at a time for the time the model gives at the current cores", async () => {
    const { clock, cluster } = setup([4]);
    const id = cluster.place("t", "v", 2).instance!;
    const log: [number, BatchResult][] = [];
    runBatch(cluster, id, clock, 1, log); // 50 ms
    runBatch(cluster, id, clock, 3, log); // 150 ms, waits for the first
    expect(cluster.instances()[0]!.inFlight).toBe(2);
    await clock.runUntil(1000);
    expect(log.map(([t]) => t)).toEqual([50, 200]);
    expect(log.map(([, r]) => (r.ok ? r.computeMs : -1))).toEqual([50, 150]);
    expect(cluster.instances()[0]!.inFlight).toBe(0);
  });

  it("resizes in place: cores reserved at once, the new size serves after the resize time", async () => {
    const { clock, cluster } = setup([4]);
    const id = cluster.place("t", "v", 1).instance!;
    const resized = cluster.resize(id, 4);
    expect(cluster.coresInUse()).toBe(4);
    expect(cluster.instances()[0]!.cores).toBe(1);
    const log: [number, BatchResult][] = [];
    runBatch(cluster, id, clock, 1, log); // starts before the swap: 100 ms on one core
    await clock.runUntil(80);
    expect(await resized).toMatchObject({ ok: true, ms: 80 });
    expect(cluster.instances()[0]!.cores).toBe(4);
    runBatch(cluster, id, clock, 1, log); // queued behind the first, runs on 4 cores: 25 ms
    await clock.runUntil(1000);
    expect(log.map(([t]) => t)).toEqual([100, 125]);
    expect(await cluster.resize(id, 5)).toMatchObject({ ok: false });
    // shrinking frees the cores at once
    const shrink = cluster.resize(id, 1);
    expect(cluster.coresInUse()).toBe(1);
    await clock.advance(100);
    expect((await shrink).ok).toBe(true);
  });

  it("stop drains the batches an instance holds, then frees its cores", async () => {
    const { clock, cluster } = setup([2]);
    const id = cluster.place("t", "v", 1).instance!;
    const log: [number, BatchResult][] = [];
    runBatch(cluster, id, clock, 1, log);
    runBatch(cluster, id, clock, 1, log);
    let stopped: { ok: boolean; ms: number } | undefined;
    void cluster.stop(id).then((r) => (stopped = r));
    expect(cluster.instances()[0]!.state).toBe("draining");
    await clock.runUntil(150);
    expect(stopped).toBeUndefined();
    expect(cluster.coresInUse()).toBe(1);
    await clock.runUntil(200);
    expect(log.map(([t, r]) => [t, r.ok])).toEqual([
      [100, true],
      [200, true],
    ]);
    expect(stopped).toMatchObject({ ok: true, ms: 200 });
    expect(cluster.instances()).toHaveLength(0);
    expect(cluster.coresInUse()).toBe(0);
  });

  it("makes a node, or one instance, slower by a factor from the next batch on (fault injection)", async () => {
    const { clock, cluster } = setup([2, 2]);
    const a = cluster.place("t", "v", 1).instance!; // node 0
    const b = cluster.place("t", "v", 1).instance!; // node 1
    const log: [number, BatchResult][] = [];
    runBatch(cluster, a, clock, 1, log);
    cluster.slowNode(0, 1.5); // the running batch keeps its time
    await clock.runUntil(100);
    runBatch(cluster, a, clock, 1, log);
    runBatch(cluster, b, clock, 1, log);
    await clock.runUntil(1000);
    expect(log.map(([t, r]) => [t, r.ok && r.computeMs])).toEqual([
      [100, 100],
      [200, 100],
      [250, 150],
    ]);
    cluster.slowInstance(b, 2);
    cluster.slowNode(0, 1);
    runBatch(cluster, a, clock, 1, log);
    runBatch(cluster, b, clock, 1, log);
    await clock.runUntil(2000);
    expect(log.slice(3).map(([, r]) => r.ok && r.computeMs)).toEqual([100, 200]);
    expect(cluster.placeOf(a)).toBe("node 0");
    expect(() => cluster.slowNode(5, 2)).toThrow(/no node 5/);
    expect(() => cluster.slowInstance(a, 0)).toThrow(/must be > 0/);
  });

  it("places instances on nodes with room and refuses what no node can hold", async () => {
    const { cluster } = setup([4, 4]);
    expect(cluster.coreBudget).toBe(8);
    const a = cluster.place("t", "v", 3);
    const b = cluster.place("t", "v", 3);
    expect(cluster.nodeOf(a.instance!)).toBe(0);
    expect(cluster.nodeOf(b.instance!)).toBe(1);
    const c = await cluster.start("t", "v", 2);
    expect(c.ok).toBe(false);
    expect(c.message).toMatch(/2 of 8 free but no single node/);
    expect(cluster.place("t", "v", 1).ok).toBe(true);
    // growing in place needs room on the instance's own node
    expect((await cluster.resize(a.instance!, 4)).ok).toBe(false);
  });

  it("spreads instances over nodes by default and packs them when asked", () => {
    const spread = setup([4, 4, 4]).cluster;
    const packed = setup([4, 4, 4], {}, "pack").cluster;
    const nodes = (c: SimCluster) => [1, 2, 3].map(() => c.nodeOf(c.place("t", "v", 1).instance!));
    expect(nodes(spread)).toEqual([0, 1, 2]);
    expect(nodes(packed)).toEqual([0, 0, 0]);
  });

  it("integrates the cores held over time", async () => {
    const { clock, cluster } = setup([8], { service: new ConstantServiceModel(1) });
    cluster.place("t", "v", 2);
    await clock.runUntil(1000);
    void cluster.start("t", "v", 4);
    await clock.runUntil(2000);
    expect(cluster.coreMsUntilNow()).toBeCloseTo(2 * 2000 + 4 * 1000, 9);
    expect(cluster.peakCoresInUse).toBe(6);
  });
});

describe("SimCluster batch queue", () => {
  it("keeps arrival order however many batches an instance holds", async () => {
    const clock = new VirtualClock();
    const rt: SimRuntime = { service: new ConstantServiceModel(10), coldStart: 0, resize: 0 };
    const cluster = new SimCluster(clock, { nodes: [1], runtime: () => rt });
    const id = cluster.place("t", "v", 1).instance!;
    const inst = cluster.instances()[0]!;
    expect(inst.id).toBe(id);
    const order: number[] = [];
    const send = (k: number) => inst.run({ task: "t", variant: "v", items: [req()] }, () => order.push(k));
    for (let k = 0; k < 3; k++) send(k);
    await clock.runUntil(15); // one done, two waiting: the ring wraps on the next sends
    for (let k = 3; k < 12; k++) send(k);
    await clock.runUntil(1000);
    expect(order).toEqual(Array.from({ length: 12 }, (_, k) => k));
    expect(clock.now()).toBe(1000);
    expect(inst.inFlight).toBe(0);
  });
});
