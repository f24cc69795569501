// Assembles a running sloserve: repository → local cluster → router (+ policies) → gateway →
// REST and gRPC front-ends, with metrics; and takes it down gracefully.
import Fastify from "fastify";
import pino from "pino";
import { OnDemandScaler } from "../autoscaler/on-demand.js";
import { LocalCluster } from "../cluster/local/local-cluster.js";
import { ServerMetrics } from "../metrics/metrics.js";
import type { TaskModel } from "../policies/types.js";
import { RealClock } from "../router/clock.js";
import { Router } from "../router/router.js";
import { loadRepository, type Repository } from "../repository/repository.js";
import { Controller, type Decision, type ScaledPipeline, type ScaledTask } from "../autoscaler/controller.js";
import { TaskMeter } from "../autoscaler/meter.js";
import { makeScalingPolicy } from "../autoscaler/policies/index.js";
import { plansPipelines } from "../autoscaler/types.js";
import { MaxTrendForecaster } from "../autoscaler/forecast/max-trend.js";
import { loadLstmForecaster } from "../autoscaler/forecast/lstm.js";
import type { Clock } from "../router/clock.js";
import { resolveInside } from "../repository/safe-path.js";
import { SloGateway } from "./gateway.js";
import { startGrpcServer } from "./grpc.js";
import { startRestServer } from "./rest.js";
import { variantInfo, variantModel } from "./variant-model.js";
import { HotLoop } from "../worker/hot-loop.js";
import { LiveAggregator } from "../dashboard/live.js";
import { decisionView, PipelineObservingGateway, recordOutcome, targetsOf } from "../dashboard/feeds.js";
import { registerDashboard } from "../dashboard/routes.js";

export interface DeploySpec {
  task: string;
  variant: string;
  cores: number;
}

export interface ServeOptions {
  modelsDir: string;
  host?: string;
  httpPort?: number;
  grpcPort?: number;
  /** Port of the Triton-compatible metrics (nv_inference_*), like Triton's :8002; 0 picks a free one. */
  metricsPort?: number;
  /** Core budget (default: all cores of the machine). */
  cores: number;
  /** Instances to start before turning ready (default: one 1-core instance per task while cores last). */
  deploy?: DeploySpec[];
  maxBodyBytes?: number;
  adminToken?: string;
  /** Batches an instance may hold (one running + prefetched). */
  slotsPerInstance?: number;
  /** Busy-poll the gateway's event loop this long around each request (ms; 0 = off). */
  hotMs?: number;
  /** Scaling policy for every task ("none" = off); default: each task's `scaling` in task.yaml. */
  autoscaler?: string;
  /** Decision interval of the control loop (ms). */
  decisionIntervalMs?: number;
  /** Load forecaster of the control loop. */
  forecaster?: "max-trend" | "lstm";
  logLevel?: string;
}

