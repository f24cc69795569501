// The two shapes every trace takes in sloserve, whatever file or generator it came from:
//  - ArrivalTrace: one timestamp per request (what the simulator and the load generator replay),
//    optionally with each request's remaining latency budget and other per-request columns;
//  - RateSeries: events per fixed-width bin (what the published traces record, and what
//    forecasters and charts consume).
// Both start at time 0; `meta.offsetS` remembers where that is in the source, so that a slice
// can still be named by the source's own second numbers in a results table.

export interface TraceMeta {
  /** The file path or a description of the generator. */
  source: string;
  /** Where time 0 lies in the source, in seconds. */
  offsetS: number;
  /** Transformations applied, in order, e.g. "slice 1301490+660 s", "÷4.384 floor min 1/s". */
  history: string[];
  /** Wall-clock time of time 0 (ms since the epoch) when the source records it. */
  startEpochMs?: number;
}

export type Column = Float64Array | Int32Array;

export interface ArrivalTrace {
  /** Arrival times in ms since time 0, ascending. */
  times: Float64Array;
  /** The span the trace covers, [0, durationMs): may extend past the last arrival. */
  durationMs: number;
  /** Remaining latency budget of each request in ms (Sponge-style dynamic SLOs). */
  budgetsMs?: Float64Array;
  /** Further per-request values, parallel to `times` (e.g. LLM token counts, source stream). */
  columns?: Record<string, Column>;
  /** Missing-data spans as [startMs, endMs): an empty stretch here means "unknown", not "idle". */
  gaps?: Array<[number, number]>;
  meta: TraceMeta;
}

export interface RateSeries {
  /** Events per bin; fractional once rescaled without rounding. */
  counts: Float64Array;
  /** Bin width in ms (1000 for per-second traces, 60000 for per-minute). */
  binMs: number;
  /** Missing-data bins as half-open [startBin, endBin) ranges, in order. */
  gaps?: Array<[number, number]>;
  meta: TraceMeta;
}

export function newMeta(source: string, extra: Partial<TraceMeta> = {}): TraceMeta {
  return { source, offsetS: 0, history: [], ...extra };
}

/** A copy of `meta` with one more history entry (and any field overrides). */
export function derivedMeta(meta: TraceMeta, step: string, overrides: Partial<TraceMeta> = {}): TraceMeta {
  return { ...meta, ...overrides, history: [...meta.history, step] };
}

/** A per-second (or per-bin) series from any array of counts. */
export function rateSeries(
  counts: ArrayLike<number>,
  binMs: number,
  meta: TraceMeta,
  gaps?: Array<[number, number]>,
): RateSeries {
  if (!(binMs > 0)) throw new Error(`binMs must be > 0, got ${binMs}`);
  const series: RateSeries = { counts: Float64Array.from(counts), binMs, meta };
  if (gaps && gaps.length > 0) series.gaps = gaps.map(([s, e]) => [s, e]);
  return series;
}

/** Throws unless `times` is non-decreasing and finite: every consumer relies on it. */
export function assertSorted(times: ArrayLike<number>, what = "arrival times"): void {
  let prev = -Infinity;
  for (let i = 0; i < times.length; i++) {
    const t = times[i]!;
    if (!(t >= prev) || !Number.isFinite(t))
      throw new Error(`${what} must be finite and ascending; index ${i} has ${t} after ${prev}`);
    prev = t;
  }
}

/** Seconds covered by a series. */
export function seriesDurationS(series: RateSeries): number {
  return (series.counts.length * series.binMs) / 1000;
}

/** Whether bin `i` lies in one of the series' gaps. */
export function inGap(gaps: ReadonlyArray<readonly [number, number]> | undefined, i: number): boolean {
  if (!gaps) return false;
  let lo = 0;
  let hi = gaps.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (gaps[mid]![1] <= i) lo = mid + 1;
    else hi = mid;
  }
  return lo < gaps.length && gaps[lo]![0] <= i;
}

/** A growable Float64Array, for outputs whose length is known only at the end. */
export class Float64Builder {
  private buf: Float64Array;
  length = 0;

  constructor(capacity = 1024) {
    this.buf = new Float64Array(Math.max(16, Math.ceil(capacity)));
  }

  push(v: number): void {
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = v;
  }

  /** The filled part, trimmed to a fresh array. */
  finish(): Float64Array {
    return this.buf.slice(0, this.length);
  }
}
