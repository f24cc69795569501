// The live sloserve: repository → local cluster → serving core (built as the simulator builds it) →
// gateway → REST and gRPC front-ends, with its observers (metrics, statistics, the dashboard's feeds);
// and a graceful shutdown.
import Fastify from "fastify";
import pino from "pino";
import { loadLstmForecaster } from "../autoscaler/forecast/lstm.js";
import { MaxTrendForecaster } from "../autoscaler/forecast/max-trend.js";
import { SloGateway } from "../api/gateway.js";
import { startGrpcServer } from "../api/grpc.js";
import { startRestServer } from "../api/rest.js";
import { RealClock } from "../cluster/clock.js";
import { LocalCluster } from "../cluster/local/local-cluster.js";
import type { Cluster } from "../cluster/types.js";
import { coreTaskOf, corePipelineOf, type ScalingChoice } from "../core/from-repository.js";
import type { ScalingSettings } from "../autoscaler/scaling/index.js";
import { ServingCore } from "../core/serving-core.js";
import { DEFAULT_WATCHDOG } from "../router/router.js";
import { variantModel } from "../core/variant-model.js";
import { observeDashboard, targetsOf } from "../dashboard/feeds.js";
import { LiveAggregator } from "../dashboard/live.js";
import { registerDashboard } from "../dashboard/routes.js";
import { ServerMetrics } from "../metrics/metrics.js";
import { observeMetrics } from "../metrics/observe.js";
import { PipelineStageMetrics } from "../metrics/pipeline-stages.js";
import { PipelineStats } from "./pipeline-stats.js";
import { loadRepository, type Repository } from "../repository/repository.js";
import { resolveInside } from "../repository/safe-path.js";
import { subnetTableOf } from "../repository/subnets.js";
import { HotLoop } from "../worker/hot-loop.js";
import { openKubernetes, type KubernetesServeOptions } from "./kubernetes.js";
import { observeStatistics, StatsBook } from "./statistics.js";
import type { CoreSharing } from "../autoscaler/sharing.js";
import { registerLatencyModel } from "./latency-model-route.js";

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
  /** How requests are refused at admission: "predictive" (default) sheds one that would be late; "queue" only at max_queue. */
  admission?: "queue" | "predictive";
  /** A request body that stalls this long mid-way is answered 408 and its connection closed (ms; default 10 s). */
  bodyTimeoutMs?: number;
  /** Client connections held at once, beyond which new ones are closed (default 4096). */
  maxConnections?: number;
  /** gRPC calls one client connection may have open at once; more wait in the client (default 128). */
  grpcMaxStreams?: number;
  /** Busy-poll the gateway's event loop this long around each request (ms; 0 = off). */
  hotMs?: number;
  /** Scaling policy for every task ("none" = off); default: each task's `scaling` in task.yaml. */
  autoscaler?: string;
  /** Decision interval of the control loop (ms) for policies that do not state their own. */
  decisionIntervalMs?: number;
  /** Settings of the scaling policies (e.g. Themis' warm-up); default: each policy's own. */
  scalingSettings?: ScalingSettings;
  /** Load forecaster of the control loop. */
  forecaster?: "max-trend" | "lstm";
  logLevel?: string;
  /**
   * Most worker processes kept warm (onnxruntime loaded, no model) for fast starts on the local backend
   * (default 1); the control loop sizes the pool between `warmPoolMin` and this by the starts it has seen.
   */
  warmPool?: number;
  /** Fewest warm-pool workers (default: 1 when warmPool ≥ 1). */
  warmPoolMin?: number;
  /** Stop every task's last instances after this long without a request (s); default: each task.yaml's. */
  scaleToZeroAfterS?: number;
  /** Where instances run: worker processes on this machine (default), or pods of a Kubernetes cluster. */
  cluster?: "local" | "kubernetes";
  kubernetes?: Omit<KubernetesServeOptions, "coreBudget" | "log">;
  /**
   * Correct the profiles online from every batch's measured time (default true): policies then read what
   * the instances really take; false: the profiles as measured (src/core/online-latency.ts).
   */
  onlineLatency?: boolean;
  /** How the tasks share a core budget their plans overrun (default "fair"; see ControlSettings.sharing). */
  coreSharing?: CoreSharing;
}

