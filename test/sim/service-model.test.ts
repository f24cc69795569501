import { describe, expect, it } from "vitest";
import type { ProfilePoint } from "../../src/repository/schema.js";
import { FitServiceModel, ProfileServiceModel, sampleDuration, medianDuration } from "../../src/sim/service-model.js";
import { Xoshiro128 } from "../../src/stats/random.js";
import { LatencyHistogram } from "../../src/sim/histogram.js";

const pt = (batch: number, cores: number, p50: number, p99: number): ProfilePoint => ({
  batch,
  cores,
  p50_ms: p50,
  p99_ms: p99,
  mean_ms: p50,
  samples: 10,
});

// a small grid in the shape the profiler writes (b ∈ {1,2,4}, c ∈ {1,2})
const points = [
  pt(1, 1, 40, 44),
  pt(2, 1, 80, 90),
  pt(4, 1, 150, 160),
  pt(1, 2, 20, 30),
  pt(2, 2, 36, 40),
  pt(4, 2, 70, 75),
];

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

describe("Xoshiro128", () => {
  it("repeats from its seed and differs between seeds", () => {
    const a = new Xoshiro128(42);
    const b = new Xoshiro128(42);
    const c = new Xoshiro128(43);
    const xs = Array.from({ length: 5 }, () => a.uniform());
    expect(Array.from({ length: 5 }, () => b.uniform())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.uniform())).not.toEqual(xs);
    for (const x of xs) expect(x > 0 && x < 1).toBe(true);
  });

  it("draws normals and exponentials with the right moments", () => {
    const rng = new Xoshiro128(7);
    const n = 200_000;
    let s = 0;
    let s2 = 0;
    let e = 0;
    for (let i = 0; i < n; i++) {
      const z = rng.normal();
      s += z;
      s2 += z * z;
      e += rng.exponential(3);
    }
    expect(Math.abs(s / n)).toBeLessThan(0.01);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.01);
    expect(Math.abs(e / n / 3 - 1)).toBeLessThan(0.01);
  });
});

describe("ProfileServiceModel", () => {
  const m = new ProfileServiceModel(points);

  it("gives the measured p50 and p99 at profiled points", () => {
    for (const p of points) {
      expect(m.median(p.batch, p.cores)).toBeCloseTo(p.p50_ms, 9);
      expect(m.p99(p.batch, p.cores)).toBeCloseTo(p.p99_ms, 9);
    }
  });

  it("interpolates linearly in batch and in 1/cores between points", () => {
    expect(m.median(3, 1)).toBeCloseTo(115, 9);
    // c = 1.5 is not a core count, but it checks the 1/c weighting: 1/1.5 lies 1/3 of the way from 1/2 to 1
    const w = (1 / 1.5 - 1 / 2) / (1 - 1 / 2);
    expect(m.interpolate(1, 1.5, "p50")).toBeCloseTo(w * 40 + (1 - w) * 20, 9);
  });

  it("extrapolates pessimistically off the grid", () => {
    // larger batch: proportional to the largest profiled one
    expect(m.median(8, 1)).toBeCloseTo(300, 9);
    // more cores: Amdahl through c = 1 and 2 (l = A + B/c with B = 40, A = 0 at b = 1), clamped to a perfect speed-up
    expect(m.median(1, 4)).toBeCloseTo(10, 9);
    // b = 2: 80 at c=1, 36 at c=2 → B = 88, A = −8; A + B/4 = 14 is below the perfect speed-up bound 18
    expect(m.median(2, 4)).toBeCloseTo(18, 9);
    // fewer cores than profiled: proportional
    const only2 = new ProfileServiceModel([pt(1, 2, 20, 30)]);
    expect(only2.median(1, 1)).toBeCloseTo(40, 9);
    expect(only2.median(1, 8)).toBeCloseTo(20, 9);
  });

  it("samples a lognormal whose p50 and p99 are the measured ones", () => {
    const rng = new Xoshiro128(3);
    const xs = Array.from({ length: 100_000 }, () => m.sample(1, 2, rng));
    expect(quantile(xs, 0.5) / 20).toBeGreaterThan(0.99);
    expect(quantile(xs, 0.5) / 20).toBeLessThan(1.01);
    expect(quantile(xs, 0.99) / 30).toBeGreaterThan(0.97);
    expect(quantile(xs, 0.99) / 30).toBeLessThan(1.03);
  });

  it("is deterministic where p50 = p99 and consumes no randomness", () => {
    const flat = new ProfileServiceModel([pt(1, 1, 5, 5)]);
    const rng = new Xoshiro128(1);
    const before = new Xoshiro128(1).uniform();
    expect(flat.sample(1, 1, rng)).toBe(5);
    expect(rng.uniform()).toBe(before);
  });
});

describe("FitServiceModel", () => {
  const fit = { alpha: 148.82, beta: 37.49, gamma: 5.43, zeta: -15.48 };

  it("is the fit when there is no spread", () => {
    const m = new FitServiceModel(fit);
    expect(m.sample(1, 1, new Xoshiro128(1))).toBeCloseTo(148.82 + 37.49 + 5.43 - 15.48, 9);
  });

  it("puts the fit at the p99 of the spread by default", () => {
    const m = new FitServiceModel(fit, { spread: 1.5 });
    const l = (148.82 * 2) / 4 + 37.49 * 2 + 5.43 / 4 - 15.48;
    expect(m.p99(2, 4)).toBeCloseTo(l, 9);
    expect(m.median(2, 4)).toBeCloseTo(l / 1.5, 9);
  });
});

describe("durations and histogram", () => {
  it("draws measured samples uniformly and takes their median", () => {
    const rng = new Xoshiro128(5);
    const seen = new Set(Array.from({ length: 100 }, () => sampleDuration([1, 2, 3], rng)));
    expect([...seen].sort()).toEqual([1, 2, 3]);
    expect(sampleDuration(7, rng)).toBe(7);
    expect(medianDuration([685.718, 466.724, 808.022])).toBe(685.718);
    expect(medianDuration([1, 2, 3, 10])).toBe(2.5);
  });

  it("gives percentiles within 0.5 %", () => {
    const h = new LatencyHistogram();
    const rng = new Xoshiro128(9);
    const xs = Array.from({ length: 50_000 }, () => rng.exponential(40));
    for (const x of xs) h.add(x);
    for (const q of [0.5, 0.9, 0.99]) {
      const exact = quantile(xs, q);
      expect(Math.abs(h.quantile(q) / exact - 1)).toBeLessThan(0.006);
    }
    h.clear();
    expect(h.count).toBe(0);
    expect(Number.isNaN(h.quantile(0.5))).toBe(true);
  });
});
