// The router: one queue per task (pipelines queue per stage), pull-based dispatch of whole batches
// to instances that have room, and deadlines enforced while requests wait: a request that can no
// longer make it is answered at once (504) unless its task serves late. Policy code decides what
// runs; the router makes it happen and answers every request exactly once.
import type { BatchWork, Cluster, Instance } from "../cluster/types.js";
import type {
  BatchChoice,
  InstanceView,
  PolicyContext,
  SchedulingPolicy,
  TaskModel,
  VariantModel,
} from "./scheduling/types.js";
import { eligible, fastestOn, measuredP99, subnetFloor } from "./scheduling/types.js";
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
 * How batches run now against their profile, decayed per observation and with time: the model's own time
 * over the predicted one (how much slower it computes on this machine now: other work on its core, for
 * one), and what each batch adds around its computation (the worker's channel, the event loops), which is
 * per batch, not per millisecond of compute: a tiny model's 0.1-ms batch with 1 ms around it is not 10×
 * slower at 16 rows.
 */
class BatchPace {
  private computed = 0;
  private predicted = 0;
  private around = 0;
  private batches = 0;
  private at = 0;

  add(wallMs: number, computeMs: number, predictedMs: number, now: number): void {
    const f = 0.98 * fade(this.at, now);
    this.computed = this.computed * f + computeMs;
    this.predicted = this.predicted * f + predictedMs;
    this.around = this.around * f + Math.max(0, wallMs - computeMs);
    this.batches = this.batches * f + 1;
    this.at = now;
  }

  /** 1 ms of prior on both sides keeps a few tiny samples from swinging it. */
  ratio(now: number): number {
    return this.ratioFaded(fade(this.at, now));
  }

  /** A batch predicted to take `predictedMs` by its profile, as batches run now. */
  time(predictedMs: number, now: number): number {
    const f = fade(this.at, now);
    // the per-batch overhead, ms, with a prior of one batch with nothing around it
    return predictedMs * this.ratioFaded(f) + (this.around * f) / (this.batches * f + 1);
  }

  private ratioFaded(f: number): number {
    return Math.min(20, Math.max(0.5, (this.computed * f + 1) / (this.predicted * f + 1)));
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

/** What a request waits for when only starting instances may serve it. */
interface ColdWait {
  /** When the instance that would serve it soonest is ready, and how long it then takes. */
  readyAt: number;
  latency: number;
  /** Every starting instance that may serve it: when it is free (ms from now) and its full-batch rate. */
  lanes: { free: number; rate: number; v: VariantModel; cores: number }[];
}

/** A batch while it is out, as its requests point to it: cancellation finds its instance through it. */
interface SentBatch {
  work: BatchWork;
  inst: Instance;
  /** Its requests not cancelled. */
  live: number;
  /** Taken back for a higher class's request (see preemptFor). */
  preempted: boolean;
}

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
  /** The context pump() hands its policy, made once per task (null while a pump holds it). */
  context: PolicyContext | null;
  /** Predictive admission's waits and batch times, observed against predicted. */
  pace: BatchPace;
}

const NO_INSTANCES: readonly Instance[] = Object.freeze([]);

/** `instances` by how many batches each holds, fewest first (a stable sort; a new array unless already so). */
function leastLoadedFirst(instances: readonly Instance[]): readonly Instance[] {
  let sorted = true;
  for (let i = 1; i < instances.length && sorted; i++) sorted = instances[i - 1]!.inFlight <= instances[i]!.inFlight;
  if (sorted) return instances;
  const out = instances.slice();
  for (let i = 1; i < out.length; i++) {
    const x = out[i]!;
    let j = i - 1;
    while (j >= 0 && out[j]!.inFlight > x.inFlight) {
      out[j + 1] = out[j]!;
      j--;
    }
    out[j + 1] = x;
  }
  return out;
}

export class Router {
  private readonly tasks = new Map<string, TaskState>();
  private readonly used = new Map<string, number>();
  /** Requests sent to instances and not yet answered, per task. */
  private readonly running = new Map<string, number>();
  /** Per instance, the batches it holds: when the running one started, each one's predicted and expected time. */
  private readonly held = new Map<
    string,
    { since: number; predicted: number[]; expected: number[]; batches: SentBatch[] }
  >();
  private readonly slots: number;
  private readonly watchdog: RouterOptions["watchdog"];
  private readonly predictive: boolean;
  /** When each instance still starting was first seen starting (clock ms). */
  private readonly startedAt = new Map<string, number>();
  /** Live and ready instances per task, rebuilt lazily after a cluster change (the router asks per request). */
  private byTask: Map<string, Instance[]> | null = null;
  private readyByTask = new Map<string, Instance[]>();
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
      context: null,
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
      pace: new BatchPace(),
    };
    ts.context = {
      now: 0,
      task: setup.model,
      variant: (name) => ts.variants.get(name),
      instances: NO_INSTANCES,
      startAt: (inst) => this.predictedStart(inst.id),
      expectedStartAt: (inst) => this.predictedStart(inst.id, "expected"),
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
    // a full queue still takes a request of a higher class than its last: that one makes room (below)
    const full = ts.queue.length >= ts.setup.maxQueue;
    if (full && !this.canDisplace(ts, r)) {
      this.fail(r, this.queueFull(ts));
      return;
    }
    if (ts.setup.policy.onArrival) ts.setup.policy.onArrival(r, this.context(ts));
    const servable = this.anyCanServe(ts, this.readyInstances(r.task), r);
    if (!servable && !this.startingFor(ts, r) && this.demand && !this.demand(r.task, r)) {
      this.fail(r, {
        ok: false,
        status: 503,
        reason: "no_capacity",
        message: `no instance of '${r.task}' can serve this request and all ${this.cluster.coreBudget} cores are busy with other work; retry later or start the server with more --cores`,
      });
      return;
    }
    // (the demand hook starts instances, never readies one: what could serve still cannot)
    const cold = servable ? null : this.coldWait(ts, r);
    // capacity is coming, but only after this request's deadline: say so now rather than at the deadline
    const coldLate = cold !== null && !r.lateOk ? this.coldRefusal(ts, r, cold) : null;
    if (coldLate) {
      this.fail(r, coldLate);
      return;
    }
    const late = this.predictive && !r.lateOk ? this.overload(ts, r) : null;
    if (late) {
      this.fail(r, late);
      return;
    }
    if (full) this.displaceLast(ts, r);
    ts.queue.push(r);
    this.events.arrived(r);
    this.armExpiry(ts, r);
    if (this.predictive) this.shedBehind(ts, r);
    this.preemptFor(ts, r);
    this.pump(ts);
  }

  /**
   * The client no longer wants `r` (it disconnected, cancelled its call, or its own deadline passed): a queued
   * request leaves its queue, a request in a batch already sent is answered now and its row's result dropped
   * when the batch returns; a batch all of whose requests are cancelled is skipped by its instance if it has not
   * started. `r` is answered 499 "cancelled" (nobody reads it; metrics count it). False when already answered.
   */
  cancel(r: Request, why = "the client went away before the answer"): boolean {
    if (r.answered) return false;
    const ts = this.tasks.get(r.task);
    const batch = r.batch as SentBatch | undefined;
    let where: "queued" | "dispatched";
    if (batch) {
      where = "dispatched";
      batch.live -= 1;
      // the last wanted row of a batch still waiting on its instance: the instance skips the batch
      if (batch.live === 0) batch.inst.cancel?.(batch.work);
    } else if (ts?.queue.removeOne(r)) where = "queued";
    else return false;
    this.fail(r, { ok: false, status: 499, reason: "cancelled", message: `cancelled: ${why}` });
    this.events.cancelled(r, where);
    return true;
  }

  /**
   * Admission before a request's body is read (the front end knows its task and, when the client states it
   * ahead, its SLO): refuses and answers one the task cannot take now, so that shedding costs no decoding.
   * Without a stated SLO only a full queue refuses here (the body may carry any slo_ms); the body decides the
   * rest. Null when it may come in.
   */
  admitEarly(task: string, sloMs: number | undefined, pinned?: string, priority = 1): Failed | null {
    const ts = this.tasks.get(task);
    if (!ts || this.closing) return null;
    const now = this.clock.now();
    const probe: Request = {
      seq: this.seq + 1,
      id: "",
      task,
      arrival: now,
      deadline: now + (sloMs ?? Infinity),
      priority,
      rows: 1,
      minAccuracy: 0,
      pinned,
      lateOk: false,
      input: null,
      done: () => undefined,
    };
    const refused =
      ts.queue.length >= ts.setup.maxQueue && !this.canDisplace(ts, probe)
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

  /** Whether a full queue's last request is of a lower class than `r`, so that `r` may take its place. */
  private canDisplace(ts: TaskState, r: Request): boolean {
    const last = ts.queue.at(ts.queue.length - 1);
    return last !== undefined && last.priority > r.priority;
  }

  /** Refuses the full queue's last request (the lowest class's latest deadline) to make room for `r`. */
  private displaceLast(ts: TaskState, r: Request): void {
    const last = ts.queue.pop()!;
    this.fail(last, {
      ok: false,
      status: 429,
      reason: "queue_full",
      message: `shed: the queue of '${ts.setup.model.name}' is full (${ts.queue.length + 1} requests) and a priority-${r.priority} request took the place of this priority-${last.priority} one; retry later, send a higher class, or raise max_queue in task.yaml`,
      retryAfterMs: this.drainEstimate(ts),
    });
  }

  /**
   * `r` was queued ahead of requests of lower classes: those it now makes late are refused at once (429, with
   * when to retry) rather than left to miss, so that the lower classes absorb the shedding and learn it now.
   */
  private shedBehind(ts: TaskState, r: Request): void {
    const last = ts.queue.at(ts.queue.length - 1)!;
    if (last.priority <= r.priority) return; // no lower class queued
    const lanes = this.lanes(ts, null);
    if (lanes.length === 0) return;
    const now = this.clock.now();
    const ready = this.readyInstances(r.task);
    const shed: { q: Request; over: number }[] = [];
    let ahead = 0;
    for (const q of ts.queue) {
      if (q.priority > r.priority && !q.lateOk) {
        const { wait, run } = this.predictWait(ts, lanes, ahead, q.rows);
        const over = now + wait + run - q.deadline;
        // late even on an idle instance: its deadline, not the higher class, is the cause (the queue answers it)
        if (over > 0 && now + this.fastest(ts, q, ready) <= q.deadline) {
          shed.push({ q, over });
          continue;
        }
      }
      ahead += q.rows;
    }
    if (shed.length === 0) return;
    ts.queue.remove(shed.map((x) => x.q));
    for (const { q, over } of shed)
      this.fail(q, {
        ok: false,
        status: 429,
        reason: "overloaded",
        message: `shed: requests of a higher class (priority < ${q.priority}) now queue ahead of this priority-${q.priority} request on '${q.task}' and would make it finish past its deadline; retry in ~${Math.ceil(over)} ms, or send a higher class`,
        retryAfterMs: Math.ceil(over),
      });
  }

  /**
   * What `rows` rows wait and then take behind `ahead` rows queued before them, on `lanes` (ms): the lanes take
   * the rows ahead at their full-batch rates, then the request runs in a batch as large as its share of the
   * queue, as much slower than its profile as batches have run lately.
   */
  private predictWait(
    ts: TaskState,
    lanes: readonly { free: number; rate: number; v: VariantModel; cores: number }[],
    ahead: number,
    rows: number,
  ): { wait: number; run: number } {
    const share = Math.ceil(ahead / lanes.length) + rows;
    const run = Math.min(...lanes.map((l) => l.v.latency(Math.min(l.v.maxBatch, share), l.cores)));
    return { wait: drainTime(lanes, ahead), run: ts.pace.time(run, this.clock.now()) };
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
    const slow = ts.pace.ratio(now);
    const out: { free: number; rate: number; v: VariantModel; cores: number }[] = [];
    for (const inst of this.readyInstances(ts.setup.model.name)) {
      const served = ts.variants.get(inst.variant);
      if (!served || (r && !this.canServe(ts, inst, r))) continue;
      const v = this.fastestSubnet(ts, served, r, inst.cores);
      out.push({
        free: (this.predictedStart(inst.id) - now) * slow,
        rate: v.maxBatch / ts.pace.time(v.latency(v.maxBatch, inst.cores), now),
        v,
        cores: inst.cores,
      });
    }
    return out;
  }

  /**
   * What a loaded instance of `v` runs: a supernet under a policy that switches subnets drains its queue on
   * the subnet with the most rows per second that `r` accepts (the policy moves there as slack runs out).
   */
  private fastestSubnet(ts: TaskState, v: VariantModel, r: Request | null, cores: number): VariantModel {
    if (!ts.setup.policy.switchesSubnets || !v.subnets?.length) return v;
    const floor = r ? subnetFloor(r, v.subnets) : 0;
    let best = v;
    let bestRate = 0;
    for (const s of v.subnets) {
      const rate = s.maxBatch / s.latency(s.maxBatch, cores);
      if (s.accuracy >= floor && rate > bestRate) [best, bestRate] = [s, rate];
    }
    return best;
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
    const { wait, run } = this.predictWait(ts, lanes, ahead, r.rows);
    const now = this.clock.now();
    const over = now + wait + run - r.deadline;
    if (over <= 0) return null;
    // late even on an idle instance at today's pace: the deadline, not the load, is the cause (the deadline
    // path answers it: 504 once hopeless, or served late when the task says so)
    if (now + ts.pace.time(this.fastest(ts, r, this.readyInstances(r.task)), now) > r.deadline) return null;
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

  private anyCanServe(ts: TaskState, instances: readonly InstanceView[], r: Request): boolean {
    for (let i = 0; i < instances.length; i++) if (this.canServe(ts, instances[i]!, r)) return true;
    return false;
  }

  /**
   * When `r` cannot run on any ready instance: when the earliest instance starting for it should be ready,
   * and how long it then needs. Null when a ready instance can serve it (or nothing is starting).
   */
  private coldWait(ts: TaskState, r: Request): ColdWait | null {
    if (this.anyCanServe(ts, this.readyInstances(r.task), r)) return null;
    let best: ColdWait | null = null;
    const now = this.clock.now();
    for (const i of this.live(ts.setup.model.name)) {
      const v = ts.variants.get(i.variant);
      if (i.state !== "starting" || !v || !eligible(r, v, ts.setup.policy.switchesSubnets)) continue;
      // a worker from the warm pool only loads its model
      const load = i.warmStart ? (v.warmLoadMs ?? v.loadMs) : v.loadMs;
      const readyAt = (this.startedAt.get(i.id) ?? now) + load;
      const latency = fastestOn(r, v, i.cores, ts.setup.policy.switchesSubnets ?? false);
      const lane = { free: readyAt - now, rate: v.maxBatch / v.latency(v.maxBatch, i.cores), v, cores: i.cores };
      if (!best) best = { readyAt, latency, lanes: [lane] };
      else {
        best.lanes.push(lane);
        if (readyAt + latency < best.readyAt + best.latency) [best.readyAt, best.latency] = [readyAt, latency];
      }
    }
    return best;
  }

  /**
   * Why `r`, waiting for an instance still starting, would be late, or null. Alone, it needs the earliest
   * start plus its own run; with predictive admission, the rows queued ahead of it for the same starts (a
   * herd at wake-up) are taken first, so a burst is held as far as the coming capacity carries it, and the
   * rest told at once when to retry instead of each starting an instance or waiting to miss.
   */
  private coldRefusal(ts: TaskState, r: Request, cold: ColdWait): Failed | null {
    const now = this.clock.now();
    const ahead = this.predictive ? ts.queue.rowsAhead(r) : 0;
    let finish = cold.readyAt + cold.latency;
    if (ahead > 0) {
      const { wait, run } = this.predictWait(ts, cold.lanes, ahead, r.rows);
      finish = Math.max(finish, now + wait + run);
    }
    if (finish <= r.deadline) return null;
    const waitMs = Math.max(0, cold.readyAt - now);
    const left = `${(r.deadline - now).toFixed(0)} ms left`;
    return {
      ok: false,
      status: 503,
      reason: "no_capacity",
      message:
        ahead > 0
          ? `no instance of '${r.task}' that may serve this request is ready; the capacity starting for it (ready in ~${waitMs.toFixed(0)} ms) is taken by ${ahead} rows queued ahead of it until past this request's deadline (${left}); retry in ~${Math.ceil(Math.max(waitMs, finish - r.deadline))} ms, or send a longer slo_ms`
          : `no instance of '${r.task}' that may serve this request is ready; one is starting and should be ready in ~${waitMs.toFixed(0)} ms, then needs ${cold.latency.toFixed(1)} ms, past this request's deadline (${left}); retry then, or send a longer slo_ms`,
      retryAfterMs: ahead > 0 ? Math.max(waitMs, finish - r.deadline) : waitMs,
    };
  }

  private startingFor(ts: TaskState, r: Request): boolean {
    return this.live(ts.setup.model.name).some((i) => i.state === "starting" && this.canServe(ts, i, r));
  }

  /** Instances of the task that are not stopped (in the cluster's order; the caller must not change it). */
  private live(task: string): readonly Instance[] {
    return (this.byTask ?? this.index()).get(task) ?? NO_INSTANCES;
  }

  /** Ready instances of the task (in the cluster's order; the caller must not change it). */
  private readyInstances(task: string): readonly Instance[] {
    if (!this.byTask) this.index();
    return this.readyByTask.get(task) ?? NO_INSTANCES;
  }

  /** Every state change of an instance is a cluster change, which drops these lists. */
  private index(): Map<string, Instance[]> {
    const live = new Map<string, Instance[]>();
    const ready = new Map<string, Instance[]>();
    for (const i of this.cluster.instances()) {
      if (i.state === "stopped") continue;
      const list = live.get(i.task);
      if (list) list.push(i);
      else live.set(i.task, [i]);
      if (i.state !== "ready") continue;
      const r = ready.get(i.task);
      if (r) r.push(i);
      else ready.set(i.task, [i]);
    }
    this.byTask = live;
    this.readyByTask = ready;
    return live;
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
    const ready = this.readyInstances(ts.setup.model.name);
    const instances = ready.length > 1 ? leastLoadedFirst(ready) : ready;
    // the task's own context object unless a pump further up the stack (a pipeline's next stage) holds it
    const own = ts.context;
    const ctx = own ?? this.context(ts, instances);
    if (own) {
      ts.context = null;
      own.now = this.clock.now();
      own.instances = instances;
    }
    try {
      this.fill(ts, instances, ctx);
    } finally {
      if (own) {
        own.instances = NO_INSTANCES;
        ts.context = own;
      }
    }
  }

  private fill(ts: TaskState, instances: readonly Instance[], ctx: PolicyContext): void {
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
    let rows = 0;
    for (let i = 0; i < take.length; i++) rows += take[i]!.rows;
    const predicted = choice.predictedMs ?? this.predict(ts, variant, subnet, rows, inst.cores);
    const watch = this.watchdog ? this.watchBatch(inst, this.predictedStart(inst.id) + predicted - sent, sent) : null;
    const work: BatchWork = { task, variant, subnet, items: take };
    const out: SentBatch = { work, inst, live: take.length, preempted: false };
    for (const r of take) r.batch = out;
    this.hold(inst.id, sent, predicted, choice.expectedMs ?? predicted, out);
    inst.run(work, (res) => {
      if (watch?.timer) this.clock.clearTimer(watch.timer);
      for (const r of take) r.batch = undefined;
      const now = this.clock.now();
      if (this.predictive && res.ok) {
        // the batch started when the one before it ended (or when it was sent, if the instance was idle)
        const started = Math.max(this.held.get(inst.id)?.since ?? sent, sent);
        ts.pace.add(now - started, res.computeMs, predicted, now);
      }
      this.release(inst.id, now, out);
      this.running.set(task, (this.running.get(task) ?? 0) - take.length);
      if (res.ok) {
        for (let i = 0; i < take.length; i++) {
          const r = take[i]!;
          if (r.answered) continue; // cancelled while it ran: answered then
          r.answered = true;
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
        }
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
      } else if (res.cancelled && out.preempted) {
        // taken back for a higher class: its requests queue again, in their places
        for (const r of take) {
          if (r.answered) continue;
          ts.queue.push(r);
          this.armExpiry(ts, r);
        }
      } else if (res.cancelled) {
        this.events.dropped({ task, variant, subnet, instance: inst.id, rows, requests: take.length });
      } else {
        for (const r of take) {
          if (r.answered) continue;
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
  private hold(instanceId: string, now: number, predictedMs: number, expectedMs: number, batch: SentBatch): void {
    const h = this.held.get(instanceId);
    if (!h)
      this.held.set(instanceId, { since: now, predicted: [predictedMs], expected: [expectedMs], batches: [batch] });
    else {
      if (h.predicted.length === 0) h.since = now;
      h.predicted.push(predictedMs);
      h.expected.push(expectedMs);
      h.batches.push(batch);
    }
  }

  /**
   * A batch came back. The running one ended: the next one held starts now. One that waited behind it and was
   * skipped (cancelled or preempted) just leaves the line.
   */
  private release(instanceId: string, now: number, batch: SentBatch): void {
    const h = this.held.get(instanceId);
    if (!h) return;
    const k = Math.max(0, h.batches.indexOf(batch));
    h.predicted.splice(k, 1);
    h.expected.splice(k, 1);
    h.batches.splice(k, 1);
    if (k === 0) h.since = now;
    // an instance that holds nothing keeps its entry (empty) for its next batch: no allocation per batch
  }

  /**
   * `r` was queued while every instance that may serve it is full: a batch waiting on one of them (sent, not
   * started) that holds only requests of lower classes is taken back, so that `r` runs before them. They
   * return to the queue unanswered when the instance confirms it skipped the batch; one already running
   * finishes as sent.
   */
  private preemptFor(ts: TaskState, r: Request): void {
    let victim: SentBatch | undefined;
    for (const inst of this.readyInstances(r.task)) {
      if (!this.canServe(ts, inst, r)) continue;
      if (inst.inFlight < this.slots) return; // room: the pump sends it there
      if (!inst.cancel) continue;
      const h = this.held.get(inst.id);
      for (let k = h ? h.batches.length - 1 : 0; k >= 1; k--) {
        const b = h!.batches[k]!;
        if (b.preempted || !(b.work.items as readonly Request[]).every((q) => q.priority > r.priority)) continue;
        victim = b;
        break;
      }
      if (victim) break;
    }
    if (!victim) return;
    victim.preempted = true;
    victim.inst.cancel!(victim.work);
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
    if (r.answered) return;
    r.answered = true;
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
