// Triton-style statistics per task and variant (and per pipeline), counts and cumulative nanoseconds,
// kept from the serving core's events.
import type { ModelStats } from "../api/types.js";
import { stageTotals } from "../core/pipeline.js";
import type { ServingCore } from "../core/serving-core.js";
import { PIPELINE_VERSION } from "../metrics/observe.js";

interface Book {
  stats: ModelStats;
}

const ns = (ms: number) => Math.round(ms * 1e6);

export class StatsBook {
  private readonly books = new Map<string, Book>();

  private book(task: string, variant: string): ModelStats {
    const key = `${task}\u0000${variant}`;
    let b = this.books.get(key);
    if (!b) {
      const zero = () => ({ count: 0, ns: 0 });
      b = {
        stats: {
          name: task,
          version: variant,
          last_inference: 0,
          inference_count: 0,
          execution_count: 0,
          inference_stats: {
            success: zero(),
            fail: zero(),
            queue: zero(),
            compute_input: zero(),
            compute_infer: zero(),
            compute_output: zero(),
          },
          batch_stats: [],
        },
      };
      this.books.set(key, b);
    }
    return b.stats;
  }

  success(task: string, variant: string, queueMs: number, computeMs: number, totalMs: number): void {
    const s = this.book(task, variant);
    s.last_inference = Date.now();
    s.inference_stats.success.count += 1;
    s.inference_stats.success.ns += ns(totalMs);
    s.inference_stats.queue.count += 1;
    s.inference_stats.queue.ns += ns(queueMs);
    s.inference_stats.compute_infer.count += 1;
    s.inference_stats.compute_infer.ns += ns(computeMs);
  }

  failure(task: string, version: string, totalMs: number): void {
    const s = this.book(task, version);
    s.inference_stats.fail.count += 1;
    s.inference_stats.fail.ns += ns(totalMs);
  }

  batch(task: string, variant: string, rows: number, computeMs: number): void {
    const s = this.book(task, variant);
    s.inference_count += rows;
    s.execution_count += 1;
    let b = s.batch_stats.find((x) => x.batch_size === rows);
    if (!b) {
      b = { batch_size: rows, compute_infer: { count: 0, ns: 0 } };
      s.batch_stats.push(b);
      s.batch_stats.sort((x, y) => x.batch_size - y.batch_size);
    }
    b.compute_infer.count += 1;
    b.compute_infer.ns += ns(computeMs);
  }

  /** Stats of one task (all its variants, failures under version ""), one variant, or everything. */
  report(task?: string, variant?: string): ModelStats[] {
    return [...this.books.values()]
      .map((b) => b.stats)
      .filter((s) => (task === undefined || s.name === task) && (variant === undefined || s.version === variant))
      .map((s) => structuredClone(s));
  }
}

export function observeStatistics(core: ServingCore, stats: StatsBook): void {
  const { router, clock } = core;
  router.on("finished", (r, o) => {
    // the answer's own end time: every observer books the same duration (Triton's stats and metrics agree)
    const totalMs = (o.ok ? o.finishedAt : clock.now()) - r.arrival;
    if (o.ok) stats.success(r.task, o.variant, o.queueMs, o.computeMs, totalMs);
    else if (!r.stage) stats.failure(r.task, core.bookedVersion(r), totalMs);
  });
  router.on("batch", (b) => stats.batch(b.task, b.variant, b.rows, b.computeMs));
  core.on("pipelineFinished", (p, o) => {
    const totalMs = (o.ok ? o.finishedAt : clock.now()) - p.arrival;
    if (!o.ok) {
      stats.failure(p.pipeline, PIPELINE_VERSION, totalMs);
      return;
    }
    const { queueMs, computeMs } = stageTotals(o.stages);
    stats.success(p.pipeline, PIPELINE_VERSION, queueMs, computeMs, totalMs);
  });
}
