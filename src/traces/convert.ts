// Counts ↔ arrivals. The published traces give counts per second or per minute; the simulator
// needs request timestamps. Within a bin the arrivals are either a Poisson process (independent
// uniform positions, as the in-vitro loader, SuperServe and AlpaServe replay Azure Functions) or
// evenly spaced. By default each bin gets exactly its recorded count (so the replay keeps the
// trace's own burstiness); `count: "poisson"` redraws it as Poisson(count) instead.
// Arrays are 8 bytes per request: the whole Twitter trace would be 120 M requests (~1 GB), so
// slice and rescale the counts before converting.
import {
  derivedMeta,
  Float64Builder,
  rateSeries,
  type ArrivalTrace,
  type Column,
  type RateSeries,
} from "./arrival-trace.js";
import { Mulberry32 } from "../stats/random.js";

export interface ArrivalsFromCountsOptions {
  /** Where arrivals fall within a bin: independent uniform positions, or evenly spaced at (k+½)·bin/n. */
  spread?: "poisson" | "uniform";
  /** How many arrivals a bin gets: its count (a fractional part rounds up with that probability), or Poisson(count). */
  count?: "exact" | "poisson";
  seed?: number;
}

/** Request timestamps (ms) from a count series. Gaps carry over as ms spans with no arrivals. */
export function arrivalsFromCounts(series: RateSeries, opts: ArrivalsFromCountsOptions = {}): ArrivalTrace {
  const spread = opts.spread ?? "poisson";
  const countMode = opts.count ?? "exact";
  const seed = opts.seed ?? 1;
  const rng = new Mulberry32(seed);
  const { counts, binMs } = series;
  let expected = 0;
  for (let i = 0; i < counts.length; i++) expected += counts[i]!;
  const out = new Float64Builder(expected * 1.05 + 64);
  const positions = new Float64Builder(64);
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (!(c >= 0)) throw new Error(`bin ${i} has count ${c}; counts must be >= 0`);
    let n: number;
    if (countMode === "poisson") n = rng.poisson(c);
    else {
      n = Math.floor(c);
      const frac = c - n;
      if (frac > 0 && rng.next() < frac) n++;
    }
    if (n === 0) continue;
    const start = i * binMs;
    if (spread === "uniform") {
      const step = binMs / n;
      for (let k = 0; k < n; k++) out.push(start + (k + 0.5) * step);
    } else {
      // n sorted uniforms without a sort: normalised partial sums of n+1 exponentials.
      positions.length = 0;
      let sum = 0;
      for (let k = 0; k <= n; k++) {
        sum += rng.exponential();
        positions.push(sum);
      }
      const scale = binMs / sum;
      const p = positions.finish();
      for (let k = 0; k < n; k++) out.push(start + p[k]! * scale);
    }
  }
  const trace: ArrivalTrace = {
    times: out.finish(),
    durationMs: counts.length * binMs,
    meta: derivedMeta(
      series.meta,
      `arrivals: ${spread} within ${binMs / 1000}-s bins, ${countMode} counts, seed ${seed}`,
    ),
  };
  if (series.gaps?.length) trace.gaps = series.gaps.map(([s, e]) => [s * binMs, e * binMs]);
  return trace;
}

/** Arrivals counted per bin of `binMs` (default 1 s) over the trace's duration. */
export function countsFromArrivals(trace: ArrivalTrace, binMs = 1000): RateSeries {
  const bins = Math.max(0, Math.ceil(trace.durationMs / binMs - 1e-9));
  const counts = new Float64Array(bins);
  for (let i = 0; i < trace.times.length; i++) {
    const b = Math.floor(trace.times[i]! / binMs);
    if (b >= 0 && b < bins) counts[b]!++;
  }
  const gaps: Array<[number, number]> = [];
  for (const [s, e] of trace.gaps ?? []) {
    // Only bins wholly inside a gap are missing data; a partly covered bin has a real (low) count.
    const first = Math.ceil(s / binMs - 1e-9);
    const last = Math.floor(e / binMs + 1e-9);
    if (last > first) gaps.push([first, Math.min(last, bins)]);
  }
  return rateSeries(counts, binMs, derivedMeta(trace.meta, `counts per ${binMs / 1000} s`), gaps);
}

/**
 * Several traces as one stream, in time order, with column `stream` = index of the trace each
 * request came from (e.g. the N busiest Azure functions mapped onto N tasks). Budgets and other
 * columns carry over only when every input has them.
 */
export function mergeArrivals(traces: ReadonlyArray<ArrivalTrace>, source = "merged"): ArrivalTrace {
  let total = 0;
  for (const t of traces) total += t.times.length;
  const times = new Float64Array(total);
  const stream = new Int32Array(total);
  const index = new Int32Array(total);
  // k-way merge over a binary heap of stream heads: O(total · log k).
  const heap: number[] = [];
  const pos = new Int32Array(traces.length);
  const head = (k: number) => traces[k]!.times[pos[k]!]!;
  const less = (a: number, b: number) => head(a) < head(b) || (head(a) === head(b) && a < b);
  const up = (i: number) => {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(heap[i]!, heap[p]!)) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  };
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  traces.forEach((t, k) => {
    if (t.times.length > 0) {
      heap.push(k);
      up(heap.length - 1);
    }
  });
  for (let n = 0; n < total; n++) {
    const k = heap[0]!;
    times[n] = head(k);
    stream[n] = k;
    index[n] = pos[k]!;
    pos[k]!++;
    if (pos[k]! < traces[k]!.times.length) down(0);
    else {
      heap[0] = heap[heap.length - 1]!;
      heap.pop();
      if (heap.length > 0) down(0);
    }
  }
  const gather = <T extends Column>(
    pick: (t: ArrivalTrace) => T | undefined,
    make: (n: number) => T,
  ): T | undefined => {
    const cols = traces.map(pick);
    if (cols.length === 0 || cols.some((c) => c === undefined)) return undefined;
    const out = make(total);
    for (let n = 0; n < total; n++) out[n] = cols[stream[n]!]![index[n]!]!;
    return out;
  };
  const columns: Record<string, Column> = { stream };
  const names = new Set(traces.flatMap((t) => Object.keys(t.columns ?? {})));
  for (const name of names) {
    if (name === "stream") continue;
    const first = traces[0]?.columns?.[name];
    const col = gather(
      (t) => t.columns?.[name],
      (n) => (first instanceof Int32Array ? new Int32Array(n) : new Float64Array(n)) as Column,
    );
    if (col) columns[name] = col;
  }
  const merged: ArrivalTrace = {
    times,
    durationMs: Math.max(0, ...traces.map((t) => t.durationMs)),
    columns,
    meta: {
      source,
      offsetS: 0,
      history: [`merge of ${traces.length} traces: ${traces.map((t) => t.meta.source).join(", ")}`],
    },
  };
  const budgets = gather(
    (t) => t.budgetsMs,
    (n) => new Float64Array(n),
  );
  if (budgets) merged.budgetsMs = budgets;
  return merged;
}
