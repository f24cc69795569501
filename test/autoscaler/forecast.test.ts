// Both forecasters on the held-out days 15–21 of the Twitter trace (the LSTM trained on days 1–14):
// from each 60-s history, the max per-second rate of the next 10 s.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  dayPoints,
  forecastMetrics,
  historiesAt,
  targetsAt,
  type ForecastMetrics,
} from "../../tools/train/forecast-evaluate.js";
import { loadLstmForecaster, type LstmForecaster } from "../../src/autoscaler/forecast/lstm.js";
import { MaxTrendForecaster } from "../../src/autoscaler/forecast/max-trend.js";
import type { Forecaster } from "../../src/autoscaler/forecast/types.js";
import { loadTwitterTrace } from "../../src/traces/twitter.js";

const TRACE = path.resolve("../shared/traces/twitter-2021-08/twitter_2021-08_tweets_per_second.txt");

let lstm: LstmForecaster;
beforeAll(async () => {
  lstm = await loadLstmForecaster();
});
afterAll(async () => {
  await lstm.close();
});

async function score(
  f: Forecaster | ((h: number[]) => number),
  histories: Float32Array,
  targets: Float32Array,
): Promise<ForecastMetrics> {
  const pred: number[] = [];
  for (let i = 0; i < targets.length; i++) {
    const h = Array.from(histories.subarray(i * 60, i * 60 + 60));
    pred.push(typeof f === "function" ? f(h) : await f.predict(h));
  }
  return forecastMetrics(pred, targets);
}

describe("load forecasters on held-out Twitter days", () => {
  it("the LSTM beats max/trend, and both beat the last second's rate", async () => {
    const { counts, gaps } = loadTwitterTrace(TRACE);
    const points = dayPoints(counts, gaps, [15, 21], 97);
    expect(points.length).toBeGreaterThan(5000);
    const histories = historiesAt(counts, points);
    const targets = targetsAt(counts, points);
    const l = await score(lstm, histories, targets);
    const m = await score(new MaxTrendForecaster(), histories, targets);
    const last = await score((h) => h[h.length - 1]!, histories, targets);
    console.log(
      `held-out MAE (events/s): lstm ${l.mae.toFixed(2)}, max-trend ${m.mae.toFixed(2)}, last value ${last.mae.toFixed(2)}; under-forecast share ${l.underRate.toFixed(2)} / ${m.underRate.toFixed(2)} / ${last.underRate.toFixed(2)}`,
    );
    expect(l.mae).toBeLessThan(m.mae);
    expect(m.mae).toBeLessThan(0.7 * last.mae);
    expect(l.underRate).toBeLessThan(0.6);
  });

  it("answers for short and empty histories and never forecasts a negative rate", async () => {
    expect(await lstm.predict([])).toBe(0);
    expect(await new MaxTrendForecaster().predict([])).toBe(0);
    const short = await lstm.predict([40, 42, 45]);
    expect(short).toBeGreaterThan(30);
    expect(short).toBeLessThan(100);
    expect(await lstm.predict(new Array(60).fill(0))).toBeGreaterThanOrEqual(0);
    // a steady 50/s: the forecast max of the next 10 s is near 50
    const steady = await lstm.predict(new Array(60).fill(50));
    expect(steady).toBeGreaterThan(45);
    expect(steady).toBeLessThan(70);
  });
});
