import { describe, expect, it } from "vitest";
import { countsFromArrivals } from "../../src/traces/convert.js";
import {
  constantRate,
  diurnalRate,
  expectedCounts,
  gammaArrivals,
  generateArrivals,
  piecewiseRate,
  poissonArrivals,
  rampRate,
  seriesRate,
  stepRate,
} from "../../src/traces/generators.js";
import { logFactorial, Mulberry32 } from "../../src/stats/random.js";
import { sliceArrivals } from "../../src/traces/slice.js";
import { arrivalMeanRate, interArrivalCv2, seriesStats } from "../../src/traces/stats.js";
import { assertSorted, newMeta, rateSeries } from "../../src/traces/arrival-trace.js";

function countIn(times: Float64Array, fromS: number, toS: number): number {
  let n = 0;
  for (const t of times) if (t >= fromS * 1000 && t < toS * 1000) n++;
  return n;
}

function meanVar(xs: number[]): [number, number] {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1);
  return [m, v];
}

describe("seeded samplers", () => {
  it("poisson has mean = variance = λ for small and large λ", () => {
    const rng = new Mulberry32(11);
    for (const lambda of [0.3, 3.7, 42, 900]) {
      const xs = Array.from({ length: 40_000 }, () => rng.poisson(lambda));
      const [m, v] = meanVar(xs);
      expect(m).toBeGreaterThan(lambda * 0.98 - 0.01);
      expect(m).toBeLessThan(lambda * 1.02 + 0.01);
      expect(v / lambda).toBeGreaterThan(0.95);
      expect(v / lambda).toBeLessThan(1.05);
      expect(xs.every((x) => Number.isInteger(x) && x >= 0)).toBe(true);
    }
  });

  it("gamma(k) has mean k and variance k, also for k < 1", () => {
    const rng = new Mulberry32(5);
    for (const k of [0.25, 1, 4.5]) {
      const [m, v] = meanVar(Array.from({ length: 60_000 }, () => rng.gamma(k)));
      expect(Math.abs(m - k) / k).toBeLessThan(0.03);
      expect(Math.abs(v - k) / k).toBeLessThan(0.08);
    }
  });

  it("logFactorial matches the direct sum on both sides of the table", () => {
    let direct = 0;
    for (let k = 1; k <= 200; k++) {
      direct += Math.log(k);
      expect(logFactorial(k)).toBeCloseTo(direct, 9);
    }
    expect(logFactorial(0)).toBe(0);
  });
});

describe("Poisson and gamma arrivals", () => {
  it("Poisson: mean rate, exponential gaps (CV² ≈ 1), per-second counts with variance ≈ mean", () => {
    const tr = poissonArrivals(50, 2000, 1);
    expect(tr.durationMs).toBe(2_000_000);
    expect(Math.abs(arrivalMeanRate(tr) - 50)).toBeLessThan(0.5);
    expect(Math.abs(interArrivalCv2(tr.times) - 1)).toBeLessThan(0.04);
    const s = seriesStats(countsFromArrivals(tr, 1000));
    // For Poisson counts CV = 1/√mean.
    expect(s.cv * Math.sqrt(s.mean)).toBeGreaterThan(0.95);
    expect(s.cv * Math.sqrt(s.mean)).toBeLessThan(1.05);
    expect(() => assertSorted(tr.times)).not.toThrow();
    expect(tr.times[tr.times.length - 1]!).toBeLessThan(2_000_000);
  });

  it.each([0.25, 4, 9])("gamma arrivals hit CV² = %s and the mean rate", (cv2) => {
    const tr = gammaArrivals(100, cv2, 1000, 3);
    expect(Math.abs(arrivalMeanRate(tr) - 100) / 100).toBeLessThan(cv2 > 1 ? 0.05 : 0.01);
    expect(Math.abs(interArrivalCv2(tr.times) - cv2) / cv2).toBeLessThan(0.1);
  });

  it("burstier streams have more variable per-second counts", () => {
    const smooth = seriesStats(countsFromArrivals(gammaArrivals(100, 0.25, 600, 9)));
    const bursty = seriesStats(countsFromArrivals(gammaArrivals(100, 4, 600, 9)));
    // Index of dispersion of a renewal process's counts tends to its CV².
    expect(smooth.cv ** 2 * smooth.mean).toBeLessThan(0.4);
    expect(bursty.cv ** 2 * bursty.mean).toBeGreaterThan(2.5);
  });

  it("is deterministic per seed", () => {
    const a = gammaArrivals(30, 2, 100, 42);
    const b = gammaArrivals(30, 2, 100, 42);
    const c = gammaArrivals(30, 2, 100, 43);
    expect(Array.from(a.times)).toEqual(Array.from(b.times));
    expect(a.times.length === c.times.length && a.times.every((t, i) => t === c.times[i])).toBe(false);
    const r1 = generateArrivals({ rate: rampRate({ from: 1, to: 20, startS: 0, endS: 50 }), durationS: 60, seed: 7 });
    const r2 = generateArrivals({ rate: rampRate({ from: 1, to: 20, startS: 0, endS: 50 }), durationS: 60, seed: 7 });
    expect(Array.from(r1.times)).toEqual(Array.from(r2.times));
    expect(a.meta.source).toContain("seed 42");
  });

  it("rate 0 and duration 0 give empty traces; bad parameters throw", () => {
    expect(poissonArrivals(0, 100, 1).times.length).toBe(0);
    expect(poissonArrivals(10, 0, 1).times.length).toBe(0);
    expect(() => gammaArrivals(10, 0, 10, 1)).toThrow(/cv2/);
    expect(() => generateArrivals({ rate: () => -1, durationS: 1, seed: 1 })).toThrow(/rates must be/);
  });
});

