// Prometheus metrics in two expositions of the same measurements:
// - sloserve's own, on the REST port at /metrics, named by Prometheus conventions (base units,
//   `_total` counters) so that `promtool check metrics` accepts it: request outcomes, durations,
//   SLO met/missed, a latency histogram, instances and cores per variant, autoscaler decisions;
// - Triton's families and units (`nv_inference_*`, microseconds) on a separate metrics port, as
//   Triton serves them on :8002, so existing Triton dashboards work unchanged. Triton's names break
//   promtool's naming lints (`_count` suffix, `_us` units, counters without `_total`), which is
//   why they do not share the promtool-clean endpoint. `model` = task or pipeline, `version` = variant.
import client from "prom-client";
import { CpuSampler } from "./cpu.js";

type MV = "model" | "version";

/** sloserve's failure causes in Triton's `reason` vocabulary (REJECTED, CANCELED, BACKEND, OTHER). */
export const TRITON_REASON: Record<string, "REJECTED" | "CANCELED" | "BACKEND" | "OTHER"> = {
  // refused by the scheduler: queue full, deadline unreachable (Triton's queue timeout), no instance
  queue_full: "REJECTED",
  overloaded: "REJECTED",
  deadline: "REJECTED",
  no_capacity: "REJECTED",
  // the instance (Triton's backend) failed while running the batch
  instance_failed: "BACKEND",
  // answered by the core without running: drained at shutdown or unloaded
  shutdown: "CANCELED",
  // the client went away (disconnected, cancelled its call, its own deadline passed)
  cancelled: "CANCELED",
};

class TritonFamilies {
  readonly registry = new client.Registry();
  readonly success: client.Counter<MV>;
  readonly failure: client.Counter<MV | "reason">;
  readonly inferences: client.Counter<MV>;
  readonly executions: client.Counter<MV>;
  readonly pending: client.Gauge<MV>;
  readonly requestUs: client.Counter<MV>;
  readonly queueUs: client.Counter<MV>;
  readonly computeUs: client.Counter<MV>;
  readonly computeInputUs: client.Counter<MV>;
  readonly computeOutputUs: client.Counter<MV>;

  constructor() {
    const r = [this.registry];
    const mv: MV[] = ["model", "version"];
    this.success = new client.Counter({
      name: "nv_inference_request_success",
      help: "Number of successful inference requests, all batch sizes",
      labelNames: mv,
      registers: r,
    });
    this.failure = new client.Counter({
      name: "nv_inference_request_failure",
      help: "Number of failed inference requests, all batch sizes",
      labelNames: [...mv, "reason"],
      registers: r,
    });
    this.inferences = new client.Counter({
      name: "nv_inference_count",
      help: "Number of inferences performed (does not include cached requests)",
      labelNames: mv,
      registers: r,
    });
    this.executions = new client.Counter({
      name: "nv_inference_exec_count",
      help: "Number of model executions performed (does not include cached requests)",
      labelNames: mv,
      registers: r,
    });
    this.pending = new client.Gauge({
      name: "nv_inference_pending_request_count",
      help: "Instantaneous number of pending requests awaiting execution per-model.",
      labelNames: mv,
      registers: r,
    });
    this.requestUs = new client.Counter({
      name: "nv_inference_request_duration_us",
      help: "Cumulative inference request duration in microseconds (includes cached requests)",
      labelNames: mv,
      registers: r,
    });
    this.queueUs = new client.Counter({
      name: "nv_inference_queue_duration_us",
      help: "Cumulative inference queuing duration in microseconds (includes cached requests)",
      labelNames: mv,
      registers: r,
    });
    this.computeUs = new client.Counter({
      name: "nv_inference_compute_infer_duration_us",
      help: "Cumulative compute inference duration in microseconds (does not include cached requests)",
      labelNames: mv,
      registers: r,
    });
    this.computeInputUs = new client.Counter({
      name: "nv_inference_compute_input_duration_us",
      help: "Cumulative compute input duration in microseconds (does not include cached requests)",
      labelNames: mv,
      registers: r,
    });
    this.computeOutputUs = new client.Counter({
      name: "nv_inference_compute_output_duration_us",
      help: "Cumulative inference compute output duration in microseconds (does not include cached requests)",
      labelNames: mv,
      registers: r,
    });
    // Triton's CPU metrics (Linux: /proc/stat, /proc/meminfo), sampled when scraped
    const cpu = new CpuSampler();
    new client.Gauge({
      name: "nv_cpu_utilization",
      help: "CPU utilization rate [0.0 - 1.0]",
      registers: r,
      collect() {
        this.set(cpu.utilization());
      },
    });
    new client.Gauge({
      name: "nv_cpu_memory_total_bytes",
      help: "CPU total memory (RAM), in bytes",
      registers: r,
      collect() {
        this.set(cpu.memory().total);
      },
    });
    new client.Gauge({
      name: "nv_cpu_memory_used_bytes",
      help: "CPU used memory (RAM), in bytes",
      registers: r,
      collect() {
        this.set(cpu.memory().used);
      },
    });
  }
}

