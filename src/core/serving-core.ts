// The serving core, built once for any Clock and Cluster: the router with each task's scheduling policy,
// the meter that watches it, the on-demand scaler, the control loop with each task's (or pipeline's)
// scaling policy, and the pipeline walk. The live server and the simulator both build this and nothing
// else of it, so a simulated result is a result of the same code.
import { Controller, type ControllerEvents, type ScaledTask } from "../autoscaler/controller.js";
import type { Forecaster } from "../autoscaler/forecast/types.js";
import { TaskMeter } from "../autoscaler/meter.js";
import { OnDemandScaler } from "../autoscaler/on-demand.js";
import { ZeroScaler } from "../autoscaler/scale-to-zero.js";
import { WarmPoolPlanner, type WarmPoolSettings } from "../autoscaler/warm-pool.js";
import { plansPipelines, type ScalingPolicy } from "../autoscaler/types.js";
import type { Clock } from "../cluster/clock.js";
import type { Cluster } from "../cluster/types.js";
import { refusedAtAdmission, type Request } from "../router/request.js";
import { Router, type RouterOptions } from "../router/router.js";
import type { SchedulingPolicy, TaskModel } from "../router/scheduling/types.js";
import { edges, stageTasks } from "../autoscaler/planner/pipeline-graph.js";
import { FanOutMeter } from "./fan-out.js";
import { PipelineAccuracy, SKIP_STAGE, type MeasuredCombination } from "./pipeline-accuracy.js";
import { PipelineWalk, type PipelineDef, type PipelineOutcome, type PipelineRequest } from "./pipeline.js";
import { OnlineLatencyModel, type OnlineLatencyOptions } from "./online-latency.js";
import type { CoreSharing, SharingObjective } from "../autoscaler/sharing.js";

export interface CoreTask {
  model: TaskModel;
  scheduling: SchedulingPolicy;
  /** Admission bound: requests queued beyond it are refused with 429. */
  maxQueue: number;
  /** Serve hopeless requests late (counted as misses) instead of answering 504. */
  lateOk: boolean;
  /** Absent: the task is not autoscaled (its instances come from the deployment and from demand). */
  scaling?: ScalingPolicy;
  /** The variant the scaling policy scales while the task has no instance (default: the first). */
  scaleVariant?: string;
  /** Stop the task's last instances after this long without a request (ms); absent: it keeps them. */
  scaleToZeroAfterMs?: number;
  /** Its weight when a short core budget is shared (default 1; task.yaml's sharing.weight). */
  weight?: number;
  /** Cores it keeps however short the budget (default 0; task.yaml's sharing.min_cores). */
  minCores?: number;
}

export interface CorePipeline extends PipelineDef {
  /** Measured end-to-end accuracy per combination of stage variants (absent: the product of the stages'). */
  accuracy?: readonly MeasuredCombination[];
  /** Recorded fan-out: rows one row of a stage became downstream, sampled per variant of that stage. */
  fanOut?: Readonly<Record<string, Readonly<Record<string, readonly number[]>>>>;
  /**
   * Plans the stages jointly under the end-to-end SLO when it can (a policy that plans pipelines);
   * absent, or a policy that plans tasks one by one: each stage task scales by its own policy.
   */
  scaling?: ScalingPolicy;
}

export interface ControlSettings {
  intervalMs: number;
  /** Most cores one instance may have (C_max). */
  maxCores: number;
  forecaster: Forecaster;
  /** Measures solver time (the wall clock by default). */
  stopwatch?: () => number;
  /** Skip decisions whose answer the policy promised (default false); see ControllerOptions.holds. */
  holds?: boolean;
  /**
   * When the tasks' plans want more cores than the budget has: "fair" allocates them by an explicit objective
   * over each task's expected SLO attainment, weighted (src/autoscaler/sharing.ts); "arrival" (default) lets
   * each plan take what is free when it is carried out.
   */
  sharing?: CoreSharing;
  /** What fair sharing optimises (default "utility"; see src/autoscaler/sharing.ts). */
  sharingObjective?: SharingObjective;
}

