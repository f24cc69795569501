// Runs the product on virtual time: the real Router with the tasks' scheduling policies, the real
// control loop (Controller + TaskMeter + scaling policies, pipelines planned as a whole) and the
// on-demand scaler, wired as `startServer` wires them, against SimCluster instead of worker
// processes. Only the clock, the cluster and the arrivals are simulated; a pipeline request walks
// its stages as the gateway walks them (each stage queued by the end-to-end deadline, the
// accuracy floor at the last stage).
import { Controller, type Decision, type ScaledPipeline, type ScaledTask } from "../autoscaler/controller.js";
import { MaxTrendForecaster } from "../autoscaler/forecast/max-trend.js";
import type { Forecaster } from "../autoscaler/forecast/types.js";
import { TaskMeter } from "../autoscaler/meter.js";
import { OnDemandScaler } from "../autoscaler/on-demand.js";
import { makeScalingPolicy } from "../autoscaler/scaling/index.js";
import { plansPipelines, type PipelineScalingPolicy, type VariantInfo } from "../autoscaler/types.js";
import { makeSchedulingPolicy } from "../router/scheduling/index.js";
import type { TaskModel, VariantModel } from "../router/scheduling/types.js";
import type { Outcome, Request } from "../router/request.js";
import { Router } from "../router/router.js";
import { Recorder, STATUS, failureStatus, type SimRecords, type SimSeries } from "./recorder.js";
import { predictOf, type SimArrivals, type SimDeployment, type SimPipeline, type SimTask } from "./scenario.js";
import { medianDuration } from "./service-model.js";
import { SimCluster, type Placement, type SimRuntime } from "./sim-cluster.js";
import { VirtualClock, type FlushMode } from "./virtual-clock.js";

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
  };
  /** Batches an instance may hold (the router's default is 2: one running, one prefetched). */
  slotsPerInstance?: number;
  /** Start instances for requests no instance can serve, as the server does (default true). */
  onDemand?: boolean;
  /** The deployment pays its cold starts at t = 0 instead of being ready. */
  coldDeployment?: boolean;
  /** How long after the last arrival to wait for answers (default 60 s); the run ends earlier once all are answered. */
  drainMs?: number;
  /** Keep one record per request (default false). */
  records?: boolean;
  /** Keep the per-second variant mix (default: with at most 16 tasks). */
  mix?: boolean;
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
  peakCores: number;
  simulatedSeconds: number;
  /** Per task or pipeline that received arrivals. */
  perTarget: Record<string, TargetSummary>;
  actuations: { start: number; resize: number; stop: number };
  decisions: number;
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

/** An end-to-end pipeline request in flight. */
interface PipelineJob {
  pipeline: SimPipeline;
  target: number;
  row: number;
  arrival: number;
  deadline: number;
  minAccuracy: number;
  computeMs: number;
  accuracy: number;
}

/** The router's Request plus what the simulator needs to account for it, carried on the same object. */
interface SimRequest extends Request {
  target: number;
  row: number;
  job: PipelineJob | null;
  stage: number;
}

