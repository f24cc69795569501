// IPA (Razavi et al., "IPA: Inference Pipeline Adaptation", EXPERIMENTS.md "IPA"): every 10 s, on the
// forecast load, choose per stage the variant, batch, replicas (and cores where allowed) maximising
// α·PAS − β·cores − γ·batch − switch cost under the end-to-end SLO, by the exact chain DP (or the HiGHS
// MILP, given a solver). Changing a stage's variant is a plan naming the other variant over the stage's
// whole deployment: the actuator starts the new instances before it stops the old ones, and the
// variant's measured cold start (loadMs) is charged in the objective and stated in the reason.
//
// The same solver, restricted, gives IPA's switch-only baseline RIM (replicas fixed, variant and batch
// chosen); the scale-only baselines FA2-low/high are in fa2.ts.
import type { Highs } from "highs";
import { solveIpaChain } from "../planner/ipa-dp.js";
import { solveIpaMilp } from "../planner/ipa-milp.js";
import {
  IPA_PRESETS,
  isChain,
  stageOptions,
  stageRates,
  type IpaEdge,
  type IpaPreset,
  type IpaProblem,
  type IpaSolution,
  type IpaStage,
  type IpaStagePlan,
  type IpaWeights,
} from "../planner/ipa-problem.js";
import type { VariantModel } from "../../router/scheduling/types.js";
import { reducedChain } from "../planner/pipeline-graph.js";
import { latencyOf } from "../../stats/latency-model.js";
import {
  liveInstances,
  uniform,
  type PipelineGraphObservation,
  type Observation,
  type PipelineObservation,
  type PipelineScalingPolicy,
  type Plan,
  type Stateless,
} from "../types.js";
import { StatelessPipelinePolicy } from "./stateless-pipeline.js";

/** IPA adapts every 10 s (the authors' adaptation_interval). */
export const IPA_INTERVAL_MS = 10_000;
/** ... on a forecast of the next 20 s (see ipaForecaster()). */
export const IPA_HORIZON_S = 20;

export interface IpaOptions {
  preset: IpaPreset;
  /** Overrides the preset's α, β, γ. */
  weights?: IpaWeights;
  /** PAS: the product of the stages' accuracies (EXPERIMENTS.md) or their sum (the authors' MILP). */
  accuracy: "product" | "sum";
  /**
   * Accuracy score per variant: `none` the measured accuracy; `rank` the authors' normalize_accuracy
   * (the variant's rank among its stage's, scaled to 0..1: meaningful with `sum`, since a product of
   * ranks is 0 whenever a stage runs its least accurate variant).
   */
  normalise: "none" | "rank";
  /** B_max (the authors' batching_cap). */
  maxBatch: number;
  /** Cores an instance may have; the first is the base allocation. Default [1]. */
  cores: readonly number[];
  /** Latency unit of the solver (ms); default SLO / 1000. */
  unitMs?: number;
  switchWeight: number;
  intervalMs: number;
  /** Most instances per stage (the authors' scaling_cap); default: the core budget. */
  maxReplicas?: number;
  /** Switch-only (RIM): every stage keeps exactly this many instances (a number, or one per stage). */
  fixedReplicas?: number | readonly number[];
  /** Solves with HiGHS instead of the DP (the two agree on chains; the MILP also takes DAGs). */
  highs?: Highs;
  /** The name the policy reports (ipa, rim-low, rim-high). */
  name: string;
}

export const IPA_DEFAULTS: IpaOptions = {
  preset: "balanced",
  accuracy: "product",
  normalise: "none",
  maxBatch: 8,
  cores: [1],
  switchWeight: 1,
  intervalMs: IPA_INTERVAL_MS,
  name: "ipa",
};

/** RIM's fixed replicas per stage when the operator gives none: one (low) or four (high) instances. */
export const RIM_REPLICAS = { low: 1, high: 4 } as const;

export class IpaPolicy extends StatelessPipelinePolicy implements PipelineScalingPolicy<Stateless> {
  readonly name: string;
  readonly intervalMs: number;
  private readonly o: IpaOptions;

