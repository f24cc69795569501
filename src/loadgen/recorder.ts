// Per-request records of a run, in typed arrays (a 2,000 req/s run for minutes is a few hundred
// thousand requests), and the statistics perf_analyzer users expect from them. Client latency is
// measured from the moment the request was sent to the moment its answer was read; schedule lag
// is reported on its own (see pacer.ts).
import { quantileSorted } from "../stats/quantile.js";
import { summarizeLag, type LagSummary } from "./pacer.js";
import type { Reply } from "./client.js";

export class Recorder {
  readonly scheduledMs: Float64Array;
  readonly sentMs: Float64Array;
  /** NaN until answered. */
  readonly doneMs: Float64Array;
  /** Index into `statuses`; -1 = not answered. */
  readonly status: Int16Array;
  readonly serverLatencyUs: Float64Array;
  readonly queueUs: Float64Array;
  readonly computeUs: Float64Array;
  /** Rows of the batch that served it, as the server said (0 = not said). */
  readonly batchSize: Int32Array;
  /** 1 = the server said slo_met, 0 = it said not, -1 = it did not say. */
  readonly serverSloMet: Int8Array;
  readonly variant: Int16Array;
  readonly statuses: string[] = [];
  readonly variants: string[] = [];
  sent = 0;
  answered = 0;

  constructor(readonly n: number) {
    this.scheduledMs = new Float64Array(n);
    this.sentMs = new Float64Array(n);
    this.doneMs = new Float64Array(n).fill(NaN);
    this.status = new Int16Array(n).fill(-1);
    this.serverLatencyUs = new Float64Array(n).fill(NaN);
    this.queueUs = new Float64Array(n).fill(NaN);
    this.computeUs = new Float64Array(n).fill(NaN);
    this.batchSize = new Int32Array(n);
    this.serverSloMet = new Int8Array(n).fill(-1);
    this.variant = new Int16Array(n).fill(-1);
  }

  fired(i: number, scheduledMs: number, sentMs: number): void {
    this.scheduledMs[i] = scheduledMs;
    this.sentMs[i] = sentMs;
    this.sent++;
  }

  answer(i: number, doneMs: number, r: Reply): void {
    this.doneMs[i] = doneMs;
    this.status[i] = intern(this.statuses, r.status);
    this.answered++;
    const s = r.server;
    if (!s) return;
    if (s.latencyUs !== undefined) this.serverLatencyUs[i] = s.latencyUs;
    if (s.queueUs !== undefined) this.queueUs[i] = s.queueUs;
    if (s.computeUs !== undefined) this.computeUs[i] = s.computeUs;
    if (s.batchSize !== undefined) this.batchSize[i] = s.batchSize;
    if (s.sloMet !== undefined) this.serverSloMet[i] = s.sloMet ? 1 : 0;
    if (s.variant !== undefined) this.variant[i] = intern(this.variants, s.variant);
  }

  /** Unanswered requests (still in flight when the run gave up waiting) become "no answer". */
  giveUp(): void {
    for (let i = 0; i < this.sent; i++) if (this.status[i] === -1) this.status[i] = intern(this.statuses, "no answer");
  }

  clientLatencyMs(i: number): number {
    return this.doneMs[i]! - this.sentMs[i]!;
  }

  /**
   * Per second of the schedule (from its first request), the share of the requests scheduled in it that
   * were answered 200 within `sloMs` (NaN for a second nobody was scheduled in).
   */
  perSecondAttainment(sloMs: number): number[] {
    const okIndex = this.statuses.indexOf("200");
    const t0 = this.sent > 0 ? this.scheduledMs[0]! : 0;
    const sent: number[] = [];
    const met: number[] = [];
    for (let i = 0; i < this.sent; i++) {
      const s = Math.floor((this.scheduledMs[i]! - t0) / 1000);
      sent[s] = (sent[s] ?? 0) + 1;
      if (this.status[i] === okIndex && this.clientLatencyMs(i) <= sloMs) met[s] = (met[s] ?? 0) + 1;
    }
    return Array.from({ length: sent.length }, (_, s) => (sent[s] ? (met[s] ?? 0) / sent[s]! : Number.NaN));
  }
}

function intern(list: string[], s: string): number {
  let k = list.indexOf(s);
  if (k < 0) k = list.push(s) - 1;
  return k;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
}

