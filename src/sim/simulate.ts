// Runs the product on virtual time: the serving core (router with the tasks' scheduling policies, meter,
// on-demand scaler, control loop with their scaling policies, the pipeline walk), built exactly as the
// server builds it, against SimCluster instead of worker processes. Only the clock, the cluster and the
// arrivals are simulated.
import type { Decision } from "../autoscaler/controller.js";
import type { Timer } from "../cluster/clock.js";
import { MaxTrendForecaster } from "../autoscaler/forecast/max-trend.js";
import type { Forecaster } from "../autoscaler/forecast/types.js";
import { makeScalingPolicy } from "../autoscaler/scaling/index.js";
import { ServingCore, type CoreTask } from "../core/serving-core.js";
import {
  stageTotals,
  type PipelineOutcome,
  type PipelineRequest,
  type StageInput,
  type StageResult,
} from "../core/pipeline.js";
import { chainGraph, graphProblems, stageTasks } from "../autoscaler/planner/pipeline-graph.js";
import { servedBy, type Outcome, type Request } from "../router/request.js";
import type { RouterOptions } from "../router/router.js";
import { makeSchedulingPolicy } from "../router/scheduling/index.js";
import { Recorder, STATUS, failureStatus, type SimRecords, type SimSeries } from "./recorder.js";
import { simVariantModel, type SimArrivals, type SimDeployment, type SimPipeline, type SimTask } from "./scenario.js";
import { SimCluster, type Placement, type SimRuntime } from "./sim-cluster.js";
import { VirtualClock, type FlushMode } from "./virtual-clock.js";
import { FrontEndCore, type FrontEndModel } from "./front-end.js";
import type { Duration } from "./service-model.js";
import type { WarmPoolSettings } from "../autoscaler/warm-pool.js";
import { Xoshiro128 } from "../stats/random.js";
import type { OnlineLatencyOptions } from "../core/online-latency.js";
import type { CoreSharing, SharingObjective } from "../autoscaler/sharing.js";

/** A node (or one instance) that becomes slower, or faster, by a factor at a given time. */
export interface SimSlowdown {
  atMs: number;
  /** The node's index; or `instance`. */
  node?: number;
  instance?: string;
  /** Batch times are multiplied by this from `atMs` on (1 restores). */
  factor: number;
}

export interface SimulationConfig {
  tasks: SimTask[];
  pipelines?: SimPipeline[];
  arrivals: SimArrivals[];
  /** Instances at the start of the run (ready at t = 0 unless `coldDeployment`). */
  deployment?: SimDeployment[];
  /** Cores of each node, or `count` nodes of `cores` each. */
  nodes: readonly number[] | { count: number; cores: number };
  /** Where new instances go (default spread: room to grow in place). */
  placement?: Placement;
  seed?: number;
  controller?: {
    intervalMs?: number;
    /** Most cores one instance may have (C_max); default: the largest node. */
    maxCores?: number;
    /** Default: max-trend. It must settle its promises without real I/O (see VirtualClock). */
    forecaster?: () => Forecaster;
    log?: (d: Decision) => void;
    /**
     * Skip the decisions a policy promised the answer of (ScalingPolicy.holdsUntil): the results are the same,
     * the run is faster, and the decision log holds only the decisions taken (the others are counted in
     * summary.decisionsSkipped). Default false.
     */
    holds?: boolean;
    /** How plans that overrun the core budget share it (default "arrival"; see ControlSettings.sharing). */
    sharing?: CoreSharing;
    /** What fair sharing optimises (default "utility"). */
    sharingObjective?: SharingObjective;
  };
  /**
   * The online latency model (src/core/online-latency.ts), as the server runs it by default: policies read
   * profiles corrected by the batches they see. Default off, so that runs made without it reproduce.
   */
  onlineLatency?: boolean | Partial<OnlineLatencyOptions>;
  /** Nodes or instances made slower (or faster) mid-run. */
  slowdowns?: SimSlowdown[];
  /** Batches an instance may hold (the router's default is 2: one running, one prefetched). */
  slotsPerInstance?: number;
  /** The router's hang watchdog (off by default: simulated instances hang only when made to). */
  watchdog?: RouterOptions["watchdog"];
  /** Admission as the live server's ("predictive") or bounded by max_queue only ("queue", the default). */
  admission?: RouterOptions["admission"];
  /** Start instances for requests no instance can serve, as the server does (default true). */
  onDemand?: boolean;
  /** The deployment pays its cold starts at t = 0 instead of being ready. */
  coldDeployment?: boolean;
  /**
   * A warm pool, sized by the serving core between `min` and `max` from recent starts as the live server's;
   * `poolSpawn` is how long a pool worker takes to start (measured: npm run bench:pressure). Absent: none.
   */
  warmPool?: WarmPoolSettings & { poolSpawn: Duration };
  /** How long after the last arrival to wait for answers (default 60 s); the run ends earlier once all are answered. */
  drainMs?: number;
  /** Called with the serving core once it is built, before the run: to watch its events. */
  observe?: (core: ServingCore) => void;
  /** Keep one record per request (default false). */
  records?: boolean;
  /** Keep the per-second variant mix (default: with at most 16 tasks). */
  mix?: boolean;
  /**
   * The load generator and gateway on one core of their own, as the live system runs them (fidelity):
   * each request pays its front-end work before the router and after its answer, in FIFO order on that
   * core, and is judged by the client's clock (sent → answer read). Absent: requests reach the router at
   * their arrival time and are judged there.
   */
  frontEnd?: FrontEndModel;
  flush?: FlushMode;
}

