// What a live request passes through outside the serving core: the load generator and the gateway,
// which on a small machine share one pinned core. Each request costs that core some CPU before it
// reaches the router (the client's send, the gateway's receive, decode and validation) and some after
// its answer (the gateway's encode, the client's receive); the core does one thing at a time, in
// order, so under load requests also queue for it. The numbers come from measuring the live system
// (experiments/fidelity): CPU time of the gateway process and of the client per request, and the wire
// time left over at low load.
import type { Clock } from "../cluster/clock.js";
import type { Xoshiro128 } from "../stats/random.js";
import { sampleDuration, type Duration } from "./service-model.js";

export interface FrontEndModel {
  /** CPU work per request on the front-end core before the router (ms). */
  inMs: Duration;
  /** CPU work per answer on the front-end core after the router (ms). */
  outMs: Duration;
  /** Time each way that takes none of that core (loopback, kernel), ms. */
  wireMs?: number;
  /**
   * CPU per request the core spends off the request's own path (the gateway's bookkeeping, its timers, the
   * client's pacing), ms: it delays the requests behind, not this one.
   */
  offPathMs?: number;
}

export class FrontEndCore {
  private busyUntil = 0;
  /** Work the core has done (ms), for checks. */
  busyMs = 0;

  constructor(
    private readonly clock: Clock,
    private readonly model: FrontEndModel,
    private readonly rng: Xoshiro128,
  ) {}

  /** `then` runs once this request's `kind` work has had its turn on the core (FIFO) and crossed the wire. */
  pass(kind: "in" | "out", then: () => void): void {
    const work = Math.max(0, sampleDuration(kind === "in" ? this.model.inMs : this.model.outMs, this.rng));
    const wire = this.model.wireMs ?? 0;
    const now = this.clock.now();
    // the request reaches the core after the wire on the way in, and leaves it before the wire on the way out
    const ready = kind === "in" ? now + wire : now;
    const start = Math.max(ready, this.busyUntil);
    const done = start + work;
    const offPath = kind === "out" ? Math.max(0, this.model.offPathMs ?? 0) : 0;
    this.busyUntil = done + offPath;
    this.busyMs += work + offPath;
    this.clock.setTimer(kind === "in" ? done : done + wire, then);
  }
}
