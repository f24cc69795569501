// Scale to zero: a task that has seen no request for its `scale_to_zero_after` loses its last instances;
// the next request starts one again (the router holds it while the start fits its deadline, and says when
// to retry when it does not). A step of its own, after whatever the scaling policy keeps while traffic
// flows (Ray Serve's downscale_to_zero_delay_s beside its downscale_delay_s; Knative's scale-to-zero grace
// period): a policy that keeps one instance for a quiet minute still hands its cores back after the delay.
import type { Clock, Timer } from "../cluster/clock.js";
import type { Cluster } from "../cluster/types.js";

export interface ZeroProbe {
  /** When a request for the task last arrived (clock ms; admitted or not). */
  lastArrival(task: string): number;
  /** When the router last sent a batch to the instance (clock ms). */
  lastUsed(instanceId: string): number;
  /** Requests queued or running. */
  outstanding(task: string): number;
}

export interface ZeroEvent {
  task: string;
  /** Instances stopped. */
  instances: string[];
  /** How long the task had been quiet (ms). */
  idleMs: number;
}

export class ZeroScaler {
  private readonly afterMs = new Map<string, number>();
  private readonly timers = new Map<string, Timer>();
  /** When each task last came up from zero (or was first watched): an instance nobody used yet counts from here. */
  private readonly awakeSince = new Map<string, number>();
  private readonly listeners: ((e: ZeroEvent) => void)[] = [];

  constructor(
    private readonly cluster: Cluster,
    private readonly clock: Clock,
    private readonly probe: ZeroProbe,
    /** A task the control loop is converging right now is left alone until it is done. */
    private readonly busy: (task: string) => boolean = () => false,
  ) {
    cluster.onChange(() => {
      if (this.afterMs.size === 0) return;
      // a task that came up from zero (its first instance since) starts its quiet clock now
      for (const i of cluster.instances()) {
        if (i.state !== "ready" && i.state !== "starting") continue;
        if (!this.afterMs.has(i.task) || this.timers.has(i.task)) continue;
        this.awakeSince.set(i.task, this.clock.now());
        this.arm(i.task, this.clock.now() + this.afterMs.get(i.task)!);
      }
    });
  }

  on(listener: (e: ZeroEvent) => void): void {
    this.listeners.push(listener);
  }

  /** Watches `task` with a delay of `afterMs` (undefined: the task keeps its instances). */
  set(task: string, afterMs: number | undefined): void {
    this.forget(task);
    if (afterMs === undefined) return;
    if (!(afterMs > 0)) throw new Error(`scale_to_zero_after of '${task}' must be positive, got ${afterMs}`);
    this.afterMs.set(task, afterMs);
    this.awakeSince.set(task, this.clock.now());
    this.arm(task, this.clock.now() + afterMs);
  }

  forget(task: string): void {
    const t = this.timers.get(task);
    if (t) this.clock.clearTimer(t);
    this.timers.delete(task);
    this.afterMs.delete(task);
    this.awakeSince.delete(task);
  }

  close(): void {
    for (const t of this.timers.values()) this.clock.clearTimer(t);
    this.timers.clear();
  }

  private arm(task: string, at: number): void {
    const old = this.timers.get(task);
    if (old) this.clock.clearTimer(old);
    this.timers.set(
      task,
      this.clock.setTimer(at, () => this.check(task)),
    );
  }

  private check(task: string): void {
    this.timers.delete(task);
    const after = this.afterMs.get(task);
    if (after === undefined) return;
    const mine = this.cluster
      .instances()
      .filter((i) => i.task === task && (i.state === "ready" || i.state === "starting"));
    if (mine.length === 0) return; // at zero: armed again when an instance appears
    const now = this.clock.now();
    let quietSince = Math.max(this.probe.lastArrival(task), this.awakeSince.get(task) ?? now);
    for (const i of mine) quietSince = Math.max(quietSince, this.probe.lastUsed(i.id));
    if (this.probe.outstanding(task) > 0 || this.busy(task)) quietSince = now;
    if (now - quietSince < after) {
      // quietSince + after can round to `now` itself while the difference is still short of `after`: a timer
      // due now would fire again at once, for ever (on virtual time); a microsecond later it passes
      this.arm(task, Math.max(quietSince + after, now + 1e-3));
      return;
    }
    for (const i of mine) void this.cluster.stop(i.id);
    const e: ZeroEvent = { task, instances: mine.map((i) => i.id), idleMs: now - quietSince };
    for (const fn of this.listeners) fn(e);
  }
}
