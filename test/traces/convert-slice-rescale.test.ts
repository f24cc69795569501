import { describe, expect, it } from "vitest";
import { assertSorted, newMeta, rateSeries, type ArrivalTrace } from "../../src/traces/arrival-trace.js";
import { arrivalsFromCounts, countsFromArrivals, mergeArrivals } from "../../src/traces/convert.js";
import { poissonArrivals } from "../../src/traces/generators.js";
import { divideCounts, rescaleArrivals, scaleToMeanRate, stretchTime, thinArrivals } from "../../src/traces/rescale.js";
import { lowerBound, sliceArrivals, sliceSeries } from "../../src/traces/slice.js";
import { arrivalMeanRate, interArrivalCv2, seriesMeanRate, seriesStats } from "../../src/traces/stats.js";

const perSecond = (counts: number[], gaps?: Array<[number, number]>) => rateSeries(counts, 1000, newMeta("test"), gaps);

describe("counts → arrivals → counts", () => {
  it("exact mode gives every bin its count, within the bin, sorted", () => {
    const counts = [3, 0, 7, 1, 250, 0, 12];
    for (const spread of ["poisson", "uniform"] as const) {
      const tr = arrivalsFromCounts(perSecond(counts), { spread, seed: 5 });
      expect(tr.times.length).toBe(counts.reduce((a, b) => a + b, 0));
      expect(tr.durationMs).toBe(7000);
      assertSorted(tr.times);
      expect(Array.from(countsFromArrivals(tr).counts)).toEqual(counts);
    }
  });

  it("uniform spread spaces a bin's arrivals evenly at (k+½)·bin/n", () => {
    const tr = arrivalsFromCounts(rateSeries([4], 60_000, newMeta("m")), { spread: "uniform" });
    expect(Array.from(tr.times)).toEqual([7500, 22500, 37500, 52500]);
  });

  it("poisson spread inside minute bins looks Poisson (gap CV² ≈ 1) at a steady count", () => {
    const minutes = rateSeries(new Array(120).fill(600), 60_000, newMeta("m"));
    const tr = arrivalsFromCounts(minutes, { seed: 2 });
    expect(tr.times.length).toBe(72_000);
    expect(Math.abs(interArrivalCv2(tr.times) - 1)).toBeLessThan(0.04);
    const uniform = arrivalsFromCounts(minutes, { spread: "uniform" });
    expect(interArrivalCv2(uniform.times)).toBeLessThan(1e-6);
  });

  it("fractional counts round up with their fractional probability; poisson counts redraw the number", () => {
    const tr = arrivalsFromCounts(perSecond(new Array(20_000).fill(0.25)), { seed: 3 });
    expect(Math.abs(tr.times.length - 5000)).toBeLessThan(250);
    const pc = countsFromArrivals(
      arrivalsFromCounts(perSecond(new Array(5000).fill(20)), { count: "poisson", seed: 4 }),
    );
    const s = seriesStats(pc);
    expect(Math.abs(s.mean - 20)).toBeLessThan(0.3);
    expect(s.cv * s.cv * s.mean).toBeGreaterThan(0.9); // variance ≈ mean, unlike the exact mode's 0
    expect(s.cv * s.cv * s.mean).toBeLessThan(1.1);
    expect(() => arrivalsFromCounts(perSecond([1, -1]))).toThrow(/>= 0/);
  });

  it("is deterministic per seed and carries gaps both ways", () => {
    const series = perSecond([5, 0, 0, 0, 9, 4], [[1, 4]]);
    const a = arrivalsFromCounts(series, { seed: 9 });
    const b = arrivalsFromCounts(series, { seed: 9 });
    const c = arrivalsFromCounts(series, { seed: 10 });
    expect(Array.from(a.times)).toEqual(Array.from(b.times));
    expect(Array.from(a.times)).not.toEqual(Array.from(c.times));
    expect(a.gaps).toEqual([[1000, 4000]]);
    expect(countsFromArrivals(a).gaps).toEqual([[1, 4]]);
    // A 2-s bin is a gap only where it lies wholly inside one.
    expect(countsFromArrivals(a, 2000).gaps).toEqual([[1, 2]]);
  });

  it("merges streams in time order, labelling each request with its stream and keeping columns", () => {
    const s1: ArrivalTrace = {
      times: Float64Array.from([1, 5, 9]),
      durationMs: 10,
      budgetsMs: Float64Array.from([100, 101, 102]),
      columns: { tok: Int32Array.from([7, 8, 9]) },
      meta: newMeta("a"),
    };
    const s2: ArrivalTrace = {
      times: Float64Array.from([2, 5, 20]),
      durationMs: 30,
      budgetsMs: Float64Array.from([200, 201, 202]),
      columns: { tok: Int32Array.from([1, 2, 3]) },
      meta: newMeta("b"),
    };
    const m = mergeArrivals([s1, s2]);
    expect(Array.from(m.times)).toEqual([1, 2, 5, 5, 9, 20]);
    expect(Array.from(m.columns!.stream!)).toEqual([0, 1, 0, 1, 0, 1]);
    expect(Array.from(m.budgetsMs!)).toEqual([100, 200, 101, 201, 102, 202]);
    expect(Array.from(m.columns!.tok!)).toEqual([7, 1, 8, 2, 9, 3]);
    expect(m.columns!.tok).toBeInstanceOf(Int32Array);
    expect(m.durationMs).toBe(30);
    const big = mergeArrivals([poissonArrivals(50, 100, 1), poissonArrivals(30, 100, 2), poissonArrivals(0, 100, 3)]);
    assertSorted(big.times);
    expect(big.budgetsMs).toBeUndefined();
  });
});

