// What the control loop observes per task, measured from the router's events: arrivals per second,
// deadline misses, the tightest recent budget, and the batch sizes executed.
import type { Clock } from "../cluster/clock.js";

interface Book {
  /** arrivals per whole second, keyed by second number */
  seconds: Map<number, number>;
  misses: number;
  lastArrival: number;
  /** Tightest budget of the arrivals of each whole second, keyed by second number. */
  budgets: Map<number, number>;
  batchRows: number;
  batches: number;
  /** Rows served per variant since the last takeBusiestVariant(). */
  variantRows: Map<string, number>;
}

/** Seconds of arrivals whose tightest budget Sponge's vertical scaler looks at. */
const BUDGET_SECONDS = 5;

export class TaskMeter {
  private readonly books = new Map<string, Book>();

  constructor(
    private readonly clock: Clock,
    private readonly keepSeconds = 70,
  ) {}

  private book(task: string): Book {
    let b = this.books.get(task);
    if (!b) {
      b = {
        seconds: new Map(),
        misses: 0,
        lastArrival: Number.NEGATIVE_INFINITY,
        budgets: new Map(),
        batchRows: 0,
        batches: 0,
        variantRows: new Map(),
      };
      this.books.set(task, b);
    }
    return b;
  }

  arrival(task: string, budgetMs: number): void {
    const b = this.book(task);
    const now = this.clock.now();
    b.lastArrival = now;
    const s = Math.floor(now / 1000);
    b.seconds.set(s, (b.seconds.get(s) ?? 0) + 1);
    if (b.seconds.size > this.keepSeconds)
      for (const k of b.seconds.keys()) if (k < s - this.keepSeconds) b.seconds.delete(k);
    const tightest = b.budgets.get(s);
    if (tightest === undefined || budgetMs < tightest) b.budgets.set(s, budgetMs);
    if (b.budgets.size > BUDGET_SECONDS + 1)
      for (const k of b.budgets.keys()) if (k < s - BUDGET_SECONDS) b.budgets.delete(k);
  }

  /** Clock ms of the task's latest arrival (−∞ before the first). */
  lastArrival(task: string): number {
    return this.books.get(task)?.lastArrival ?? Number.NEGATIVE_INFINITY;
  }

  miss(task: string): void {
    this.book(task).misses += 1;
  }

  batch(task: string, rows: number, variant?: string): void {
    const b = this.book(task);
    b.batchRows += rows;
    b.batches += 1;
    if (variant !== undefined) b.variantRows.set(variant, (b.variantRows.get(variant) ?? 0) + rows);
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

  /** Tightest budget among the arrivals of the last 5 s (the current second included). */
  tightestBudget(task: string, fallback: number): number {
    const b = this.book(task);
    const cur = Math.floor(this.clock.now() / 1000);
    let min = Infinity;
    for (const [s, ms] of b.budgets) if (s >= cur - BUDGET_SECONDS && ms < min) min = ms;
    return min === Infinity ? fallback : min;
  }

  /** The variant that served the most rows since the last call (undefined when none ran). */
  takeBusiestVariant(task: string): string | undefined {
    const b = this.book(task);
    let best: string | undefined;
    let most = 0;
    for (const [v, rows] of b.variantRows) if (rows > most) [best, most] = [v, rows];
    b.variantRows.clear();
    return best;
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
