// Per-stage statistics of each pipeline, for the dashboard's graph and its JSON API: per stage, requests
// that ran it, that skipped it, its time from queued to answered (p50/p99 of the last 1,000) and the rows
// it ran per request; per edge, the measured fan-out; end to end, served, failed, met and the mean
// accuracy of what served. Bounded memory whatever the load.
import type { ServingCore } from "../core/serving-core.js";
import { stageSpans } from "../core/pipeline.js";
import { edges, stageTasks } from "../autoscaler/planner/pipeline-graph.js";
import { quantileSorted } from "../stats/quantile.js";

const KEEP = 1000;

class Window {
  private readonly values: number[] = [];
  private next = 0;

  add(v: number): void {
    if (this.values.length < KEEP) this.values.push(v);
    else {
      this.values[this.next] = v;
      this.next = (this.next + 1) % KEEP;
    }
  }

  quantile(q: number): number | null {
    if (this.values.length === 0) return null;
    return quantileSorted(
      [...this.values].sort((a, b) => a - b),
      q,
    );
  }
}

interface StageBook {
  ran: number;
  skipped: number;
  rows: number;
  ms: Window;
}

interface PipelineBook {
  served: number;
  failed: number;
  met: number;
  accuracySum: number;
  accuracyCount: number;
  ms: Window;
  stages: Map<string, StageBook>;
  /** Failures by the stage that failed them. */
  failedAt: Map<string, number>;
}

export interface PipelineStatsView {
  name: string;
  graph: { task: string; after: string[]; optional: boolean }[];
  served: number;
  failed: number;
  met: number;
  p50Ms: number | null;
  p99Ms: number | null;
  meanAccuracy: number | null;
  stages: {
    task: string;
    ran: number;
    skipped: number;
    failed: number;
    meanRows: number | null;
    p50Ms: number | null;
    p99Ms: number | null;
  }[];
  fanOut: { from: string; to: string; requests: number; mean: number; p50: number; p95: number; max: number }[];
}

export class PipelineStats {
  private readonly books = new Map<string, PipelineBook>();

  constructor(private readonly core: ServingCore) {
    core.on("pipelineFinished", (p, o) => {
      const b = this.book(p.pipeline);
      if (!o.ok) {
        b.failed++;
        b.failedAt.set(o.stage, (b.failedAt.get(o.stage) ?? 0) + 1);
        return;
      }
      b.served++;
      if (o.sloMet) b.met++;
      b.ms.add(o.finishedAt - p.arrival);
      if (Number.isFinite(o.accuracy)) {
        b.accuracySum += o.accuracy;
        b.accuracyCount++;
      }
      const span = stageSpans(o.stages);
      for (const [task, x] of span) {
        const st = this.stage(b, task);
        st.ran++;
        st.rows += x.rows;
        st.ms.add(x.to - x.from);
      }
      for (const task of o.skipped) this.stage(b, task).skipped++;
    });
  }

  private book(name: string): PipelineBook {
    let b = this.books.get(name);
    if (!b) {
      b = {
        served: 0,
        failed: 0,
        met: 0,
        accuracySum: 0,
        accuracyCount: 0,
        ms: new Window(),
        stages: new Map(),
        failedAt: new Map(),
      };
      this.books.set(name, b);
    }
    return b;
  }

  private stage(b: PipelineBook, task: string): StageBook {
    let s = b.stages.get(task);
    if (!s) b.stages.set(task, (s = { ran: 0, skipped: 0, rows: 0, ms: new Window() }));
    return s;
  }

  report(name: string): PipelineStatsView | null {
    const def = this.core.pipeline(name);
    if (!def) return null;
    const b = this.book(name);
    return {
      name,
      graph: def.graph.stages.map((s) => ({ task: s.task, after: [...s.after], optional: s.optional })),
      served: b.served,
      failed: b.failed,
      met: b.met,
      p50Ms: b.ms.quantile(0.5),
      p99Ms: b.ms.quantile(0.99),
      meanAccuracy: b.accuracyCount > 0 ? b.accuracySum / b.accuracyCount : null,
      stages: stageTasks(def.graph).map((task) => {
        const s = b.stages.get(task);
        return {
          task,
          ran: s?.ran ?? 0,
          skipped: s?.skipped ?? 0,
          failed: b.failedAt.get(task) ?? 0,
          meanRows: s && s.ran > 0 ? s.rows / s.ran : null,
          p50Ms: s?.ms.quantile(0.5) ?? null,
          p99Ms: s?.ms.quantile(0.99) ?? null,
        };
      }),
      fanOut: this.core.fanOut
        .report(name)
        .filter((e) => edges(def.graph).some((x) => x.from === e.from && x.to === e.to)),
    };
  }

  reportAll(): PipelineStatsView[] {
    return this.core.pipelineNames().flatMap((n) => this.report(n) ?? []);
  }
}