  constructor(o: Partial<IpaOptions> = {}) {
    super();
    this.o = { ...IPA_DEFAULTS, ...o };
    if (!(this.o.preset in IPA_PRESETS))
      throw new Error(`unknown IPA preset '${this.o.preset}': use ${Object.keys(IPA_PRESETS).join(", ")}`);
    if (this.o.cores.length === 0) throw new Error("IPA: give at least one core count per instance");
    this.name = this.o.name;
    this.intervalMs = this.o.intervalMs;
  }

  get weights(): IpaWeights {
    return this.o.weights ?? IPA_PRESETS[this.o.preset];
  }

  describe(): string {
    const w = this.weights;
    const fixed = this.o.fixedReplicas;
    return `${this.o.weights ? "custom" : this.o.preset} weights α=${w.alpha} β=${w.beta} γ=${w.gamma}, PAS = ${this.o.accuracy} of ${this.o.normalise === "rank" ? "rank-normalised" : "measured"} accuracies, B_max ${this.o.maxBatch}, cores ${this.o.cores.join("/")}, ${fixed !== undefined ? `replicas fixed at ${fixed} (switch-only)` : "replicas from the load"}, every ${this.intervalMs / 1000} s, ${this.o.highs ? "HiGHS MILP" : "exact DP"}`;
  }

  decidePipeline(p: PipelineObservation, _state: Stateless): { plans: Plan[]; state: Stateless } {
    const problem = this.problem(p);
    const sol = this.withinBudget(p, problem);
    if (sol) return { plans: this.plans(p, problem, sol.solution, "", sol.note), state: null };
    // Nothing meets the SLO and carries the load: serve the load as fast as each stage can.
    const fallback = fastestPlan(problem);
    const why = `no configuration meets ${p.sloMs} ms and carries the load; fastest configuration per stage`;
    return { plans: this.plans(p, problem, fallback, why), state: null };
  }

  /**
   * The optimum, within the cores the cluster has: a plan wanting more than the core budget (at least one
   * 1-core instance per stage, which may share a core) would be cut by the control loop to what fits, and a
   * stage left short of replicas serves its accurate variant late instead of a faster one on time. Cores are
   * priced up (β doubled) until the optimum fits — a Lagrangian step on the budget, not an exact constraint;
   * if nothing fits, the unconstrained optimum stands (RIM's fixed replicas may exceed any budget).
   */
  private withinBudget(p: PipelineObservation, problem: IpaProblem): { solution: IpaSolution; note: string } | null {
    const measured = p.graph?.accuracy;
    const sol = this.solve(problem, measured);
    const cap = Math.max(p.stages[0]?.coreBudget ?? Infinity, p.stages.length);
    if (!sol || sol.cores <= cap) return sol ? { solution: sol, note: "" } : null;
    for (let k = 1; k <= 16; k++) {
      const priced = { ...problem, weights: { ...problem.weights, beta: problem.weights.beta * 2 ** k } };
      const fit = this.solve(priced, measured);
      if (fit && fit.cores <= cap)
        return {
          solution: fit,
          note: `cores priced ×${2 ** k} to fit the core budget of ${cap} (${sol.cores} wanted)`,
        };
    }
    return { solution: sol, note: "" };
  }

  /**
   * The optimum, with PAS the product of the stages' accuracies; or, where the pipeline measured its
   * accuracy per combination of stage variants (OCR's 1 − CER end to end is no product), the best over
   * those combinations, each solved with its stages held to its variants and its measured figure as PAS.
   */
  private solve(problem: IpaProblem, measured?: PipelineGraphObservation["accuracy"]): IpaSolution | null {
    const one = (q: IpaProblem) =>
      this.o.highs && q.edges && !isChain(q) ? solveIpaMilp(q, this.o.highs) : solveIpaChain(q);
    if (!measured || measured.length === 0) return one(problem);
    let best: IpaSolution | null = null;
    for (const c of measured) {
      let ok = true;
      const stages = problem.stages.map((st, i) => {
        const want = c.stages[st.name];
        const v = st.variants.find((x) => x.name === want);
        if (!v) ok = false;
        // the combination's figure is its PAS: the first stage carries it, the others count 1
        return { ...st, variants: v ? [{ ...v, accuracy: i === 0 ? c.value : 1 }] : [] };
      });
      if (!ok) continue;
      const sol = one({ ...problem, stages, accuracy: "product" });
      if (sol && (!best || sol.objective > best.objective)) best = sol;
    }
    return best;
  }

