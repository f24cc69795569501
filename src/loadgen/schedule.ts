// The arrival schedule of a load run: request times in ms from the start, built with the trace
// library from a recorded trace (sliced and rescaled) or from a Poisson/gamma process at a rate.
// Counts traces (Twitter per second, Azure Functions per minute) are sliced on whole bins first and
// converted to arrivals only then, because a whole trace as timestamps would not fit in memory.
import fs from "node:fs";
import {
  arrivalMeanRate,
  arrivalsFromCounts,
  azureAggregateSeries,
  countsFromArrivals,
  divideCounts,
  generateArrivals,
  loadAzureAggregate,
  loadAzureLlmTrace,
  loadTwitterRates,
  newMeta,
  rescaleArrivals,
  scaleToMeanRate,
  sliceArrivals,
  sliceSeries,
  thinArrivals,
  type ArrivalTrace,
  type RateSeries,
} from "../traces/index.js";

export const TRACE_FORMATS = ["twitter", "azure-functions", "azure-llm"] as const;
export type TraceFormat = (typeof TRACE_FORMATS)[number];

export interface TraceSource {
  kind: "trace";
  file: string;
  format: TraceFormat;
  /** Window start, in seconds of the trace (default 0). */
  startS?: number;
  /** Window length in seconds (default: to the end of the trace). */
  durationS?: number;
  /** Divide every count by this (the papers' damping; floor, at least `minRate` req/s). */
  divideBy?: number;
  /** Or: rescale so that the mean rate of the window becomes this (req/s). */
  rate?: number;
  minRate?: number;
  seed?: number;
}

export interface SyntheticSource {
  kind: "synthetic";
  rate: number;
  durationS: number;
  arrival: "poisson" | "gamma" | "uniform";
  /** CV² of inter-arrival times for gamma (1 = Poisson). */
  cv2?: number;
  seed?: number;
}

export type ArrivalSource = TraceSource | SyntheticSource;

export class ScheduleError extends Error {}

/** The schedule of a source; `rate` overrides the source's rate (what a sweep varies). */
export function buildSchedule(src: ArrivalSource, rate?: number): ArrivalTrace {
  if (src.kind === "synthetic") return synthetic({ ...src, rate: rate ?? src.rate });
  if (!fs.existsSync(src.file)) throw new ScheduleError(`trace file '${src.file}' does not exist`);
  const s = rate === undefined ? src : { ...src, rate, divideBy: undefined };
  if (s.divideBy !== undefined && s.rate !== undefined)
    throw new ScheduleError("give --divide-by or --rate for a trace, not both");
  return s.format === "azure-llm" ? fromArrivalTrace(s) : fromCounts(s);
}

function synthetic(s: SyntheticSource): ArrivalTrace {
  if (!(s.rate > 0)) throw new ScheduleError(`--rate must be > 0, got ${s.rate}`);
  if (!(s.durationS > 0)) throw new ScheduleError(`--duration must be > 0, got ${s.durationS}`);
  if (s.arrival === "uniform") {
    // Evenly spaced: the reference a pacer is judged against (no burstiness of its own).
    const n = Math.floor(s.rate * s.durationS);
    const times = Float64Array.from({ length: n }, (_, i) => (i * 1000) / s.rate);
    return { times, durationMs: s.durationS * 1000, meta: newMeta(`uniform ${s.rate}/s`) };
  }
  const cv2 = s.arrival === "poisson" ? 1 : (s.cv2 ?? 1);
  return generateArrivals({ rate: s.rate, durationS: s.durationS, seed: s.seed ?? 1, cv2 });
}

function fromCounts(s: TraceSource): ArrivalTrace {
  let series = loadSeries(s);
  const startS = s.startS ?? 0;
  const binS = series.binMs / 1000;
  const totalS = series.counts.length * binS;
  if (startS >= totalS) throw new ScheduleError(`--start ${startS} s is past the end of the trace (${totalS} s)`);
  const endS = Math.min(totalS, s.durationS === undefined ? totalS : startS + s.durationS);
  // Whole bins around the window; the exact window is cut from the arrivals below.
  const binStart = Math.floor(startS / binS) * binS;
  const binEnd = Math.min(totalS, Math.ceil(endS / binS) * binS);
  series = sliceSeries(series, { startS: binStart, endS: binEnd });
  if (s.divideBy !== undefined) series = divideCounts(series, s.divideBy, { rounding: "floor", minRate: s.minRate });
  else if (s.rate !== undefined) series = scaleToMeanRate(series, s.rate, { minRate: s.minRate });
  const arrivals = arrivalsFromCounts(series, { seed: s.seed ?? 1 });
  return sliceArrivals(arrivals, { startS: startS - binStart, endS: endS - binStart });
}

function loadSeries(s: TraceSource): RateSeries {
  if (s.format === "twitter") return loadTwitterRates(s.file);
  // The derived per-minute aggregate has its own layout; the invocation file is summed over functions.
  return firstBytes(s.file, 256).includes("total_invocations")
    ? loadAzureAggregate(s.file).series
    : azureAggregateSeries(s.file);
}

function fromArrivalTrace(s: TraceSource): ArrivalTrace {
  const startS = s.startS ?? 0;
  let trace = loadAzureLlmTrace(s.file, { startS, endS: s.durationS === undefined ? undefined : startS + s.durationS });
  if (s.divideBy !== undefined) trace = thinArrivals(trace, 1 / s.divideBy, s.seed ?? 1);
  else if (s.rate !== undefined) {
    if (s.rate <= arrivalMeanRate(trace)) trace = rescaleArrivals(trace, s.rate, { method: "thin", seed: s.seed ?? 1 });
    else {
      // A higher rate scales each second's count and keeps the window: stretching time instead would
      // compress the window into fewer seconds and change its shape.
      const counts = scaleToMeanRate(countsFromArrivals(trace), s.rate, { minRate: s.minRate });
      trace = arrivalsFromCounts(counts, { seed: s.seed ?? 1 });
    }
  }
  return trace;
}

function firstBytes(file: string, n: number): string {
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.alloc(n);
    return buf.toString("latin1", 0, fs.readSync(fd, buf, 0, n, 0));
  } finally {
    fs.closeSync(fd);
  }
}
