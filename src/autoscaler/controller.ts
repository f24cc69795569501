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
import {
  allocateCores,
  shareCost,
  trimInstances,
  type CoreSharing,
  type ShareClaim,
  type SharingObjective,
} from "./sharing.js";
import type { LatencyCorrection } from "../core/online-latency.js";
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
  /** Each scaled task's latest plan, in cores, and what it expects to lose with fewer. */
  private readonly wants = new Map<string, Want>();

  constructor(
    private readonly clock: Clock,
    private readonly cluster: Cluster,
    private readonly router: Router,
    private readonly meter: TaskMeter,
    private readonly opts: ControllerOptions,
  ) {}

  on<K extends keyof ControllerEvents>(event: K, listener: ControllerEvents[K]): void {
    (this.listeners[event] as ControllerEvents[K][]).push(listener);
  }

  addTask(t: ScaledTask): void {
    this.tasks.set(t.task, t);
    this.forget(t.task);
  }

  removeTask(task: string): void {
    this.tasks.delete(task);
    this.forget(task);
  }

  private forget(name: string): void {
    this.wants.delete(name);
    this.states.delete(name);
    this.quiet.delete(name);
    this.due.delete(name);
    this.observedAt.delete(name);
    this.mix.delete(name);
  }

  /** A pipeline planned as a whole; its stage tasks are left out of per-task decisions. */
  addPipeline(p: ScaledPipeline): void {
    this.pipelines.set(p.pipeline, p);
    this.states.delete(p.pipeline);
    this.due.delete(p.pipeline);
  }

  removePipeline(pipeline: string): void {
    this.pipelines.delete(pipeline);
    this.states.delete(pipeline);
    this.due.delete(pipeline);
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
    let ms = this.defaultIntervalMs;
    for (const t of this.tasks.values()) ms = Math.min(ms, this.intervalOf(t.policy));
    for (const p of this.pipelines.values()) ms = Math.min(ms, this.intervalOf(p.policy));
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

  async tick(): Promise<void> {
    this.index = new Map();
    for (const i of this.cluster.instances()) {
      if (i.state === "stopped") continue;
      const list = this.index.get(i.task);
      if (list) list.push(i);
      else this.index.set(i.task, [i]);
    }
    const staged = new Set([...this.pipelines.values()].flatMap((p) => p.stages.map((s) => s.task)));
    const period = this.intervalMs;
    // A task still converging to its last plan is not judged by its transitional state (half-started
    // instances would read as a shortage and flip the mode); it is decided again once settled.
    for (const t of this.tasks.values())
      if (
        !staged.has(t.task) &&
        !this.actuating.has(t.task) &&
        !this.stillQuiet(t) &&
        this.isDue(t.task, t.policy, period)
      )
        await this.decide(t);
    for (const p of this.pipelines.values())
      if (!p.stages.some((s) => this.actuating.has(s.task)) && this.isDue(p.pipeline, p.policy, period))
        await this.decidePipeline(p);
  }

  private instancesOf(task: string): readonly Instance[] {
    return this.index?.get(task) ?? this.cluster.instances().filter((i) => i.task === task && i.state !== "stopped");
  }

  private shapeOf(task: string): string {
    return this.instancesOf(task)
      .map((i) => `${i.variant}:${i.cores}:${i.state}`)
      .join(",");
  }

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
      this.meter.lastArrival(t.task) < this.clock.now() - (HISTORY_SECONDS + 2) * 1000 &&
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
    const counts = new Map<string, number>();
    for (const i of instances) counts.set(i.variant, (counts.get(i.variant) ?? 0) + 1);
    const fresh = this.meter.takeServed(t.task);
    const busiest = busiestVariant(fresh);
    const variant =
      (busiest !== undefined && t.variants.some((v) => v.name === busiest) ? busiest : undefined) ??
      [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ??
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
      ratePred: forecast ? await this.opts.forecaster.predict(this.meter.perSecond(t.task, HISTORY_SECONDS)) : rateNow,
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

  private async decide(t: ScaledTask): Promise<Decision | null> {
    const obs = await this.observe(t);
    if (idle(obs)) return null;
    const watch = this.opts.stopwatch ?? (() => performance.now());
    const t0 = watch();
    const { plan, state } = t.policy.decide(obs, this.stateOf(t.task, t.policy));
    const solverMs = watch() - t0;
    this.states.set(t.task, state);
    const d = this.enact(obs, t.policy.name, plan, solverMs, state, undefined, t);
    if (
      d.changes.length === 0 &&
      t.policy.steady(state) &&
      obs.rateNow === 0 &&
      obs.ratePred === 0 &&
      obs.queueLength === 0 &&
      obs.concurrency === 0
    )
      this.quiet.set(t.task, this.shapeOf(t.task));
    return d;
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

function objectiveName(o: SharingObjective): string {
  return o === "violations" ? "least Σ w·expected violations/s" : "most Σ w·λ·ln(expected attainment), as a cost";
}

/** The variant that served the most rows in a mix (undefined when nothing ran). */
function busiestVariant(mix: readonly ServedShare[]): string | undefined {
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