/** Measured batch times kept per (variant, subnet, cores, batch) for `sloserve profile --update-from-serving`. */
const SERVED_SAMPLES = 256;

export interface RunningServer {
  httpUrl: string;
  grpcPort: number;
  /** Triton-compatible metrics endpoint. */
  tritonMetricsUrl: string;
  gateway: SloGateway;
  cluster: Cluster;
  /** The local backend, when instances are worker processes on this machine (null on Kubernetes). */
  local: LocalCluster | null;
  core: ServingCore;
  metrics: ServerMetrics;
  repo: Repository;
  /** Stops admission, drains queues for up to `drainMs`, answers everything, stops the workers. */
  close(drainMs?: number): Promise<void>;
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const log = pino({ level: opts.logLevel ?? "info", base: { service: "sloserve" } }, pino.destination(2));
  const repo = await loadRepository(opts.modelsDir);
  const clock = new RealClock();
  const k8s =
    opts.cluster === "kubernetes"
      ? await openKubernetes({ ...opts.kubernetes, coreBudget: opts.cores, log: (e) => log.info(e) })
      : null;
  const poolMax = opts.warmPool ?? 1;
  const poolMin = Math.min(poolMax, opts.warmPoolMin ?? Math.min(1, poolMax));
  const local = k8s
    ? null
    : new LocalCluster({
        coreBudget: opts.cores,
        shareCores: true,
        warmPool: poolMin,
        host: "127.0.0.1", // workers are reached over loopback; only the front-ends face clients
        modelPath: (task, variant) => resolveInside(repo.root, task, variant, "model.onnx"),
        subnets: (task, variant) => {
          const v = repo.tasks.get(task)?.variants.get(variant);
          return v ? subnetTableOf(v.config) : null;
        },
        log: (e) => log.info(e),
      });
  const cluster: Cluster = k8s?.cluster ?? local!;
  const deployment = opts.deploy ?? defaultDeployment(repo);
  const scaling: ScalingChoice = {
    autoscaler: opts.autoscaler,
    scaleVariant: (task) => deployment.find((d) => d.task === task)?.variant,
    settings: opts.scalingSettings,
    scaleToZeroAfterMs: opts.scaleToZeroAfterS === undefined ? undefined : opts.scaleToZeroAfterS * 1000,
  };
  const autoscaled = opts.autoscaler !== "none";
  const core = new ServingCore({
    clock,
    cluster,
    slotsPerInstance: opts.slotsPerInstance,
    watchdog: DEFAULT_WATCHDOG,
    admission: opts.admission ?? "predictive",
    control: autoscaled
      ? {
          intervalMs: opts.decisionIntervalMs ?? 1000,
          maxCores: cluster.coreBudget,
          forecaster: opts.forecaster === "lstm" ? await loadLstmForecaster() : new MaxTrendForecaster(),
          sharing: opts.coreSharing ?? "fair",
        }
      : undefined,
    log: (e) => log.info(e),
    warmPool: local && poolMax > 0 ? { min: poolMin, max: poolMax } : undefined,
    onlineLatency: opts.onlineLatency === false ? false : { keepSamples: SERVED_SAMPLES },
  });
  if (k8s) {
    const lead = (leader: boolean) => {
      core.setActive(leader);
      k8s.cluster.setActive(leader);
      log.info({ event: "leadership", leader, namespace: k8s.namespace });
    };
    lead(k8s.elector.isLeader());
    k8s.elector.onChange(lead);
  }
  for (const task of repo.tasks.values()) core.addTask(coreTaskOf(task, scaling));
  for (const p of repo.pipelines.values()) core.addPipeline(corePipelineOf(p, scaling));

  const metrics = new ServerMetrics();
  observeMetrics(core, metrics);
  new PipelineStageMetrics(metrics.registry).observe(core);
  const pipelineStats = new PipelineStats(core);
  const stats = new StatsBook();
  observeStatistics(core, stats);
  const live = new LiveAggregator({ targets: () => targetsOf(repo), instances: () => cluster.instances() });
  observeDashboard(core, live);
  core.onControl("decision", (d) => {
    if (d.changes.length > 0 || d.actuation) log.info({ event: "decision", ...d });
  });

