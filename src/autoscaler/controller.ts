// The control loop: per task, at its policy's interval, observe (rate over 2 s, the last seconds'
// arrivals, forecast of the next 10 s from the last 60 s, queue, misses, what the scheduler ran,
// instances), let the task's scaling policy decide, log the decision with its inputs, reason and solver
// time, and hand the plan to the cluster backend. Time comes from the Clock, so the simulator runs this
// same loop on virtual time.
import type { Clock, Timer } from "../cluster/clock.js";
import type { Cluster, Instance } from "../cluster/types.js";
import type { Router } from "../router/router.js";
import type { VariantModel } from "../router/scheduling/types.js";
import { converge, diff, type ActuationReport } from "./actuator.js";
import { DecisionSchedule, type Hold } from "./decision-schedule.js";
import {
  allocateCores,
  shareCost,
  trimInstances,
  type CoreSharing,
  type ShareClaim,
  type SharingObjective,
} from "./sharing.js";
import type { LatencyCorrection } from "./types.js";
import { HISTORY_SECONDS, type Forecaster } from "./forecast/types.js";
import type { TaskMeter } from "./meter.js";
import {
  RECENT_SECONDS,
  type Observation,
  type PipelineGraphObservation,
  type PipelineScalingPolicy,
  type Plan,
  type ScalingPolicy,
  type ServedShare,
} from "./types.js";

export interface ScaledTask {
  task: string;
  policy: ScalingPolicy;
  /** Variant to scale when the task has no instance yet. */
  variant: string;
  variants: readonly VariantModel[];
  sloMs: number;
  /** Weight when a short core budget is shared fairly (default 1). */
  weight?: number;
  /** Cores kept however short the budget (default 0). */
  minCores?: number;
}

/** How a short core budget was shared at a decision: what each task wanted and got, who was cut and by how much. */
export interface SharingNote {
  budget: number;
  objective: string;
  wanted: Record<string, number>;
  granted: Record<string, number>;
  cut: string[];
}

/** A pipeline whose stage tasks one policy plans jointly under the end-to-end SLO. */
export interface ScaledPipeline {
  pipeline: string;
  policy: PipelineScalingPolicy;
  /** Stage tasks in order (their own policies are not consulted). */
  stages: Omit<ScaledTask, "policy">[];
  sloMs: number;
  /** The stage graph with its measured fan-out (absent: a chain). */
  graph?: () => PipelineGraphObservation;
}

export interface Decision {
  at: number;
  task: string;
  /** Set when the task was planned as a stage of this pipeline. */
  pipeline?: string;
  policy: string;
  inputs: Pick<Observation, "rateNow" | "ratePred" | "concurrency" | "queueLength" | "misses" | "tightestBudgetMs"> & {
    instances: string[];
  };
  plan: Plan;
  changes: string[];
  solverMs: number;
  /** The policy's state after this decision (its windows, counters, mode). */
  state: unknown;
  /** The online latency correction the decision was made with (absent when the model is off). */
  correction?: LatencyCorrection;
  /** Set when the tasks' plans wanted more cores than the budget and it was shared fairly. */
  sharing?: SharingNote;
  actuation?: { ms: number; short: string[]; failed: string[]; scaledOutInstead?: string[] };
}

export interface ControllerEvents {
  /** Every decision, once its actuation (if any) has finished. */
  decision: (d: Decision) => void;
  /** Every start, resize and stop the loop carried out, with how long it took. */
  actuation: (kind: "start" | "resize" | "stop", ms: number) => void;
}

export interface ControllerOptions {
  /** Decision interval of policies that do not state their own (default 1000 ms). */
  intervalMs?: number;
  maxCores: number;
  forecaster: Forecaster;
  /** Frees cores held by idle instances of other tasks when a plan needs more than are free. */
  reclaim?: (cores: number, task: string) => Promise<number>;
  /** Measures solver time; the wall clock by default (it is CPU time spent, whatever the clock). */
  stopwatch?: () => number;
  /**
   * Skip the decisions a policy promised the answer of (ScalingPolicy.holdsUntil), counting them in `skipped`
   * instead of logging them. Default false: the live server logs a decision at every interval. The plans,
   * and so everything the cluster does, are the same either way.
   */
  holds?: boolean;
  /** How a core budget the plans overrun is shared (default "arrival": each plan takes what is free). */
  sharing?: CoreSharing;
  /** What fair sharing optimises (default "utility"; see sharing.ts). */
  sharingObjective?: SharingObjective;
  /** The online latency correction in use for a task, logged with each decision. */
  correction?: (task: string) => LatencyCorrection;
  /** An instance's slowness (its factor over the profile): a scale-in stops the slowest first. */
  speed?: (instance: string) => number | undefined;
}

