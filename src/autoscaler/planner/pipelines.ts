// The three pipelines of Themis' experiments (EXPERIMENTS.md, "Themis"): fitted latency parameters of
// each stage in ms, the end-to-end SLO, B_max, and the divisor that turns the Twitter trace's
// per-second counts into the pipeline's load.
import type { StageModel } from "./model.js";

export interface ThemisPipeline {
  name: string;
  stages: StageModel[];
  sloMs: number;
  bMax: number;
  /** Twitter per-second counts are divided by this (and floored at 1 req/s) to give the load. */
  traceDivisor: number;
}

const stage = (alpha: number, beta: number, gamma: number, zeta: number): StageModel => ({ alpha, beta, gamma, zeta });

export const THEMIS_PIPELINES: ThemisPipeline[] = [
  {
    name: "video",
    stages: [stage(148.82, 37.49, 5.43, -15.48), stage(34.69, 2.06, 19.48, 14.26)],
    sloMs: 780,
    bMax: 8,
    traceDivisor: 4.384,
  },
  {
    name: "audio-sentiment",
    stages: [stage(59.14, 38.21, 160.63, 62.95), stage(52.09, 5.93, 9.67, 2.96)],
    sloMs: 1350,
    bMax: 8,
    traceDivisor: 8.5625,
  },
  {
    name: "nlp",
    stages: [stage(21.37, 1.56, 53.79, 27.78), stage(304.6, 74.09, -13.47, 11.63), stage(263.94, 83.64, -1.01, 23.57)],
    sloMs: 2550,
    bMax: 4,
    traceDivisor: 21,
  },
];

/** C_max of the authors' experiments. */
export const THEMIS_C_MAX = 8;

/** First second of the 660-s Twitter window the experiments replay. */
export const THEMIS_TRACE_START = 15 * 86_400 + 84 * 60 + 450;
export const THEMIS_TRACE_SECONDS = 660;

/** The window's load for a pipeline: counts / divisor, at least 1 req/s. */
export function themisLoad(counts: ArrayLike<number>, p: Pick<ThemisPipeline, "traceDivisor">): number[] {
  const out: number[] = [];
  for (let t = THEMIS_TRACE_START; t < THEMIS_TRACE_START + THEMIS_TRACE_SECONDS; t++)
    out.push(Math.max(1, (counts[t] ?? 0) / p.traceDivisor));
  return out;
}