export interface TargetSummary {
  requests: number;
  met: number;
  attainmentPct: number;
}

export interface SimSummary {
  requests: number;
  served: number;
  met: number;
  late: number;
  dropped: number;
  rejected: number;
  failed: number;
  /** Still unanswered when the run ended. */
  unanswered: number;
  violations: number;
  attainmentPct: number;
  violationPct: number;
  /** Latency (arrival → answer, end to end for pipelines) of served requests. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMeanMs: number;
  /** Mean time a served request spent not computing (latency − compute). */
  waitMeanMs: number;
  /** Mean accuracy of served requests (a pipeline's is the product of its stages'). */
  meanAccuracy: number;
  /** Time-average cores held over the run (core-seconds per second). */
  meanCores: number;
  /** Time-average warm-pool workers (processes with no model and no core, holding memory). */
  meanPooled: number;
  peakCores: number;
  simulatedSeconds: number;
  /** Per task or pipeline that received arrivals. */
  perTarget: Record<string, TargetSummary>;
  actuations: { start: number; resize: number; stop: number };
  /** Decisions the control loop took. */
  decisions: number;
  /** Decisions it did not take because the policy had promised their answer (see ScalingPolicy.holdsUntil). */
  decisionsSkipped: number;
  events: number;
  flushes: number;
  wallMs: number;
  requestsPerWallSecond: number;
}

export interface SimulationResult {
  summary: SimSummary;
  series: SimSeries;
  records?: SimRecords;
  /** The control loop's most recent decisions (it keeps the last 1,000). */
  decisions: Decision[];
}

/** A request to a task, with where the simulator records its answer. */
interface SimRequest extends Request {
  target: number;
  row: number;
  /** When the client sent it and the budget it judges the answer by (differ from arrival/deadline behind a front end). */
  sent: number;
  budget: number;
}

/** A pipeline request, with where the simulator records its answer. */
interface SimPipelineRequest extends PipelineRequest {
  target: number;
  row: number;
  sent: number;
  budget: number;
}