/** What a task's latest plan wants, for sharing a short budget. */
interface Want {
  cores: number;
  weight: number;
  minCores: number;
  violations: (cores: number) => number;
}

/** Seconds without arrivals after which a steady task that changed nothing is quiet (see stillQuiet). */
const QUIET_AFTER_MS = (HISTORY_SECONDS + 2) * 1000;
/** Longest decision spacing a hold may stand for: one whose history has fully drained by QUIET_AFTER_MS. */
const MAX_HELD_SPACING_MS = 1000;

export class Controller {
  readonly decisions: Decision[] = [];
  private timer: Timer | null = null;
  private readonly actuating = new Set<string>();
  private readonly tasks = new Map<string, ScaledTask>();
  private readonly pipelines = new Map<string, ScaledPipeline>();
  /** Each scaling policy's state, by task or pipeline name. */
  private readonly states = new Map<string, unknown>();
  private readonly listeners: { [K in keyof ControllerEvents]: ControllerEvents[K][] } = {
    decision: [],
    actuation: [],
  };
  private stopped = false;
  /** Instances per task, indexed once per tick. */
  private index: Map<string, Instance[]> | null = null;
  /** Tasks skipped while quiet, with the instance shape they had. */
  private readonly quiet = new Map<string, string>();
  /** When each task or pipeline is next due for a decision (clock ms). */
  private readonly due = new Map<string, number>();
  /** When each task was last observed (clock ms). */
  private readonly observedAt = new Map<string, number>();
  /** Each task's last non-empty served mix. */
  private readonly mix = new Map<string, readonly ServedShare[]>();
  /** Tasks with a decision booked by poke(). */
  private readonly poked = new Set<string>();
  /** Which tasks the next tick looks at. */
  private readonly schedule = new DecisionSchedule();
  /** The index of instances is out of date (the cluster changed since it was built). */
  private stale = true;
  /** The cluster changed while the current tick was going through its tasks. */
  private changedInTick = false;
  /** The loop's period and the pipelines' stage tasks, kept until tasks or pipelines change. */
  private period: number | null = null;
  private staged: Set<string> | null = null;
  /** When the last tick ran (clock ms). */
  private lastTick = Number.NEGATIVE_INFINITY;
  /** Decisions not taken because a hold promised their answer. */
  private skippedBooked = 0;
  /** Decisions taken. */
  taken = 0;
  /** Per task on a hold: the observation of the decision whose answers were promised. */
  private readonly promised = new Map<string, Observation>();
  /** Each scaled task's latest plan, in cores, and what it expects to lose with fewer. */
  private readonly wants = new Map<string, Want>();

  constructor(
    private readonly clock: Clock,
    private readonly cluster: Cluster,
    private readonly router: Router,
    private readonly meter: TaskMeter,
    private readonly opts: ControllerOptions,
  ) {
    meter.watch((task) => this.schedule.wake(task));
    cluster.onChange(() => {
      this.stale = true;
      this.changedInTick = true;
      this.shapes.clear();
    });
  }

  on<K extends keyof ControllerEvents>(event: K, listener: ControllerEvents[K]): void {
    (this.listeners[event] as ControllerEvents[K][]).push(listener);
  }

  addTask(t: ScaledTask): void {
    this.reschedule();
    this.tasks.set(t.task, t);
    this.forget(t.task);
    this.schedule.add(t.task);
  }

  removeTask(task: string): void {
    this.reschedule();
    this.tasks.delete(task);
    this.forget(task);
    this.schedule.remove(task);
  }

  private forget(name: string): void {
    this.promised.delete(name);
    this.wants.delete(name);
    this.states.delete(name);
    this.quiet.delete(name);
    this.due.delete(name);
    this.observedAt.delete(name);
    this.mix.delete(name);
  }

  /** A pipeline planned as a whole; its stage tasks are left out of per-task decisions. */
  addPipeline(p: ScaledPipeline): void {
    this.reschedule();
    this.pipelines.set(p.pipeline, p);
    this.states.delete(p.pipeline);
    this.due.delete(p.pipeline);
  }

  removePipeline(pipeline: string): void {
    this.reschedule();
    this.pipelines.delete(pipeline);
    this.states.delete(pipeline);
    this.due.delete(pipeline);
  }

