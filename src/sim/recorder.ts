// What a simulation measures, with the definitions of EXPERIMENTS.md: a violation is a request
// answered after its deadline or not served at all (dropped, rejected, failed, or still unanswered
// when the run ends); cost is the cores held, integrated over time. Per-second series count
// requests in the second they were answered (arrivals in the second they arrived), like a
// Prometheus scrape would; cores are the time-average over the second.
import { refusedAtAdmission, type Failed } from "../router/request.js";
import { LatencyHistogram } from "./histogram.js";
import type { SimCluster } from "./sim-cluster.js";

export interface SimSeries {
  /** Second index: row k covers virtual time [k, k+1) s. */
  second: number[];
  arrivals: number[];
  answered: number[];
  met: number[];
  violations: number[];
  /** met / answered in %, NaN when nothing was answered that second. */
  attainmentPct: number[];
  /** Latency percentiles of the requests served that second (NaN when none). */
  p50Ms: number[];
  p99Ms: number[];
  /** Time-average cores held during the second. */
  cores: number[];
  /** Instances (any state but stopped) at the end of the second. */
  instances: number[];
  /** Distinct task/variant pairs with an instance at the end of the second. */
  variants: number[];
  /** Instances per "task/variant" at the end of the second (when asked for). */
  mix?: Record<string, number>[];
}

/**
 * Per-request records, column-wise; a target is a task or a pipeline (one record per end-to-end
 * request). `status` indexes RECORD_STATUS.
 */
export interface SimRecords {
  targets: string[];
  variants: string[];
  target: Int32Array;
  /** Index into `variants` (a pipeline's last stage), −1 when not served. */
  variant: Int32Array;
  status: Uint8Array;
  arrival: Float64Array;
  deadline: Float64Array;
  /** Clock ms when answered (NaN when unanswered at the end). */
  finish: Float64Array;
  /** Compute time (summed over a pipeline's stages). */
  computeMs: Float64Array;
  /** Rows of the batch that served it (a pipeline's last stage). */
  batchRows: Int32Array;
}

export const RECORD_STATUS = ["met", "late", "dropped", "rejected", "failed", "unanswered"] as const;
export type RecordStatus = (typeof RECORD_STATUS)[number];
export const STATUS = { met: 0, late: 1, dropped: 2, rejected: 3, failed: 4, unanswered: 5 } as const;

/** How a failed outcome counts. */
export function failureStatus(reason: Failed["reason"]): number {
  return reason === "deadline" ? STATUS.dropped : refusedAtAdmission(reason) ? STATUS.rejected : STATUS.failed;
}

export interface Tally {
  requests: number;
  answered: number;
  served: number;
  met: number;
  late: number;
  /** Answered 504: the deadline could not be met any more. */
  dropped: number;
  /** Refused at admission: queue full (429) or no capacity (503). */
  rejected: number;
  /** Instance failures, shutdown, internal errors. */
  failed: number;
  accuracySum: number;
  waitSumMs: number;
}

export interface RecorderOptions {
  records: boolean;
  mix: boolean;
  targets: readonly string[];
}

export class Recorder {
  readonly series: SimSeries = {
    second: [],
    arrivals: [],
    answered: [],
    met: [],
    violations: [],
    attainmentPct: [],
    p50Ms: [],
    p99Ms: [],
    cores: [],
    instances: [],
    variants: [],
  };
  readonly tally: Tally = {
    requests: 0,
    answered: 0,
    served: 0,
    met: 0,
    late: 0,
    dropped: 0,
    rejected: 0,
    failed: 0,
    accuracySum: 0,
    waitSumMs: 0,
  };
  /** Requests and met requests per target. */
  readonly perTarget: { requests: number; met: number }[];
  /** Latency of every served request, whole run. */
  readonly latency = new LatencyHistogram();
  private readonly second = new LatencyHistogram();
  private open = 0;
  private openArrivals = 0;
  private openAnswered = 0;
  private openMet = 0;
  private coreMsAtOpen = 0;
  private readonly rec: RecordColumns | null;

  constructor(
    private readonly cluster: SimCluster,
    opts: RecorderOptions,
  ) {
    if (opts.mix) this.series.mix = [];
    this.perTarget = opts.targets.map(() => ({ requests: 0, met: 0 }));
    this.rec = opts.records ? new RecordColumns(opts.targets) : null;
  }

  /** A request arrives (call at its arrival time); returns its record row (−1 without records). */
  arrival(target: number, arrival: number, deadline: number): number {
    this.roll(arrival);
    this.openArrivals++;
    this.tally.requests++;
    this.perTarget[target]!.requests++;
    return this.rec ? this.rec.add(target, arrival, deadline) : -1;
  }