export interface CoreOptions {
  clock: Clock;
  cluster: Cluster;
  /** Batches an instance may hold: one running plus prefetched ones (default 2). */
  slotsPerInstance?: number;
  /** Replaces an instance that stops answering (see RouterOptions.watchdog); absent: none. */
  watchdog?: RouterOptions["watchdog"];
  /** How requests are refused at admission (see RouterOptions.admission; default "queue"). */
  admission?: RouterOptions["admission"];
  /** Start instances for requests no instance can serve (default true). */
  onDemand?: boolean;
  /** The control loop; absent: no autoscaling. */
  control?: ControlSettings;
  /** Events worth an operator's attention (on-demand starts, evictions, pipelines planned per stage). */
  log?: (event: Record<string, unknown>) => void;
  /** Size the cluster's warm pool between these bounds (a backend with a pool only); absent: left as it is. */
  warmPool?: WarmPoolSettings;
  /**
   * Learn each instance's speed from its batches and let every policy read the corrected model
   * (src/core/online-latency.ts); false or absent: the profiles as measured.
   */
  onlineLatency?: boolean | Partial<OnlineLatencyOptions>;
}

export interface TaskReadiness {
  /** An instance is ready: a request is served without a cold start. */
  ready: boolean;
  /** A request can be served at all: an instance is ready, starting, or can be started on demand. */
  servable: boolean;
  reason: string;
}

export interface CoreEvents {
  pipelineArrived: (p: PipelineRequest) => void;
  pipelineFinished: (p: PipelineRequest, o: PipelineOutcome) => void;
}

export class ServingCore {
  readonly clock: Clock;
  readonly cluster: Cluster;
  readonly router: Router;
  readonly meter: TaskMeter;
  readonly scaler: OnDemandScaler | null;
  readonly controller: Controller | null;
  /** Stops a quiet task's last instances (tasks with scaleToZeroAfterMs). */
  readonly zero: ZeroScaler;
  /** Sizes the warm pool (null: none, or left to the backend). */
  readonly pool: WarmPoolPlanner | null;
  /** The online correction of the profiles (null when off). */
  readonly latencyModel: OnlineLatencyModel | null;
  private readonly tasks = new Map<string, CoreTask>();
  private readonly models = new Map<string, TaskModel>();
  private readonly pipelines = new Map<string, CorePipeline>();
  private readonly walk: PipelineWalk;
  /** Each pipeline's edges as measured: rows per row, and rows per stage request. */
  readonly fanOut = new FanOutMeter();
  private readonly accuracies = new Map<string, PipelineAccuracy>();
  private readonly listeners: { [K in keyof CoreEvents]: CoreEvents[K][] } = {
    pipelineArrived: [],
    pipelineFinished: [],
  };
  private readonly log: (event: Record<string, unknown>) => void;
  private looping = false;
  private started = false;
  /** Whether this core acts (control loop, on-demand starts); a follower among gateway replicas only routes. */
  private active = true;