export async function simulate(config: SimulationConfig): Promise<SimulationResult> {
  const wall0 = performance.now();
  const tasks = new Map(config.tasks.map((t) => [t.name, t]));
  const pipelines = new Map((config.pipelines ?? []).map((p) => [p.name, p]));
  validate(config, tasks, pipelines);
  const targets = [...tasks.keys(), ...pipelines.keys()];
  const targetIndex = new Map(targets.map((name, i) => [name, i]));

  const clock = new VirtualClock({ flush: config.flush });
  const runtimes = new Map<string, SimRuntime>();
  for (const t of config.tasks) {
    for (const v of t.variants) {
      const subnets = v.subnets ? new Map(v.subnets.map((s) => [s.name, s.service])) : undefined;
      runtimes.set(`${t.name}/${v.name}`, {
        service: v.service,
        coldStart: v.coldStart,
        warmStart: v.warmStart,
        resize: v.resize,
        subnets,
      });
    }
  }
  const cluster = new SimCluster(clock, {
    nodes: nodeList(config.nodes),
    placement: config.placement,
    seed: config.seed,
    runtime: (task, variant) => runtimes.get(`${task}/${variant}`)!,
    warmPool: config.warmPool
      ? Math.min(config.warmPool.max, config.warmPool.min ?? Math.min(1, config.warmPool.max))
      : 0,
    poolSpawn: config.warmPool?.poolSpawn,
  });

  /** Accuracy per task of each variant, and of each subnet under `variant/subnet`. */
  const accuracy = new Map<string, Map<string, number>>();
  for (const t of config.tasks) {
    accuracy.set(
      t.name,
      new Map(
        t.variants.flatMap((v) => [
          [v.name, v.accuracy] as const,
          ...(v.subnets ?? []).map((s) => [servedBy(v.name, s.name), s.accuracy] as const),
        ]),
      ),
    );
  }

  const recorder = new Recorder(cluster, {
    records: config.records ?? false,
    mix: config.mix ?? config.tasks.length <= 16,
    targets,
  });
  let streamsLeft = config.arrivals.filter((a) => a.times.length > 0).length;
  const allAnswered = () => streamsLeft === 0 && recorder.tally.answered === recorder.tally.requests;

  const c = config.controller ?? {};
  const scaled = config.tasks.some((t) => t.scaling) || (config.pipelines ?? []).some((p) => p.scaling);
  const core = new ServingCore({
    clock,
    cluster,
    slotsPerInstance: config.slotsPerInstance,
    watchdog: config.watchdog,
    admission: config.admission,
    onDemand: config.onDemand,
    warmPool: config.warmPool,
    control: scaled
      ? {
          intervalMs: c.intervalMs ?? 1000,
          maxCores: c.maxCores ?? cluster.maxCoresPerInstance,
          forecaster: c.forecaster ? c.forecaster() : new MaxTrendForecaster(),
          holds: c.holds,
          sharing: c.sharing,
          sharingObjective: c.sharingObjective,
        }
      : undefined,
    onlineLatency: config.onlineLatency,
  });
  for (const s of config.slowdowns ?? [])
    clock.setTimer(s.atMs, () => {
      if (s.node !== undefined) cluster.slowNode(s.node, s.factor);
      if (s.instance !== undefined) cluster.slowInstance(s.instance, s.factor);
    });
  for (const t of config.tasks) core.addTask(coreTaskOf(t, config.deployment));
  for (const p of pipelines.values())
    core.addPipeline({
      name: p.name,
      graph: p.graph ?? chainGraph(p.stages),
      sloMs: p.sloMs,
      ...(p.accuracy ? { accuracy: p.accuracy } : {}),
      ...(p.fanOut ? { fanOut: p.fanOut } : {}),
      scaling: typeof p.scaling === "function" ? p.scaling() : p.scaling ? makeScalingPolicy(p.scaling) : undefined,
    });
  const frontEnd = config.frontEnd
    ? new FrontEndCore(clock, config.frontEnd, new Xoshiro128((config.seed ?? 1) + 0x5eed))
    : null;
  /** Met by the client's clock when there is a front end, else as the router judged it. */
  const onTime = (r: SimRequest | SimPipelineRequest, sloMet: boolean) =>
    frontEnd ? clock.now() - r.sent <= r.budget : sloMet;
  /** A request as the gateway hands it on: arrived now, its deadline set from its budget (as the gateway does). */
  const received = <R extends SimRequest | SimPipelineRequest>(r: R): R => {
    r.arrival = clock.now();
    r.deadline = r.arrival + r.budget;
    return r;
  };
  const actuations = { start: 0, resize: 0, stop: 0 };
  core.onControl("actuation", (kind) => actuations[kind]++);
  if (c.log) core.onControl("decision", c.log);

  // The answer functions read the request they answer as `this`: one function for all requests, no closure each.
  function answerTask(this: SimRequest, o: Outcome): void {
    if (frontEnd) frontEnd.pass("out", () => recordTask(this, o));
    else recordTask(this, o);
  }
  function recordTask(r: SimRequest, o: Outcome): void {
    const status = o.ok ? (onTime(r, o.sloMet) ? STATUS.met : STATUS.late) : failureStatus(o.reason);
    const by = o.ok ? servedBy(o.variant, o.subnet) : undefined;
    recorder.answer(
      r.target,
      r.row,
      r.sent,
      clock.now(),
      status,
      o.ok ? o.computeMs : 0,
      by ? accuracy.get(r.task)!.get(by)! : 0,
      by,
      o.ok ? o.batchSize : 0,
    );
    if (allAnswered()) clock.stop();
  }
  function answerPipeline(this: SimPipelineRequest, o: PipelineOutcome): void {
    if (frontEnd) frontEnd.pass("out", () => recordPipeline(this, o));
    else recordPipeline(this, o);
  }
  function recordPipeline(r: SimPipelineRequest, o: PipelineOutcome): void {
    const now = clock.now();
    if (!o.ok) recorder.answer(r.target, r.row, r.sent, now, failureStatus(o.reason), 0, 0, undefined, 0);
    else {
      let acc = o.accuracy;
      if (!Number.isFinite(acc)) {
        acc = 1;
        for (const s of o.stages) acc *= accuracy.get(s.task)!.get(servedBy(s.variant, s.subnet))!;
      }
      // the record names the stage that answered last (a DAG's sinks may finish in any order)
      let last = o.stages[0];
      for (const s of o.stages) if (s.finishedAt >= last!.finishedAt) last = s;
      recorder.answer(
        r.target,
        r.row,
        r.sent,
        now,
        onTime(r, o.sloMet) ? STATUS.met : STATUS.late,
        stageTotals(o.stages).computeMs,
        acc,
        last ? servedBy(last.variant, last.subnet) : undefined,
        last?.batchSize ?? 0,
      );
    }
    if (allAnswered()) clock.stop();
  }

  for (const d of config.deployment ?? []) {
    for (let k = 0; k < (d.count ?? 1); k++) {
      if (config.coldDeployment) {
        void cluster.start(d.task, d.variant, d.cores);
        continue;
      }
      const r = cluster.place(d.task, d.variant, d.cores);
      if (!r.ok) throw new Error(`deployment ${d.task}/${d.variant} × ${d.cores} cores does not fit: ${r.message}`);
    }
  }
  config.observe?.(core);
  core.start();

  // Fan-out as recorded: each stage's rows become, per row, a draw from what its serving variant produced.
  const fanRng = new Xoshiro128((config.seed ?? 1) + 0xfa9);
  const fanOut = [...pipelines.values()].some((p) => p.fanOut)
    ? (p: SimPipeline, sourceRows: number) => {
        const graph = p.graph ?? chainGraph(p.stages);
        const emitted = new Map<string, number>();
        return (task: string, upstream: ReadonlyMap<string, StageResult>): StageInput | null => {
          const node = graph.stages.find((s) => s.task === task)!;
          if (node.after.length === 0) return { input: null, rows: sourceRows };
          let rows = 0;
          for (const [from, r] of upstream) {
            if (r.skipped) continue;
            let out = emitted.get(from);
            if (out === undefined) {
              const samples = p.fanOut?.[from]?.[r.variants[0] ?? ""] ?? Object.values(p.fanOut?.[from] ?? {})[0];
              out = 0;
              for (let k = 0; k < r.rows; k++)
                out += samples ? samples[Math.floor(fanRng.next() * samples.length)]! : 1;
              emitted.set(from, out);
            }
            rows = Math.max(rows, out);
          }
          return rows > 0 ? { input: null, rows } : null;
        };
      }
    : null;
  let lastArrival = 0;
  for (const a of config.arrivals) {
    if (a.times.length === 0) continue;
    lastArrival = Math.max(lastArrival, a.times[a.times.length - 1]!);
    const target = targetIndex.get(a.target)!;
    const pipeline = pipelines.get(a.target);
    const first = tasks.get(pipeline ? pipeline.stages[0]! : a.target)!;
    const sloMs = pipeline ? pipeline.sloMs : first.sloMs;
    const floor = a.minAccuracy ?? (pipeline ? pipeline.minAccuracy : first.minAccuracy) ?? 0;
    const rows = a.rows ?? 1;
    const priority = a.priority ?? 1;
    const skip = a.skip && a.skip.length > 0 ? new Set(a.skip) : undefined;
    const { times, budgets } = a;
    let i = 0;
    // one pending clock event per stream, the same one each time: the heap stays small whatever the trace length
    let next: Timer | null = null;
    const fire = (): void => {
      const now = clock.now();
      const budget = budgets ? budgets[i]! : sloMs;
      const deadline = now + budget;
      i++;
      if (i < times.length) next = clock.rearm(next, times[i]!, fire);
      else streamsLeft--;
      const row = recorder.arrival(target, now, deadline);
      if (pipeline) {
        const p: SimPipelineRequest = {
          id: "",
          pipeline: pipeline.name,
          arrival: now,
          deadline,
          priority,
          minAccuracy: floor,
          rows,
          input: null,
          ...(skip ? { skip } : {}),
          ...(fanOut ? { stageInput: fanOut(pipeline, rows) } : {}),
          done: answerPipeline,
          target,
          row,
          sent: now,
          budget,
        };
        if (frontEnd) frontEnd.pass("in", () => core.submitPipeline(received(p)));
        else core.submitPipeline(p);
      } else {
        const r: SimRequest = {
          seq: core.router.nextSeq(),
          id: "",
          task: first.name,
          arrival: now,
          deadline,
          priority,
          rows,
          minAccuracy: floor,
          lateOk: first.lateOk ?? false,
          input: null,
          done: answerTask,
          target,
          row,
          sent: now,
          budget,
        };
        if (frontEnd) frontEnd.pass("in", () => core.submit(received(r)));
        else core.submit(r);
      }
      if (streamsLeft === 0 && allAnswered()) clock.stop();
    };
    next = clock.setTimer(times[0]!, fire);
  }
  const secondTick = () => {
    recorder.roll(clock.now());
    clock.setTimer(clock.now() + 1000, secondTick);
  };
  clock.setTimer(1000, secondTick);

  if (!allAnswered()) await clock.runUntil(lastArrival + (config.drainMs ?? 60_000));
  core.stop();
  const controller = core.controller;
  const end = clock.now();
  recorder.end(end);

  const t = recorder.tally;
  const violations = t.requests - t.met;
  const perTarget: Record<string, TargetSummary> = {};
  recorder.perTarget.forEach((x, i) => {
    if (x.requests > 0)
      perTarget[targets[i]!] = { requests: x.requests, met: x.met, attainmentPct: (100 * x.met) / x.requests };
  });
  const wallMs = performance.now() - wall0;
  const summary: SimSummary = {
    requests: t.requests,
    served: t.served,
    met: t.met,
    late: t.late,
    dropped: t.dropped,
    rejected: t.rejected,
    failed: t.failed,
    unanswered: t.requests - t.answered,
    violations,
    attainmentPct: t.requests > 0 ? (100 * t.met) / t.requests : Number.NaN,
    violationPct: t.requests > 0 ? (100 * violations) / t.requests : Number.NaN,
    latencyP50Ms: recorder.latency.quantile(0.5),
    latencyP99Ms: recorder.latency.quantile(0.99),
    latencyMeanMs: recorder.latency.mean(),
    waitMeanMs: t.served > 0 ? t.waitSumMs / t.served : Number.NaN,
    meanAccuracy: t.served > 0 ? t.accuracySum / t.served : Number.NaN,
    meanCores: end > 0 ? cluster.coreMsUntilNow() / end : cluster.coresInUse(),
    meanPooled: end > 0 ? cluster.poolWorkerMsUntilNow() / end : (cluster.pooled ?? 0),
    peakCores: cluster.peakCoresInUse,
    simulatedSeconds: end / 1000,
    perTarget,
    actuations,
    decisions: controller?.taken ?? 0,
    decisionsSkipped: controller?.skipped ?? 0,
    events: clock.events,
    flushes: clock.flushes,
    wallMs,
    requestsPerWallSecond: (t.requests * 1000) / Math.max(wallMs, 1e-9),
  };
  return {
    summary,
    series: recorder.series,
    records: recorder.records(),
    decisions: controller ? [...controller.decisions] : [],
  };
}

