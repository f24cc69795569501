// Per-stage metrics of pipelines, beside the end-to-end ones the pipeline has under its own name: how long
// each stage took from being queued to answered, how many rows it ran per request (a fan-out stage's
// distribution: OCR's boxes per image), how often requests skipped it, and the end-to-end accuracy of
// what served each request.
import client from "prom-client";
import type { ServingCore } from "../core/serving-core.js";
import { stageSpans } from "../core/pipeline.js";

type PS = "pipeline" | "stage";

export class PipelineStageMetrics {
  private readonly stageSeconds: client.Histogram<PS>;
  private readonly stageRows: client.Histogram<PS>;
  private readonly skipped: client.Counter<PS>;
  private readonly accuracy: client.Histogram<"pipeline">;

  constructor(registry: client.Registry) {
    const r = [registry];
    this.stageSeconds = new client.Histogram({
      name: "sloserve_pipeline_stage_duration_seconds",
      help: "Time from a pipeline stage being queued to its answer (all its pieces), per stage",
      labelNames: ["pipeline", "stage"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    });
    this.stageRows = new client.Histogram({
      name: "sloserve_pipeline_stage_rows",
      help: "Rows a pipeline stage ran for one pipeline request (fan-out: e.g. text boxes per image)",
      labelNames: ["pipeline", "stage"],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers: r,
    });
    this.skipped = new client.Counter({
      name: "sloserve_pipeline_stage_skipped_total",
      help: "Pipeline requests that skipped a stage (an optional stage skipped, or no rows to run)",
      labelNames: ["pipeline", "stage"],
      registers: r,
    });
    this.accuracy = new client.Histogram({
      name: "sloserve_pipeline_accuracy_ratio",
      help: "End-to-end accuracy of the stage variants that served each pipeline request (measured, or the product of the stages')",
      labelNames: ["pipeline"],
      buckets: [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.96, 0.97, 0.98, 0.99, 1],
      registers: r,
    });
  }

  observe(core: ServingCore): void {
    core.on("pipelineFinished", (p, o) => {
      if (!o.ok) return;
      const span = stageSpans(o.stages);
      for (const [stage, x] of span) {
        const labels = { pipeline: p.pipeline, stage };
        this.stageSeconds.observe(labels, (x.to - x.from) / 1000);
        this.stageRows.observe(labels, x.rows);
      }
      for (const stage of o.skipped) this.skipped.inc({ pipeline: p.pipeline, stage });
      if (Number.isFinite(o.accuracy)) this.accuracy.observe({ pipeline: p.pipeline }, o.accuracy);
    });
  }
}