  /** The optimisation this decision solves (exposed for experiments and tests). */
  problem(p: PipelineObservation): IpaProblem {
    const fixed = this.o.fixedReplicas;
    const stages: IpaStage[] = p.stages.map((obs, i) => {
      const current = runningVariant(obs);
      return {
        name: obs.task,
        variants: scores(obs.variants, this.o.normalise),
        cores:
          this.o.cores.filter((c) => c <= obs.maxCores).length > 0
            ? this.o.cores.filter((c) => c <= obs.maxCores)
            : [1],
        lambda: stageRate(obs),
        current,
        maxReplicas: this.o.maxReplicas ?? Math.max(1, obs.coreBudget),
        fixedReplicas: fixed === undefined ? undefined : typeof fixed === "number" ? fixed : fixed[i],
      };
    });
    const graph = p.graph;
    let edges: IpaEdge[] | undefined;
    if (graph) {
      // rates along the measured fan-out of every edge; a request's latency along the graph's longest path
      const all: IpaEdge[] = graph.edges.map((e) => ({ from: e.from, to: e.to, fanOut: Math.max(e.fanOut, 1e-3) }));
      const rates = pipelineRates(p);
      stages.forEach((s, i) => {
        s.lambda = rates[i]!;
        s.rows = Math.max(1, graph.rows[s.name] ?? 1);
      });
      const chain = reducedChainOf(
        stages.map((s) => s.name),
        all,
      );
      edges = chain ? undefined : all;
      if (chain && chain.join() !== stages.map((s) => s.name).join())
        edges = chain.slice(1).map((to, i) => ({ from: chain[i]!, to }));
      if (edges && !this.o.highs) edges = undefined; // no MILP at hand: the stages in order, a conservative chain
    }
    return {
      stages,
      ...(edges ? { edges } : {}),
      lambda: stageRate(p.stages[0]!),
      sloMs: p.sloMs,
      weights: this.weights,
      bMax: this.o.maxBatch,
      unitMs: this.o.unitMs,
      accuracy: this.o.accuracy,
      switchWeight: this.o.switchWeight,
      intervalMs: this.intervalMs,
    };
  }

  private plans(p: PipelineObservation, problem: IpaProblem, sol: IpaSolution, why: string, note = ""): Plan[] {
    const summary = `PAS ${sol.pas.toFixed(4)}, ${sol.cores} cores, objective ${sol.objective.toFixed(3)}, latency ${sol.latencyMs.toFixed(1)}/${p.sloMs} ms${note ? `; ${note}` : ""}`;
    return p.stages.map((obs, i) => {
      const s = sol.stages[i]!;
      const stage = problem.stages[i]!;
      const loadMs = obs.variants.find((v) => v.name === s.variant)?.loadMs ?? 0;
      const switching =
        stage.current !== undefined && stage.current !== s.variant
          ? `; switch ${stage.current} → ${s.variant} (load ${loadMs.toFixed(0)} ms, cost ${s.switchCost.toFixed(3)})`
          : "";
      return {
        instances: uniform(s.variant, s.replicas, s.cores),
        batch: s.batch,
        mode: why ? "fallback" : this.name,
        scope: "task",
        reason: `${why ? why + ": " : ""}${this.name}: ${describeStage(s, p.stages.length > 1)}${switching}; ${summary}`,
      };
    });
  }
}

function describeStage(s: IpaStagePlan, named: boolean): string {
  return `${named ? `${s.stage} ` : ""}${s.variant} b=${s.batch}, ${s.replicas} × ${s.cores} core${s.cores > 1 ? "s" : ""} for ${s.lambda.toFixed(1)} req/s`;
}

/**
 * The rows per second each stage of a pipeline plans for: a stage's own rate (present or forecast), or,
 * in a graph, a stage after others gets what they send it: their rate times each edge's measured fan-out
 * (the largest over its inputs: a fan-in stage runs once per joined request).
 */