  constructor(opts: CoreOptions) {
    this.clock = opts.clock;
    this.cluster = opts.cluster;
    this.log = opts.log ?? (() => undefined);
    this.router = new Router(opts.clock, opts.cluster, {
      slotsPerInstance: opts.slotsPerInstance,
      watchdog: opts.watchdog,
      admission: opts.admission,
    });
    this.meter = new TaskMeter(opts.clock);
    const meter = this.meter;
    this.router.on("arrived", (r) => meter.arrival(r.task, r.deadline - r.arrival));
    this.router.on("finished", (r, o) => {
      // A request refused at admission never "arrived", but it is load the task did not carry.
      if (!o.ok && refusedAtAdmission(o.reason)) meter.arrival(r.task, r.deadline - r.arrival);
      // a request its client gave up on is not a miss of ours
      if (o.ok ? !o.sloMet : o.reason !== "cancelled") meter.miss(r.task);
    });
    this.router.on("batch", (b) => meter.batch(b.task, b.rows, b.variant, b.subnet, b.computeMs));
    const online = opts.onlineLatency
      ? new OnlineLatencyModel(
          opts.onlineLatency === true ? {} : opts.onlineLatency,
          (id) => opts.cluster.placeOf?.(id),
          () => opts.clock.now(),
          (e) => this.log({ event: "latency_drift", ...e }),
        )
      : null;
    this.latencyModel = online;
    if (online) {
      // The cores a batch ran on, read off the instance when it answers. A batch that was running when its
      // instance was resized ran partly at either size: it teaches nothing and is left out.
      const seen = new Map<string, { cores: number; changedAt: number }>();
      let fresh = false;
      opts.cluster.onChange(() => {
        fresh = false;
      });
      const instance = (id: string) => {
        if (!fresh) {
          fresh = true;
          const now = opts.clock.now();
          const live = new Set<string>();
          for (const i of opts.cluster.instances()) {
            if (i.state === "stopped") continue;
            live.add(i.id);
            const s = seen.get(i.id);
            if (!s) seen.set(i.id, { cores: i.cores, changedAt: Number.NEGATIVE_INFINITY });
            else if (s.cores !== i.cores) seen.set(i.id, { cores: i.cores, changedAt: now });
          }
          for (const id of seen.keys()) if (!live.has(id)) seen.delete(id);
          online.retain(live);
        }
        return seen.get(id);
      };
      this.router.on("batch", (b) => {
        const i = instance(b.instance);
        if (i && i.changedAt < opts.clock.now() - b.computeMs) online.observe(b, i.cores);
      });
    }
    const scaler =
      opts.onDemand === false
        ? null
        : new OnDemandScaler(opts.cluster, this.models, this.router, opts.clock, (e) => this.log(e));
    this.scaler = scaler;
    if (scaler)
      this.router.setDemand((task, r) => {
        if (!this.active) return false;
        const waking = !this.cluster.instances().some((i) => i.task === task && i.state !== "stopped");
        const coming = scaler.demand(task, r);
        // up from zero: the task's policy sizes the burst at once, instead of each request starting capacity
        if (coming && waking) this.controller?.poke(task);
        return coming;
      });
    this.controller = opts.control
      ? new Controller(opts.clock, opts.cluster, this.router, this.meter, {
          intervalMs: opts.control.intervalMs,
          maxCores: opts.control.maxCores,
          forecaster: opts.control.forecaster,
          stopwatch: opts.control.stopwatch,
          // a promise covers only the task's own inputs; fair sharing (the other tasks' plans) and the online
          // model (other instances' batches move the fleet factor) change a decision from outside them
          holds: opts.control.holds === true && !online && opts.control.sharing !== "fair",
          reclaim: scaler ? (cores, task) => scaler.reclaim(cores, task) : undefined,
          sharing: opts.control.sharing,
          sharingObjective: opts.control.sharingObjective,
          correction: online ? (task) => online.correction(task) : undefined,
          speed: online ? (id) => online.speedOf(id) : undefined,
        })
      : null;
    this.zero = new ZeroScaler(
      opts.cluster,
      opts.clock,
      this.router,
      (task) => !this.active || (this.controller?.isActuating(task) ?? false),
    );
    this.zero.on((e) => this.log({ event: "scaled_to_zero", task: e.task, instances: e.instances, idle_ms: e.idleMs }));
    this.pool =
      opts.warmPool && opts.cluster.setWarmPool ? new WarmPoolPlanner(opts.cluster, opts.clock, opts.warmPool) : null;
    this.pool?.on((d) => this.log({ event: "warm_pool", size: d.size, before: d.before, reason: d.reason }));
    // An instance of a task that is not (or no longer) registered serves no one: an on-demand start or an
    // actuation that was under way when the task was unloaded ends here, cold start and all.
    opts.cluster.onChange(() => {
      for (const i of opts.cluster.instances())
        if ((i.state === "starting" || i.state === "ready") && !this.tasks.has(i.task)) {
          this.log({ event: "orphan_stopped", instance: i.id, reason: `task '${i.task}' is not loaded` });
          void opts.cluster.stop(i.id);
        }
    });
    this.walk = new PipelineWalk(
      this.router,
      opts.clock,
      (name) => {
        const t = this.tasks.get(name);
        if (!t) return undefined;
        const vs = t.model.variants;
        return { lateOk: t.lateOk, maxRows: Math.min(...vs.map((v) => v.maxBatch)), variants: vs.length };
      },
      (name) => this.accuracyOf(name),
      (p, o) => {
        for (const fn of this.listeners.pipelineFinished) fn(p, o);
      },
      this.fanOut,
    );
  }

  on<K extends keyof CoreEvents>(event: K, listener: CoreEvents[K]): void {
    (this.listeners[event] as CoreEvents[K][]).push(listener);
  }

  /** The control loop's events (nothing when there is no control loop). */
  onControl<K extends keyof ControllerEvents>(event: K, listener: ControllerEvents[K]): void {
    this.controller?.on(event, listener);
  }

  task(name: string): CoreTask | undefined {
    return this.tasks.get(name);
  }

  /**
   * The version a request that names none and was not served is booked under: the task's latest variant,
   * as Triton's default version policy ("latest") would have served it.
   */
  bookedVersion(r: Request): string {
    return r.pinned ?? r.assigned ?? this.tasks.get(r.task)?.model.variants.at(-1)?.name ?? "";
  }

  pipeline(name: string): CorePipeline | undefined {
    return this.pipelines.get(name);
  }

  pipelineNames(): string[] {
    return [...this.pipelines.keys()];
  }

