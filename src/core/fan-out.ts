// The measured fan-out of a pipeline's edges: how many rows one row of a stage became for a stage after
// it (OCR: boxes per image, 0 for a blank page), per request, as the walk saw them. The planner sizes a
// stage from the mean, and times a request's rows through it from a high quantile of the rows it
// carries; the statistics report the distribution. Starts from the pipeline's recorded distribution
// (accuracy.yaml `fan_out`) until enough requests have been seen.
import { quantileSorted } from "../stats/quantile.js";

/** Observations kept per edge and stage (the most recent). */
const KEEP = 1000;

class Ring {
  private readonly values: number[] = [];
  private next = 0;
  count = 0;

  add(v: number): void {
    this.count++;
    if (this.values.length < KEEP) this.values.push(v);
    else {
      this.values[this.next] = v;
      this.next = (this.next + 1) % KEEP;
    }
  }

  get all(): readonly number[] {
    return this.values;
  }
}

export interface EdgeFanOut {
  from: string;
  to: string;
  /** Mean rows `to` got per row of `from`. */
  mean: number;
  /** How many requests the figure rests on (0: the recorded prior alone). */
  observed: number;
}

export class FanOutMeter {
  private readonly edges = new Map<string, Ring>();
  private readonly rows = new Map<string, Ring>();
  /** Recorded prior per edge: the mean of the stage's recorded samples. */
  private readonly prior = new Map<string, number[]>();

  /** The recorded rows-per-row samples of `from`'s outputs (all variants pooled) for edges out of it. */
  setPrior(pipeline: string, from: string, samples: readonly number[]): void {
    this.prior.set(`${pipeline}\0${from}`, [...samples]);
  }

  edge(pipeline: string, from: string, to: string, rowsFrom: number, rowsTo: number): void {
    if (rowsFrom <= 0) return;
    const key = `${pipeline}\0${from}\0${to}`;
    let r = this.edges.get(key);
    if (!r) this.edges.set(key, (r = new Ring()));
    r.add(rowsTo / rowsFrom);
  }

  /** Rows one request of a stage carried (before any split into max_batch pieces). */
  stageRows(pipeline: string, task: string, rows: number): void {
    const key = `${pipeline}\0${task}`;
    let r = this.rows.get(key);
    if (!r) this.rows.set(key, (r = new Ring()));
    r.add(rows);
  }

  /** An edge's mean fan-out: what was seen, blended with the recorded prior while few requests were. */
  fanOut(pipeline: string, from: string, to: string): EdgeFanOut {
    const seen = this.edges.get(`${pipeline}\0${from}\0${to}`);
    const prior = this.prior.get(`${pipeline}\0${from}`);
    const priorMean = prior ? mean(prior) : 1;
    if (!seen || seen.count === 0) return { from, to, mean: priorMean, observed: 0 };
    const n = seen.all.length;
    // the prior weighs as much as 20 requests, so a handful of odd pages does not swing the plan
    const w = prior ? 20 : 0;
    return { from, to, mean: (mean(seen.all) * n + priorMean * w) / (n + w), observed: seen.count };
  }

  /** The `q` quantile of rows a stage's requests carried (1 when none was seen and nothing is recorded). */
  rowsQuantile(pipeline: string, task: string, q: number, recorded?: readonly number[]): number {
    const seen = this.rows.get(`${pipeline}\0${task}`);
    const values = seen && seen.all.length >= 20 ? seen.all : recorded;
    if (!values || values.length === 0) return 1;
    return Math.max(
      1,
      quantileSorted(
        [...values].sort((a, b) => a - b),
        q,
      ),
    );
  }

  /** Every edge seen, for the statistics: mean, p50, p95, max. */
  report(
    pipeline: string,
  ): { from: string; to: string; requests: number; mean: number; p50: number; p95: number; max: number }[] {
    const out = [];
    for (const [key, r] of this.edges) {
      const [p, from, to] = key.split("\0") as [string, string, string];
      if (p !== pipeline || r.all.length === 0) continue;
      const sorted = [...r.all].sort((a, b) => a - b);
      out.push({
        from,
        to,
        requests: r.count,
        mean: mean(sorted),
        p50: quantileSorted(sorted, 0.5),
        p95: quantileSorted(sorted, 0.95),
        max: sorted[sorted.length - 1]!,
      });
    }
    return out;
  }
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}
