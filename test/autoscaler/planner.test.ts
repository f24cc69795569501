import { describe, expect, it } from "vitest";
import { horizontal, vertical } from "../../src/autoscaler/planner/dp.js";
import { gammaQuantile, lat, queueMs, throughput, unitFor } from "../../src/autoscaler/planner/model.js";
import { THEMIS_PIPELINES } from "../../src/autoscaler/planner/pipelines.js";

const shape = (p: ReturnType<typeof horizontal>) =>
  p!.stages.map((s) => ({ replicas: s.replicas, cores: s.cores, batch: s.batch }));

describe("Themis golden vector A1 (July-2024 semantics)", () => {
  const stages = [
    { alpha: 84.7798, beta: 21.8676, gamma: 0.34754, zeta: -3.39346 },
    { alpha: 61.4977, beta: 3.81527, gamma: 14.9014, zeta: 11.0415 },
  ];
  const o = { sloMs: 1000, lambda: 30, bMax: 8, cMax: 8, semantics: "v1" as const };

  it("horizontal: stage 0 4 × 1 core b=1, stage 1 3 × 1 core b=1 — 7 cores", () => {
    const h = horizontal(stages, o);
    expect(shape(h)).toEqual([
      { replicas: 4, cores: 1, batch: 1 },
      { replicas: 3, cores: 1, batch: 1 },
    ]);
    expect(h!.cost).toBe(7);
  });

  it("vertical: stage 0 6 cores b=1, stage 1 4 cores b=1, no extra instances — 10 cores", () => {
    const v = vertical(stages, { ...o, current: [1, 1] });
    expect(shape(v)).toEqual([
      { replicas: 1, cores: 6, batch: 1 },
      { replicas: 1, cores: 4, batch: 1 },
    ]);
    expect(v!.extra).toEqual([0, 0]);
    expect(v!.cost).toBe(10);
  });

  it("integer latency decides stage 1 at 4 cores: int(33.95) = 33 ms → h = 30 = λ", () => {
    expect(lat(stages[1]!, 1, 4, "v1")).toBe(33);
    expect(throughput(stages[1]!, 1, 4, "v1")).toBe(30);
    expect(throughput(stages[1]!, 1, 3, "v1")).toBeLessThan(30);
    expect(queueMs(3, 30, "v1")).toBe(66); // int(2000/30)
  });
});

describe("Themis golden vector A2 (revised semantics)", () => {
  const stages = [
    { alpha: 39.9089, beta: 7.78414, gamma: 1.83333, zeta: 0.450707, memGb: 2 },
    { alpha: 28.0843, beta: 2.62695, gamma: 6.80717, zeta: 0.458834, memGb: 1 },
  ];
  const o = { sloMs: 300, lambda: 150, bMax: 4, cMax: 4, semantics: "revised" as const };

  it("horizontal: stage 0 8 × 1 core b=2, stage 1 3 × 2 cores b=3", () => {
    expect(shape(horizontal(stages, o))).toEqual([
      { replicas: 8, cores: 1, batch: 2 },
      { replicas: 3, cores: 2, batch: 3 },
    ]);
  });

  it("vertical: stage 0 4 cores b=4, stage 1 4 cores b=1, extra instances [2, 2]", () => {
    const v = vertical(stages, { ...o, current: [1, 1] });
    expect(shape(v)).toEqual([
      { replicas: 1, cores: 4, batch: 4 },
      { replicas: 1, cores: 4, batch: 1 },
    ]);
    expect(v!.extra).toEqual([2, 2]);
  });

  it("revised cost is n·(mem_GB + 18·c) and the queue is the p99 of Gamma(b−1, 1/λ)", () => {
    const h = horizontal(stages, o)!;
    expect(h.cost).toBe(8 * (2 + 18) + 3 * (1 + 18 * 2));
    // Gamma(2, 1/150) p99 in ms: 6.6384 / 150 · 1000 = 44.26 → 45
    expect(queueMs(3, 150, "revised")).toBe(45);
  });
});