  /**
   * How a pipeline's end-to-end accuracy is judged from what served it, over the variants its stage tasks
   * have now: its measured combinations, else the product of the stages' accuracies.
   */
  accuracyOf(name: string): PipelineAccuracy {
    let a = this.accuracies.get(name);
    if (a) return a;
    const p = this.pipelines.get(name);
    a = new PipelineAccuracy(
      (p?.graph.stages ?? []).map((s) => ({
        task: s.task,
        optional: s.optional,
        variants: (this.models.get(s.task)?.variants ?? []).map((v) => ({ name: v.name, accuracy: v.accuracy })),
      })),
      p?.accuracy,
    );
    this.accuracies.set(name, a);
    return a;
  }

  /**
   * Whether a task can serve now (an instance of it is ready), and whether it can serve at all (one is
   * starting, or one can be started on demand), with the reason in words.
   */
  readiness(name: string): TaskReadiness {
    const t = this.tasks.get(name);
    if (!t) return { ready: false, servable: false, reason: `task '${name}' is not loaded` };
    const mine = this.cluster.instances().filter((i) => i.task === name);
    const ready = mine.filter((i) => i.state === "ready");
    if (ready.length > 0)
      return {
        ready: true,
        servable: true,
        reason: `${ready.length} instance(s) ready: ${ready.map((i) => `${i.variant} on ${i.cores} core(s)`).join(", ")}`,
      };
    const warm = (this.cluster.pooled ?? 0) > 0;
    const coldMs = Math.min(...t.model.variants.map((v) => (warm ? (v.warmLoadMs ?? v.loadMs) : v.loadMs)));
    if (mine.some((i) => i.state === "starting"))
      return { ready: false, servable: true, reason: `an instance is starting (cold start ~${coldMs.toFixed(0)} ms)` };
    const room = this.cluster.coreBudget - this.cluster.coresInUse() >= 1 || this.cluster.sharesCores === true;
    if (this.scaler && this.active && room)
      return {
        ready: false,
        servable: true,
        reason: `no instance is running; the first request starts one (cold start ~${coldMs.toFixed(0)} ms)`,
      };
    return {
      ready: false,
      servable: false,
      reason: this.active
        ? `no instance is running and all ${this.cluster.coreBudget} cores are held by other tasks' instances`
        : "no instance is running, and this replica follows: the leader starts instances",
    };
  }

  /** Registers a task (replacing one of the same name, whose queued requests are answered 503). */
  addTask(task: CoreTask): void {
    const name = task.model.name;
    if (this.router.hasTask(name)) this.router.removeTask(name, `task '${name}' was reloaded; retry`);
    // every policy (scheduling, scaling, on-demand) reads the corrected views, never the profile itself
    const t = this.latencyModel ? { ...task, model: this.latencyModel.wrap(task.model) } : task;
    this.tasks.set(name, t);
    this.models.set(name, t.model);
    this.router.addTask({ model: t.model, policy: t.scheduling, maxQueue: t.maxQueue });
    this.zero.set(name, t.scaleToZeroAfterMs);
    if (this.controller && t.scaling) {
      this.controller.addTask({ ...this.scaledView(t), policy: t.scaling });
      this.keepLooping();
    } else this.controller?.removeTask(name);
    // a pipeline planned as a whole sees its stage's new variants, as does its accuracy floor
    this.accuracies.clear();
    for (const p of this.pipelines.values()) if (stageTasks(p.graph).includes(name)) this.planPipeline(p);
  }

  /** Unregisters a task: its queue is answered 503 with `why`, and its instances are stopped. */
  async removeTask(name: string, why: string): Promise<void> {
    this.tasks.delete(name);
    this.latencyModel?.unregister(name);
    this.models.delete(name);
    this.zero.forget(name);
    this.router.removeTask(name, why);
    this.controller?.removeTask(name);
    this.accuracies.clear();
    for (const p of this.pipelines.values())
      if (stageTasks(p.graph).includes(name)) this.controller?.removePipeline(p.name);
    await Promise.all(
      this.cluster
        .instances()
        .filter((i) => i.task === name && i.state !== "stopped")
        .map((i) => this.cluster.stop(i.id)),
    );
  }

  addPipeline(p: CorePipeline): void {
    this.pipelines.set(p.name, p);
    this.accuracies.delete(p.name);
    for (const [task, byVariant] of Object.entries(p.fanOut ?? {}))
      this.fanOut.setPrior(p.name, task, Object.values(byVariant).flat());
    this.planPipeline(p);
  }

  removePipeline(name: string): void {
    this.pipelines.delete(name);
    this.accuracies.delete(name);
    this.controller?.removePipeline(name);
  }

