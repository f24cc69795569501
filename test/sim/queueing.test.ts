// Closed-form queueing checks of the whole simulated path (arrivals → real Router with FIFO →
// SimCluster instance): if the simulator's clock, batching or service times were off, the mean
// waiting time would not match the textbook value.
import { describe, expect, it } from "vitest";
import {
  ConstantServiceModel,
  ExponentialServiceModel,
  Xoshiro128,
  simulate,
  type ServiceModel,
} from "../../src/sim/index.js";

function poisson(n: number, meanGapMs: number, seed: number): Float64Array {
  const rng = new Xoshiro128(seed);
  const out = new Float64Array(n);
  let t = 0;
  for (let i = 0; i < n; i++) {
    t += rng.exponential(meanGapMs);
    out[i] = t;
  }
  return out;
}

/** One task, `servers` 1-core instances, batch 1, FIFO, no deadline (nothing is ever dropped). */
async function queue(
  service: ServiceModel,
  n: number,
  meanGapMs: number,
  servers: number,
  seed: number,
  slotsPerInstance?: number,
) {
  const { summary } = await simulate({
    tasks: [
      {
        name: "q",
        sloMs: 1e12,
        lateOk: true,
        maxQueue: Number.MAX_SAFE_INTEGER,
        scheduling: "fifo",
        variants: [
          {
            name: "v",
            accuracy: 1,
            maxBatch: 1,
            fit: { alpha: 0, beta: 0, gamma: 0, zeta: service.median(1, 1) },
            service,
            coldStart: 0,
            resize: 0,
          },
        ],
      },
    ],
    arrivals: [{ target: "q", times: poisson(n, meanGapMs, seed) }],
    deployment: [{ task: "q", variant: "v", cores: 1, count: servers }],
    nodes: [servers],
    seed,
    onDemand: false,
    slotsPerInstance,
  });
  expect(summary.served).toBe(n);
  return summary;
}

describe("simulator against queueing theory", () => {
  it("M/D/1: mean wait = ρ / (2μ(1−ρ)) within 2 %", async () => {
    const D = 10; // ms
    const rho = 0.5;
    const mu = 1 / D;
    const lambda = rho * mu;
    const expected = rho / (2 * mu * (1 - rho)); // 5 ms
    const s = await queue(new ConstantServiceModel(D), 400_000, 1 / lambda, 1, 2024);
    const err = s.waitMeanMs / expected - 1;
    console.log(
      `M/D/1 ρ=${rho}: mean wait ${s.waitMeanMs.toFixed(4)} ms vs ${expected} ms closed form (${(100 * err).toFixed(2)} %); ${Math.round(s.requestsPerWallSecond)} simulated req/s`,
    );
    expect(Math.abs(err)).toBeLessThan(0.02);
    expect(s.latencyMeanMs - s.waitMeanMs).toBeCloseTo(D, 9);
  });

  it("M/M/2 (no prefetch): mean wait = Erlang C / (cμ − λ) within 2 %", async () => {
    const mean = 10;
    const mu = 1 / mean;
    const c = 2;
    const lambda = 0.1; // ρ = 0.5
    const a = lambda / mu;
    const rho = a / c;
    const tail = a ** c / 2 / (1 - rho);
    const erlangC = tail / (1 + a + tail);
    const expected = erlangC / (c * mu - lambda); // 3.33 ms
    const s = await queue(new ExponentialServiceModel(mean), 400_000, 1 / lambda, c, 11, 1);
    const err = s.waitMeanMs / expected - 1;
    console.log(
      `M/M/2 ρ=${rho}: mean wait ${s.waitMeanMs.toFixed(4)} ms vs ${expected.toFixed(4)} ms closed form (${(100 * err).toFixed(2)} %)`,
    );
    expect(Math.abs(err)).toBeLessThan(0.02);
  });
});
