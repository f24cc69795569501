// Virtual time for the simulator: the Clock the router and the control loop already run on, driven
// by an event heap instead of the wall clock.
//
// The product code is partly asynchronous (the control loop awaits its forecaster and runs
// actuations as promises), and a promise continuation must run at the virtual time it became
// runnable, before the clock moves on. So after an event whose callback touched any promise, the
// loop waits for one macrotask (setImmediate), which Node runs only once the whole microtask
// queue, including continuations queued by continuations, is empty. A V8 promise hook tells which
// events touched a promise: request arrivals and batch completions do not, so the hot path never
// pays the ~2 µs macrotask round trip.
//
// What `auto` cannot see: microtasks queued without a promise (queueMicrotask, process.nextTick);
// use `always` for code that does that. What no flush can cover: a promise settled by real I/O (a
// forecaster running a model on a thread pool) settles at some later wall time, hence at an
// arbitrary virtual time; code driven by this clock must settle its promises from clock events.
import { promiseHooks } from "node:v8";
import type { Clock, Timer } from "../cluster/clock.js";
import { EventHeap, type SimEvent } from "./event-heap.js";

/**
 * When to drain microtasks after an event: `auto` only after events that touched a promise (the
 * default), `always` after every event (slow; a check on `auto`), `never` for fully synchronous code.
 */
export type FlushMode = "auto" | "always" | "never";

export interface VirtualClockOptions {
  /** Virtual ms at which the clock starts (default 0). */
  start?: number;
  flush?: FlushMode;
}

/** Set by the promise hook whenever a promise is created or settled anywhere in the process. */
let promiseTouched = false;
let hookUsers = 0;
let stopHook: (() => void) | null = null;

function acquirePromiseHook(): void {
  if (hookUsers++ === 0) {
    const stop = promiseHooks.createHook({
      init: () => {
        promiseTouched = true;
      },
      settled: () => {
        promiseTouched = true;
      },
    });
    stopHook = () => void stop();
  }
}

function releasePromiseHook(): void {
  if (--hookUsers === 0) {
    stopHook?.();
    stopHook = null;
  }
}

const macrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly heap = new EventHeap();
  private readonly flush: FlushMode;
  private running = false;
  private stopRequested = false;
  /** Events fired so far. */
  events = 0;
  /** Macrotask flushes performed so far (a cost indicator). */
  flushes = 0;

  constructor(opts: VirtualClockOptions = {}) {
    this.t = opts.start ?? 0;
    this.flush = opts.flush ?? "auto";
  }

  now(): number {
    return this.t;
  }

  /** Schedules `fn` at virtual time `at`; a time in the past means "now, after what is already due". */
  setTimer(at: number, fn: () => void): Timer {
    const ev: SimEvent = { at: at > this.t ? at : this.t, seq: this.seq++, fn, queued: false };
    this.heap.push(ev);
    return ev;
  }

  /**
   * setTimer(at, fn) for a caller that owns `timer` (nobody else holds it): once it has fired, the same
   * object is scheduled again instead of a new one (the simulator's hot paths allocate nothing per event).
   */
  rearm(timer: Timer | null, at: number, fn: () => void): Timer {
    const ev = timer as SimEvent | null;
    if (ev === null || ev.queued) return this.setTimer(at, fn);
    ev.at = at > this.t ? at : this.t;
    ev.seq = this.seq++;
    ev.fn = fn;
    this.heap.push(ev);
    return ev;
  }

  clearTimer(timer: Timer): void {
    this.heap.cancel(timer as SimEvent);
  }

  /** Events scheduled and not yet fired or cancelled. */
  get pending(): number {
    return this.heap.size;
  }

  /** Time of the next event (Infinity when none). */
  nextEventAt(): number {
    return this.heap.peekTime();
  }

  /** Makes the running `runUntil` return after the event in progress (and its microtasks). */
  stop(): void {
    this.stopRequested = true;
  }

  /**
   * Fires every event due at or before `until`, in (time, scheduling order), draining the
   * microtasks each one causes before the next. Ends with the clock at `until` (when finite and
   * not stopped early), or at the last event when `until` is Infinity and the heap runs dry.
   */
  async runUntil(until: number): Promise<void> {
    if (this.running) throw new Error("VirtualClock.runUntil is already running; await it before calling it again");
    this.running = true;
    this.stopRequested = false;
    const mode = this.flush;
    if (mode === "auto") acquirePromiseHook();
    try {
      // whatever the caller set in motion before the run (e.g. awaited starts) settles at the start time
      if (mode !== "never") await macrotask();
      for (;;) {
        if (this.stopRequested) return;
        const ev = this.heap.popUntil(until);
        if (ev === null) break;
        this.t = ev.at;
        const fn = ev.fn!;
        ev.fn = null;
        this.events++;
        promiseTouched = false;
        fn();
        if (mode === "always" || (mode === "auto" && promiseTouched)) {
          this.flushes++;
          await macrotask();
        }
      }
      if (Number.isFinite(until) && until > this.t) this.t = until;
    } finally {
      if (mode === "auto") releasePromiseHook();
      this.running = false;
    }
  }

  /** Runs the next `ms` of virtual time. */
  advance(ms: number): Promise<void> {
    return this.runUntil(this.t + ms);
  }
}