const noop = (): void => undefined;

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
      runtimes.set(`${t.name}/${v.name}`, { service: v.service, coldStart: v.coldStart, resize: v.resize, subnets });
    }
  }
  const cluster = new SimCluster(clock, {
    nodes: nodeList(config.nodes),
    placement: config.placement,
    seed: config.seed,
    runtime: (task, variant) => runtimes.get(`${task}/${variant}`)!,
  });

  const models = new Map<string, TaskModel>();
  /** Accuracy per task of each variant, and of each subnet under `variant/subnet`. */
  const accuracy = new Map<string, Map<string, number>>();
  for (const t of config.tasks) {
    const variants: VariantModel[] = t.variants.map((v) => {
      const m: VariantModel = {
        name: v.name,
        accuracy: v.accuracy,
        maxBatch: v.maxBatch,
        latency: predictOf(v),
        loadMs: v.loadMs ?? medianDuration(v.coldStart),
      };
      return v.subnets
        ? { ...m, subnets: v.subnets.map((s) => ({ ...m, subnet: s.name, accuracy: s.accuracy, latency: s.predict })) }
        : m;
    });
    models.set(t.name, { name: t.name, sloMs: t.sloMs, variants });
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
  const meter = new TaskMeter(clock);
  let streamsLeft = config.arrivals.filter((a) => a.times.length > 0).length;
  const allAnswered = () => streamsLeft === 0 && recorder.tally.answered === recorder.tally.requests;
  let scaler: OnDemandScaler | undefined;

  const makeRequest = (
    task: SimTask,
    arrival: number,
    deadline: number,
    rows: number,
    minAccuracy: number,
    target: number,
    row: number,
    job: PipelineJob | null,
    stage: number,
  ): SimRequest => ({
    seq: router.nextSeq(),
    id: "",
    task: task.name,
    arrival,
    deadline,
    priority: 1,
    rows,
    minAccuracy,
    lateOk: task.lateOk ?? false,
    input: null,
    done: noop,
    target,
    row,
    job,
    stage,
  });

  const finished = (req: Request, o: Outcome): void => {
    const r = req as SimRequest;
    const now = clock.now();
    const job = r.job;
    if (job === null) {
      const status = o.ok ? (o.sloMet ? STATUS.met : STATUS.late) : failureStatus(o.reason);
      const by = o.ok ? servedBy(o.variant, o.subnet) : undefined;
      recorder.answer(
        r.target,
        r.row,
        r.arrival,
        now,
        status,
        o.ok ? o.computeMs : 0,
        by ? accuracy.get(r.task)!.get(by)! : 0,
        by,
        o.ok ? o.batchSize : 0,
      );
    } else if (!o.ok) {
      recorder.answer(job.target, job.row, job.arrival, now, failureStatus(o.reason), 0, 0, undefined, 0);
    } else {
      job.computeMs += o.computeMs;
      job.accuracy *= accuracy.get(r.task)!.get(servedBy(o.variant, o.subnet))!;
      const next = r.stage + 1;
      if (next < job.pipeline.stages.length) {
        // the next stage is queued from the gateway's continuation, after this answer
        const floor = next === job.pipeline.stages.length - 1 ? job.minAccuracy : 0;
        router.submit(
          makeRequest(
            tasks.get(job.pipeline.stages[next]!)!,
            now,
            job.deadline,
            r.rows,
            floor,
            job.target,
            job.row,
            job,
            next,
          ),
        );
        return;
      }
      recorder.answer(
        job.target,
        job.row,
        job.arrival,
        now,
        now <= job.deadline ? STATUS.met : STATUS.late,
        job.computeMs,
        job.accuracy,
        servedBy(o.variant, o.subnet),
        o.batchSize,
      );
    }
    if (allAnswered()) clock.stop();
  };

  const router: Router = new Router(
    clock,
    cluster,
    {
      arrived: (r) => meter.arrival(r.task, r.deadline - r.arrival),
      finished: (r, o) => {
        if (!o.ok || !o.sloMet) meter.miss(r.task);
        finished(r, o);
      },
      batch: (task, variant, rows) => meter.batch(task, rows, variant),
      demand: config.onDemand === false ? undefined : (task, r) => scaler?.demand(task, r) ?? false,
    },
    { slotsPerInstance: config.slotsPerInstance },
  );
  if (config.onDemand !== false) scaler = new OnDemandScaler(cluster, models, router, clock);
  for (const t of config.tasks) {
    const scheduling =
      typeof t.scheduling === "function" ? t.scheduling() : makeSchedulingPolicy(t.scheduling ?? "edf");
    router.addTask({ model: models.get(t.name)!, policy: scheduling, maxQueue: t.maxQueue ?? 1024 });
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

  const actuations = { start: 0, resize: 0, stop: 0 };
  const controller = makeController(
    config,
    tasks,
    pipelines,
    clock,
    cluster,
    router,
    meter,
    actuations,
    (cores, task) => scaler?.reclaim(cores, task) ?? Promise.resolve(0),
  );
  controller?.start();

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
    const { times, budgets } = a;
    let i = 0;
    // one pending clock event per stream: the heap stays small whatever the trace length
    const fire = (): void => {
      const now = clock.now();
      const deadline = now + (budgets ? budgets[i]! : sloMs);
      i++;
      if (i < times.length) clock.setTimer(times[i]!, fire);
      else streamsLeft--;
      const row = recorder.arrival(target, now, deadline);
      const job: PipelineJob | null = pipeline
        ? { pipeline, target, row, arrival: now, deadline, minAccuracy: floor, computeMs: 0, accuracy: 1 }
        : null;
      router.submit(
        makeRequest(
          first,
          now,
          deadline,
          rows,
          pipeline && pipeline.stages.length > 1 ? 0 : floor,
          target,
          row,
          job,
          0,
        ),
      );
      if (streamsLeft === 0 && allAnswered()) clock.stop();
    };
    clock.setTimer(times[0]!, fire);
  }
  const secondTick = () => {
    recorder.roll(clock.now());
    clock.setTimer(clock.now() + 1000, secondTick);
  };
  clock.setTimer(1000, secondTick);

  if (!allAnswered()) await clock.runUntil(lastArrival + (config.drainMs ?? 60_000));
  controller?.stop();
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
    peakCores: cluster.peakCoresInUse,
    simulatedSeconds: end / 1000,
    perTarget,
    actuations,
    decisions: controller?.decisions.length ?? 0,
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

/** What served a request, as records name it: the variant, or `variant/subnet` for a supernet's subnet. */
function servedBy(variant: string, subnet: string | undefined): string {
  return subnet === undefined ? variant : `${variant}/${subnet}`;
}

function nodeList(nodes: SimulationConfig["nodes"]): readonly number[] {
  if (Array.isArray(nodes)) return nodes as readonly number[];
  const { count, cores } = nodes as { count: number; cores: number };
  return Array.from({ length: count }, () => cores);
}

function makeController(
  config: SimulationConfig,
  tasks: Map<string, SimTask>,
  pipelines: Map<string, SimPipeline>,
  clock: VirtualClock,
  cluster: SimCluster,
  router: Router,
  meter: TaskMeter,
  actuations: SimSummary["actuations"],
  reclaim: (cores: number, task: string) => Promise<number>,
): Controller | null {
  const stageOf = (t: SimTask): Omit<ScaledTask, "policy"> => {
    const variants: VariantInfo[] = t.variants.map((v) => ({
      name: v.name,
      accuracy: v.accuracy,
      maxBatch: v.maxBatch,
      latency: v.fit,
      loadMs: v.loadMs ?? medianDuration(v.coldStart),
    }));
    const variant = t.scaleVariant ?? config.deployment?.find((d) => d.task === t.name)?.variant ?? variants[0]!.name;
    return { task: t.name, variant, variants, sloMs: t.sloMs };
  };
  const scaled: ScaledTask[] = [];
  for (const t of tasks.values()) {
    if (!t.scaling) continue;
    scaled.push({
      ...stageOf(t),
      policy: typeof t.scaling === "function" ? t.scaling() : makeScalingPolicy(t.scaling, t.scalingSettings),
    });
  }
  const joint: ScaledPipeline[] = [];
  for (const p of pipelines.values()) {
    if (!p.scaling) continue;
    const policy = typeof p.scaling === "function" ? p.scaling() : makeScalingPolicy(p.scaling);
    if (!plansPipelines(policy))
      throw new Error(
        `scaling policy '${policy.name}' cannot plan pipeline '${p.name}' as a whole; give its stage tasks their own scaling instead`,
      );
    joint.push({
      pipeline: p.name,
      policy: policy as PipelineScalingPolicy,
      stages: p.stages.map((s) => stageOf(tasks.get(s)!)),
      sloMs: p.sloMs,
    });
  }
  if (scaled.length === 0 && joint.length === 0) return null;
  const c = config.controller ?? {};
  return new Controller(clock, cluster, router, meter, scaled, {
    intervalMs: c.intervalMs ?? 1000,
    maxCores: c.maxCores ?? cluster.maxCoresPerInstance,
    forecaster: c.forecaster ? c.forecaster() : new MaxTrendForecaster(),
    pipelines: joint,
    onActuation: (kind) => actuations[kind]++,
    reclaim,
    log: c.log,
  });
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
  for (const d of config.deployment ?? []) {
    const t = tasks.get(d.task);
    if (!t) throw new Error(`deployment names unknown task '${d.task}'`);
    if (!t.variants.some((v) => v.name === d.variant))
      throw new Error(`deployment names unknown variant '${d.variant}' of task '${d.task}'`);
  }
}