export interface RunningServer {
  httpUrl: string;
  grpcPort: number;
  /** Triton-compatible metrics endpoint. */
  tritonMetricsUrl: string;
  gateway: SloGateway;
  cluster: LocalCluster;
  router: Router;
  metrics: ServerMetrics;
  repo: Repository;
  /** The autoscaler's control loop (null when autoscaling is off). */
  controller: Controller | null;
  /** Stops admission, drains queues for up to `drainMs`, answers everything, stops the workers. */
  close(drainMs?: number): Promise<void>;
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const log = pino({ level: opts.logLevel ?? "info", base: { service: "sloserve" } }, pino.destination(2));
  const repo = await loadRepository(opts.modelsDir);
  const clock = new RealClock();
  const metrics = new ServerMetrics();
  const cluster = new LocalCluster({
    coreBudget: opts.cores,
    host: "127.0.0.1", // workers are reached over loopback; only the front-ends face clients
    modelPath: (task, variant) => resolveInside(repo.root, task, variant, "model.onnx"),
    log: (e) => log.info(e),
  });
  const models = new Map<string, TaskModel>();
  const meter = new TaskMeter(clock);
  const live = new LiveAggregator({ targets: () => targetsOf(repo), instances: () => cluster.instances() });
  let gateway: SloGateway | undefined;
  let scaler: OnDemandScaler | undefined;
  const router = new Router(
    clock,
    cluster,
    {
      arrived: (r) => {
        meter.arrival(r.task, r.deadline - r.arrival);
        live.arrived(r.task);
      },
      finished: (r, o) => {
        if (!o.ok || !o.sloMet) meter.miss(r.task);
        recordOutcome(live, r, o, clock.now());
      },
      batch: (task, variant, rows, _n, computeMs) => {
        meter.batch(task, rows, variant);
        live.batch(task, rows);
        gateway?.batchExecuted(task, variant, rows, computeMs);
      },
      demand: (task, r) => scaler?.demand(task, r) ?? false,
    },
    { slotsPerInstance: opts.slotsPerInstance },
  );
  const hot = new HotLoop(opts.hotMs ?? 0);
  gateway = new SloGateway({ repo, router, cluster, clock, metrics, models, hot });
  scaler = new OnDemandScaler(cluster, models, router, clock, (e) => log.info(e));
  cluster.onChange(() => {
    const rows = new Map<string, { model: string; version: string; instances: number; cores: number }>();
    for (const i of cluster.instances()) {
      if (i.state === "stopped") continue;
      const key = `${i.task}/${i.variant}`;
      const row = rows.get(key) ?? { model: i.task, version: i.variant, instances: 0, cores: 0 };
      row.instances += 1;
      row.cores += i.cores;
      rows.set(key, row);
    }
    metrics.setDeployment([...rows.values()]);
  });

  const host = opts.host ?? "127.0.0.1";
  const deployment = opts.deploy ?? defaultDeployment(repo, opts.cores);
  const controller = await makeController(repo, opts, {
    clock,
    cluster,
    router,
    meter,
    deployment,
    metrics,
    log: (d) => log.info({ event: "decision", ...d }),
    decided: (d) => live.decision(decisionView(d, performance.timeOrigin + d.at)),
    reclaim: (cores, task) => scaler?.reclaim(cores, task) ?? Promise.resolve(0),
  });
  const tritonMetrics = Fastify({ logger: false });
  let rest: Awaited<ReturnType<typeof startRestServer>> | undefined;
  let grpc: Awaited<ReturnType<typeof startGrpcServer>> | undefined;
  let tritonMetricsUrl: string;
  const front = new PipelineObservingGateway(gateway, repo, live);
  try {
    for (const spec of deployment) {
      const r = await cluster.start(spec.task, spec.variant, spec.cores);
      if (!r.ok) log.warn({ event: "deploy_failed", ...spec, message: r.message });
    }
    gateway.markStarted();
    controller?.start();
    live.start();
    rest = await startRestServer(front, {
      host,
      port: opts.httpPort ?? 8000,
      maxBodyBytes: opts.maxBodyBytes ?? 64 * 2 ** 20,
      adminToken: opts.adminToken,
      metrics,
      extend: (app) => registerDashboard(app, live, repo),
    });
    grpc = await startGrpcServer(front, {
      host,
      port: opts.grpcPort ?? 8001,
      adminToken: opts.adminToken,
      maxMessageBytes: opts.maxBodyBytes,
      metrics,
    });
    tritonMetrics.get("/metrics", async (_req, reply) =>
      reply.type(metrics.contentType).send(await metrics.tritonText()),
    );
    tritonMetricsUrl = `${await tritonMetrics.listen({ host, port: opts.metricsPort ?? 8002 })}/metrics`;
  } catch (err) {
    // a port in use or a failed start must not leave worker processes behind
    live.stop();
    await Promise.allSettled([rest?.app.close(), grpc?.close(0), tritonMetrics.close(), cluster.shutdown()]);
    throw err;
  }
  log.info({
    event: "serving",
    http: rest.url,
    grpc_port: grpc.port,
    triton_metrics: tritonMetricsUrl,
    cores: opts.cores,
    instances: cluster.instances().map((i) => `${i.id}×${i.cores}`),
  });