export class ServerMetrics {
  readonly registry = new client.Registry();
  readonly triton = new TritonFamilies();
  private readonly success: client.Counter<MV>;
  private readonly failure: client.Counter<MV | "reason">;
  private readonly inferences: client.Counter<MV>;
  private readonly executions: client.Counter<MV>;
  private readonly pending: client.Gauge<"model">;
  private readonly requestSeconds: client.Counter<MV>;
  private readonly queueSeconds: client.Counter<MV>;
  private readonly computeSeconds: client.Counter<MV>;
  private readonly sloMet: client.Counter<MV>;
  private readonly sloMissed: client.Counter<MV | "reason">;
  private readonly latency: client.Histogram<"model">;
  private readonly batchSize: client.Histogram<MV>;
  private readonly instances: client.Gauge<MV>;
  private readonly cores: client.Gauge<MV>;
  private readonly decisions: client.Counter<"model" | "policy" | "action">;
  private readonly solverSeconds: client.Histogram<"policy">;
  private readonly actuationSeconds: client.Histogram<"kind">;
  private readonly byPriority: client.Counter<"model" | "priority" | "outcome">;
  private readonly latencyByPriority: client.Histogram<"model" | "priority">;
  private readonly cancelled: client.Counter<"model" | "where">;
  private readonly skippedBatches: client.Counter<MV>;
  private readonly scaledToZero: client.Counter<"model">;
  private readonly warmPool: client.Gauge<"state">;
  /** Reads the warm pool when scraped: workers ready now, and the size kept. */
  private poolSource: (() => { ready: number; target: number }) | null = null;

