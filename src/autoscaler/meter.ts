// What the control loop observes per task, measured from the router's events: arrivals per second,
// deadline misses, the tightest recent budget, and the batch sizes executed.
import type { Clock } from "../cluster/clock.js";
import { servedBy } from "../router/request.js";
import type { ServedShare } from "./types.js";

interface Book {
  /** arrivals per whole second, keyed by second number */
  seconds: Map<number, number>;
  misses: number;
  lastArrival: number;
  /** Tightest budget of the arrivals of each whole second, keyed by second number. */
  budgets: Map<number, number>;
  batchRows: number;
  batches: number;
  /** Rows served per variant and subnet (keyed by servedBy) since the last takeServed(). */
  served: Map<string, ServedShare>;
  /** Compute time of finished batches since the last takeBusyMs(). */
  busyMs: number;
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
        served: new Map(),
        busyMs: 0,
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

  batch(task: string, rows: number, variant?: string, subnet?: string, computeMs = 0): void {
    const b = this.book(task);
    b.batchRows += rows;
    b.batches += 1;
    b.busyMs += computeMs;
    if (variant === undefined) return;
    const key = servedBy(variant, subnet);
    const share = b.served.get(key);
    if (share) share.rows += rows;
    else b.served.set(key, subnet === undefined ? { variant, rows } : { variant, subnet, rows });
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

  /** Rows served per variant and subnet since the last call (empty when nothing ran). */
  takeServed(task: string): ServedShare[] {
    const b = this.book(task);
    const out = [...b.served.values()];
    b.served.clear();
    return out;
  }

  /** Compute time of the batches finished since the last call (ms, summed over instances). */
  takeBusyMs(task: string): number {
    const b = this.book(task);
    const ms = b.busyMs;
    b.busyMs = 0;
    return ms;
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
