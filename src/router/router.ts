// The router: one queue per task (pipelines queue per stage), pull-based dispatch of whole batches
// to instances that have room, and deadlines enforced while requests wait: a request that can no
// longer make it is answered at once (504) unless its task serves late. Policy code decides what
// runs; the router makes it happen and answers every request exactly once.
import type { Cluster, Instance } from "../cluster/types.js";
import type {
  BatchChoice,
  InstanceView,
  PolicyContext,
  SchedulingPolicy,
  TaskModel,
  VariantModel,
} from "./scheduling/types.js";
import { eligible, fastestOn, measuredP99 } from "./scheduling/types.js";
import type { Clock, Timer } from "../cluster/clock.js";
import { RequestQueue } from "./queue.js";
import { RouterEventHub, type RouterEvents } from "./events.js";
import type { Failed, Outcome, Request } from "./request.js";

export interface TaskSetup {
  model: TaskModel;
  policy: SchedulingPolicy;
  /** Admission bound: requests queued beyond this are refused at once with 429. */
  maxQueue: number;
}

/** Asked when a request arrives that no ready or starting instance can serve: true if capacity is on its way. */
export type DemandHook = (task: string, r: Request) => boolean;

export interface RouterOptions {
  /** Batches an instance may hold: one running plus prefetched ones (default 2). */
  slotsPerInstance?: number;
  /**
   * An instance that has not finished a batch within `factor` × the time its queue of batches was predicted
   * to take, plus `floorMs`, is reported to the cluster as suspect (and again after each further such
   * period): the backend probes it, and a hung one is killed and replaced, its batches failing over.
   * Absent: no watchdog (the simulator's instances never hang unless a test makes them).
   */
  watchdog?: { factor: number; floorMs: number };
  /**
   * "predictive": a request that the rows queued ahead of it would make late on the instances that may serve
   * it is refused at once (429, with when to retry) instead of being queued to miss, so the requests admitted
   * meet their deadlines under overload; "queue" (default): only max_queue refuses.
   */
  admission?: "queue" | "predictive";
}

/**
 * What predictive admission learns fades with time as well as with new observations: while it sheds,
 * fewer requests run to teach it otherwise, and an estimate from a past burst must not refuse forever.
 */
const FADE_HALF_LIFE_MS = 2000;

const fade = (since: number, now: number) => Math.pow(0.5, Math.max(0, now - since) / FADE_HALF_LIFE_MS);

/**
 * Observed over predicted batch time, decayed per observation and with time: how much slower than its
 * profile an instance runs on this machine now (other work on its core, for one).
 */
class SlowDown {
  private observed = 0;
  private predicted = 0;
  private at = 0;

  add(observed: number, predicted: number, now: number): void {
    const f = 0.98 * fade(this.at, now);
    this.observed = this.observed * f + observed;
    this.predicted = this.predicted * f + predicted;
    this.at = now;
  }

  /** 1 ms of prior on both sides keeps a few tiny samples from swinging it. */
  ratio(now: number): number {
    const f = fade(this.at, now);
    return Math.min(20, Math.max(0.5, (this.observed * f + 1) / (this.predicted * f + 1)));
  }
}

/**
 * When lanes, each free `free` ms from now and from then on taking `rate` rows per ms, have taken `rows`
 * rows between them (ms from now): water-filling over the lanes in the order they free up.
 */
export function drainTime(lanes: readonly { free: number; rate: number }[], rows: number): number {
  const sorted = [...lanes].sort((a, b) => a.free - b.free);
  let t = Math.max(0, sorted[0]?.free ?? 0);
  let rate = 0;
  let left = rows;
  for (let k = 0; k < sorted.length; k++) {
    rate += sorted[k]!.rate;
    const next = k + 1 < sorted.length ? Math.max(t, sorted[k + 1]!.free) : Infinity;
    if (left <= rate * (next - t)) return t + left / rate;
    left -= rate * (next - t);
    t = next;
  }
  return t;
}

/** What the live server uses: a worker stopped or wedged for ~1 s is replaced, fast models or slow. */
export const DEFAULT_WATCHDOG = { factor: 5, floorMs: 1000 } as const;