  /**
   * Tasks or pipelines change (the period, the stages), or the loop starts again: every hold ends, as of the
   * last tick, and every task is looked at again.
   */
  private reschedule(): void {
    this.period = null;
    this.staged = null;
    const end = this.lastTick + this.intervalMs / 2;
    this.schedule.wakeAll((name, h) => this.release(name, h, end));
  }

  /** Decisions skipped because a hold promised their answer, up to the last tick. */
  get skipped(): number {
    let n = this.skippedBooked;
    const end = this.lastTick + this.intervalMs / 2;
    for (const s of this.schedule.held) n += stoodFor(s.hold!, end).count;
    return n;
  }

  /** Tasks and pipelines the loop decides for. */
  get scaled(): number {
    return this.tasks.size + this.pipelines.size;
  }

  /** The interval of policies that state none. */
  get defaultIntervalMs(): number {
    return this.opts.intervalMs ?? 1000;
  }

  /** How often a policy decides: its own interval, else the loop's default. */
  intervalOf(policy: ScalingPolicy): number {
    return policy.intervalMs ?? this.defaultIntervalMs;
  }

  /** The loop's period: the shortest interval any scaled task or pipeline asks for. */
  get intervalMs(): number {
    if (this.period !== null) return this.period;
    let ms = this.defaultIntervalMs;
    for (const t of this.tasks.values()) ms = Math.min(ms, this.intervalOf(t.policy));
    for (const p of this.pipelines.values()) ms = Math.min(ms, this.intervalOf(p.policy));
    this.period = ms;
    return ms;
  }

  /**
   * Whether `name` is due at this tick (half a period of slack absorbs a live timer's lateness); if so,
   * books its next decision.
   */
  private isDue(name: string, policy: ScalingPolicy, period: number): boolean {
    const now = this.clock.now();
    if (now < (this.due.get(name) ?? Number.NEGATIVE_INFINITY) - period / 2) return false;
    this.due.set(name, now + this.intervalOf(policy));
    return true;
  }

  start(): void {
    this.stopped = false;
    // the ticks start over: holds stood for decisions on the old ones
    this.reschedule();
    const loop = () => {
      this.timer = this.clock.setTimer(this.clock.now() + this.intervalMs, () => {
        void this.tick().finally(() => {
          if (!this.stopped) loop();
        });
      });
    };
    loop();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.clock.clearTimer(this.timer);
  }

  /** Stops the loop, waits for actuations in flight and frees the forecaster. */
  async close(sleep?: (ms: number) => Promise<void>): Promise<void> {
    this.stop();
    await this.settle(sleep);
    await this.opts.forecaster.close?.();
  }

