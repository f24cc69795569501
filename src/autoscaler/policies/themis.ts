// Themis' two-stage scaling (EXPERIMENTS.md, the authors' July-2024 rule): vertical when the
// vertical solution needs extra instances or more cores than an instance has, or when the forecast
// needs more horizontal instances than the present load; while vertical, cores only go up; back to
// horizontal (1-core instances, consolidation) only after N agreeing decisions.
import { horizontal, vertical } from "../planner/dp.js";
import { unitFor, type Semantics, type StageModel } from "../planner/model.js";
import { currentPlan, uniform, type Observation, type Plan, type ScalingPolicy } from "../types.js";

export interface ThemisOptions {
  /** Consecutive horizontal-leaning decisions before consolidating (the authors used 5–10). */
  stableDecisions: number;
  semantics: Semantics;
  /** Largest batch the planner may choose (B_max). */
  maxBatch: number;
}

export const THEMIS_DEFAULTS: ThemisOptions = { stableDecisions: 5, semantics: "v1", maxBatch: 8 };

export class ThemisPolicy implements ScalingPolicy {
  readonly name: string = "themis";
  mode: "horizontal" | "vertical" = "horizontal";
  stable = 0;

  constructor(private readonly o: ThemisOptions = THEMIS_DEFAULTS) {}

  decide(obs: Observation): Plan {
    const v = obs.variants.find((x) => x.name === obs.variant)!;
    const stage: StageModel = { ...v.latency };
    const live = obs.instances.filter((i) => i.variant === v.name && i.state !== "draining" && i.state !== "stopped");
    const n = Math.max(1, live.length);
    const cNow = Math.max(1, ...live.map((i) => i.cores));
    const lambdaNow = Math.max(obs.rateNow, 1e-3);
    const lambdaPred = Math.max(obs.ratePred, lambdaNow);
    const common = { sloMs: obs.sloMs, bMax: Math.min(this.o.maxBatch, v.maxBatch), cMax: obs.maxCores, semantics: this.o.semantics, unitMs: unitFor([stage], obs.maxCores, this.o.semantics, obs.sloMs) };
    const hNow = horizontal([stage], { ...common, lambda: lambdaNow });
    const hPred = horizontal([stage], { ...common, lambda: lambdaPred });
    const vNow = vertical([stage], { ...common, lambda: lambdaNow, current: [n] });
    const surge = hNow && hPred && hPred.stages[0]!.replicas > hNow.stages[0]!.replicas;
    const needsExtra = (vNow?.extra?.[0] ?? 0) > 0;
    const needsCores = vNow !== null && vNow.stages[0]!.cores > cNow;
    if (!vNow || needsExtra || needsCores || surge) {
      this.mode = "vertical";
      this.stable = 0;
      const target = surge ? lambdaPred : lambdaNow;
      const sized = vertical([stage], { ...common, lambda: target, current: [n] });
      const cores = Math.min(obs.maxCores, Math.max(cNow, sized?.stages[0]!.cores ?? obs.maxCores));
      const count = n + (sized?.extra?.[0] ?? 0);
      const why = !vNow ? "no vertical solution" : needsExtra ? `vertical needs ${vNow.extra![0]} extra instance(s)` : needsCores ? `vertical needs ${vNow.stages[0]!.cores} cores > ${cNow}` : `forecast ${lambdaPred.toFixed(1)} req/s needs ${hPred!.stages[0]!.replicas} horizontal instances > ${hNow!.stages[0]!.replicas} now`;
      return { instances: uniform(v.name, count, cores), batch: sized?.stages[0]!.batch, reason: `${why}: vertical, ${count} × ${cores} cores (cores only go up while vertical)`, mode: "vertical" };
    }
    this.stable += 1;
    if (this.mode === "vertical" && this.stable < this.o.stableDecisions) {
      return currentPlan(obs, `load stable, ${this.stable}/${this.o.stableDecisions} agreeing decisions before consolidating`, "vertical");
    }
    this.mode = "horizontal";
    if (!hNow) return currentPlan(obs, "no horizontal solution within the SLO; keeping the configuration", "horizontal");
    const h = hNow.stages[0]!;
    return { instances: uniform(v.name, h.replicas, 1), batch: h.batch, reason: `horizontal: ${h.replicas} × 1 core, b=${h.batch} for ${lambdaNow.toFixed(1)} req/s`, mode: "horizontal" };
  }
}