interface TaskState {
  setup: TaskSetup;
  queue: RequestQueue;
  variants: Map<string, VariantModel>;
  expiry: Timer | null;
  wake: Timer | null;
  tick: Timer | null;
  lastArrival: number;
  /** No eligible request needs longer than this anywhere: the slowest variant's full batch on one core. */
  slowestMs: number;
  /** Predictive admission's waits and batch times, observed against predicted. */
  slowDown: SlowDown;
}

export class Router {
  private readonly tasks = new Map<string, TaskState>();
  private readonly used = new Map<string, number>();
  /** Requests sent to instances and not yet answered, per task. */
  private readonly running = new Map<string, number>();
  /** Per instance, the batches it holds: when the running one started, each one's predicted and expected time. */
  private readonly held = new Map<string, { since: number; predicted: number[]; expected: number[] }>();
  private readonly slots: number;
  private readonly watchdog: RouterOptions["watchdog"];
  private readonly predictive: boolean;
  /** When each instance still starting was first seen starting (clock ms). */
  private readonly startedAt = new Map<string, number>();
  /** Live instances per task, rebuilt lazily after a cluster change (the router asks per request). */
  private byTask: Map<string, Instance[]> | null = null;
  private closing = false;
  private seq = 0;
  private readonly events = new RouterEventHub();
  private demand: DemandHook | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly cluster: Cluster,
    opts: RouterOptions = {},
  ) {
    this.slots = opts.slotsPerInstance ?? 2;
    this.watchdog = opts.watchdog;
    this.predictive = opts.admission === "predictive";
    cluster.onChange(() => {
      this.byTask = null;
      const now = this.clock.now();
      const starting = new Set<string>();
      for (const i of cluster.instances())
        if (i.state === "starting") {
          starting.add(i.id);
          if (!this.startedAt.has(i.id)) this.startedAt.set(i.id, now);
        }
      for (const id of this.startedAt.keys()) if (!starting.has(id)) this.startedAt.delete(id);
      for (const ts of this.tasks.values()) this.pump(ts);
    });
  }

  on<K extends keyof RouterEvents>(event: K, listener: RouterEvents[K]): () => void {
    return this.events.on(event, listener);
  }

  /** Who starts capacity for a request nothing can serve (the on-demand scaler); none: such requests fail 503. */
  setDemand(hook: DemandHook | null): void {
    this.demand = hook;
  }

  nextSeq(): number {
    return ++this.seq;
  }

  addTask(setup: TaskSetup): void {
    const ts: TaskState = {
      setup,
      queue: new RequestQueue(setup.policy.order),
      variants: new Map(setup.model.variants.map((v) => [v.name, v])),
      expiry: null,
      wake: null,
      tick: null,
      lastArrival: Number.NEGATIVE_INFINITY,
      slowestMs: Math.max(
        ...setup.model.variants.flatMap((v) => [v, ...(v.subnets ?? [])]).map((v) => v.latency(v.maxBatch, 1)),
      ),
      slowDown: new SlowDown(),
    };
    this.tasks.set(setup.model.name, ts);
    if (setup.policy.tick) this.scheduleTick(ts);
  }

  /** Stops routing to a task; everything it had queued is answered 503. */
  removeTask(name: string, why: string): void {
    const ts = this.tasks.get(name);
    if (!ts) return;
    this.tasks.delete(name);
    for (const t of [ts.expiry, ts.wake, ts.tick]) if (t) this.clock.clearTimer(t);
    for (const r of ts.queue.drain()) this.fail(r, { ok: false, status: 503, reason: "shutdown", message: why });
  }

  hasTask(name: string): boolean {
    return this.tasks.has(name);
  }

  queueLength(task: string): number {
    return this.tasks.get(task)?.queue.length ?? 0;
  }

  lastArrival(task: string): number {
    return this.tasks.get(task)?.lastArrival ?? Number.NEGATIVE_INFINITY;
  }

  /** Requests queued or running: the concurrency Knative and Ray Serve scale on. */
  outstanding(task: string): number {
    return this.queueLength(task) + (this.running.get(task) ?? 0);
  }

  /** When the router last sent a batch to this instance (clock ms). */
  lastUsed(instanceId: string): number {
    return this.used.get(instanceId) ?? Number.NEGATIVE_INFINITY;
  }

  /** Queues a request; `r.done` is called exactly once, now or later. */
  submit(r: Request): void {
    const ts = this.tasks.get(r.task);
    if (!ts || this.closing) {
      this.fail(r, {
        ok: false,
        status: 503,
        reason: "shutdown",
        message: this.closing ? "server is shutting down; retry on another replica" : `task '${r.task}' is not loaded`,
      });
      return;
    }
    ts.lastArrival = this.clock.now();
    if (ts.queue.length >= ts.setup.maxQueue) {
      this.fail(r, this.queueFull(ts));
      return;
    }
    if (ts.setup.policy.onArrival) ts.setup.policy.onArrival(r, this.context(ts));
    if (
      !this.readyInstances(r.task).some((i) => this.canServe(ts, i, r)) &&
      !this.startingFor(ts, r) &&
      this.demand &&
      !this.demand(r.task, r)
    ) {
      this.fail(r, {
        ok: false,
        status: 503,
        reason: "no_capacity",
        message: `no instance of '${r.task}' can serve this request and all ${this.cluster.coreBudget} cores are busy with other work; retry later or start the server with more --cores`,
      });
      return;
    }
    const cold = this.coldWait(ts, r);
    if (cold !== null && !r.lateOk && cold.readyAt + cold.latency > r.deadline) {
      // capacity is coming, but only after this request's deadline: say so now rather than at the deadline
      const waitMs = Math.max(0, cold.readyAt - this.clock.now());
      this.fail(r, {
        ok: false,
        status: 503,
        reason: "no_capacity",
        message: `no instance of '${r.task}' that may serve this request is ready; one is starting and should be ready in ~${waitMs.toFixed(0)} ms, then needs ${cold.latency.toFixed(1)} ms, past this request's deadline (${(r.deadline - this.clock.now()).toFixed(0)} ms left); retry then, or send a longer slo_ms`,
        retryAfterMs: waitMs,
      });
      return;
    }
    const late = this.predictive && !r.lateOk ? this.overload(ts, r) : null;
    if (late) {
      this.fail(r, late);
      return;
    }
    ts.queue.push(r);
    this.events.arrived(r);
    this.armExpiry(ts, r);
    this.pump(ts);
  }

  /**
   * Admission before a request's body is read (the front end knows its task and, when the client states it
   * ahead, its SLO): refuses and answers one the task cannot take now, so that shedding costs no decoding.
   * Without a stated SLO only a full queue refuses here (the body may carry any slo_ms); the body decides the
   * rest. Null when it may come in.
   */
  admitEarly(task: string, sloMs: number | undefined, pinned?: string): Failed | null {
    const ts = this.tasks.get(task);
    if (!ts || this.closing) return null;
    const now = this.clock.now();
    const probe: Request = {
      seq: this.seq + 1,
      id: "",
      task,
      arrival: now,
      deadline: now + (sloMs ?? Infinity),
      priority: 1,
      rows: 1,
      minAccuracy: 0,
      pinned,
      lateOk: false,
      input: null,
      done: () => undefined,
    };
    const refused =
      ts.queue.length >= ts.setup.maxQueue
        ? this.queueFull(ts)
        : this.predictive && sloMs !== undefined
          ? this.overload(ts, probe)
          : null;
    if (refused) this.fail(probe, refused);
    return refused;
  }

  private queueFull(ts: TaskState): Failed {
    return {
      ok: false,
      status: 429,
      reason: "queue_full",
      message: `queue of '${ts.setup.model.name}' is full (${ts.queue.length} requests waiting); retry later or raise max_queue in task.yaml`,
      retryAfterMs: this.drainEstimate(ts),
    };
  }

  /** How long the ready instances need to take everything queued now (ms; 1000 when none is ready). */
  private drainEstimate(ts: TaskState): number {
    const lanes = this.lanes(ts, null);
    return lanes.length === 0 ? 1000 : Math.ceil(drainTime(lanes, ts.queue.rows));
  }

  /**
   * Each ready instance that may serve `r` (any request when null): when it is free, and its full-batch rate,
   * both as slow as its batches have been running lately.
   */
  private lanes(ts: TaskState, r: Request | null): { free: number; rate: number; v: VariantModel; cores: number }[] {
    const now = this.clock.now();
    const slow = ts.slowDown.ratio(now);
    const out: { free: number; rate: number; v: VariantModel; cores: number }[] = [];
    for (const inst of this.readyInstances(ts.setup.model.name)) {
      const v = ts.variants.get(inst.variant);
      if (!v || (r && !this.canServe(ts, inst, r))) continue;
      out.push({
        free: (this.predictedStart(inst.id) - now) * slow,
        rate: v.maxBatch / (v.latency(v.maxBatch, inst.cores) * slow),
        v,
        cores: inst.cores,
      });
    }
    return out;
  }

  /**
   * Why `r` would be late behind the rows queued ahead of it, or null: the ready instances that may serve it
   * take those rows at their full-batch rates (each from when its held batches end), then `r` runs in a batch
   * as large as its share of the queue; every batch as much slower than its profile as batches have run lately.
   */
  private overload(ts: TaskState, r: Request): Failed | null {
    const lanes = this.lanes(ts, r);
    if (lanes.length === 0) return null; // nothing ready may serve it: the cold path decides
    const ahead = ts.queue.rowsAhead(r);
    const wait = drainTime(lanes, ahead);
    const now = this.clock.now();
    const share = Math.ceil(ahead / lanes.length) + r.rows;
    const run =
      ts.slowDown.ratio(now) * Math.min(...lanes.map((l) => l.v.latency(Math.min(l.v.maxBatch, share), l.cores)));
    const over = now + wait + run - r.deadline;
    if (over <= 0) return null;
    // late even on an idle instance: the deadline, not the load, is the cause (the queue answers it 504)
    if (now + this.fastest(ts, r, this.readyInstances(r.task)) > r.deadline) return null;
    return {
      ok: false,
      status: 429,
      reason: "overloaded",
      message: `overloaded: ${ahead} rows are queued ahead of this request on '${r.task}', it would finish in ~${(wait + run).toFixed(0)} ms, past its deadline (${(r.deadline - now).toFixed(0)} ms left); retry in ~${Math.ceil(over)} ms, or send a longer slo_ms`,
      retryAfterMs: Math.ceil(over),
    };
  }

  private canServe(ts: TaskState, inst: InstanceView, r: Request): boolean {
    const v = ts.variants.get(inst.variant);
    return v !== undefined && eligible(r, v, ts.setup.policy.switchesSubnets);
  }

  /**
   * When `r` cannot run on any ready instance: when the earliest instance starting for it should be ready,
   * and how long it then needs. Null when a ready instance can serve it (or nothing is starting).
   */
  private coldWait(ts: TaskState, r: Request): { readyAt: number; latency: number } | null {
    if (this.readyInstances(r.task).some((i) => this.canServe(ts, i, r))) return null;
    let best: { readyAt: number; latency: number } | null = null;
    for (const i of this.live(ts.setup.model.name)) {
      const v = ts.variants.get(i.variant);
      if (i.state !== "starting" || !v || !eligible(r, v, ts.setup.policy.switchesSubnets)) continue;
      const readyAt = (this.startedAt.get(i.id) ?? this.clock.now()) + v.loadMs;
      const latency = fastestOn(r, v, i.cores, ts.setup.policy.switchesSubnets ?? false);
      if (!best || readyAt + latency < best.readyAt + best.latency) best = { readyAt, latency };
    }
    return best;
  }

  private startingFor(ts: TaskState, r: Request): boolean {
    return this.live(ts.setup.model.name).some((i) => i.state === "starting" && this.canServe(ts, i, r));
  }

  private live(task: string): Instance[] {
    if (!this.byTask) {
      this.byTask = new Map();
      for (const i of this.cluster.instances()) {
        if (i.state === "stopped") continue;
        const list = this.byTask.get(i.task);
        if (list) list.push(i);
        else this.byTask.set(i.task, [i]);
      }
    }
    return this.byTask.get(task) ?? [];
  }

  private readyInstances(task: string): Instance[] {
    return this.live(task).filter((i) => i.state === "ready");
  }

  private context(
    ts: TaskState,
    instances: readonly Instance[] = this.readyInstances(ts.setup.model.name),
  ): PolicyContext {
    return {
      now: this.clock.now(),
      task: ts.setup.model,
      variant: (name) => ts.variants.get(name),
      instances,
      startAt: (inst) => this.predictedStart(inst.id),
      expectedStartAt: (inst) => this.predictedStart(inst.id, "expected"),
    };
  }

  /**
   * When a batch sent to the instance now is predicted to start: after the batches it holds, each
   * taking what it was predicted to take; a running batch already past its prediction ends now.
   */
  predictedStart(instanceId: string, by: "predicted" | "expected" = "predicted"): number {
    const now = this.clock.now();
    const h = this.held.get(instanceId);
    if (!h || h.predicted.length === 0) return now;
    const times = h[by];
    let t = Math.max(now, h.since + times[0]!);
    for (let k = 1; k < times.length; k++) t += times[k]!;
    return t;
  }

  /** Fills every instance of the task that has room, as long as the policy has batches for it. */
  private pump(ts: TaskState): void {
    if (ts.queue.length === 0) return;
    const instances = this.readyInstances(ts.setup.model.name).sort((a, b) => a.inFlight - b.inFlight);
    const ctx = this.context(ts, instances);
    let wakeAt = Infinity;
    for (const inst of instances) {
      while (inst.inFlight < this.slots && ts.queue.length > 0) {
        const next = ts.setup.policy.nextBatch(inst, ts.queue, ctx);
        const drop = next.kind === "batch" ? next.choice.drop : next.drop;
        if (drop?.length) this.dropHopeless(ts, drop, ctx);
        if (next.kind === "batch") {
          ts.queue.remove(next.choice.take);
          this.dispatch(ts, inst, next.choice);
          continue;
        }
        if (next.kind === "wait") wakeAt = Math.min(wakeAt, next.until);
        break;
      }
    }
    if (wakeAt < Infinity && (!ts.wake || ts.wake.at > wakeAt)) {
      if (ts.wake) this.clock.clearTimer(ts.wake);
      ts.wake = this.clock.setTimer(wakeAt, () => {
        ts.wake = null;
        this.pump(ts);
      });
    }
  }

  /** A policy found a request hopeless on one instance; it is dropped only if no instance can make it. */
  private dropHopeless(ts: TaskState, drop: readonly Request[], ctx: PolicyContext): void {
    const gone: Request[] = [];
    for (const r of drop) {
      if (ctx.now + this.fastest(ts, r, ctx.instances) > r.deadline) gone.push(r);
    }
    ts.queue.remove(gone);
    for (const r of gone) this.fail(r, this.deadlineFailure(ts, r, ctx.now));
  }

  private dispatch(ts: TaskState, inst: Instance, choice: BatchChoice): void {
    const { variant, subnet, take } = choice;
    const sent = this.clock.now();
    this.used.set(inst.id, sent);
    const task = ts.setup.model.name;
    this.running.set(task, (this.running.get(task) ?? 0) + take.length);
    const rows = take.reduce((n, r) => n + r.rows, 0);
    const predicted = choice.predictedMs ?? this.predict(ts, variant, subnet, rows, inst.cores);
    const watch = this.watchBatch(inst, this.predictedStart(inst.id) + predicted - sent, sent);
    this.hold(inst.id, sent, predicted, choice.expectedMs ?? predicted);
    inst.run({ task, variant, subnet, items: take }, (res) => {
      if (watch?.timer) this.clock.clearTimer(watch.timer);
      const now = this.clock.now();
      if (this.predictive && res.ok) {
        // the batch started when the one before it ended (or when it was sent, if the instance was idle)
        const started = Math.max(this.held.get(inst.id)?.since ?? sent, sent);
        ts.slowDown.add(now - started, predicted, now);
      }
      this.release(inst.id, now);
      this.running.set(task, (this.running.get(task) ?? 0) - take.length);
      if (res.ok) {
        take.forEach((r, i) => {
          const outcome: Outcome = {
            ok: true,
            variant,
            subnet,
            batchSize: rows,
            queueMs: sent - r.arrival,
            computeMs: res.computeMs,
            finishedAt: now,
            sloMet: now <= r.deadline,
            output: res.outputs[i] ?? null,
          };
          r.done(outcome);
          this.events.finished(r, outcome);
        });
        this.events.batch({
          task,
          variant,
          subnet,
          instance: inst.id,
          rows,
          requests: take.length,
          computeMs: res.computeMs,
        });
        ts.setup.policy.onBatchDone?.(variant, rows, res.computeMs, this.context(ts));
      } else {
        for (const r of take) {
          if (
            res.gone &&
            !r.retried &&
            this.tasks.get(r.task) === ts &&
            now +
              this.fastest(
                ts,
                r,
                this.readyInstances(r.task).filter((i) => i !== inst),
              ) <=
              r.deadline
          ) {
            r.retried = true;
            ts.queue.push(r);
            this.armExpiry(ts, r);
          } else {
            this.fail(r, {
              ok: false,
              status: 503,
              reason: "instance_failed",
              message: `instance ${inst.id} failed while running this request (${res.message}); it is being replaced, retry`,
            });
          }
        }
      }
      this.pump(ts);
    });
  }

  /**
   * Arms the hang watchdog for a batch sent to `inst` that should be done `dueMs` after `sent` (behind the
   * batches the instance already holds); null when the router runs without one.
   */
  private watchBatch(inst: Instance, dueMs: number, sent: number): { timer: Timer | null } | null {
    if (!this.watchdog) return null;
    const limit = this.watchdog.factor * dueMs + this.watchdog.floorMs;
    const why = `no answer to a batch within ${limit.toFixed(0)} ms (${this.watchdog.factor} × the predicted ${dueMs.toFixed(1)} ms + ${this.watchdog.floorMs} ms)`;
    // a batch still out after each further `limit` makes the instance suspect again
    const watch = { timer: null as Timer | null };
    const arm = (at: number) => {
      watch.timer = this.clock.setTimer(at, () => {
        this.cluster.suspect(inst.id, why);
        arm(this.clock.now() + limit);
      });
    };
    arm(sent + limit);
    return watch;
  }

  /** Batches run in the order they were sent: the first one held is the running one. */
  private hold(instanceId: string, now: number, predictedMs: number, expectedMs: number): void {
    const h = this.held.get(instanceId);
    if (!h) this.held.set(instanceId, { since: now, predicted: [predictedMs], expected: [expectedMs] });
    else {
      if (h.predicted.length === 0) h.since = now;
      h.predicted.push(predictedMs);
      h.expected.push(expectedMs);
    }
  }

  /** The running batch ended: the next one held starts now. */
  private release(instanceId: string, now: number): void {
    const h = this.held.get(instanceId);
    if (!h) return;
    h.predicted.shift();
    h.expected.shift();
    h.since = now;
    if (h.predicted.length === 0) this.held.delete(instanceId);
  }

  /** A batch's predicted time when its policy gave none: its subnet's (or variant's) latency. */
  private predict(ts: TaskState, variant: string, subnet: string | undefined, rows: number, cores: number): number {
    const v = ts.variants.get(variant);
    if (!v) return 0;
    const s = subnet === undefined ? undefined : v.subnets?.find((m) => m.subnet === subnet);
    return s ? measuredP99(s, rows, cores) : v.latency(rows, cores);
  }

  /** Least predicted latency of `r` on any of `instances` that may serve it (Infinity if none). */
  private fastest(ts: TaskState, r: Request, instances: readonly InstanceView[]): number {
    const subnets = ts.setup.policy.switchesSubnets ?? false;
    let best = Infinity;
    for (const inst of instances) {
      const v = ts.variants.get(inst.variant);
      if (v && eligible(r, v, subnets)) best = Math.min(best, fastestOn(r, v, inst.cores, subnets));
    }
    if (best === Infinity) {
      // nothing running can serve it yet (an instance may be starting): judge by the fastest variant on one core
      for (const v of ts.variants.values())
        if (eligible(r, v, subnets)) best = Math.min(best, fastestOn(r, v, 1, subnets));
    }
    return best;
  }

  private deadlineFailure(ts: TaskState, r: Request, now: number): Failed {
    const ready = this.readyInstances(r.task).filter((i) => this.canServe(ts, i, r));
    const waited = `waited ${(now - r.arrival).toFixed(1)} ms, ${(r.deadline - now).toFixed(1)} ms left`;
    if (ready.length === 0) {
      const cold = this.coldWait(ts, r);
      return {
        ok: false,
        status: 504,
        reason: "deadline",
        message: `deadline cannot be met: ${waited}, and no instance that may serve this request became ready in time${cold ? ` (one is starting, ready in ~${Math.max(0, cold.readyAt - now).toFixed(0)} ms)` : ""}; send a longer slo_ms or retry once it is up`,
        ...(cold ? { retryAfterMs: Math.max(0, cold.readyAt - now) } : {}),
      };
    }
    const need = this.fastest(ts, r, ready);
    return {
      ok: false,
      status: 504,
      reason: "deadline",
      message: `deadline cannot be met: ${waited}, the fastest eligible variant needs ${need.toFixed(1)} ms; raise slo_ms, lower min_accuracy or send fewer rows`,
    };
  }

  /** Arms the task's expiry timer for the moment `r` becomes hopeless, if that is sooner. */
  private armExpiry(ts: TaskState, r: Request): void {
    if (r.lateOk) return;
    const at = r.deadline - this.fastest(ts, r, this.readyInstances(r.task));
    if (ts.expiry && ts.expiry.at <= at) return;
    if (ts.expiry) this.clock.clearTimer(ts.expiry);
    ts.expiry = this.clock.setTimer(at, () => this.expire(ts));
  }

  private expire(ts: TaskState): void {
    ts.expiry = null;
    const now = this.clock.now();
    const instances = this.readyInstances(ts.setup.model.name);
    const gone: Request[] = [];
    let next = Infinity;
    const last = ts.queue.at(ts.queue.length - 1);
    for (const r of ts.queue) {
      // In deadline order, once a request is further from its deadline than any request can take, so is
      // every later one of its priority class (and the queue holds no other class after it).
      if (ts.queue.order === "deadline" && r.priority === last!.priority && r.deadline - ts.slowestMs > now) {
        next = Math.min(next, r.deadline - ts.slowestMs);
        break;
      }
      if (r.lateOk) continue;
      const at = r.deadline - this.fastest(ts, r, instances);
      if (at <= now) gone.push(r);
      else next = Math.min(next, at);
    }
    ts.queue.remove(gone);
    for (const r of gone) {
      this.fail(r, this.deadlineFailure(ts, r, now));
    }
    if (next < Infinity) ts.expiry = this.clock.setTimer(next, () => this.expire(ts));
  }

  private scheduleTick(ts: TaskState): void {
    ts.tick = this.clock.setTimer(this.clock.now() + 1000, () => {
      ts.setup.policy.tick?.(this.context(ts), ts.queue);
      if (this.tasks.get(ts.setup.model.name) === ts) this.scheduleTick(ts);
    });
  }

  private fail(r: Request, f: Failed): void {
    r.done(f);
    this.events.finished(r, f);
  }

  /** Stops admission; waits up to `drainMs` for queues and running batches; answers the rest 503. */
  async shutdown(drainMs: number, sleep: (ms: number) => Promise<void>): Promise<void> {
    this.closing = true;
    const deadline = this.clock.now() + drainMs;
    const busy = () =>
      [...this.tasks.values()].some((ts) => ts.queue.length > 0) ||
      this.cluster.instances().some((i) => i.inFlight > 0);
    while (busy() && this.clock.now() < deadline) await sleep(5);
    for (const name of [...this.tasks.keys()])
      this.removeTask(name, "server shut down before this request could run; retry on another replica");
  }
}
