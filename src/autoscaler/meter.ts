// What the control loop observes per task, measured from the router's events: arrivals per second,
// deadline misses, the tightest recent budget, and the batch sizes executed.
import type { Clock } from "../router/clock.js";

interface Book {
  /** arrivals per whole second, keyed by second number */
  seconds: Map<number, number>;
  misses: number;
  budgets: { t: number; ms: number }[];
  batchRows: number;
  batches: number;
}

export class TaskMeter {
  private readonly books = new Map<string, Book>();

  constructor(private readonly clock: Clock, private readonly keepSeconds = 70) {}

  private book(task: string): Book {
    let b = this.books.get(task);
    if (!b) {
      b = { seconds: new Map(), misses: 0, budgets: [], batchRows: 0, batches: 0 };
      this.books.set(task, b);
    }
    return b;
  }

  arrival(task: string, budgetMs: number): void {
    const b = this.book(task);
    const now = this.clock.now();
    const s = Math.floor(now / 1000);
    b.seconds.set(s, (b.seconds.get(s) ?? 0) + 1);
    if (b.seconds.size > this.keepSeconds) for (const k of b.seconds.keys()) if (k < s - this.keepSeconds) b.seconds.delete(k);
    b.budgets.push({ t: now, ms: budgetMs });
    while (b.budgets.length > 0 && b.budgets[0]!.t < now - 5000) b.budgets.shift();
  }

  miss(task: string): void {
    this.book(task).misses += 1;
  }

  batch(task: string, rows: number): void {
    const b = this.book(task);
    b.batchRows += rows;
    b.batches += 1;
  }

  /** Arrivals in each of the last `n` whole seconds, oldest first (the current second excluded). */
  perSecond(task: string, n = 60): number[] {
    const b = this.book(task);
    const cur = Math.floor(this.clock.now() / 1000);
    return Array.from({ length: n }, (_, i) => b.seconds.get(cur - n + i) ?? 0);
  }

  /** Mean rate (req/s) over the last `windowS` whole seconds. */
  rate(task: string, windowS = 2): number {
    const xs = this.perSecond(task, windowS);
    return xs.reduce((a, x) => a + x, 0) / windowS;
  }

  /** Misses since the last call. */
  takeMisses(task: string): number {
    const b = this.book(task);
    const m = b.misses;
    b.misses = 0;
    return m;
  }

  tightestBudget(task: string, fallback: number): number {
    const b = this.book(task);
    return b.budgets.length ? Math.min(...b.budgets.map((x) => x.ms)) : fallback;
  }

  /** Mean rows per batch since the last call (1 when nothing ran). */
  takeAvgBatch(task: string): number {
    const b = this.book(task);
    const avg = b.batches ? b.batchRows / b.batches : 1;
    b.batchRows = 0;
    b.batches = 0;
    return avg;
  }
}
