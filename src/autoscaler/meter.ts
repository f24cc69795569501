// What the control loop observes per task, measured from the router's events: arrivals per second,
// deadline misses, the tightest recent budget, and the batch sizes executed. Per-second figures live in
// rings indexed by second number, so that counting an arrival allocates nothing.
import type { Clock } from "../cluster/clock.js";
import { servedBy } from "../router/request.js";
import type { ServedShare } from "./types.js";

/** Seconds a ring holds (a power of two above the longest window anyone reads). */
const RING = 128;
/** Seconds of arrivals whose tightest budget Sponge's vertical scaler looks at. */
const BUDGET_SECONDS = 5;
/** Ring of the budget window (a power of two above BUDGET_SECONDS + 1). */
const BUDGET_RING = 8;

class Book {
  /** Arrivals of second `second[k & (RING − 1)]`, for the last RING seconds that had any. */
  readonly counts = new Int32Array(RING);
  readonly second = new Float64Array(RING).fill(Number.NaN);
  /** Tightest budget of the arrivals of second `budgetSecond[k & (BUDGET_RING − 1)]`. */
  readonly budgets = new Float64Array(BUDGET_RING);
  readonly budgetSecond = new Float64Array(BUDGET_RING).fill(Number.NaN);
  misses = 0;
  lastArrival = Number.NEGATIVE_INFINITY;
  batchRows = 0;
  batches = 0;
  /** Rows served per variant and subnet (keyed by servedBy) since the last takeServed(). */
  readonly served = new Map<string, ServedShare>();
  /** Compute time of finished batches since the last takeBusyMs(). */
  busyMs = 0;

  count(s: number): number {
    const k = s & (RING - 1);
    return this.second[k] === s ? this.counts[k]! : 0;
  }
}

export class TaskMeter {
  private readonly books = new Map<string, Book>();
  private readonly watchers: ((task: string) => void)[] = [];

  constructor(
    private readonly clock: Clock,
    /** Seconds of arrivals kept (at most the ring's). */
    private readonly keepSeconds = 70,
  ) {
    if (!(keepSeconds >= 1 && keepSeconds < RING))
      throw new Error(`the meter keeps 1 to ${RING - 1} seconds, not ${keepSeconds}`);
  }

  /** Calls `fn` with the task's name whenever anything is counted for it (arrival, miss, batch). */
  watch(fn: (task: string) => void): void {
    this.watchers.push(fn);
  }

  private book(task: string): Book {
    let b = this.books.get(task);
    if (!b) {
      b = new Book();
      this.books.set(task, b);
    }
    return b;
  }

  private touched(task: string): void {
    for (let i = 0; i < this.watchers.length; i++) this.watchers[i]!(task);
  }

  arrival(task: string, budgetMs: number): void {
    const b = this.book(task);
    const now = this.clock.now();
    b.lastArrival = now;
    const s = Math.floor(now / 1000);
    const k = s & (RING - 1);
    if (b.second[k] === s) b.counts[k]!++;
    else {
      b.second[k] = s;
      b.counts[k] = 1;
    }
    const j = s & (BUDGET_RING - 1);
    if (b.budgetSecond[j] !== s || budgetMs < b.budgets[j]!) {
      b.budgetSecond[j] = s;
      b.budgets[j] = budgetMs;
    }
    this.touched(task);
  }

  /** Clock ms of the task's latest arrival (−∞ before the first). */
  lastArrival(task: string): number {
    return this.books.get(task)?.lastArrival ?? Number.NEGATIVE_INFINITY;
  }

  /** Arrivals so far in the current (unfinished) second. */
  arrivalsThisSecond(task: string): number {
    return this.books.get(task)?.count(Math.floor(this.clock.now() / 1000)) ?? 0;
  }

  miss(task: string): void {
    this.book(task).misses += 1;
    this.touched(task);
  }

  batch(task: string, rows: number, variant?: string, subnet?: string, computeMs = 0): void {
    const b = this.book(task);
    b.batchRows += rows;
    b.batches += 1;
    b.busyMs += computeMs;
    if (variant !== undefined) {
      const key = servedBy(variant, subnet);
      const share = b.served.get(key);
      if (share) share.rows += rows;
      else b.served.set(key, subnet === undefined ? { variant, rows } : { variant, subnet, rows });
    }
    this.touched(task);
  }

  /** Arrivals in each of the last `n` whole seconds, oldest first (the current second excluded). */
  perSecond(task: string, n = 60): number[] {
    const out = new Array<number>(n);
    const b = this.books.get(task);
    const cur = Math.floor(this.clock.now() / 1000);
    const oldest = cur - Math.min(n, this.keepSeconds);
    for (let i = 0; i < n; i++) {
      const s = cur - n + i;
      out[i] = b && s >= oldest ? b.count(s) : 0;
    }
    return out;
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
    const b = this.books.get(task);
    if (!b) return fallback;
    const cur = Math.floor(this.clock.now() / 1000);
    let min = Infinity;
    for (let s = cur - BUDGET_SECONDS; s <= cur; s++) {
      const j = s & (BUDGET_RING - 1);
      if (b.budgetSecond[j] === s && b.budgets[j]! < min) min = b.budgets[j]!;
    }
    return min === Infinity ? fallback : min;
  }

  /** Rows served per variant and subnet since the last call (empty when nothing ran). */
  takeServed(task: string): ServedShare[] {
    const b = this.book(task);
    if (b.served.size === 0) return [];
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