export interface RunSummary {
  /** Requests the schedule held, and how many were sent (fewer only when aborted). */
  requests: number;
  sent: number;
  /** Answered 200. */
  ok: number;
  durationS: number;
  offeredRate: number;
  /** Successful answers per second of the run. */
  throughput: number;
  /** Client-side latency of successful requests (ms). */
  latencyMs: Percentiles;
  /** Server-side latency from the `latency_us` response parameter (ms); null when the server does not send it. */
  serverLatencyMs: Percentiles | null;
  serverQueueMs: number | null;
  serverComputeMs: number | null;
  /** Median of client − server latency: network, HTTP/gRPC and the client itself (ms). */
  clientOverheadMs: number | null;
  sloMs: number | null;
  /** Fraction of sent requests answered 200 within sloMs (client clock); null without --slo-ms. */
  attainment: number | null;
  /** Successful responses whose slo_met parameter was true, and how many carried the parameter. */
  serverSloMet: number | null;
  serverSloReported: number;
  /** Fraction of sent requests the server reported as meeting their SLO (slo_met true ÷ sent). */
  serverAttainment: number | null;
  /** Answers the server counted as within the SLO that arrived late on the client's clock: the
   *  transport's (and a busy client's) share of any gap between the two attainment figures. */
  lateOnClientOnly: number;
  errors: Record<string, number>;
  variants: Record<string, number>;
  lag: LagSummary;
}

/** `startMs`: the clock reading of schedule time 0; `durationMs`: the schedule's length. */
export function summarize(
  rec: Recorder,
  o: { startMs: number; durationMs: number; sloMs?: number; lagMs: ArrayLike<number> },
): RunSummary {
  const okIdx: number[] = [];
  const errors: Record<string, number> = {};
  const variants: Record<string, number> = {};
  let withinSlo = 0;
  let serverMet = 0;
  let serverReported = 0;
  let lateOnClientOnly = 0;
  for (let i = 0; i < rec.sent; i++) {
    const status = rec.statuses[rec.status[i]!] ?? "no answer";
    if (status !== "200") {
      errors[status] = (errors[status] ?? 0) + 1;
      continue;
    }
    okIdx.push(i);
    const clientOk = o.sloMs !== undefined && rec.clientLatencyMs(i) <= o.sloMs;
    if (clientOk) withinSlo++;
    else if (o.sloMs !== undefined && rec.serverSloMet[i] === 1) lateOnClientOnly++;
    if (rec.serverSloMet[i]! >= 0) {
      serverReported++;
      serverMet += rec.serverSloMet[i]!;
    }
    if (rec.variant[i]! >= 0) {
      const v = rec.variants[rec.variant[i]!]!;
      variants[v] = (variants[v] ?? 0) + 1;
    }
  }
  const client = okIdx.map((i) => rec.clientLatencyMs(i));
  const server = okIdx.map((i) => rec.serverLatencyUs[i]! / 1000).filter((x) => !Number.isNaN(x));
  const overhead = okIdx
    .map((i) => rec.clientLatencyMs(i) - rec.serverLatencyUs[i]! / 1000)
    .filter((x) => !Number.isNaN(x));
  // The run lasts its schedule, or until the last answer when that came later.
  let lastDone = 0;
  for (let i = 0; i < rec.sent; i++) if (rec.doneMs[i]! > lastDone) lastDone = rec.doneMs[i]!;
  const durationMs = Math.max(o.durationMs, lastDone - o.startMs);
  const durationS = durationMs / 1000;
  return {
    requests: rec.n,
    sent: rec.sent,
    ok: okIdx.length,
    durationS,
    offeredRate: rec.sent / (o.durationMs / 1000),
    throughput: okIdx.length / durationS,
    latencyMs: percentiles(client),
    serverLatencyMs: server.length ? percentiles(server) : null,
    serverQueueMs: meanOf(okIdx.map((i) => rec.queueUs[i]! / 1000)),
    serverComputeMs: meanOf(okIdx.map((i) => rec.computeUs[i]! / 1000)),
    clientOverheadMs: overhead.length ? quantileSorted(Float64Array.from(overhead).sort(), 0.5) : null,
    sloMs: o.sloMs ?? null,
    attainment: o.sloMs !== undefined && rec.sent ? withinSlo / rec.sent : null,
    serverSloMet: serverReported ? serverMet : null,
    serverSloReported: serverReported,
    serverAttainment: serverReported && rec.sent ? serverMet / rec.sent : null,
    lateOnClientOnly,
    errors,
    variants,
    lag: summarizeLag(o.lagMs),
  };
}

export function percentiles(values: number[]): Percentiles {
  const s = Float64Array.from(values).sort();
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN;
  return {
    p50: quantileSorted(s, 0.5),
    p90: quantileSorted(s, 0.9),
    p95: quantileSorted(s, 0.95),
    p99: quantileSorted(s, 0.99),
    mean,
    max: s.length ? s[s.length - 1]! : NaN,
  };
}

function meanOf(values: number[]): number | null {
  const v = values.filter((x) => !Number.isNaN(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}