  /** Queues a request for a task; `r.done` is called exactly once. */
  submit(r: Request): void {
    this.router.submit(r);
  }

  /** Runs a pipeline request through its stages; `p.done` is called exactly once. */
  submitPipeline(p: PipelineRequest): void {
    for (const fn of this.listeners.pipelineArrived) fn(p);
    const def = this.pipelines.get(p.pipeline);
    if (!def) {
      const o: PipelineOutcome = {
        ok: false,
        status: 503,
        reason: "shutdown",
        message: `pipeline '${p.pipeline}' is not loaded`,
        stage: p.pipeline,
      };
      p.done(o);
      for (const fn of this.listeners.pipelineFinished) fn(p, o);
      return;
    }
    this.walk.start(def, p);
  }

  /**
   * Leads or follows: among several gateway replicas over one cluster, only the leader runs the control
   * loop and starts instances on demand; every replica routes to every instance.
   */
  setActive(active: boolean): void {
    this.active = active;
    if (active) this.keepLooping();
    else {
      this.looping = false;
      this.controller?.stop();
    }
  }

  get isActive(): boolean {
    return this.active;
  }

  /** Starts the control loop (once anything is autoscaled). */
  start(): void {
    this.started = true;
    this.pool?.start();
    this.keepLooping();
  }

  /** Stops the control loop (and the scale-to-zero and pool decisions). */
  stop(): void {
    this.started = false;
    this.looping = false;
    this.controller?.stop();
    this.pool?.stop();
    this.zero.close();
  }

  /** Stops the loop, waits for actuations in flight and frees the forecaster. */
  async close(sleep?: (ms: number) => Promise<void>): Promise<void> {
    this.stop();
    await this.controller?.close(sleep);
  }

  private keepLooping(): void {
    if (!this.started || !this.active || this.looping || !this.controller || this.controller.scaled === 0) return;
    this.looping = true;
    this.controller.start();
  }

  private scaledView(t: CoreTask): Omit<ScaledTask, "policy"> {
    return {
      task: t.model.name,
      variant: t.scaleVariant ?? t.model.variants[0]!.name,
      variants: t.model.variants,
      sloMs: t.model.sloMs,
      weight: t.weight ?? 1,
      minCores: t.minCores ?? 0,
    };
  }

  /**
   * The same rule in both worlds: a pipeline whose policy plans pipelines, with every stage registered, is
   * planned as a whole; otherwise its stage tasks scale by their own policies, and the log says so.
   */
  private planPipeline(p: CorePipeline): void {
    this.controller?.removePipeline(p.name);
    if (!this.controller || !p.scaling) return;
    const stages = stageTasks(p.graph).map((s) => this.tasks.get(s));
    if (!plansPipelines(p.scaling)) {
      this.log({
        event: "pipeline_scaling",
        pipeline: p.name,
        note: `scaling policy '${p.scaling.name}' plans tasks one by one; the stages of '${p.name}' scale by their own policies`,
      });
      return;
    }
    if (stages.some((t) => t === undefined)) return;
    this.controller.addPipeline({
      pipeline: p.name,
      policy: p.scaling,
      stages: stages.map((t) => this.scaledView(t!)),
      sloMs: p.sloMs,
      graph: () => ({
        edges: edges(p.graph).map((e) => {
          const f = this.fanOut.fanOut(p.name, e.from, e.to);
          return { from: e.from, to: e.to, fanOut: f.mean, observed: f.observed };
        }),
        // a request's rows cross a stage together: the planner times the 95th percentile of them
        rows: Object.fromEntries(
          stageTasks(p.graph).map((t) => [t, this.fanOut.rowsQuantile(p.name, t, 0.95, recordedRows(p, t))]),
        ),
        optional: p.graph.stages.filter((s) => s.optional).map((s) => s.task),
        // the planner plans for requests that run every stage
        ...(p.accuracy ? { accuracy: p.accuracy.filter((c) => !Object.values(c.stages).includes(SKIP_STAGE)) } : {}),
      }),
    });
    this.keepLooping();
  }
}

/**
 * Rows a stage's requests carry by the record, when one stage feeds it and that stage's fan-out was recorded
 * (its variants' samples pooled): OCR's recogniser gets a detector's boxes per image.
 */
function recordedRows(p: CorePipeline, task: string): number[] | undefined {
  const node = p.graph.stages.find((s) => s.task === task);
  if (!node || !p.fanOut) return undefined;
  for (const from of node.after) {
    const byVariant = p.fanOut[from];
    if (byVariant) return Object.values(byVariant).flat();
  }
  return undefined;
}
