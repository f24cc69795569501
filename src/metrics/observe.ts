// What the Prometheus metrics count, subscribed to the serving core's events: every answered request
// (a pipeline's stages under their tasks, and the pipeline under its own name, as Triton counts an
// ensemble and its composing models; a failed pipeline request only under the pipeline), every executed batch, queue depths, the deployment, and the
// control loop's decisions and actuations.
import { stageTotals } from "../core/pipeline.js";
import type { ServingCore } from "../core/serving-core.js";
import type { ServerMetrics } from "./metrics.js";

/** The one version a pipeline has (what its metadata lists). */
export const PIPELINE_VERSION = "1";

export function observeMetrics(core: ServingCore, metrics: ServerMetrics): void {
  const { router, clock, cluster } = core;
  router.on("arrived", (r) => metrics.setPending(r.task, core.bookedVersion(r), router.queueLength(r.task)));
  router.on("finished", (r, o) => {
    // the answer's own end time: every observer books the same duration (Triton's stats and metrics agree)
    const totalMs = (o.ok ? o.finishedAt : clock.now()) - r.arrival;
    if (o.ok) metrics.requestServed(r.task, o.variant, totalMs, o.queueMs, o.computeMs, o.sloMet);
    // a stage that fails a pipeline request fails the pipeline's request, counted there (below)
    else if (!r.stage) metrics.requestFailed(r.task, core.bookedVersion(r), o.reason);
    if (!r.stage)
      metrics.classOutcome(
        r.task,
        r.priority,
        o.ok ? (o.sloMet ? "met" : "late") : o.reason,
        o.ok ? totalMs : undefined,
      );
    metrics.setPending(r.task, core.bookedVersion(r), router.queueLength(r.task));
  });
  router.on("batch", (b) => metrics.batchExecuted(b.task, b.variant, b.rows));
  router.on("cancelled", (r, where) => metrics.requestCancelled(r.task, where));
  router.on("dropped", (b) => metrics.batchSkipped(b.task, b.variant));
  core.zero.on((e) => metrics.taskScaledToZero(e.task));
  if (cluster.warmPoolSize !== undefined)
    metrics.watchWarmPool(() => ({ ready: cluster.pooled ?? 0, target: cluster.warmPoolSize ?? 0 }));
  core.on("pipelineFinished", (p, o) => {
    const totalMs = (o.ok ? o.finishedAt : clock.now()) - p.arrival;
    if (!o.ok) {
      metrics.requestFailed(p.pipeline, PIPELINE_VERSION, o.reason);
      return;
    }
    const { queueMs, computeMs } = stageTotals(o.stages);
    metrics.requestServed(p.pipeline, PIPELINE_VERSION, totalMs, queueMs, computeMs, o.sloMet);
  });
  core.onControl("decision", (d) => metrics.decision(d.task, d.policy, d.plan.mode ?? "plan", d.solverMs));
  core.onControl("actuation", (kind, ms) => metrics.actuation(kind, ms));
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
}
