// Adapters from the serving parts to the live aggregator: router outcomes, controller decisions,
// the repository's targets, and end-to-end pipeline requests, which the router sees only as
// separate stage requests, so they are observed where they enter: the gateway.
import type { Decision } from "../autoscaler/controller.js";
import type { Repository } from "../repository/repository.js";
import type { Outcome, Request } from "../router/request.js";
import type { Gateway, InferRequest, InferResponse } from "../api/types.js";
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
    stages: p.config.stages,
  }));
  return [...tasks, ...pipelines];
}

/** For the router's `finished` hook; `now` is on the router's clock, like `r.arrival`. */
export function recordOutcome(live: LiveAggregator, r: Request, o: Outcome, now: number): void {
  if (o.ok)
    live.finished(r.task, o.subnet ? `${o.variant}/${o.subnet}` : o.variant, o.finishedAt - r.arrival, o.sloMet);
  else live.finished(r.task, null, now - r.arrival, false);
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

/** The same gateway, with every pipeline request counted end to end (arrival, latency, SLO met). */
export class PipelineObservingGateway implements Gateway {
  constructor(
    private readonly inner: Gateway,
    private readonly repo: Repository,
    private readonly feed: LiveAggregator,
  ) {}

  async infer(req: InferRequest): Promise<InferResponse> {
    if (!this.repo.pipelines.has(req.model)) return this.inner.infer(req);
    const start = performance.now();
    this.feed.arrived(req.model);
    try {
      const res = await this.inner.infer(req);
      const latencyUs = res.parameters.latency_us;
      const latencyMs = typeof latencyUs === "number" ? latencyUs / 1000 : performance.now() - start;
      this.feed.finished(
        req.model,
        String(res.parameters.variant ?? req.model),
        latencyMs,
        res.parameters.slo_met === true,
      );
      return res;
    } catch (err) {
      this.feed.finished(req.model, null, performance.now() - start, false);
      throw err;
    }
  }

  metadata: Gateway["metadata"] = () => this.inner.metadata();
  live: Gateway["live"] = () => this.inner.live();
  ready: Gateway["ready"] = () => this.inner.ready();
  modelReady: Gateway["modelReady"] = (m, v) => this.inner.modelReady(m, v);
  modelMetadata: Gateway["modelMetadata"] = (m, v) => this.inner.modelMetadata(m, v);
  modelConfig: Gateway["modelConfig"] = (m, v) => this.inner.modelConfig(m, v);
  statistics: Gateway["statistics"] = (m, v) => this.inner.statistics(m, v);
  repositoryIndex: Gateway["repositoryIndex"] = (readyOnly) => this.inner.repositoryIndex(readyOnly);
  load: Gateway["load"] = (m) => this.inner.load(m);
  unload: Gateway["unload"] = (m) => this.inner.unload(m);
}