describe("slicing", () => {
  it("series: a window of bins, rebased, gaps clipped, offset remembered", () => {
    const s = perSecond(
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      [
        [2, 5],
        [8, 9],
      ],
    );
    const w = sliceSeries(s, { startS: 3, endS: 9 });
    expect(Array.from(w.counts)).toEqual([3, 4, 5, 6, 7, 8]);
    expect(w.gaps).toEqual([
      [0, 2],
      [5, 6],
    ]);
    expect(w.meta.offsetS).toBe(3);
    const ww = sliceSeries(w, { startS: 1, durationS: 2 });
    expect(Array.from(ww.counts)).toEqual([4, 5]);
    expect(ww.meta.offsetS).toBe(4);
    expect(ww.meta.history).toEqual(["slice 3+6 s", "slice 1+2 s"]);
    expect(sliceSeries(s, { startS: 8 }).counts.length).toBe(2);
    const minutes = rateSeries([1, 2, 3], 60_000, newMeta("m"));
    expect(Array.from(sliceSeries(minutes, { startS: 60, durationS: 60 }).counts)).toEqual([2]);
    expect(() => sliceSeries(minutes, { startS: 30, durationS: 60 })).toThrow(/bin edges/);
    expect(() => sliceSeries(s, { startS: 1, endS: 2, durationS: 1 })).toThrow(/not both/);
  });

  it("arrivals: times shifted, columns and budgets sliced alongside", () => {
    const tr: ArrivalTrace = {
      times: Float64Array.from([500, 1500, 2000, 2999, 3000, 4500]),
      durationMs: 5000,
      budgetsMs: Float64Array.from([10, 11, 12, 13, 14, 15]),
      columns: { k: Int32Array.from([0, 1, 2, 3, 4, 5]) },
      gaps: [[3500, 4000]],
      meta: newMeta("t"),
    };
    const w = sliceArrivals(tr, { startS: 1.5, endS: 4 });
    expect(Array.from(w.times)).toEqual([0, 500, 1499, 1500]);
    expect(Array.from(w.budgetsMs!)).toEqual([11, 12, 13, 14]);
    expect(Array.from(w.columns!.k!)).toEqual([1, 2, 3, 4]);
    expect(w.durationMs).toBe(2500);
    expect(w.gaps).toEqual([[2000, 2500]]);
    expect(w.meta.offsetS).toBe(1.5);
    expect(lowerBound(tr.times, 2999)).toBe(3);
  });
});

