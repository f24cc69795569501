// The warm pool's size as part of the plan: started worker processes with onnxruntime loaded and no model
// (no core either) make a start cost the model load only, and each costs a process's memory while it
// waits. The pool is sized for the starts it has to absorb: the most instance starts seen within one
// second over the last minute (wake-ups from zero, scale-outs, replacements), between an operator's floor
// and ceiling. A taken worker is replaced at once, so starts spread over more than a second need one.
import type { Clock, Timer } from "../cluster/clock.js";
import type { Cluster } from "../cluster/types.js";

export interface WarmPoolSettings {
  /** Fewest pool workers kept (default: 1 when max ≥ 1). */
  min?: number;
  /** Most pool workers kept. */
  max: number;
  /** How far back starts are counted (ms; default 60 s). */
  windowMs?: number;
  /** How often the size is decided (ms; default 1 s). */
  intervalMs?: number;
}

export interface PoolDecision {
  at: number;
  size: number;
  before: number;
  /** Most starts within one second of the window. */
  peakStarts: number;
  reason: string;
}

/** The most elements of sorted `times` within any `spanMs` (a sliding window over them). */
export function peakWithin(times: readonly number[], spanMs: number): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while (times[hi]! - times[lo]! >= spanMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

export class WarmPoolPlanner {
  private readonly seen = new Set<string>();
  /** Clock times of instance starts within the window, oldest first. */
  private starts: number[] = [];
  private timer: Timer | null = null;
  private readonly listeners: ((d: PoolDecision) => void)[] = [];
  private readonly min: number;
  private readonly windowMs: number;
  private readonly intervalMs: number;

  constructor(
    private readonly cluster: Cluster,
    private readonly clock: Clock,
    private readonly settings: WarmPoolSettings,
  ) {
    if (!cluster.setWarmPool) throw new Error("this cluster backend keeps no warm pool");
    if (!Number.isInteger(settings.max) || settings.max < 0)
      throw new Error(`the warm pool's max must be a whole number ≥ 0, got ${settings.max}`);
    this.min = Math.min(settings.max, settings.min ?? Math.min(1, settings.max));
    this.windowMs = settings.windowMs ?? 60_000;
    this.intervalMs = settings.intervalMs ?? 1000;
    cluster.onChange(() => {
      for (const i of cluster.instances()) {
        if (this.seen.has(i.id)) continue;
        this.seen.add(i.id);
        if (i.state === "starting") this.starts.push(this.clock.now());
      }
      if (this.seen.size > 4 * cluster.instances().length + 64) {
        const live = new Set(cluster.instances().map((i) => i.id));
        for (const id of this.seen) if (!live.has(id)) this.seen.delete(id);
      }
    });
  }

  on(listener: (d: PoolDecision) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    this.stop();
    this.decide();
    const loop = () => {
      this.timer = this.clock.setTimer(this.clock.now() + this.intervalMs, () => {
        this.decide();
        loop();
      });
    };
    loop();
  }

  stop(): void {
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = null;
  }

  /** Sizes the pool now; returns the decision (also when it changed nothing). */
  decide(): PoolDecision {
    const now = this.clock.now();
    let drop = 0;
    while (drop < this.starts.length && this.starts[drop]! <= now - this.windowMs) drop++;
    if (drop > 0) this.starts = this.starts.slice(drop);
    const peak = peakWithin(this.starts, 1000);
    const size = Math.max(this.min, Math.min(this.settings.max, peak));
    const before = this.cluster.warmPoolSize ?? 0;
    const d: PoolDecision = {
      at: now,
      size,
      before,
      peakStarts: peak,
      reason:
        peak > this.min
          ? `${peak} instance starts within one second in the last ${this.windowMs / 1000} s: a pool of ${size} (at most ${this.settings.max}) makes them load their model only`
          : `at most ${peak} start(s) within one second in the last ${this.windowMs / 1000} s: the floor of ${this.min}`,
    };
    if (size !== before) {
      this.cluster.setWarmPool!(size);
      for (const fn of this.listeners) fn(d);
    }
    return d;
  }
}
