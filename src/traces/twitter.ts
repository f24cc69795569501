// The Twitter stream trace of August 2021 (shared/traces/twitter-2021-08, see its SOURCE.md): one
// line of 1,899,061 space-separated integers, the events of each second over 22 days. Every day
// has ~1,740 s of zeros starting at offset 84,661 + k·86,400: missing archive data, not zero
// load. loadTwitterTrace() parses the line in one pass over the raw bytes and reports those gaps
// (every run of at least `minGap` consecutive zeros) so that callers can skip them.
import { readFileSync } from "node:fs";
import { newMeta, rateSeries, type RateSeries } from "./arrival-trace.js";

export const SECONDS_PER_DAY = 86_400;
/** A run of at least this many consecutive zero seconds is treated as missing data. */
export const DEFAULT_MIN_GAP = 600;

export interface TwitterTrace {
  /** Events per second, element i = second i of the trace. */
  counts: Int32Array;
  /** Missing-data runs as half-open [start, end) second ranges, in order. */
  gaps: Array<[start: number, end: number]>;
}

/** Parses the trace file (one line of non-negative integers separated by whitespace). */
export function loadTwitterTrace(file: string, opts: { minGap?: number } = {}): TwitterTrace {
  const counts = parseCounts(readFileSync(file));
  return { counts, gaps: findGaps(counts, opts.minGap ?? DEFAULT_MIN_GAP) };
}

/** Whitespace-separated non-negative integers → Int32Array, straight from the bytes. */
export function parseCounts(bytes: Uint8Array): Int32Array {
  // Upper bound on the count of numbers: one per separator run + 1.
  let out = new Int32Array(Math.max(16, (bytes.length >>> 1) + 1));
  let n = 0;
  let value = 0;
  let inNumber = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      inNumber = true;
    } else if (c === 32 || c === 10 || c === 13 || c === 9) {
      if (inNumber) {
        out[n++] = value;
        value = 0;
        inNumber = false;
      }
    } else {
      throw new Error(`twitter trace: unexpected byte 0x${c.toString(16)} at offset ${i}`);
    }
  }
  if (inNumber) out[n++] = value;
  if (n > out.length) throw new Error("unreachable: parse buffer overflow");
  out = out.slice(0, n);
  return out;
}

/** Runs of at least `minLength` consecutive zeros, as half-open [start, end) ranges. */
export function findGaps(counts: ArrayLike<number>, minLength = DEFAULT_MIN_GAP): Array<[number, number]> {
  const gaps: Array<[number, number]> = [];
  let start = -1;
  for (let i = 0; i <= counts.length; i++) {
    const zero = i < counts.length && counts[i] === 0;
    if (zero && start < 0) start = i;
    else if (!zero && start >= 0) {
      if (i - start >= minLength) gaps.push([start, i]);
      start = -1;
    }
  }
  return gaps;
}

/** `length` seconds from `start` (clamped to the trace), as a view without copying. */
export function slice(counts: Int32Array, start: number, length: number): Int32Array {
  const s = Math.max(0, Math.min(counts.length, Math.floor(start)));
  return counts.subarray(s, Math.min(counts.length, s + Math.max(0, Math.floor(length))));
}

/** The second range [start, end) of days `firstDay`..`lastDay` (1-based, inclusive), clamped to the trace. */
export function dayBounds(counts: ArrayLike<number>, firstDay: number, lastDay: number): [start: number, end: number] {
  if (!(Number.isInteger(firstDay) && Number.isInteger(lastDay) && firstDay >= 1 && lastDay >= firstDay)) {
    throw new Error(`days must be 1-based integers with firstDay <= lastDay, got ${firstDay}..${lastDay}`);
  }
  const start = Math.min(counts.length, (firstDay - 1) * SECONDS_PER_DAY);
  return [start, Math.min(counts.length, lastDay * SECONDS_PER_DAY)];
}

/** Days `firstDay`..`lastDay` (1-based, inclusive) of the trace, as a view. */
export function daysRange(counts: Int32Array, firstDay: number, lastDay: number): Int32Array {
  const [start, end] = dayBounds(counts, firstDay, lastDay);
  return counts.subarray(start, end);
}

/** Whether [start, end) overlaps any gap (gaps sorted by start, as findGaps returns them). */
export function overlapsGap(gaps: ReadonlyArray<readonly [number, number]>, start: number, end: number): boolean {
  // Binary search for the first gap ending after `start`.
  let lo = 0;
  let hi = gaps.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (gaps[mid]![1] <= start) lo = mid + 1;
    else hi = mid;
  }
  return lo < gaps.length && gaps[lo]![0] < end;
}

/** The trace as a per-second RateSeries with its gaps marked (counts copied to float64). */
export function twitterRateSeries(trace: TwitterTrace, source = "twitter-2021-08"): RateSeries {
  return rateSeries(trace.counts, 1000, newMeta(source), trace.gaps);
}

/** Loads the file straight into a per-second RateSeries with its gaps marked. */
export function loadTwitterRates(file: string, opts: { minGap?: number } = {}): RateSeries {
  return twitterRateSeries(loadTwitterTrace(file, opts), file);
}

/**
 * The windows the papers replay, in seconds of this trace (see EXPERIMENTS.md and the trace's
 * SOURCE.md). Themis divides each second by a per-pipeline constant with a floor of 1 req/s; IPA
 * integer-divides by 8.
 */
export const PAPER_WINDOWS = {
  themis: { startS: 15 * SECONDS_PER_DAY + 84 * 60 + 450, durationS: 660 },
  ipaBursty: { startS: 1_301_160, endS: 1_302_360 },
  ipaSteadyLow: { startS: 1_299_600, endS: 1_300_800 },
  ipaSteadyHigh: { startS: 1_768_800, endS: 1_769_400 },
} as const;

/** Themis' per-pipeline divisors for the Twitter window (minimum 1 req/s after dividing). */
export const THEMIS_DIVISORS = { video: 4.384, sentiment: 8.5625, nlp: 21 } as const;
/** IPA's damping factor (integer division). */
export const IPA_DIVISOR = 8;
