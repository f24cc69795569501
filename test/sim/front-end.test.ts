// The fidelity model's two pieces in the simulator: the front-end core (client + gateway work per request,
// FIFO, judged on the client's clock) and a service model corrected by live measurements.
import { describe, expect, it } from "vitest";
import {
  ConstantServiceModel,
  ResampledServiceModel,
  Xoshiro128,
  simulate,
  type SimTask,
} from "../../src/sim/index.js";

const TASK: SimTask = {
  name: "t",
  sloMs: 14,
  scheduling: "fifo",
  variants: [
    {
      name: "v",
      accuracy: 1,
      maxBatch: 1,
      fit: { alpha: 0, beta: 0, gamma: 0, zeta: 10 },
      service: new ConstantServiceModel(10),
      coldStart: 0,
      resize: 0,
    },
  ],
};

describe("the front-end core", () => {
  it("adds its work and the wire to each request, queues requests FIFO, and judges by the client's clock", async () => {
    const { records, summary } = await simulate({
      tasks: [TASK],
      // two requests at once, a third alone later
      arrivals: [{ target: "t", times: [0, 0, 100] }],
      deployment: [{ task: "t", variant: "v", cores: 1 }],
      nodes: [1],
      records: true,
      frontEnd: { inMs: 1, outMs: 0.5, wireMs: 0.25 },
    });
    // first: wire 0.25 + in 1 → router at 1.25, served 10 → 11.25, out 0.5 → 11.75, wire → 12
    // second: in queued behind the first's (1.25 → 2.25), served after the first (11.25 → 21.25), its out
    // after the first's (21.25 → 21.75), wire → 22: 22 ms > 14 on the client's clock, though the server
    // received it at 2.25 and answered it before 2.25 + 14 + 5
    // third: alone, 12 ms after it was sent
    expect(Array.from(records!.finish)).toEqual([12, 22, 112]);
    expect(summary.met).toBe(2);
    expect(summary.late).toBe(1);
  });

  it("keeps the core busy with off-path work, which delays the requests behind and not the one that caused it", async () => {
    const { records } = await simulate({
      tasks: [TASK],
      arrivals: [{ target: "t", times: [0, 12] }],
      deployment: [{ task: "t", variant: "v", cores: 1 }],
      nodes: [1],
      records: true,
      frontEnd: { inMs: 1, outMs: 1, offPathMs: 5 },
    });
    // first: in 0 → 1, served 1 → 11, out 11 → 12 (then 5 ms off its path, 12 → 17)
    // second: sent at 12, its in waits for the core until 17 → 18, served 18 → 28, out 28 → 29
    expect(Array.from(records!.finish)).toEqual([12, 29]);
  });
});

describe("the resampled service model", () => {
  it("draws the model's median times one of the measured ratios, lumps and all", () => {
    const base = new ConstantServiceModel(10);
    const m = new ResampledServiceModel(base, [1, 1, 1, 1, 30]);
    expect(m.median(1, 1)).toBe(10);
    const rng = new Xoshiro128(9);
    const xs = Array.from({ length: 10_000 }, () => m.sample(1, 1, rng));
    expect(new Set(xs)).toEqual(new Set([10, 300]));
    expect(xs.filter((x) => x === 300).length / xs.length).toBeCloseTo(0.2, 1);
    expect(() => new ResampledServiceModel(base, [])).toThrow(/measured ratios/);
    // a batch size measured often enough draws from its own ratios
    const per = new ResampledServiceModel(
      base,
      [1],
      new Map([
        [4, new Array(20).fill(2)],
        [8, [3]],
      ]),
    );
    expect([per.sample(1, 1, rng), per.sample(4, 1, rng), per.sample(8, 1, rng)]).toEqual([10, 20, 10]);
  });
});