  let closed: Promise<void> | undefined;
  return {
    httpUrl: rest.url,
    grpcPort: grpc.port,
    tritonMetricsUrl,
    gateway,
    cluster,
    router,
    metrics,
    repo,
    controller,
    close(drainMs = 10_000) {
      closed ??= (async () => {
        gateway!.stopAdmission();
        hot.stop();
        controller?.stop();
        live.stop();
        await router.shutdown(drainMs, (ms) => new Promise((r) => setTimeout(r, ms)));
        await Promise.all([rest!.app.close(), grpc!.close(1000), tritonMetrics.close()]);
        await controller?.close();
        await cluster.shutdown();
        log.info({ event: "stopped" });
      })();
      return closed;
    },
  };
}

interface LoopParts {
  clock: Clock;
  cluster: LocalCluster;
  router: Router;
  meter: TaskMeter;
  deployment: DeploySpec[];
  metrics: ServerMetrics;
  /** Decisions that changed something or actuated. */
  log: (d: Decision) => void;
  /** Every decision, for the dashboard's feed. */
  decided: (d: Decision) => void;
  /** Idle cores of other tasks, for a plan that needs more than are free. */
  reclaim: (cores: number, task: string) => Promise<number>;
}

/** The control loop over every task whose scaling policy is not "none". */
async function makeController(repo: Repository, opts: ServeOptions, p: LoopParts): Promise<Controller | null> {
  const tasks: ScaledTask[] = [];
  for (const task of repo.tasks.values()) {
    const name = opts.autoscaler ?? task.config.scaling;
    if (name === "none") continue;
    const variants = [...task.variants.values()].map(variantInfo);
    const variant = p.deployment.find((d) => d.task === task.name)?.variant ?? variants[0]!.name;
    tasks.push({ task: task.name, policy: makeScalingPolicy(name), variant, variants, sloMs: task.config.slo_ms });
  }
  const pipelines: ScaledPipeline[] = [];
  for (const pl of repo.pipelines.values()) {
    const name = pl.config.scaling === undefined ? undefined : (opts.autoscaler ?? pl.config.scaling);
    if (name === undefined || name === "none") continue;
    const policy = makeScalingPolicy(name);
    if (!plansPipelines(policy)) continue; // `--autoscaler kpa` and the like scale each stage on its own
    const stages = pl.config.stages
      .map((st) => tasks.find((t) => t.task === st))
      .filter((t): t is ScaledTask => t !== undefined);
    if (stages.length === pl.config.stages.length)
      pipelines.push({ pipeline: pl.name, policy, stages, sloMs: pl.config.slo_ms });
  }
  if (tasks.length === 0) return null;
  const forecaster = opts.forecaster === "lstm" ? await loadLstmForecaster() : new MaxTrendForecaster();
  return new Controller(p.clock, p.cluster, p.router, p.meter, tasks, {
    intervalMs: opts.decisionIntervalMs ?? 1000,
    maxCores: p.cluster.coreBudget,
    forecaster,
    pipelines,
    onActuation: (kind, ms) => p.metrics.actuation(kind, ms),
    reclaim: p.reclaim,
    log: (d) => {
      p.decided(d);
      p.metrics.decision(d.task, d.policy, d.plan.mode ?? "plan", d.solverMs);
      if (d.changes.length > 0 || d.actuation) p.log(d);
    },
  });
}

/**
 * One 1-core instance per task while cores last, of the most accurate variant whose predicted
 * batch-1 latency is within half the task's SLO (the rest is left for queueing and batching).
 */
export function defaultDeployment(repo: Repository, cores: number): DeploySpec[] {
  const out: DeploySpec[] = [];
  for (const task of repo.tasks.values()) {
    if (out.length >= cores) break;
    const models = [...task.variants.values()].map((v) => ({ v, m: variantModel(v) }));
    const fits = models
      .filter(({ m }) => m.latency(1, 1) <= task.config.slo_ms / 2)
      .sort((a, b) => b.m.accuracy - a.m.accuracy);
    const pick = fits[0] ?? models.sort((a, b) => a.m.latency(1, 1) - b.m.latency(1, 1))[0];
    if (pick) out.push({ task: task.name, variant: pick.v.name, cores: 1 });
  }
  return out;
}