describe("Gamma quantile", () => {
  it("matches closed forms and published values", () => {
    // shape 1 is exponential: −θ ln(1 − p)
    expect(gammaQuantile(0.99, 1, 2)).toBeCloseTo(-2 * Math.log(0.01), 10);
    expect(gammaQuantile(0.5, 1)).toBeCloseTo(Math.log(2), 12);
    // chi-square(ν) = Gamma(ν/2, 2): χ²_{0.99}(2) = 9.2103, χ²_{0.99}(6) = 16.8119, χ²_{0.95}(10) = 18.3070
    expect(gammaQuantile(0.99, 1, 2)).toBeCloseTo(9.21034, 4);
    expect(gammaQuantile(0.99, 3, 2)).toBeCloseTo(16.81189, 4);
    expect(gammaQuantile(0.95, 5, 2)).toBeCloseTo(18.30704, 4);
    expect(gammaQuantile(0.99, 0.5, 2)).toBeCloseTo(6.634897, 5);
  });
});

describe("planner properties", () => {
  const video = THEMIS_PIPELINES[0]!;
  const base = { sloMs: video.sloMs, bMax: 8, cMax: 8, semantics: "v1" as const };

  it("every plan fits the SLO and carries the load", () => {
    for (const lambda of [1, 5, 15, 30, 60, 120]) {
      const h = horizontal(video.stages, { ...base, lambda })!;
      expect(h.totalLatencyMs).toBeLessThanOrEqual(video.sloMs);
      for (const s of h.stages) expect(s.replicas * s.throughput).toBeGreaterThanOrEqual(lambda);
      const v = vertical(video.stages, { ...base, lambda, current: [2, 1] })!;
      v.stages.forEach((s, i) => expect((s.replicas + v.extra![i]!) * s.throughput).toBeGreaterThanOrEqual(lambda));
    }
  });

  it("the vertical fallback adds instances of the maxed-out size only when C_max cannot carry the load", () => {
    const v = vertical(video.stages, { ...base, lambda: 100, current: [1, 1] })!;
    expect(v.extra!.some((e) => e > 0)).toBe(true);
    expect(v.stages.every((s) => s.cores === 8)).toBe(true);
    const fits = vertical(video.stages, { ...base, lambda: 5, current: [1, 1] })!;
    expect(fits.extra).toEqual([0, 0]);
  });

  it("returns null when nothing fits the SLO", () => {
    expect(horizontal(video.stages, { ...base, sloMs: 20, lambda: 5 })).toBeNull();
    expect(vertical(video.stages, { ...base, sloMs: 20, lambda: 5, current: [1, 1] })).toBeNull();
  });

  it("plans sub-millisecond models in finer time units instead of rounding them to 0 ms", () => {
    const digits = { alpha: 0.05, beta: 0.02, gamma: 0.1, zeta: 0.15 }; // l(1,1) = 0.32 ms
    expect(lat(digits, 1, 1, "v1")).toBe(1); // at least one unit; in ms every choice looks the same
    expect(throughput(digits, 1, 1, "v1")).toBe(1000);
    const unitMs = unitFor([digits], 2, "v1", 50);
    expect(unitMs).toBe(0.1); // 0.01 would span the 50-ms SLO with 5,000 units; the cap is 1,000
    const h = horizontal([digits], { sloMs: 50, lambda: 2000, bMax: 8, cMax: 1, semantics: "v1", unitMs })!;
    for (const s of h.stages) expect(s.replicas * s.throughput).toBeGreaterThanOrEqual(2000);
    expect(h.totalLatencyMs).toBeLessThanOrEqual(50);
    expect(unitFor(video.stages, 8, "v1", video.sloMs)).toBe(1);
    // a 5-µs model under an 80-ms SLO: as fine as 1,000 units allow, and still a plan
    const tiny = { alpha: 0.002, beta: 0.001, gamma: 0.001, zeta: 0.001 };
    expect(unitFor([tiny], 2, "v1", 80)).toBe(0.1);
    expect(
      horizontal([tiny], { sloMs: 80, lambda: 500, bMax: 8, cMax: 1, semantics: "v1", unitMs: 0.1 })!.stages[0]!
        .replicas,
    ).toBe(1);
  });
});