  /**
   * A request was answered at `now`. `status` is a STATUS code; for served ones `computeMs` is the
   * time spent computing, `accuracy` that of what served it, `variant`/`batchRows` the last batch's.
   */
  answer(
    target: number,
    row: number,
    arrival: number,
    now: number,
    status: number,
    computeMs: number,
    accuracy: number,
    variant: string | undefined,
    batchRows: number,
  ): void {
    this.roll(now);
    const t = this.tally;
    t.answered++;
    this.openAnswered++;
    if (status === STATUS.met || status === STATUS.late) {
      t.served++;
      const ms = now - arrival;
      this.latency.add(ms);
      this.second.add(ms);
      t.waitSumMs += ms - computeMs;
      t.accuracySum += accuracy;
      if (status === STATUS.met) {
        t.met++;
        this.openMet++;
        this.perTarget[target]!.met++;
      } else t.late++;
    } else if (status === STATUS.dropped) t.dropped++;
    else if (status === STATUS.rejected) t.rejected++;
    else t.failed++;
    if (this.rec && row >= 0) this.rec.answer(row, now, status, computeMs, variant, batchRows);
  }

  /** Closes every second that ended at or before `now`. */
  roll(now: number): void {
    const s = Math.floor(now / 1000);
    while (this.open < s) this.close((this.open + 1) * 1000);
  }

  /** Closes the last, possibly partial, second at `now`. */
  end(now: number): void {
    this.roll(now);
    if (now > this.open * 1000 || this.openArrivals + this.openAnswered > 0) this.close(now);
  }

  records(): SimRecords | undefined {
    return this.rec?.columns();
  }

  private close(at: number): void {
    const s = this.series;
    const coreMs = this.cluster.coreMsUntilNow();
    const span = at - this.open * 1000;
    s.second.push(this.open);
    s.arrivals.push(this.openArrivals);
    s.answered.push(this.openAnswered);
    s.met.push(this.openMet);
    s.violations.push(this.openAnswered - this.openMet);
    s.attainmentPct.push(this.openAnswered > 0 ? (100 * this.openMet) / this.openAnswered : Number.NaN);
    s.p50Ms.push(this.second.quantile(0.5));
    s.p99Ms.push(this.second.quantile(0.99));
    s.cores.push(span > 0 ? (coreMs - this.coreMsAtOpen) / span : this.cluster.coresInUse());
    const pairs = this.cluster.variantsInUse();
    s.instances.push(this.cluster.instances().length);
    s.variants.push(pairs.size);
    s.mix?.push(Object.fromEntries(pairs));
    this.coreMsAtOpen = coreMs;
    this.second.clear();
    this.open++;
    this.openArrivals = 0;
    this.openAnswered = 0;
    this.openMet = 0;
  }
}

/** Column storage that grows by doubling: no object per request. */
class RecordColumns {
  private n = 0;
  private cap = 1024;
  private readonly variantIndex = new Map<string, number>();
  private readonly variants: string[] = [];
  private target = new Int32Array(this.cap);
  private variant = new Int32Array(this.cap);
  private status = new Uint8Array(this.cap);
  private arrival = new Float64Array(this.cap);
  private deadline = new Float64Array(this.cap);
  private finish = new Float64Array(this.cap);
  private computeMs = new Float64Array(this.cap);
  private batchRows = new Int32Array(this.cap);

  constructor(private readonly targets: readonly string[]) {}

  add(target: number, arrival: number, deadline: number): number {
    if (this.n === this.cap) this.grow();
    const i = this.n++;
    this.target[i] = target;
    this.variant[i] = -1;
    this.status[i] = STATUS.unanswered;
    this.arrival[i] = arrival;
    this.deadline[i] = deadline;
    this.finish[i] = Number.NaN;
    this.computeMs[i] = Number.NaN;
    this.batchRows[i] = 0;
    return i;
  }

  answer(
    i: number,
    now: number,
    status: number,
    computeMs: number,
    variant: string | undefined,
    batchRows: number,
  ): void {
    this.status[i] = status;
    this.finish[i] = now;
    if (variant === undefined) return;
    let v = this.variantIndex.get(variant);
    if (v === undefined) {
      v = this.variants.length;
      this.variants.push(variant);
      this.variantIndex.set(variant, v);
    }
    this.variant[i] = v;
    this.computeMs[i] = computeMs;
    this.batchRows[i] = batchRows;
  }

  columns(): SimRecords {
    const n = this.n;
    return {
      targets: [...this.targets],
      variants: [...this.variants],
      target: this.target.slice(0, n),
      variant: this.variant.slice(0, n),
      status: this.status.slice(0, n),
      arrival: this.arrival.slice(0, n),
      deadline: this.deadline.slice(0, n),
      finish: this.finish.slice(0, n),
      computeMs: this.computeMs.slice(0, n),
      batchRows: this.batchRows.slice(0, n),
    };
  }

  private grow(): void {
    this.cap *= 2;
    const g = <T extends Int32Array | Uint8Array | Float64Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(this.cap);
      b.set(a);
      return b;
    };
    this.target = g(this.target);
    this.variant = g(this.variant);
    this.status = g(this.status);
    this.arrival = g(this.arrival);
    this.deadline = g(this.deadline);
    this.finish = g(this.finish);
    this.computeMs = g(this.computeMs);
    this.batchRows = g(this.batchRows);
  }
}
