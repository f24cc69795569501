// `--sweep from:to:step`: runs the rates in ascending order and reports the highest one that meets
// the target (p99 latency and/or SLO attainment). Like perf_analyzer it stops at the first rate
// that misses: past the knee every higher rate misses too, and running them only piles up queues.
import { BenchError } from "./client.js";
import type { RunSummary } from "./recorder.js";

export interface SweepTarget {
  /** Client-side p99 latency at most this (ms). */
  p99Ms?: number;
  /** SLO attainment at least this (0..1). */
  attainment?: number;
}

export function parseSweep(spec: string): number[] {
  const parts = spec.split(":").map(Number);
  const [from, to, step] = parts;
  if (parts.length !== 3 || !(from! > 0) || !(to! >= from!) || !(step! > 0))
    throw new BenchError(`--sweep '${spec}' is not from:to:step with 0 < from <= to and step > 0, e.g. 100:1000:100`);
  const rates: number[] = [];
  // Integer steps from `from`, so that 0.1-style steps do not drift past `to` by rounding.
  for (let k = 0; from! + k * step! <= to! + 1e-9; k++) rates.push(Number((from! + k * step!).toFixed(6)));
  return rates;
}

/** Why a run misses the target, or null when it meets it. */
export function missReason(s: Pick<RunSummary, "latencyMs" | "attainment" | "ok">, t: SweepTarget): string | null {
  if (t.p99Ms === undefined && t.attainment === undefined)
    throw new BenchError("--sweep needs --target-p99-ms and/or --target-attainment");
  if (s.ok === 0) return "no successful request";
  if (t.p99Ms !== undefined && !(s.latencyMs.p99 <= t.p99Ms))
    return `p99 ${s.latencyMs.p99.toFixed(2)} ms > ${t.p99Ms} ms`;
  if (t.attainment !== undefined) {
    if (s.attainment === null)
      throw new BenchError("--target-attainment needs --slo-ms (attainment is judged against it)");
    if (s.attainment < t.attainment)
      return `attainment ${(s.attainment * 100).toFixed(2)}% < ${(t.attainment * 100).toFixed(2)}%`;
  }
  return null;
}

export interface SweepStep<R> {
  rate: number;
  result: R;
  /** null = met the target. */
  miss: string | null;
}

export interface SweepResult<R> {
  steps: SweepStep<R>[];
  /** Highest rate that met the target (null when even the first missed). */
  best: number | null;
}

export async function sweepRates<R extends { summary: Pick<RunSummary, "latencyMs" | "attainment" | "ok"> }>(
  rates: number[],
  target: SweepTarget,
  runAt: (rate: number) => Promise<R>,
  onStep?: (s: SweepStep<R>) => void,
): Promise<SweepResult<R>> {
  const steps: SweepStep<R>[] = [];
  let best: number | null = null;
  for (const rate of rates) {
    const result = await runAt(rate);
    const miss = missReason(result.summary, target);
    const step = { rate, result, miss };
    steps.push(step);
    onStep?.(step);
    if (miss !== null) break;
    best = rate;
  }
  return { steps, best };
}
