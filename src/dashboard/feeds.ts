// The live aggregator's feeds from the serving core: every request (a pipeline's stages under their
// tasks, the pipeline end to end under its own name), every batch, every autoscaler decision; and the
// repository's targets.
import type { Decision } from "../autoscaler/controller.js";
import { servedStages } from "../core/pipeline.js";
import type { ServingCore } from "../core/serving-core.js";
import { stageTasks } from "../autoscaler/planner/pipeline-graph.js";
import type { Repository } from "../repository/repository.js";
import { servedBy } from "../router/request.js";
import type { DecisionView, LiveAggregator, Target } from "./live.js";

export function targetsOf(repo: Repository): Target[] {
  const tasks: Target[] = [...repo.tasks.values()].map((t) => ({
    name: t.name,
    kind: "task",
    sloMs: t.config.slo_ms,
    stages: [t.name],
  }));
  const pipelines: Target[] = [...repo.pipelines.values()].map((p) => ({
    name: p.name,
    kind: "pipeline",
    sloMs: p.config.slo_ms,
    stages: stageTasks(p.graph),
    graph: p.graph.stages.map((s) => ({ task: s.task, after: [...s.after], optional: s.optional })),
  }));
  return [...tasks, ...pipelines];
}

export function observeDashboard(core: ServingCore, live: LiveAggregator): void {
  const { router, clock } = core;
  router.on("arrived", (r) => live.arrived(r.task));
  router.on("finished", (r, o) => {
    if (o.ok) live.finished(r.task, servedBy(o.variant, o.subnet), o.finishedAt - r.arrival, o.sloMet);
    else live.finished(r.task, null, clock.now() - r.arrival, false);
  });
  router.on("batch", (b) => live.batch(b.task, b.rows));
  core.on("pipelineArrived", (p) => live.arrived(p.pipeline));
  core.on("pipelineFinished", (p, o) => {
    if (o.ok)
      live.finished(
        p.pipeline,
        servedStages(o.stages, core.pipeline(p.pipeline)?.graph),
        o.finishedAt - p.arrival,
        o.sloMet,
      );
    else live.finished(p.pipeline, null, clock.now() - p.arrival, false);
  });
  core.onControl("decision", (d) => live.decision(decisionView(d, performance.timeOrigin + d.at)));
}

export function decisionView(d: Decision, atUnixMs: number): DecisionView {
  return {
    at: atUnixMs,
    task: d.task,
    policy: d.policy,
    mode: d.plan.mode ?? "plan",
    reason: d.plan.reason,
    changes: d.changes,
    before: d.inputs.instances,
    after: d.plan.instances.map((i) => `${i.variant}×${i.cores}`),
    rateNow: d.inputs.rateNow,
    ratePred: d.inputs.ratePred,
    queueLength: d.inputs.queueLength,
    misses: d.inputs.misses,
    solverMs: d.solverMs,
    actuation: d.actuation ? { ms: d.actuation.ms, failed: d.actuation.failed } : null,
  };
}