  const hot = new HotLoop(opts.hotMs ?? 0);
  const gateway = new SloGateway({ repo, core, scaling, statistics: stats, hot });
  const host = opts.host ?? "127.0.0.1";
  const tritonMetrics = Fastify({ logger: false });
  let rest: Awaited<ReturnType<typeof startRestServer>> | undefined;
  let grpc: Awaited<ReturnType<typeof startGrpcServer>> | undefined;
  let tritonMetricsUrl: string;
  try {
    // the ports first: a port in use fails the start before any worker exists
    rest = await startRestServer(gateway, {
      host,
      port: opts.httpPort ?? 8000,
      maxBodyBytes: opts.maxBodyBytes ?? 64 * 2 ** 20,
      adminToken: opts.adminToken,
      bodyTimeoutMs: opts.bodyTimeoutMs,
      maxConnections: opts.maxConnections,
      metrics,
      extend: (app) => {
        registerDashboard(app, live, repo, () => pipelineStats.reportAll());
        registerLatencyModel(app, core);
      },
    });
    grpc = await startGrpcServer(gateway, {
      host,
      port: opts.grpcPort ?? 8001,
      adminToken: opts.adminToken,
      maxMessageBytes: opts.maxBodyBytes,
      maxStreams: opts.grpcMaxStreams,
      metrics,
    });
    tritonMetrics.get("/metrics", async (_req, reply) =>
      reply.type(metrics.contentType).send(await metrics.tritonText()),
    );
    tritonMetricsUrl = `${await tritonMetrics.listen({ host, port: opts.metricsPort ?? 8002 })}/metrics`;
    // the initial instances are the leader's to start, and only where the cluster has none yet (another
    // replica, or this one before a restart, may have started them)
    const starts = deployment
      .filter(
        (spec) => core.isActive && !cluster.instances().some((i) => i.task === spec.task && i.variant === spec.variant),
      )
      .map(async (spec) => {
        const r = await cluster.start(spec.task, spec.variant, spec.cores);
        if (!r.ok) log.warn({ event: "deploy_failed", ...spec, message: r.message });
      });
    await Promise.all(starts);
    gateway.markStarted();
    core.start();
    live.start();
  } catch (err) {
    // a port in use or a failed start must not leave worker processes behind
    live.stop();
    core.stop();
    await Promise.allSettled([
      rest?.app.close(),
      grpc?.close(0),
      tritonMetrics.close(),
      k8s?.elector.stop({ release: true }),
      k8s?.cluster.shutdown(),
      local?.shutdown(),
    ]);
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
    local,
    core,
    metrics,
    repo,
    close(drainMs = 10_000) {
      closed ??= (async () => {
        gateway.stopAdmission();
        rest!.drain();
        hot.stop();
        core.stop();
        live.stop();
        await core.router.shutdown(drainMs, (ms) => new Promise((r) => setTimeout(r, ms)));
        await rest!.settle(1000);
        await Promise.all([rest!.app.close(), grpc!.close(1000), tritonMetrics.close()]);
        await core.close();
        await k8s?.elector.stop({ release: true });
        await (k8s?.cluster ?? local!).shutdown();
        log.info({ event: "stopped" });
      })();
      return closed;
    },
  };
}

/**
 * One 1-core instance per task, of the most accurate variant whose predicted batch-1 latency is within half
 * the task's SLO (the rest is left for queueing and batching). With more tasks than cores they share cores:
 * every task serves from the start.
 */
export function defaultDeployment(repo: Repository): DeploySpec[] {
  const out: DeploySpec[] = [];
  for (const task of repo.tasks.values()) {
    const models = [...task.variants.values()].map((v) => ({ v, m: variantModel(v) }));
    const fits = models
      .filter(({ m }) => m.latency(1, 1) <= task.config.slo_ms / 2)
      .sort((a, b) => b.m.accuracy - a.m.accuracy);
    const pick = fits[0] ?? models.sort((a, b) => a.m.latency(1, 1) - b.m.latency(1, 1))[0];
    if (pick) out.push({ task: task.name, variant: pick.v.name, cores: 1 });
  }
  return out;
}
