// The dashboard's live data: per task and pipeline, one frame per second (arrival rate, p50/p99,
// SLO attainment, instances × cores, variant mix), kept for the last ten minutes, plus the
// autoscaler's recent decisions. Fed by the router's hooks on the request path, so recording a
// request must stay O(1) and allocation-free: counters and a histogram bucket, nothing per sample.
import type { InstanceInfo } from "../cluster/types.js";
import { LatencyHistogram } from "./latency-histogram.js";

/** A task, or a pipeline whose instances are those of its stages. */
export interface Target {
  name: string;
  kind: "task" | "pipeline";
  sloMs: number;
  stages: string[];
  /** A pipeline's stage graph: what each stage waits for, and whether requests may skip it. */
  graph?: { task: string; after: string[]; optional: boolean }[];
}

/** One second of one target. Latencies cover served requests; attainment counts failures as misses. */
export interface SecondStats {
  /** Arrivals per second. */
  rate: number;
  served: number;
  failed: number;
  p50: number | null;
  p99: number | null;
  /** Share of the second's finished requests that met their SLO (null when none finished). */
  attainment: number | null;
  instances: number;
  cores: number;
  /** Instances still cold-starting (part of `instances`). */
  starting: number;
  /** Mean rows per executed batch (null when no batch ran). */
  batch: number | null;
  /** Served requests per variant (or subnet, or stage variants of a pipeline). */
  mix: Record<string, number>;
}

export interface Frame {
  /** Unix ms at the end of the second. */
  t: number;
  series: Record<string, SecondStats>;
}

export interface DecisionView {
  /** Unix ms. */
  at: number;
  task: string;
  policy: string;
  mode: string;
  reason: string;
  changes: string[];
  before: string[];
  after: string[];
  rateNow: number;
  ratePred: number;
  queueLength: number;
  misses: number;
  solverMs: number;
  actuation: { ms: number; failed: string[] } | null;
}

export type LiveEvent = { kind: "frame"; frame: Frame } | { kind: "decision"; decision: DecisionView };

export interface LiveHistory {
  targets: Target[];
  frames: Frame[];
  decisions: DecisionView[];
}

export interface LiveOptions {
  /** Read every second, so that models loaded or unloaded later appear and go. */
  targets: () => Target[];
  instances: () => readonly InstanceInfo[];
  /** Unix ms. */
  now?: () => number;
  historySeconds?: number;
  maxDecisions?: number;
}

class SecondAccumulator {
  arrivals = 0;
  served = 0;
  failed = 0;
  met = 0;
  batches = 0;
  rows = 0;
  readonly latency = new LatencyHistogram();
  readonly mix = new Map<string, number>();

  close(elapsedMs: number, fleet: { instances: number; cores: number; starting: number }): SecondStats {
    const finished = this.served + this.failed;
    const stats: SecondStats = {
      rate: round((this.arrivals * 1000) / elapsedMs),
      served: this.served,
      failed: this.failed,
      p50: roundOrNull(this.latency.quantile(0.5)),
      p99: roundOrNull(this.latency.quantile(0.99)),
      attainment: finished === 0 ? null : round(this.met / finished),
      ...fleet,
      batch: this.batches === 0 ? null : round(this.rows / this.batches),
      mix: Object.fromEntries(this.mix),
    };
    this.arrivals = this.served = this.failed = this.met = this.batches = this.rows = 0;
    this.latency.reset();
    this.mix.clear();
    return stats;
  }
}

export class LiveAggregator {
  private readonly acc = new Map<string, SecondAccumulator>();
  private readonly frames: Frame[] = [];
  private readonly decisions: DecisionView[] = [];
  private readonly listeners = new Set<(e: LiveEvent) => void>();
  private readonly now: () => number;
  private lastTick: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: LiveOptions) {
    this.now = opts.now ?? Date.now;
    this.lastTick = this.now();
  }

  arrived(name: string): void {
    this.of(name).arrivals += 1;
  }

  /** `servedBy` is null for a failed request (refused, dropped at its deadline, instance lost). */
  finished(name: string, servedBy: string | null, latencyMs: number, sloMet: boolean): void {
    const a = this.of(name);
    if (servedBy === null) {
      a.failed += 1;
      return;
    }
    a.served += 1;
    if (sloMet) a.met += 1;
    a.latency.add(latencyMs);
    a.mix.set(servedBy, (a.mix.get(servedBy) ?? 0) + 1);
  }

  batch(name: string, rows: number): void {
    const a = this.of(name);
    a.batches += 1;
    a.rows += rows;
  }

  decision(d: DecisionView): void {
    this.decisions.push(d);
    if (this.decisions.length > (this.opts.maxDecisions ?? 300)) this.decisions.shift();
    this.emit({ kind: "decision", decision: d });
  }

  /** Closes the current second of every target; the timer calls it, tests may call it directly. */
  tick(): Frame {
    const now = this.now();
    const elapsed = Math.max(1, now - this.lastTick);
    this.lastTick = now;
    const fleet = fleetByTask(this.opts.instances());
    const series: Record<string, SecondStats> = {};
    for (const t of this.opts.targets()) {
      const sum = { instances: 0, cores: 0, starting: 0 };
      for (const s of t.stages) {
        const f = fleet.get(s);
        if (!f) continue;
        sum.instances += f.instances;
        sum.cores += f.cores;
        sum.starting += f.starting;
      }
      series[t.name] = this.of(t.name).close(elapsed, sum);
    }
    const frame: Frame = { t: now, series };
    this.frames.push(frame);
    if (this.frames.length > (this.opts.historySeconds ?? 600)) this.frames.shift();
    this.emit({ kind: "frame", frame });
    return frame;
  }

  history(): LiveHistory {
    return { targets: this.opts.targets(), frames: [...this.frames], decisions: [...this.decisions] };
  }

  subscribe(listener: (e: LiveEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.timer) return;
    this.lastTick = this.now();
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private of(name: string): SecondAccumulator {
    let a = this.acc.get(name);
    if (!a) this.acc.set(name, (a = new SecondAccumulator()));
    return a;
  }

  private emit(e: LiveEvent): void {
    for (const l of this.listeners) l(e);
  }
}

function fleetByTask(
  instances: readonly InstanceInfo[],
): Map<string, { instances: number; cores: number; starting: number }> {
  const out = new Map<string, { instances: number; cores: number; starting: number }>();
  for (const i of instances) {
    if (i.state === "stopped") continue;
    const f = out.get(i.task) ?? { instances: 0, cores: 0, starting: 0 };
    f.instances += 1;
    f.cores += i.cores;
    if (i.state === "starting") f.starting += 1;
    out.set(i.task, f);
  }
  return out;
}

/** Three significant digits are all a chart shows; they keep ten minutes of frames small. */
function round(x: number): number {
  return x === 0 || !Number.isFinite(x) ? x : Number(x.toPrecision(3));
}

function roundOrNull(x: number | null): number | null {
  return x === null ? null : round(x);
}