  /** Waits for actuations in flight (tests, shutdown); `sleep` runs on the caller's time, real or virtual. */
  async settle(sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms))): Promise<void> {
    while (this.actuating.size > 0) await sleep(5);
  }

  /** Whether the loop is converging `task` to a plan right now. */
  isActuating(task: string): boolean {
    return this.actuating.has(task);
  }

  /**
   * Decides for `task` now rather than at its next interval (it woke up from zero with requests waiting):
   * the plan, not the number of requests, says how many instances the burst gets. A task planned as a
   * pipeline stage, or one already converging, is left to the loop.
   */
  poke(task: string): void {
    const t = this.tasks.get(task);
    if (!t || this.stopped || this.poked.has(task)) return;
    this.poked.add(task);
    this.clock.setTimer(this.clock.now(), () => {
      this.poked.delete(task);
      if (this.stopped || this.actuating.has(task) || this.tasks.get(task) !== t) return;
      if ([...this.pipelines.values()].some((p) => p.stages.some((s) => s.task === task))) return;
      this.refreshIndex();
      this.quiet.delete(task);
      this.schedule.wake(task);
      this.due.set(task, this.clock.now() + this.intervalOf(t.policy));
      void this.decide(t);
    });
  }

  /** Rebuilds the index of instances per task when the cluster changed since; wakes sleepers it concerns. */
  private refreshIndex(): void {
    if (!this.stale && this.index !== null) return;
    this.stale = false;
    this.shapes.clear();
    this.index = new Map();
    for (const i of this.cluster.instances()) {
      if (i.state === "stopped") continue;
      const list = this.index.get(i.task);
      if (list) list.push(i);
      else this.index.set(i.task, [i]);
    }
    // a sleeping task whose instances changed is looked at again
    const changed: string[] = [];
    for (const [name, shape] of this.schedule.sleepers((n) => this.quiet.get(n)))
      if (this.shapeOf(name) !== shape) changed.push(name);
    for (const name of changed) this.schedule.wake(name);
  }

  /**
   * Looks at every task and pipeline due, in registration order. A task the loop would find quiet, a stage
   * of a pipeline planned as a whole, and a task on a hold sleep (see DecisionSchedule) and cost nothing
   * until something happens to them; the decisions and the quiet checks are those of looking at every task.
   */
  async tick(): Promise<void> {
    const now = this.clock.now();
    this.lastTick = now;
    this.refreshIndex();
    this.staged ??= new Set([...this.pipelines.values()].flatMap((p) => p.stages.map((s) => s.task)));
    const staged = this.staged;
    const period = this.intervalMs;
    const release = (name: string, h: Hold) => this.release(name, h, now);
    this.schedule.begin(now, period / 2, release);
    this.changedInTick = false;
    // Once a decision of this tick has started an actuation, its promises advance while the tick awaits the
    // next decisions, and a decision sees how far they got: the tasks on a hold are then decided for real,
    // each at its place in the order, rather than skipped without the awaits a decision takes.
    let racing = false;
    try {
      for (let name = this.schedule.nextDue(); name !== null; name = this.schedule.nextDue()) {
        const t = this.tasks.get(name);
        if (!t) continue;
        // A task still converging to its last plan is not judged by its transitional state (half-started
        // instances would read as a shortage and flip the mode); it is decided again once settled.
        if (staged.has(name)) this.schedule.rest(name);
        else if (this.actuating.has(name)) continue;
        else if (this.stillQuiet(t)) this.schedule.rest(name);
        else if (this.isDue(name, t.policy, period)) {
          await this.decide(t);
          if (!racing && this.actuating.has(name)) {
            racing = true;
            for (const [sleeper, , held] of this.schedule.sleepers((n) => this.quiet.get(n), true))
              if (held) this.schedule.wakeInTick(sleeper, release);
          }
        }
        if (this.changedInTick) {
          // an instance stopped during this tick shows in the observations of the tasks still to come
          this.changedInTick = false;
          for (const [sleeper, shape] of this.schedule.sleepers((n) => this.quiet.get(n), true))
            if (this.shapeOf(sleeper) !== shape) this.schedule.wakeInTick(sleeper, release);
        }
      }
    } finally {
      this.schedule.settle();
    }
    for (const p of this.pipelines.values())
      if (!p.stages.some((s) => this.actuating.has(s.task)) && this.isDue(p.pipeline, p.policy, period))
        await this.decidePipeline(p);
  }

  /**
   * A hold ends (at `end`, a tick or a moment between ticks): books the decisions it stood for as taken —
   * when the task was last decided and is next due, the skipped count — and whether the loop would have
   * found the task quiet by then.
   */
  private release(name: string, h: Hold, end: number): void {
    const t = this.tasks.get(name);
    if (!t) return;
    const { count, last } = stoodFor(h, end);
    this.skippedBooked += count;
    if (count > 0 && this.states.has(name)) this.states.set(name, advanceBy(t.policy, this.states.get(name), count));
    this.due.set(name, last + this.intervalOf(t.policy));
    this.observedAt.set(name, last);
    if (h.quietAt <= end) this.quiet.set(name, h.shape);
    else this.quiet.delete(name);
  }

  private instancesOf(task: string): readonly Instance[] {
    return this.index?.get(task) ?? this.cluster.instances().filter((i) => i.task === task && i.state !== "stopped");
  }

  private shapeOf(task: string): string {
    let shape = this.shapes.get(task);
    if (shape === undefined) {
      shape = this.instancesOf(task)
        .map((i) => `${i.variant}:${i.cores}:${i.state}`)
        .join(",");
      this.shapes.set(task, shape);
    }
    return shape;
  }

  /** Shapes by task, until the cluster or the index of instances changes. */
  private readonly shapes = new Map<string, string>();

  /**
   * A task that was quiet at its last decision — no traffic in the whole forecast history, nothing queued
   * or running, a steady policy that changed nothing — and still is, with the same instances, would get
   * the same answer again: skip it. This is what lets one loop (and the simulator) carry hundreds of
   * mostly idle tasks.
   */
  private stillQuiet(t: ScaledTask): boolean {
    const q = this.quiet.get(t.task);
    if (q === undefined) return false;
    const still =
      this.meter.lastArrival(t.task) < this.clock.now() - QUIET_AFTER_MS &&
      this.router.outstanding(t.task) === 0 &&
      this.shapeOf(t.task) === q;
    if (!still) this.quiet.delete(t.task);
    return still;
  }

  /** `forecast` false leaves ratePred at the present rate (pipelines forecast once, at their entry). */
  async observe(t: Omit<ScaledTask, "policy">, forecast = true): Promise<Observation> {
    const instances = this.instancesOf(t.task).map((i) => ({
      id: i.id,
      variant: i.variant,
      cores: i.cores,
      state: i.state,
    }));
    // The variant a one-variant policy scales: the one that served the most rows lately (model-less
    // selection and pinned requests decide that, not the policy), else the one with the most instances.
    const fresh = this.meter.takeServed(t.task);
    const busiest = busiestVariant(fresh);
    const variant =
      (busiest !== undefined && t.variants.some((v) => v.name === busiest) ? busiest : undefined) ??
      mostInstances(instances) ??
      t.variant;
    if (fresh.length > 0) this.mix.set(t.task, fresh);
    const now = this.clock.now();
    const since = now - (this.observedAt.get(t.task) ?? now - this.defaultIntervalMs);
    this.observedAt.set(t.task, now);
    const recent = this.meter.perSecond(t.task, RECENT_SECONDS);
    const rateNow = (recent[RECENT_SECONDS - 1]! + recent[RECENT_SECONDS - 2]!) / 2;
    return {
      now,
      task: t.task,
      sloMs: t.sloMs,
      rateNow,
      recent,
      ratePred: forecast ? await this.opts.forecaster.predict(this.historyOf(t.task)) : rateNow,
      concurrency: this.router.outstanding(t.task),
      queueLength: this.router.queueLength(t.task),
      misses: this.meter.takeMisses(t.task),
      tightestBudgetMs: this.meter.tightestBudget(t.task, t.sloMs),
      avgBatch: this.meter.takeAvgBatch(t.task),
      served: this.mix.get(t.task) ?? [],
      busyMs: this.meter.takeBusyMs(t.task),
      sinceMs: since,
      instances,
      variants: t.variants,
      variant,
      coreBudget: this.cluster.coreBudget,
      maxCores: Math.min(this.opts.maxCores, this.cluster.coreBudget),
    };
  }

  /** The task's last HISTORY_SECONDS per-second counts, kept for the hold that may follow the forecast. */
  private historyOf(task: string): number[] {
    const values = this.meter.perSecond(task, HISTORY_SECONDS);
    this.history = { task, at: this.clock.now(), values };
    return values;
  }

  private history: { task: string; at: number; values: number[] } | null = null;

  /** The forecaster's ceiling for a history of zeros (computed once). */
  private zeroCeiling: number | undefined | null = null;

  private async decide(t: ScaledTask): Promise<Decision | null> {
    const obs = await this.observe(t);
    if (idle(obs)) return null;
    const held = this.promised.get(t.task);
    if (held && this.states.has(t.task)) {
      const state = this.states.get(t.task);
      if (t.policy.unchangedBy?.(held, obs, state)) {
        // the answer promised: no decision to take, the task is looked at as if it had been decided
        this.skippedBooked++;
        const next = t.policy.advance ? t.policy.advance(state) : state;
        this.states.set(t.task, next);
        const quiet =
          t.policy.steady(next) &&
          obs.rateNow === 0 &&
          obs.ratePred === 0 &&
          obs.queueLength === 0 &&
          obs.concurrency === 0;
        if (quiet) this.quiet.set(t.task, this.shapeOf(t.task));
        this.offerHold(t, obs, state, next, quiet);
        return null;
      }
    }
    this.promised.delete(t.task);
    const watch = this.opts.stopwatch ?? (() => performance.now());
    const t0 = watch();
    const before = this.stateOf(t.task, t.policy);
    const { plan, state } = t.policy.decide(obs, before);
    const solverMs = watch() - t0;
    this.states.set(t.task, state);
    const d = this.enact(obs, t.policy.name, plan, solverMs, state, undefined, t);
    const quiet =
      d.changes.length === 0 &&
      t.policy.steady(state) &&
      obs.rateNow === 0 &&
      obs.ratePred === 0 &&
      obs.queueLength === 0 &&
      obs.concurrency === 0;
    if (quiet) this.quiet.set(t.task, this.shapeOf(t.task));
    if (d.changes.length === 0) this.offerHold(t, obs, before, state, quiet);
    return d;
  }

  /**
   * After a decision that changed nothing, asks the policy how long its answer holds and, if for a while,
   * lets the task sleep until then (or until something happens to it). The hold stands for the decisions the
   * loop would have taken on its ticks; it also works out when, deciding all along, the loop would have
   * found the task quiet, so that the task turns quiet then rather than deciding again.
   */
  private offerHold(t: ScaledTask, obs: Observation, before: unknown, after: unknown, quiet: boolean): void {
    const policy = t.policy;
    if (!policy.holdsUntil || this.opts.holds !== true) return;
    // the promise covers observations with nothing queued or running and the same instances, and later
    // observations name the variant by the instances (no batch runs to name it)
    if (obs.instances.length === 0 || obs.concurrency !== 0 || obs.queueLength !== 0) return;
    if (obs.variant !== (mostInstances(obs.instances) ?? t.variant)) return;
    const now = obs.now;
    const period = this.intervalMs;
    const due = now + this.intervalOf(policy);
    let ticks = 1;
    while (now + ticks * period < due - period / 2) ticks++;
    const spacing = ticks * period;
    if (spacing > MAX_HELD_SPACING_MS) return;
    const h = this.history;
    const history = h && h.task === t.task && h.at === now ? h.values : this.meter.perSecond(t.task, HISTORY_SECONDS);
    // what this second's arrivals so far add to the history when it ends; further ones wake the task
    const arriving = this.meter.arrivalsThisSecond(t.task);
    let most = arriving;
    for (let i = 0; i < history.length; i++) if (history[i]! > most) most = history[i]!;
    const ceiling = this.opts.forecaster.ceiling?.(most) ?? Infinity;
    const until = policy.holdsUntil(obs, before, after, ceiling, arriving);
    if (until === null || !(until > now)) return;
    let wakeAt = until === Infinity ? Infinity : now + Math.max(1, Math.ceil((until - now) / spacing)) * spacing;
    // the first tick at which the last arrival is far enough back for the task to be quiet …
    const last = this.meter.lastArrival(t.task);
    let j = Math.max(1, Math.floor((last + QUIET_AFTER_MS - now) / period));
    while (!(last < now + j * period - QUIET_AFTER_MS)) j++;
    while (j > 1 && last < now + (j - 1) * period - QUIET_AFTER_MS) j--;
    const quietTick = now + j * period;
    // … and the first tick from then on after a decision that finds it quiet. From the decision before that tick
    // on, every decision's whole history is zeros: it finds the task quiet once its state is steady, if the
    // forecaster's ceiling of zeros is 0. If that cannot be told, the hold ends with that decision, taken for real.
    const lastBefore = Math.ceil((quietTick - now) / spacing) - 1;
    let quietAt = Infinity;
    if (this.zeroCeiling === null) this.zeroCeiling = this.opts.forecaster.ceiling?.(0);
    if (lastBefore === 0 && quiet) quietAt = quietTick;
    else if (this.zeroCeiling !== 0) wakeAt = Math.min(wakeAt, now + Math.max(1, lastBefore) * spacing);
    else {
      // the states the decisions the hold stands for leave, from the one before quietTick until they settle
      let k = Math.max(1, lastBefore);
      let state = advanceBy(policy, after, k);
      for (;;) {
        if (policy.steady(state)) {
          quietAt = k === lastBefore ? quietTick : now + k * spacing + period;
          break;
        }
        const next = policy.advance ? policy.advance(state) : state;
        if (next === state || now + (k + 1) * spacing >= wakeAt) break;
        state = next;
        k++;
      }
    }
    this.promised.set(t.task, obs);
    this.schedule.hold(t.task, {
      from: now,
      spacing,
      wakeAt,
      quietAt,
      shape: this.shapeOf(t.task),
    });
  }

  private async decidePipeline(p: ScaledPipeline): Promise<void> {
    // The pipeline's arrivals are forecast once, at its first stage; a later stage expects at least that
    // (plus whatever direct traffic it sees now).
    const stages: Observation[] = [];
    for (const s of p.stages) {
      const obs = { ...(await this.observe(s, stages.length === 0)), sloMs: p.sloMs };
      if (stages.length > 0) obs.ratePred = Math.max(obs.ratePred, stages[0]!.ratePred);
      stages.push(obs);
    }
    if (stages.every(idle)) return;
    const watch = this.opts.stopwatch ?? (() => performance.now());
    const t0 = watch();
    const { plans, state } = p.policy.decidePipeline(
      { now: this.clock.now(), pipeline: p.pipeline, sloMs: p.sloMs, stages, ...(p.graph ? { graph: p.graph() } : {}) },
      this.stateOf(p.pipeline, p.policy),
    );
    const solverMs = watch() - t0;
    this.states.set(p.pipeline, state);
    // A stage nobody has used yet (the pipeline idle, its task's own traffic none) is left for the router's
    // demand hook to start, as an idle task is.
    stages.forEach((obs, i) => {
      if (!idle(obs)) this.enact(obs, p.policy.name, plans[i]!, solverMs, state, p.pipeline, p.stages[i]);
    });
  }

  /** When the plan needs more cores than are free, asks for idle cores of other tasks first. */
  private async makeRoom(task: string, plan: Plan): Promise<void> {
    if (!this.opts.reclaim) return;
    const held = this.instancesOf(task).reduce((n, i) => n + i.cores, 0);
    const short =
      plan.instances.reduce((n, i) => n + i.cores, 0) - held - (this.cluster.coreBudget - this.cluster.coresInUse());
    if (short > 0) await this.opts.reclaim(short, task);
  }

  /** Records the decision and, when it changes anything and the task is not mid-actuation, converges. */
  private stateOf(name: string, policy: ScalingPolicy): unknown {
    return this.states.has(name) ? this.states.get(name) : policy.initialState();
  }

  private enact(
    obs: Observation,
    policy: string,
    wanted: Plan,
    solverMs: number,
    state: unknown,
    pipeline?: string,
    share?: Pick<ScaledTask, "weight" | "minCores">,
  ): Decision {
    const task = obs.task;
    const { plan, note } = this.opts.sharing === "fair" ? this.share(obs, wanted, share) : { plan: wanted };
    const current = this.instancesOf(task).filter((i) => i.state === "ready" || i.state === "starting");
    const changes = diff(current, plan, this.opts.speed).map((a) =>
      a.kind === "resize"
        ? `resize ${a.instance} ${a.from}→${a.cores} cores`
        : a.kind === "stop"
          ? `stop ${a.instance}`
          : `start ${a.variant} with ${a.cores} cores`,
    );
    const d: Decision = {
      at: obs.now,
      task,
      pipeline,
      policy,
      inputs: {
        rateNow: obs.rateNow,
        ratePred: obs.ratePred,
        concurrency: obs.concurrency,
        queueLength: obs.queueLength,
        misses: obs.misses,
        tightestBudgetMs: obs.tightestBudgetMs,
        instances: obs.instances.map((i) => `${i.variant}×${i.cores}${i.state === "ready" ? "" : ` (${i.state})`}`),
      },
      plan,
      changes,
      solverMs,
      state,
      ...(this.opts.correction ? { correction: this.opts.correction(task) } : {}),
      ...(note ? { sharing: note } : {}),
    };
    this.taken++;
    this.decisions.push(d);
    if (this.decisions.length > 1000) this.decisions.splice(0, this.decisions.length - 1000);
    if (changes.length > 0 && !this.actuating.has(task) && !this.stopped) {
      this.actuating.add(task);
      const started = this.clock.now();
      void this.makeRoom(task, plan)
        .then(() => converge(this.cluster, task, plan, this.opts.speed))
        .then((report: ActuationReport) => {
          d.actuation = {
            ms: this.clock.now() - started,
            short: report.short,
            failed: report.results.filter((r) => !r.ok).map((r) => r.message),
          };
          const instead = report.results.filter((r) => r.action.insteadOfResize !== undefined);
          if (instead.length > 0)
            d.actuation.scaledOutInstead = instead.map((r) => `${r.message} (${Math.round(r.ms)} ms)`);
          for (const r of report.results) if (r.ok) for (const fn of this.listeners.actuation) fn(r.action.kind, r.ms);
        })
        .catch((err: Error) => {
          d.actuation = { ms: this.clock.now() - started, short: [], failed: [err.message] };
        })
        .finally(() => {
          this.actuating.delete(task);
          this.emitDecision(d);
        });
    } else {
      this.emitDecision(d);
    }
    return d;
  }

  /**
   * Fair sharing: records what this task's plan wants and, when all the scaled tasks' latest plans together
   * want more cores than the budget leaves them, cuts this plan to the task's share of the allocation that
   * best serves the objective (sharing.ts: expected attainment from each task's rate, corrected latency model
   * and SLO, weighted). The other tasks are cut to theirs at their own next decisions; the note says who was
   * cut and by how much.
   */
  private share(
    obs: Observation,
    plan: Plan,
    t: Pick<ScaledTask, "weight" | "minCores"> | undefined,
  ): { plan: Plan; note?: SharingNote } {
    const task = obs.task;
    const cores = plan.instances.reduce((n, i) => n + i.cores, 0);
    const counts = new Map<string, number>();
    for (const i of plan.instances) counts.set(i.variant, (counts.get(i.variant) ?? 0) + 1);
    const main = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? obs.variant;
    const model = obs.variants.find((v) => v.name === main) ?? obs.variants.find((v) => v.name === obs.variant)!;
    let peak = obs.rateNow;
    for (let i = Math.max(0, obs.recent.length - 5); i < obs.recent.length; i++) peak = Math.max(peak, obs.recent[i]!);
    this.wants.set(task, {
      cores,
      weight: t?.weight ?? 1,
      minCores: t?.minCores ?? 0,
      violations: shareCost({ lambda: peak, model, sloMs: obs.sloMs }, this.opts.sharingObjective ?? "utility"),
    });
    // cores held by tasks outside the sharing (not autoscaled, or not yet decided for) are not the loop's to share
    let fixed = 0;
    for (const i of this.cluster.instances()) if (i.state !== "stopped" && !this.wants.has(i.task)) fixed += i.cores;
    const budget = this.cluster.coreBudget - fixed;
    let wanted = 0;
    for (const w of this.wants.values()) wanted += w.cores;
    // one task alone has no one to share with: its plan stands, and the actuator says what did not fit
    if (wanted <= budget || this.wants.size < 2) return { plan };
    const claims: ShareClaim[] = [...this.wants].map(([name, w]) => ({
      task: name,
      weight: w.weight,
      minCores: w.minCores,
      want: w.cores,
      violations: w.violations,
    }));
    const a = allocateCores(claims, budget);
    // Where instances may share a core, a task keeps one: cut to none, its requests would wait for the
    // on-demand scaler to start one anyway — a variant of its choosing, which the next plan stops again.
    const grant = Math.max(a.grants.get(task)!, this.cluster.sharesCores === true && cores > 0 ? 1 : 0);
    const note: SharingNote = {
      budget,
      objective: `${objectiveName(this.opts.sharingObjective ?? "utility")} (${a.solver}): ${a.objective.toFixed(2)}`,
      wanted: Object.fromEntries(claims.map((c) => [c.task, c.want])),
      granted: Object.fromEntries(a.grants),
      cut: a.cut.map((c) => `${c.task}: ${c.want} → ${c.grant} cores (−${c.want - c.grant})`),
    };
    if (grant >= cores) return { plan, note };
    return {
      plan: {
        ...plan,
        instances: trimInstances(plan.instances, grant),
        reason: `${plan.reason}; core budget short (${wanted} wanted, ${budget} to share): cut to ${grant} of ${cores} cores`,
      },
      note,
    };
  }

  private emitDecision(d: Decision): void {
    for (const fn of this.listeners.decision) fn(d);
  }
}