describe("rate shapes", () => {
  it("step: the rate changes at the step and not before", () => {
    const tr = generateArrivals({ rate: stepRate({ before: 10, after: 40, atS: 100 }), durationS: 200, seed: 2 });
    expect(Math.abs(countIn(tr.times, 0, 100) - 1000)).toBeLessThan(100);
    expect(Math.abs(countIn(tr.times, 100, 200) - 4000)).toBeLessThan(200);
    expect(countIn(tr.times, 90, 100)).toBeLessThan(160);
    expect(countIn(tr.times, 100, 110)).toBeGreaterThan(320);
  });

  it("ramp: counts follow the line, then hold", () => {
    const ramp = rampRate({ from: 10, to: 50, startS: 0, endS: 400 });
    const tr = generateArrivals({ rate: ramp, durationS: 500, seed: 4 });
    // Expected per 100 s: 1500, 2500, 3500, 4500, then 5000 flat.
    const expected = [1500, 2500, 3500, 4500, 5000];
    expected.forEach((e, q) =>
      expect(Math.abs(countIn(tr.times, q * 100, q * 100 + 100) - e)).toBeLessThan(4 * Math.sqrt(e)),
    );
    const exp = expectedCounts(ramp, 500, 100);
    expected.forEach((e, q) => expect(exp.counts[q]!).toBeCloseTo(e, 6));
    expect(ramp(-5)).toBe(10);
    expect(ramp(200)).toBe(30);
  });

  it("diurnal: peaks where asked, peak/trough ≈ (1+a)/(1−a), mean kept", () => {
    const shape = diurnalRate({ mean: 20, amplitude: 0.5, periodS: 3600, peakS: 900 });
    const tr = generateArrivals({ rate: shape, durationS: 3600, seed: 8 });
    expect(Math.abs(tr.times.length - 72_000)).toBeLessThan(800);
    const c = countsFromArrivals(tr, 300_000).counts; // 12 five-minute bins
    const peakBin = c.indexOf(Math.max(...c));
    expect([2, 3]).toContain(peakBin); // the bins around 900 s
    const troughBin = c.indexOf(Math.min(...c));
    expect([8, 9]).toContain(troughBin); // around 2700 s
    expect(Math.max(...c) / Math.min(...c)).toBeGreaterThan(2.3);
    expect(Math.max(...c) / Math.min(...c)).toBeLessThan(3.3);
    expect(shape(900)).toBeCloseTo(30, 9);
    expect(shape(2700)).toBeCloseTo(10, 9);
  });

  it("piecewise and series-driven rates reproduce their levels", () => {
    const pw = piecewiseRate([
      { fromS: 0, rate: 5 },
      { fromS: 50, rate: 0 },
      { fromS: 60, rate: 80 },
    ]);
    const tr = generateArrivals({ rate: pw, durationS: 100, seed: 1 });
    expect(countIn(tr.times, 50, 60)).toBe(0);
    expect(Math.abs(countIn(tr.times, 60, 100) - 3200)).toBeLessThan(240);
    const series = rateSeries([600, 0, 3000], 60_000, newMeta("test"));
    const fromSeries = generateArrivals({ rate: seriesRate(series), durationS: 180, seed: 2, cv2: 2 });
    expect(countIn(fromSeries.times, 60, 120)).toBe(0);
    expect(Math.abs(countIn(fromSeries.times, 120, 180) - 3000)).toBeLessThan(400);
  });

  it("a time-varying gamma stream keeps its burstiness on top of the shape", () => {
    const tr = generateArrivals({
      rate: rampRate({ from: 50, to: 100, startS: 0, endS: 600 }),
      durationS: 600,
      seed: 12,
      cv2: 4,
    });
    // Within a short window the rate is nearly constant, so the gaps' CV² is close to the target.
    const mid = sliceArrivals(tr, { startS: 280, durationS: 40 });
    expect(interArrivalCv2(mid.times)).toBeGreaterThan(3);
    expect(interArrivalCv2(mid.times)).toBeLessThan(5.2);
    expect(Math.abs(tr.times.length - 45_000) / 45_000).toBeLessThan(0.06);
    expect(constantRate(3)(1e9)).toBe(3);
  });
});