function nodeList(nodes: SimulationConfig["nodes"]): readonly number[] {
  if (Array.isArray(nodes)) return nodes as readonly number[];
  const { count, cores } = nodes as { count: number; cores: number };
  return Array.from({ length: count }, () => cores);
}

/** A simulated task as the serving core takes it. */
function coreTaskOf(t: SimTask, deployment: SimDeployment[] | undefined): CoreTask {
  return {
    model: { name: t.name, sloMs: t.sloMs, variants: t.variants.map(simVariantModel) },
    scheduling: typeof t.scheduling === "function" ? t.scheduling() : makeSchedulingPolicy(t.scheduling ?? "edf"),
    maxQueue: t.maxQueue ?? 1024,
    lateOk: t.lateOk ?? false,
    scaling:
      typeof t.scaling === "function"
        ? t.scaling()
        : t.scaling
          ? makeScalingPolicy(t.scaling, t.scalingSettings)
          : undefined,
    scaleVariant: t.scaleVariant ?? deployment?.find((d) => d.task === t.name)?.variant,
    scaleToZeroAfterMs: t.scaleToZeroAfterMs,
    weight: t.weight,
    minCores: t.minCores,
  };
}

function validate(config: SimulationConfig, tasks: Map<string, SimTask>, pipelines: Map<string, SimPipeline>): void {
  if (tasks.size !== config.tasks.length) throw new Error("task names must be unique");
  if (pipelines.size !== (config.pipelines ?? []).length) throw new Error("pipeline names must be unique");
  for (const t of config.tasks) {
    if (t.variants.length === 0) throw new Error(`simulated task '${t.name}' has no variants`);
    if (!(t.sloMs > 0)) throw new Error(`simulated task '${t.name}' needs a positive sloMs`);
  }
  for (const p of pipelines.values()) {
    if (tasks.has(p.name)) throw new Error(`'${p.name}' is both a task and a pipeline`);
    if (p.stages.length === 0) throw new Error(`pipeline '${p.name}' has no stages`);
    for (const s of p.stages)
      if (!tasks.has(s)) throw new Error(`pipeline '${p.name}' names unknown stage task '${s}'`);
    if (p.graph) {
      const problems = graphProblems(p.graph);
      if (problems.length > 0) throw new Error(`pipeline '${p.name}': ${problems.join("; ")}`);
      if (stageTasks(p.graph).join() !== p.stages.join())
        throw new Error(
          `pipeline '${p.name}': its graph's stages (${stageTasks(p.graph).join(", ")}) differ from 'stages'`,
        );
    }
  }
  for (const a of config.arrivals) {
    if (!tasks.has(a.target) && !pipelines.has(a.target))
      throw new Error(`arrivals for unknown task or pipeline '${a.target}'`);
    let prev = 0;
    for (let i = 0; i < a.times.length; i++) {
      const x = a.times[i]!;
      if (!(x >= prev) || !Number.isFinite(x))
        throw new Error(
          `arrival times of '${a.target}' must be finite, ≥ 0 and sorted ascending; element ${i} is ${x} after ${prev}`,
        );
      prev = x;
    }
    if (a.budgets && a.budgets.length < a.times.length)
      throw new Error(`arrivals of '${a.target}': ${a.budgets.length} budgets for ${a.times.length} requests`);
  }
  for (const s of config.slowdowns ?? []) {
    if (!(s.factor > 0) || !(s.atMs >= 0))
      throw new Error(`slowdown needs atMs ≥ 0 and factor > 0, got ${JSON.stringify(s)}`);
    if ((s.node === undefined) === (s.instance === undefined))
      throw new Error(`a slowdown names a node or an instance (one of them): ${JSON.stringify(s)}`);
  }
  for (const d of config.deployment ?? []) {
    const t = tasks.get(d.task);
    if (!t) throw new Error(`deployment names unknown task '${d.task}'`);
    if (!t.variants.some((v) => v.name === d.variant))
      throw new Error(`deployment names unknown variant '${d.variant}' of task '${d.task}'`);
  }
}
