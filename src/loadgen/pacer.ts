// The open-loop pacer: fires request i at start + times[i] whether or not earlier requests have
// been answered (an open arrival process, as real clients are; a closed loop would slow down
// exactly when the server does and hide its queueing). It measures its own schedule lag (actual
// fire time − scheduled time) because a load generator that falls behind silently offers less
// load than it claims.
//
// Timer strategy: Node's setTimeout is ms-granular and may fire a millisecond or more late, so it
// is used only to sleep until `spinMs` before the next arrival; from there setImmediate polls
// (which still lets the event loop read responses between polls), and the last `busyMs` is a busy
// spin on performance.now(). Requests that are already due fire back to back.
import { quantileSorted } from "../stats/quantile.js";
import { performance } from "node:perf_hooks";

export interface PacerTimers {
  now(): number;
  sleep(ms: number, then: () => void): void;
  poll(then: () => void): void;
}

export const realTimers: PacerTimers = {
  now: () => performance.now(),
  sleep: (ms, then) => void setTimeout(then, ms),
  poll: (then) => void setImmediate(then),
};

export interface PacerOptions {
  /** Sleep with setTimeout until this long before an arrival (ms); default 1.5: setTimeout runs on
   *  the loop's whole-millisecond clock, so it may wake up to ~1 ms early or late. */
  spinMs?: number;
  /** Busy-spin for the last stretch of this length (ms); default 0.05. */
  busyMs?: number;
  /** Delay before the first arrival, so setup work does not count as lag (ms); default 5. */
  leadMs?: number;
  timers?: PacerTimers;
  /** Stop firing (the remaining requests are never sent). */
  signal?: AbortSignal;
}

export interface PacerResult {
  /** Clock reading that schedule time 0 maps to. */
  startMs: number;
  /** Requests fired (all of them unless aborted). */
  fired: number;
  /** Lag of each fired request (ms, >= 0). */
  lagMs: Float64Array;
}

/**
 * Fires `fire(i, scheduledMs, sentMs)` for every arrival time (ms from start, ascending).
 * `fire` must not block: it starts a request and returns; its answer is none of the pacer's business.
 */
export function runOpenLoop(
  times: ArrayLike<number>,
  fire: (i: number, scheduledMs: number, sentMs: number) => void,
  opts: PacerOptions = {},
): Promise<PacerResult> {
  const t = opts.timers ?? realTimers;
  const spinMs = opts.spinMs ?? 1.5;
  const busyMs = opts.busyMs ?? 0.05;
  const n = times.length;
  const lagMs = new Float64Array(n);
  const startMs = t.now() + (opts.leadMs ?? 5);
  let i = 0;
  return new Promise((resolve, reject) => {
    const finish = () => resolve({ startMs, fired: i, lagMs: i === n ? lagMs : lagMs.slice(0, i) });
    const tick = () => {
      try {
        let now = t.now();
        while (i < n) {
          if (opts.signal?.aborted) return finish();
          const due = startMs + times[i]!;
          const wait = due - now;
          if (wait > spinMs) return t.sleep(wait - spinMs, tick);
          if (wait > busyMs) return t.poll(tick);
          while (now < due) now = t.now();
          fire(i, due, now);
          lagMs[i] = now - due;
          i++;
          // Starting a request takes time: what is due next is judged by the clock after it.
          now = t.now();
        }
        finish();
      } catch (err) {
        reject(err);
      }
    };
    tick();
  });
}

export interface LagSummary {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Whether the pacer fell behind enough to distort the offered load (p99 > 1 ms). */
  lagged: boolean;
}

export const LAG_WARN_MS = 1;

export function summarizeLag(lagMs: ArrayLike<number>): LagSummary {
  const sorted = Float64Array.from(lagMs).sort();
  const p99 = quantileSorted(sorted, 0.99);
  return {
    p50Ms: quantileSorted(sorted, 0.5),
    p99Ms: p99,
    maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN,
    lagged: p99 > LAG_WARN_MS,
  };
}