/** The decisions a hold stood for before `end` (at most up to where the task turned quiet), and the last one's time. */
function stoodFor(h: Hold, end: number): { count: number; last: number } {
  const stop = Math.min(end, h.quietAt);
  const count = Math.max(0, Math.ceil((stop - h.from) / h.spacing) - 1);
  return { count, last: h.from + count * h.spacing };
}

/** The state after `n` decisions a promise covered: advance() n times, or until it stops changing. */
function advanceBy(policy: ScalingPolicy, state: unknown, n: number): unknown {
  if (!policy.advance) return state;
  let s = state;
  for (let k = 0; k < n; k++) {
    const next = policy.advance(s);
    if (next === s) break;
    s = next;
  }
  return s;
}

/** The variant with the most instances (the first such in instance order); undefined without instances. */
function mostInstances(instances: readonly { variant: string }[]): string | undefined {
  const first = instances[0]?.variant;
  if (instances.every((i) => i.variant === first)) return first;
  const counts = new Map<string, number>();
  for (const i of instances) counts.set(i.variant, (counts.get(i.variant) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
}

function objectiveName(o: SharingObjective): string {
  return o === "violations" ? "least Σ w·expected violations/s" : "most Σ w·λ·ln(expected attainment), as a cost";
}

/** The variant that served the most rows in a mix (undefined when nothing ran). */
function busiestVariant(mix: readonly ServedShare[]): string | undefined {
  if (mix.length <= 1) return mix[0] !== undefined && mix[0].rows > 0 ? mix[0].variant : undefined;
  const rows = new Map<string, number>();
  for (const s of mix) rows.set(s.variant, (rows.get(s.variant) ?? 0) + s.rows);
  let best: string | undefined;
  let most = 0;
  for (const [v, n] of rows) if (n > most) [best, most] = [v, n];
  return best;
}

/**
 * A task nobody has used holds no instance and stays so: scale-from-zero is the router's demand hook's
 * job, and a policy would otherwise provision its minimum for no one.
 */
function idle(obs: Observation): boolean {
  return obs.instances.length === 0 && obs.rateNow === 0 && obs.concurrency === 0 && obs.queueLength === 0;
}