describe("rescaling", () => {
  it("÷k floors like the papers' integer division, with a minimum rate; gap bins stay empty", () => {
    const s = perSecond([0, 3, 8, 17, 40, 9], [[5, 6]]);
    expect(Array.from(divideCounts(s, 8).counts)).toEqual([0, 0, 1, 2, 5, 0]);
    expect(Array.from(divideCounts(s, 8, { minRate: 1 }).counts)).toEqual([1, 1, 1, 2, 5, 0]);
    expect(Array.from(divideCounts(s, 4.384, { rounding: "round" }).counts)).toEqual([0, 1, 2, 4, 9, 0]);
    expect(divideCounts(s, 2, { rounding: "none" }).counts[3]).toBe(8.5);
    const minutes = rateSeries([0, 600], 60_000, newMeta("m"));
    expect(Array.from(divideCounts(minutes, 10, { minRate: 1 }).counts)).toEqual([60, 60]);
    expect(divideCounts(s, 8, { minRate: 1 }).meta.history).toEqual(["÷8 floor min 1/s"]);
    expect(() => divideCounts(s, 0)).toThrow();
  });

  it("to a target mean rate, gaps excluded from the mean", () => {
    const s = perSecond([10, 20, 0, 30], [[2, 3]]);
    expect(seriesMeanRate(s)).toBe(20);
    const t = scaleToMeanRate(s, 5);
    expect(Array.from(t.counts)).toEqual([2.5, 5, 0, 7.5]);
    expect(seriesMeanRate(t)).toBeCloseTo(5, 12);
    expect(t.gaps).toEqual([[2, 3]]);
    const minutes = rateSeries([600, 1200], 60_000, newMeta("m"));
    expect(seriesMeanRate(minutes)).toBe(15);
    expect(Array.from(scaleToMeanRate(minutes, 1.5).counts)).toEqual([60, 120]);
  });

  it("arrivals: thinning keeps a Poisson stream Poisson at the lower rate; time stretching changes the span", () => {
    const tr = poissonArrivals(100, 500, 21);
    const thin = thinArrivals(tr, 0.25, 4);
    expect(Math.abs(arrivalMeanRate(thin) - 25)).toBeLessThan(0.8);
    expect(Math.abs(interArrivalCv2(thin.times) - 1)).toBeLessThan(0.06);
    expect(Array.from(thinArrivals(tr, 0.25, 4).times)).toEqual(Array.from(thin.times));
    const to10 = rescaleArrivals(tr, 10, { seed: 1 });
    expect(Math.abs(arrivalMeanRate(to10) - 10)).toBeLessThan(0.6);
    const slow = rescaleArrivals(tr, arrivalMeanRate(tr) / 2, { method: "time" });
    expect(slow.times.length).toBe(tr.times.length);
    expect(slow.durationMs).toBeCloseTo(1_000_000, 6);
    expect(stretchTime(tr, 0.5).times[10]).toBe(tr.times[10]! / 2);
    expect(() => rescaleArrivals(tr, 1000)).toThrow(/cannot raise/);
  });

  it("thinning carries budgets and columns with their requests", () => {
    const tr: ArrivalTrace = {
      times: Float64Array.from([0, 1, 2, 3, 4, 5, 6, 7]),
      durationMs: 8,
      budgetsMs: Float64Array.from([0, 10, 20, 30, 40, 50, 60, 70]),
      columns: { k: Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]) },
      meta: newMeta("t"),
    };
    const th = thinArrivals(tr, 0.5, 3);
    expect(th.times.length).toBeGreaterThan(0);
    th.times.forEach((t, i) => {
      expect(th.budgetsMs![i]).toBe(t * 10);
      expect(th.columns!.k![i]).toBe(t);
    });
  });
});