export function pipelineRates(p: PipelineObservation): number[] {
  const own = p.stages.map(stageRate);
  if (!p.graph) return own;
  return stageRates({
    stages: p.stages.map((obs, i) => ({
      name: obs.task,
      variants: [],
      ...(p.graph!.edges.some((e) => e.to === obs.task) ? {} : { lambda: own[i]! }),
    })),
    edges: p.graph.edges.map((e) => ({ from: e.from, to: e.to, fanOut: Math.max(e.fanOut, 1e-3) })),
    lambda: own[0]!,
    sloMs: p.sloMs,
    weights: { alpha: 0, beta: 0, gamma: 0 },
    bMax: 1,
  });
}

/**
 * The variant a stage serves with now: the task's variant while it runs, else the one most of its live
 * instances run (another scaler, e.g. the on-demand one, may have started it) — a plan naming another
 * variant is a switch, its cold start charged.
 */
export function runningVariant(obs: Observation): string | undefined {
  if (liveInstances(obs, obs.variant).length > 0) return obs.variant;
  const counts = new Map<string, number>();
  for (const i of obs.instances)
    if (i.state !== "draining" && i.state !== "stopped") counts.set(i.variant, (counts.get(i.variant) ?? 0) + 1);
  let best: string | undefined;
  for (const [v, n] of counts) if (best === undefined || n > counts.get(best)!) best = v;
  return best;
}

/** The load a stage plans for: the larger of the present rate and the forecast. */
export function stageRate(obs: Observation): number {
  return Math.max(obs.ratePred, obs.rateNow, 1e-3);
}

/** The objective's accuracy score of each variant. */
export function scores(variants: readonly VariantModel[], normalise: IpaOptions["normalise"]) {
  const ranked = [...variants].sort((a, b) => a.accuracy - b.accuracy);
  return variants.map((v) => ({
    name: v.name,
    accuracy:
      normalise === "rank" ? (variants.length === 1 ? 1 : ranked.indexOf(v) / (variants.length - 1)) : v.accuracy,
    fit: v.fit,
    maxBatch: v.maxBatch,
    loadMs: v.loadMs,
  }));
}

/** Per stage, the option with the least latency that carries the load (the SLO set aside). */
function fastestPlan(problem: IpaProblem): IpaSolution {
  const loose: IpaProblem = { ...problem, sloMs: 1e9, unitMs: 1e6 };
  const rates = stageRates(problem);
  const picks = problem.stages.map((stage, s) => {
    const opts = stageOptions(loose, s, rates[s]!);
    if (opts.length === 0) {
      // not even the replica cap carries the load: the lightest variant at its largest batch
      const v = [...stage.variants].sort((a, b) => latencyOf(a.fit, 1, 1) - latencyOf(b.fit, 1, 1))[0]!;
      const c = (stage.cores ?? [1])[0]!;
      const n = stage.fixedReplicas ?? stage.maxReplicas ?? 1;
      return {
        variant: v.name,
        batch: Math.min(problem.bMax, v.maxBatch),
        cores: c,
        replicas: n,
        accuracy: v.accuracy,
        latencyMs: 0,
        queueMs: 0,
        span: 0,
        coreCount: n * c,
        switchCost: 0,
        penalty: 0,
      };
    }
    return [...opts].sort(
      (a, b) => a.latencyMs + a.queueMs - (b.latencyMs + b.queueMs) || a.coreCount - b.coreCount,
    )[0]!;
  });
  const pas =
    problem.accuracy === "sum" ? picks.reduce((a, o) => a + o.accuracy, 0) : picks.reduce((a, o) => a * o.accuracy, 1);
  return {
    stages: picks.map((o, i) => ({ ...o, stage: problem.stages[i]!.name, lambda: rates[i]! })),
    objective: Number.NaN,
    pas,
    cores: picks.reduce((a, o) => a + o.coreCount, 0),
    batchSum: picks.reduce((a, o) => a + o.batch, 0),
    switchCost: picks.reduce((a, o) => a + o.switchCost, 0),
    latencyMs: picks.reduce((a, o) => a + o.latencyMs + o.queueMs, 0),
    span: Number.NaN,
  };
}

/** The chain a DAG's edges reduce to (an edge another path implies dropped), or null. */
function reducedChainOf(tasks: readonly string[], edges: readonly IpaEdge[]): string[] | null {
  return reducedChain({
    stages: tasks.map((t) => ({ task: t, after: edges.filter((e) => e.to === t).map((e) => e.from), optional: false })),
  });
}
