// What IPA's experiment is made of (EXPERIMENTS.md "IPA"), in one place for its runner: the policies it
// compares, the Twitter windows and damping it replays, its 10-s decisions on a 20-s forecast, and the
// authors' end-to-end SLAs.
import { MaxTrendForecaster } from "../forecast/max-trend.js";
import type { Forecaster } from "../forecast/types.js";
import { IPA_HORIZON_S, IPA_INTERVAL_MS } from "./ipa.js";

export { IPA_HORIZON_S, IPA_INTERVAL_MS };

/** IPA and its baselines, by their registered scaling-policy names. */
export const IPA_COMPARED = ["ipa", "fa2-low", "fa2-high", "rim-low", "rim-high"] as const;

/** The per-second Twitter counts are divided by this (the authors' damping_factor). */
export const IPA_TRACE_DIVISOR = 8;

/** The four windows of the Twitter trace IPA replays (trace seconds; 20 minutes each). */
export const IPA_WINDOWS = {
  bursty: { start: 1_301_160, seconds: 1_200 },
  "steady-low": { start: 1_299_600, seconds: 1_200 },
  "steady-high": { start: 1_768_800, seconds: 1_200 },
  fluctuating: { start: 1_301_400, seconds: 1_200 },
} as const;

export type IpaWindow = keyof typeof IPA_WINDOWS;

/** The authors' end-to-end SLAs (ms) of their five pipelines. */
export const IPA_PAPER_SLA_MS = {
  video: 6_890,
  "audio-qa": 9_230,
  "audio-sent": 9_420,
  "sum-qa": 3_840,
  nlp: 17_610,
} as const;

/**
 * The controller's forecaster stretched to IPA's horizon: the maximum of the last 20 s plus the trend
 * over the next 20 s. The LSTM (`--forecaster lstm`) is trained for a 10-s horizon and stays so.
 */
export function ipaForecaster(): Forecaster {
  return new MaxTrendForecaster({ maxWindow: IPA_HORIZON_S, horizonShift: IPA_HORIZON_S });
}
