// The model repository as the dashboard's repository page shows it: tasks and their variants with
// accuracy (and where that number comes from), the measured profile points and the fitted l(b,c).
import { stageTasks } from "../autoscaler/planner/pipeline-graph.js";
import type { Repository, Variant } from "../repository/repository.js";
import type { LatencyFit } from "../repository/schema.js";

type Fit = Pick<LatencyFit, "alpha" | "beta" | "gamma" | "zeta" | "median_rel_error" | "max_rel_error">;

export interface VariantView {
  name: string;
  description: string;
  architecture: string | null;
  parameters: number | null;
  maxBatch: number;
  modelBytes: number;
  accuracy: Variant["config"]["accuracy"];
  profile: {
    measuredAt: string;
    machine: string;
    points: { batch: number; cores: number; p50: number; p99: number }[];
    fit: { p50: Fit; p99: Fit };
    loadMs: number;
    resizeMs: number;
    peakRssMb: number;
  } | null;
}

export interface RepositoryView {
  tasks: {
    name: string;
    description: string;
    sloMs: number;
    minAccuracy: number;
    scheduling: string;
    scaling: string;
    variants: VariantView[];
  }[];
  pipelines: {
    name: string;
    description: string;
    stages: string[];
    graph: { task: string; after: string[]; optional: boolean }[];
    sloMs: number;
    minAccuracy: number;
    glue: string | null;
    /** Measured end-to-end accuracy per combination of stage variants (accuracy.yaml). */
    combinations: { stages: Record<string, string>; value: number }[];
  }[];
}

export function repositoryView(repo: Repository): RepositoryView {
  return {
    tasks: [...repo.tasks.values()].map((t) => ({
      name: t.name,
      description: t.config.description,
      sloMs: t.config.slo_ms,
      minAccuracy: t.config.min_accuracy,
      scheduling: t.config.scheduling,
      scaling: t.config.scaling,
      variants: [...t.variants.values()].map(variantView),
    })),
    pipelines: [...repo.pipelines.values()].map((p) => ({
      name: p.name,
      description: p.config.description,
      stages: stageTasks(p.graph),
      graph: p.graph.stages.map((s) => ({ task: s.task, after: [...s.after], optional: s.optional })),
      sloMs: p.config.slo_ms,
      minAccuracy: p.config.min_accuracy,
      glue: p.config.glue ?? null,
      combinations: (p.record?.combinations ?? []).map((c) => ({ stages: c.stages, value: c.value })),
    })),
  };
}

function variantView(v: Variant): VariantView {
  const p = v.profile;
  const fit = (f: LatencyFit): Fit => ({
    alpha: f.alpha,
    beta: f.beta,
    gamma: f.gamma,
    zeta: f.zeta,
    median_rel_error: f.median_rel_error,
    max_rel_error: f.max_rel_error,
  });
  return {
    name: v.name,
    description: v.config.description,
    architecture: v.config.architecture ?? null,
    parameters: v.config.parameters ?? null,
    maxBatch: v.config.max_batch,
    modelBytes: v.modelBytes,
    accuracy: v.config.accuracy,
    profile: p
      ? {
          measuredAt: p.measured_at,
          machine: `${p.machine.cpu}, ${p.machine.cores} cores, onnxruntime ${p.machine.onnxruntime}`,
          points: p.points.map((x) => ({ batch: x.batch, cores: x.cores, p50: x.p50_ms, p99: x.p99_ms })),
          fit: { p50: fit(p.fit.p50), p99: fit(p.fit.p99) },
          loadMs: p.load_ms.p50,
          resizeMs: p.resize_ms.p50,
          peakRssMb: p.peak_rss_mb,
        }
      : null,
  };
}