  constructor() {
    const r = [this.registry];
    const mv: MV[] = ["model", "version"];
    this.success = new client.Counter({
      name: "sloserve_inference_request_success_total",
      help: "Successful inference requests (Triton: nv_inference_request_success)",
      labelNames: mv,
      registers: r,
    });
    this.failure = new client.Counter({
      name: "sloserve_inference_request_failure_total",
      help: "Failed inference requests by reason (Triton: nv_inference_request_failure)",
      labelNames: [...mv, "reason"],
      registers: r,
    });
    this.inferences = new client.Counter({
      name: "sloserve_inferences_total",
      help: "Inferences performed; a batch of n rows counts n (Triton: nv_inference_count)",
      labelNames: mv,
      registers: r,
    });
    this.executions = new client.Counter({
      name: "sloserve_executions_total",
      help: "Model executions; a batch counts once (Triton: nv_inference_exec_count)",
      labelNames: mv,
      registers: r,
    });
    this.pending = new client.Gauge({
      name: "sloserve_pending_requests",
      help: "Requests waiting in the queue (Triton: nv_inference_pending_request_count)",
      labelNames: ["model"],
      registers: r,
    });
    this.requestSeconds = new client.Counter({
      name: "sloserve_request_duration_seconds_total",
      help: "Cumulative request duration inside the server",
      labelNames: mv,
      registers: r,
    });
    this.queueSeconds = new client.Counter({
      name: "sloserve_queue_duration_seconds_total",
      help: "Cumulative queueing duration",
      labelNames: mv,
      registers: r,
    });
    this.computeSeconds = new client.Counter({
      name: "sloserve_compute_infer_duration_seconds_total",
      help: "Cumulative compute duration",
      labelNames: mv,
      registers: r,
    });
    this.sloMet = new client.Counter({
      name: "sloserve_slo_met_total",
      help: "Requests answered within their deadline",
      labelNames: mv,
      registers: r,
    });
    this.sloMissed = new client.Counter({
      name: "sloserve_slo_missed_total",
      help: "Requests that missed their deadline: late, dropped or rejected",
      labelNames: [...mv, "reason"],
      registers: r,
    });
    this.latency = new client.Histogram({
      name: "sloserve_request_latency_seconds",
      help: "End-to-end request latency inside the server",
      labelNames: ["model"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    });
    this.batchSize = new client.Histogram({
      name: "sloserve_batch_rows",
      help: "Rows per executed batch",
      labelNames: mv,
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers: r,
    });
    this.instances = new client.Gauge({
      name: "sloserve_instances",
      help: "Running instances per variant",
      labelNames: mv,
      registers: r,
    });
    this.cores = new client.Gauge({
      name: "sloserve_cores",
      help: "Cores allocated per variant",
      labelNames: mv,
      registers: r,
    });
    this.decisions = new client.Counter({
      name: "sloserve_autoscaler_decisions_total",
      help: "Autoscaler decisions by action",
      labelNames: ["model", "policy", "action"],
      registers: r,
    });
    this.solverSeconds = new client.Histogram({
      name: "sloserve_autoscaler_solver_seconds",
      help: "Time a scaling policy took to decide",
      labelNames: ["policy"],
      buckets: [0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05],
      registers: r,
    });
    this.actuationSeconds = new client.Histogram({
      name: "sloserve_actuation_seconds",
      help: "Time to start, resize or stop an instance",
      labelNames: ["kind"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    });
    this.byPriority = new client.Counter({
      name: "sloserve_requests_by_priority_total",
      help: "Answered requests by priority class (1 = highest) and outcome: met, late, or the failure reason",
      labelNames: ["model", "priority", "outcome"],
      registers: r,
    });
    this.latencyByPriority = new client.Histogram({
      name: "sloserve_request_latency_by_priority_seconds",
      help: "End-to-end latency inside the server of served requests, by priority class",
      labelNames: ["model", "priority"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    });
    this.cancelled = new client.Counter({
      name: "sloserve_cancelled_requests_total",
      help: "Requests their client gave up on, by where they were: queued, or dispatched in a batch",
      labelNames: ["model", "where"],
      registers: r,
    });
    this.skippedBatches = new client.Counter({
      name: "sloserve_skipped_batches_total",
      help: "Batches sent to an instance and skipped unrun because every request in them was cancelled",
      labelNames: mv,
      registers: r,
    });
    this.scaledToZero = new client.Counter({
      name: "sloserve_scaled_to_zero_total",
      help: "Times a task's last instances were stopped after scale_to_zero_after without a request",
      labelNames: ["model"],
      registers: r,
    });
    const pool = () => this.poolSource?.();
    this.warmPool = new client.Gauge({
      name: "sloserve_warm_pool_workers",
      help: "Warm-pool worker processes (onnxruntime loaded, no model): ready now, and the size the plan keeps",
      labelNames: ["state"],
      registers: r,
      collect() {
        const p = pool();
        if (!p) return;
        this.set({ state: "ready" }, p.ready);
        this.set({ state: "target" }, p.target);
      },
    });
  }

  /** A request of class `priority` answered: `outcome` is met, late, or its failure reason. */
  classOutcome(model: string, priority: number, outcome: string, servedMs?: number): void {
    const p = String(priority);
    this.byPriority.inc({ model, priority: p, outcome });
    if (servedMs !== undefined) this.latencyByPriority.observe({ model, priority: p }, servedMs / 1000);
  }

  requestCancelled(model: string, where: "queued" | "dispatched"): void {
    this.cancelled.inc({ model, where });
  }

  batchSkipped(model: string, version: string): void {
    this.skippedBatches.inc({ model, version });
  }

  taskScaledToZero(model: string): void {
    this.scaledToZero.inc({ model });
  }

  /** Where the warm pool's figures are read from at each scrape. */
  watchWarmPool(source: () => { ready: number; target: number }): void {
    this.poolSource = source;
  }

  requestServed(
    model: string,
    version: string,
    totalMs: number,
    queueMs: number,
    computeMs: number,
    sloMet: boolean,
  ): void {
    const l = { model, version };
    for (const c of [this.success, this.triton.success]) c.inc(l);
    this.requestSeconds.inc(l, totalMs / 1000);
    this.queueSeconds.inc(l, queueMs / 1000);
    this.computeSeconds.inc(l, computeMs / 1000);
    this.triton.requestUs.inc(l, Math.round(totalMs * 1000));
    this.triton.queueUs.inc(l, Math.round(queueMs * 1000));
    this.triton.computeUs.inc(l, Math.round(computeMs * 1000));
    this.latency.observe({ model }, totalMs / 1000);
    if (sloMet) this.sloMet.inc(l);
    else this.sloMissed.inc({ ...l, reason: "late" });
  }

  requestFailed(model: string, version: string, reason: string): void {
    this.failure.inc({ model, version, reason });
    this.triton.failure.inc({ model, version, reason: TRITON_REASON[reason] ?? "OTHER" });
    this.sloMissed.inc({ model, version, reason });
  }

  /**
   * Triton's compute input/output time, in sloserve's terms: turning the request's wire tensors
   * into typed tensors, and the outputs back into the response (both in the front-end, per request).
   */
  computeInputOutput(model: string, version: string, inputMs: number, outputMs: number): void {
    const l = { model, version };
    this.triton.computeInputUs.inc(l, Math.round(inputMs * 1000));
    this.triton.computeOutputUs.inc(l, Math.round(outputMs * 1000));
  }

  batchExecuted(model: string, version: string, rows: number): void {
    for (const c of [this.inferences, this.triton.inferences]) c.inc({ model, version }, rows);
    for (const c of [this.executions, this.triton.executions]) c.inc({ model, version });
    this.batchSize.observe({ model, version }, rows);
  }

  /** `version`: the version requests wait for (Triton's pending count is per model version). */
  setPending(model: string, version: string, n: number): void {
    this.pending.set({ model }, n);
    this.triton.pending.set({ model, version }, n);
  }

  setDeployment(rows: { model: string; version: string; instances: number; cores: number }[]): void {
    this.instances.reset();
    this.cores.reset();
    for (const d of rows) {
      this.instances.set({ model: d.model, version: d.version }, d.instances);
      this.cores.set({ model: d.model, version: d.version }, d.cores);
    }
  }

  decision(model: string, policy: string, action: string, solverMs: number): void {
    this.decisions.inc({ model, policy, action });
    this.solverSeconds.observe({ policy }, solverMs / 1000);
  }

  actuation(kind: "start" | "resize" | "stop", ms: number): void {
    this.actuationSeconds.observe({ kind }, ms / 1000);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  tritonText(): Promise<string> {
    return this.triton.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
