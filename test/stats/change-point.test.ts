import { describe, expect, it } from "vitest";
import { ChangeDetector } from "../../src/stats/change-point.js";
import { Xoshiro128 } from "../../src/stats/random.js";

describe("CUSUM change points on log batch-time residuals", () => {
  it("finds a 1.5× slowdown within a few batches and estimates its size, at a 10 % spread", () => {
    const rng = new Xoshiro128(7);
    const d = new ChangeDetector();
    for (let i = 0; i < 200; i++) expect(d.push(0.1 * rng.normal())).toBeNull();
    let found = null;
    let after = 0;
    while (!found && after < 50) {
      const r = Math.log(1.5) + 0.1 * rng.normal();
      found = d.push(r);
      after++;
    }
    expect(found?.direction).toBe("slower");
    expect(after).toBeLessThanOrEqual(8);
    expect(Math.exp(found!.level)).toBeGreaterThan(1.35);
    expect(Math.exp(found!.level)).toBeLessThan(1.65);
  });

  it("raises no alarm over 20,000 stationary batches with a heavy tail (a stalled batch now and then)", () => {
    const rng = new Xoshiro128(11);
    const d = new ChangeDetector();
    let alarms = 0;
    for (let i = 0; i < 20_000; i++) {
      const stall = rng.uniform() < 0.01 ? Math.log(3) : 0;
      if (d.push(0.15 * rng.normal() + stall)) alarms++;
    }
    expect(alarms).toBe(0);
  });

  it("leaves shifts below minShift to the caller, and finds one that speeds up", () => {
    const rng = new Xoshiro128(3);
    const d = new ChangeDetector({ k: 0.5, h: 10, minSigma: 0.01, clip: 4, sigmaWeight: 0.05, minShift: 0.1 });
    for (let i = 0; i < 100; i++) d.push(0.01 * rng.normal());
    // 5 % slower is a real shift of 5σ, but smaller than minShift: not reported
    for (let i = 0; i < 200; i++) expect(d.push(Math.log(1.05) + 0.01 * rng.normal())).toBeNull();
    let found = null;
    for (let i = 0; i < 20 && !found; i++) found = d.push(Math.log(0.6) + 0.01 * rng.normal());
    expect(found?.direction).toBe("faster");
    expect(Math.exp(found!.level)).toBeCloseTo(0.6, 1);
  });
});
