import { describe, expect, it } from "vitest";
import { fitInfaas, fitLatency, latencyOf, leastSquares } from "../../src/stats/latency-model.js";
import { quantile } from "../../src/stats/quantile.js";
import type { ProfilePoint } from "../../src/repository/schema.js";

const grid = (f: (b: number, c: number) => number): ProfilePoint[] =>
  [1, 2, 4, 6].flatMap((c) =>
    [1, 2, 4, 6, 8].map((b) => ({
      batch: b,
      cores: c,
      p50_ms: f(b, c),
      p99_ms: f(b, c) * 1.2,
      mean_ms: f(b, c),
      samples: 10,
    })),
  );

describe("latency model fit", () => {
  it("recovers known parameters from synthetic points exactly (Themis' video detector)", () => {
    const truth = { alpha: 148.82, beta: 37.49, gamma: 5.43, zeta: -15.48 };
    const fit = fitLatency(
      grid((b, c) => latencyOf(truth, b, c)),
      "p50",
    );
    expect(fit.alpha).toBeCloseTo(truth.alpha, 9);
    expect(fit.beta).toBeCloseTo(truth.beta, 9);
    expect(fit.gamma).toBeCloseTo(truth.gamma, 9);
    expect(fit.zeta).toBeCloseTo(truth.zeta, 9);
    expect(fit.max_rel_error).toBeLessThan(1e-12);
    const p99 = fitLatency(
      grid((b, c) => latencyOf(truth, b, c)),
      "p99",
    );
    expect(p99.alpha).toBeCloseTo(truth.alpha * 1.2, 9);
  });

  it("recovers parameters on the 2-core grid this machine can profile", () => {
    const truth = { alpha: 3.1, beta: 0.07, gamma: 0.4, zeta: 0.05 };
    const pts = [1, 2].flatMap((c) =>
      [1, 2, 4, 8, 16].map((b) => ({
        batch: b,
        cores: c,
        p50_ms: latencyOf(truth, b, c),
        p99_ms: 0,
        mean_ms: 0,
        samples: 1,
      })),
    );
    const fit = fitLatency(pts, "p50");
    expect(fit.alpha).toBeCloseTo(3.1, 9);
    expect(fit.zeta).toBeCloseTo(0.05, 9);
  });

  it("reports its error on noisy points", () => {
    const truth = { alpha: 10, beta: 1, gamma: 2, zeta: 1 };
    let k = 0;
    const noisy = grid((b, c) => latencyOf(truth, b, c) * (1 + (k++ % 2 === 0 ? 0.05 : -0.05)));
    const fit = fitLatency(noisy, "p50");
    expect(fit.max_rel_error).toBeGreaterThan(0.01);
    expect(fit.max_rel_error).toBeLessThan(0.2);
    expect(fit.median_rel_error).toBeLessThanOrEqual(fit.max_rel_error);
    expect(fit.rmse_ms).toBeGreaterThan(0);
  });

  it("says what to do when the grid cannot separate the features", () => {
    const pts = [1, 2, 4].map((b) => ({ batch: b, cores: 1, p50_ms: b, p99_ms: b, mean_ms: b, samples: 1 }));
    expect(() => fitLatency([...pts, ...pts], "p50")).toThrow(
      /profile more batch sizes and core counts|linearly dependent/,
    );
  });

  it("fits INFaaS's per-core linear batch model", () => {
    const fits = fitInfaas(
      grid((b, c) => (2 * b + 3) / c),
      "p50",
    );
    expect(Object.keys(fits)).toEqual(["1", "2", "4", "6"]);
    expect(fits["2"]!.slope).toBeCloseTo(1, 9);
    expect(fits["2"]!.intercept).toBeCloseTo(1.5, 9);
  });

  it("solves an overdetermined system and computes quantiles like numpy", () => {
    const w = leastSquares(
      [
        [1, 0],
        [0, 1],
        [1, 1],
      ],
      [1, 2, 3],
    );
    expect(w[0]).toBeCloseTo(1, 12);
    expect(w[1]).toBeCloseTo(2, 12);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99)).toBeCloseTo(9.91, 10);
  });
});
