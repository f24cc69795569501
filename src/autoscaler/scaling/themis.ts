// Themis' two-stage scaling as the authors revised it in 2025 (EXPERIMENTS.md, "the revised rule"; sloserve's
// `themis`), for one task or a whole pipeline under its end-to-end SLO. Every 0.5 s, from 30 s on:
//   λ  = ceil(max of the last 5 per-second arrival counts at the pipeline's entry);
//   T  = min over stages of the capacity of what runs now, Σ_i floor(1000·b_s / lat_s(c_i, b_s)) with the
//        revised latency margin (ζ += l(1,1)/10, ceil);
//   inc = "load will exceed capacity within 10 s": the control loop's forecast of the next 10 s' maximum
//        exceeds T (the authors use an LSTM classifier here; this is sloserve's stated deviation);
//   horizontal when (not inc and λ < T) or a stage already has C_max cores, else vertical.
// Horizontal: the DP with 1-core instances for λ + √λ, cost Σ n·(mem + 18·c). A stage that needs more
// instances than it has gets the plan at once; otherwise nothing happens until 20 such decisions (10 s)
// agree, and then the plan is applied — scale-in, or consolidation of multi-core instances onto 1-core ones.
// Whenever a plan shrinks a stage's instances to 1 core, the stage gets one spare instance. Any applied
// action resets that count. Vertical: the DP at the present instance counts for λ + √λ, cores only go
// up; when even C_max cannot carry the load, instances of the largest size are added. The queue is
// budgeted as (b−1) p99 exponential inter-arrivals. The actuator makes before it breaks: new instances are
// ready before old ones shrink or stop, and a resize with no room on its node becomes a new instance of
// the new size and the old one's stop.
import { vertical, type StagesPlan } from "../planner/dp.js";
import { HorizontalMemo } from "../planner/memo.js";
import { throughput } from "../planner/model.js";
import {
  currentPlan,
  liveInstances,
  uniform,
  type Decided,
  type Observation,
  type PipelineObservation,
  type PipelineScalingPolicy,
  type Plan,
} from "../types.js";
import { planOptions, recentMax, singleStage, stageRates, stageView, type StageView } from "./stages.js";

export interface ThemisOptions {
  /** Decision interval (ms). */
  intervalMs: number;
  /** No decision before this long after the policy first sees the task (ms). */
  warmupMs: number;
  /** Seconds whose maximum per-second count is λ. */
  rateWindowS: number;
  /** Agreeing horizontal decisions before a scale-in or consolidation is applied. */
  stableDecisions: number;
  /** Largest batch the planner may choose (B_max). */
  maxBatch: number;
  /** One extra 1-core instance for a stage whose instances shrink. */
  spare: boolean;
}

export const THEMIS_DEFAULTS: ThemisOptions = {
  intervalMs: 500,
  warmupMs: 30_000,
  rateWindowS: 5,
  stableDecisions: 20,
  maxBatch: 4,
  spare: true,
};

export interface ThemisState {
  /** The last decision's mode ("warmup" before the first). */
  mode: "warmup" | "horizontal" | "vertical";
  /** Agreeing horizontal decisions since the last applied action (capped at stableDecisions). */
  stable: number;
  /** Clock ms the policy first saw the task; null before. */
  since: number | null;
  /** The batch each stage was last planned with (capacity T is computed with it); empty before any plan. */
  batch: number[];
}

const SEMANTICS = "revised" as const;
/** Sets of inputs whose answers holdsUntil and unchangedBy keep at once. */
const KEPT_INPUTS = 8;

interface Signals {
  batch: number;
  lambda: number;
  capacity: number;
  inc: boolean;
  maxed: boolean;
  fit: StageView["model"];
}
const QUEUE = "exp-p99" as const;

export class ThemisPolicy implements PipelineScalingPolicy<ThemisState> {
  readonly name: string = "themis";
  readonly intervalMs: number;

  constructor(private readonly o: ThemisOptions = THEMIS_DEFAULTS) {
    this.intervalMs = o.intervalMs;
  }

  describe(): string {
    return `revised 2025 rule: ${this.o.intervalMs / 1000}-s decisions after ${this.o.warmupMs / 1000} s, λ = max of ${this.o.rateWindowS} s, target λ+√λ, ${this.o.stableDecisions} agreeing decisions to scale in, ${this.o.spare ? "one spare instance" : "no spare"}, B_max ${this.o.maxBatch}, inc = forecast > capacity`;
  }

  initialState(): ThemisState {
    return { mode: "warmup", stable: 0, since: null, batch: [] };
  }

  steady(state: ThemisState): boolean {
    return state.mode === "horizontal" && state.stable >= this.o.stableDecisions;
  }

  /**
   * A decision that the state after it is the next of: counting agreeing horizontal decisions up to
   * stableDecisions; every other state stays as it is.
   */
  advance(state: ThemisState): ThemisState {
    return state.mode === "horizontal" && state.stable < this.o.stableDecisions
      ? { ...state, stable: state.stable + 1 }
      : state;
  }

  /**
   * Warm-up answers the same until it ends. Past it, decisions keep the instances and advance the state for
   * as long as the observation changes only as time passes: λ changes as the last seconds' counts leave its
   * window (each new λ is tried), and the forecast changes as seconds end — which matters only while it
   * could exceed the capacity T (then the promise ends with the second), not at C_max.
   */
  holdsUntil(obs: Observation, _before: ThemisState, after: ThemisState, forecastCeiling: number): number | null {
    if (after.mode === "warmup") return after.since === null ? null : after.since + this.o.warmupMs;
    if (after.since === null || after.batch.length !== 1) return null;
    const { lambda: now, capacity, maxed } = this.signals(obs, after.batch[0]!);
    if (!this.keepsAll(obs, after, now, obs.ratePred > capacity)) return null;
    const second = Math.floor(obs.now / 1000);
    if (!maxed && !(forecastCeiling <= capacity)) return (second + 1) * 1000;
    const r = obs.recent;
    let lambda = now;
    for (let k = 1; k <= r.length; k++) {
      // λ once k more seconds have passed with no arrivals, as recentMax would read the shifted counts
      let m = 0;
      for (let i = Math.max(0, r.length - this.o.rateWindowS) + k; i < r.length; i++) m = Math.max(m, r[i]!);
      const next = Math.ceil(m - 1e-9);
      if (Object.is(next, lambda)) continue;
      lambda = next;
      // (the forecast stays at most T: it does not exceed it)
      if (!this.keepsAll(obs, after, next, false, k)) return (second + k) * 1000;
    }
    return Infinity;
  }

  /**
   * Deciding on `now` from a state of the held decision's run of agreeing decisions keeps the instances and
   * advances the state when everything the rule reads is the same as it was then (warm-up: the instances;
   * past it also the variant, its served latency model, λ and whether the forecast exceeds the capacity);
   * otherwise the rule is asked.
   */
  unchangedBy(held: Observation, now: Observation, state: ThemisState): boolean {
    if (
      held.variants !== now.variants ||
      held.variant !== now.variant ||
      held.sloMs !== now.sloMs ||
      held.maxCores !== now.maxCores ||
      state.since === null ||
      !sameInstances(held.instances, now.instances)
    )
      return false;
    const warm = now.now - state.since >= this.o.warmupMs;
    if (warm !== held.now - state.since >= this.o.warmupMs) return false;
    if (!warm) return true;
    if (state.batch.length !== 1) return false;
    const a = this.signals(held, state.batch[0]!);
    const b = this.signals(now, state.batch[0]!);
    const same =
      Object.is(a.lambda, b.lambda) &&
      a.inc === b.inc &&
      Object.is(a.fit.alpha, b.fit.alpha) &&
      Object.is(a.fit.beta, b.fit.beta) &&
      Object.is(a.fit.gamma, b.fit.gamma) &&
      Object.is(a.fit.zeta, b.fit.zeta);
    return same || this.keeps(now, state, b.lambda, b.inc);
  }

  /**
   * Whether deciding keeps the instances and advances the state from every state of `state`'s run of agreeing
   * decisions, at λ `lambda` with the forecast above T or not (`inc`), on `obs` — or on it `shift` seconds
   * later with no arrivals. Below the last count the rule does the same whatever the count, so `state`, the
   * last count and the full count stand for all of them.
   */
  private keepsAll(obs: Observation, state: ThemisState, lambda: number, inc: boolean, shift = 0): boolean {
    if (!this.keeps(obs, state, lambda, inc, shift)) return false;
    if (state.mode !== "horizontal" || state.stable >= this.o.stableDecisions) return true;
    const last = this.o.stableDecisions - 1;
    return (
      (state.stable === last || this.keeps(obs, { ...state, stable: last }, lambda, inc, shift)) &&
      this.keeps(obs, { ...state, stable: this.o.stableDecisions }, lambda, inc, shift)
    );
  }

  /**
   * Whether deciding from `state` returns the instances that live now and advance(state), at λ `lambda` with
   * the forecast above T or not (`inc`), on `obs` or on it `shift` seconds later with no arrivals. Past
   * warm-up nothing else the rule reads changes with them — the instances, the variant, its served model,
   * the rest of the state — so the answers are kept by λ, `inc` and where the count stands (below its last
   * step, at it, or full) until any of that changes.
   */
  private keeps(obs: Observation, state: ThemisState, lambda: number, inc: boolean, shift = 0): boolean {
    const later = (): Observation => {
      if (shift === 0) return obs;
      const recent = [...obs.recent.slice(shift), ...new Array<number>(shift).fill(0)];
      return { ...obs, now: (Math.floor(obs.now / 1000) + shift) * 1000, recent, ratePred: 0 };
    };
    const warm = state.since !== null && obs.now - state.since >= this.o.warmupMs && state.batch.length === 1;
    if (!warm) return this.decidesToKeep(later(), state);
    const s = this.signals(obs, state.batch[0]!);
    const at = this.kept.findIndex(
      (k) =>
        k.mode === state.mode &&
        k.since === state.since &&
        k.batch === state.batch[0] &&
        k.variants === obs.variants &&
        k.variant === obs.variant &&
        k.sloMs === obs.sloMs &&
        k.maxCores === obs.maxCores &&
        sameInstances(k.instances, obs.instances) &&
        Object.is(k.fit.alpha, s.fit.alpha) &&
        Object.is(k.fit.beta, s.fit.beta) &&
        Object.is(k.fit.gamma, s.fit.gamma) &&
        Object.is(k.fit.zeta, s.fit.zeta) &&
        Object.is(k.fit.memGb, s.fit.memGb),
    );
    let answers: Map<number | string, boolean>;
    if (at >= 0) answers = this.kept[at]!.answers;
    else {
      // a few sets of inputs at once: a busy task's served model moves between a few values
      answers = new Map();
      this.kept.unshift({
        mode: state.mode,
        since: state.since,
        batch: state.batch[0]!,
        variants: obs.variants,
        variant: obs.variant,
        sloMs: obs.sloMs,
        maxCores: obs.maxCores,
        instances: obs.instances.map((i) => ({ ...i })),
        fit: s.fit,
        answers,
      });
      if (this.kept.length > KEPT_INPUTS) this.kept.pop();
    }
    const full = this.o.stableDecisions;
    const count = state.stable + 1 < full ? 0 : state.stable + 1 === full ? 1 : 2 + state.stable;
    // λ is −0 or a whole number of requests (see recentMax)
    const key =
      Number.isSafeInteger(lambda) && lambda >= 0 && count < 64
        ? (lambda * 2 + (inc ? 1 : 0)) * 64 + count
        : `${Object.is(lambda, -0) ? "-0" : lambda}|${inc}|${count}`;
    let answer = answers.get(key);
    if (answer === undefined) {
      answer = this.decidesToKeep(later(), state);
      answers.set(key, answer);
    }
    return answer;
  }

  private decidesToKeep(obs: Observation, state: ThemisState): boolean {
    const { plans, state: next } = this.decidePipeline(singleStage(obs), state);
    return sameState(next, this.advance(state)) && sameLayout(currentPlan(obs, "").instances, plans[0]!);
  }

  private readonly kept: {
    mode: ThemisState["mode"];
    since: number | null;
    batch: number;
    variants: Observation["variants"];
    variant: string;
    sloMs: number;
    maxCores: number;
    instances: Observation["instances"];
    fit: StageView["model"];
    answers: Map<number | string, boolean>;
  }[] = [];

  /** What a single-stage decision turns on besides the instances (kept per observation: it is asked twice). */
  private signals(obs: Observation, batch: number): Signals {
    const cached = this.seen.get(obs);
    if (cached && cached.batch === batch) return cached;
    // the served model, the capacity and C_max depend on what did not change since the last observation
    const last = this.lastSignals;
    let fit: StageView["model"];
    let capacity: number;
    let maxed: boolean;
    if (
      last !== null &&
      last.signals.batch === batch &&
      last.obs.served === obs.served &&
      last.obs.variant === obs.variant &&
      last.obs.variants === obs.variants &&
      last.obs.maxCores === obs.maxCores &&
      sameInstances(last.obs.instances, obs.instances)
    ) {
      ({ fit, capacity, maxed } = last.signals);
    } else {
      const view = stageView(obs);
      fit = view.model;
      capacity = liveInstances(obs).reduce((sum, inst) => sum + throughput(fit, batch, inst.cores, SEMANTICS), 0);
      maxed = view.cores >= obs.maxCores; // planOptions' C_max for one stage
    }
    const s: Signals = {
      batch,
      lambda: recentMax(obs, this.o.rateWindowS),
      capacity,
      inc: obs.ratePred > capacity,
      maxed,
      fit,
    };
    this.seen.set(obs, s);
    this.lastSignals = { obs, signals: s };
    return s;
  }

  private lastSignals: { obs: Observation; signals: Signals } | null = null;
  private readonly seen = new WeakMap<Observation, Signals>();
  private readonly hPlans = new HorizontalMemo();

  decide(obs: Observation, state: ThemisState): Decided<ThemisState> {
    const d = this.decidePipeline(singleStage(obs), state);
    return { plan: d.plans[0]!, state: d.state };
  }

  decidePipeline(p: PipelineObservation, state: ThemisState): { plans: Plan[]; state: ThemisState } {
    const since = state.since ?? p.now;
    if (p.now - since < this.o.warmupMs) {
      const left = ((this.o.warmupMs - (p.now - since)) / 1000).toFixed(1);
      return {
        plans: p.stages.map((o) => currentPlan(o, `warm-up: first decision in ${left} s`, "warmup")),
        state: { ...state, since },
      };
    }
    const views = p.stages.map(stageView);
    const models = views.map((v) => v.model);
    const common = planOptions(views, p.sloMs, SEMANTICS, this.o.maxBatch, undefined, QUEUE);
    const cMax = common.cMax;
    const lambda = stageRates(p.stages, this.o.rateWindowS);
    const target = lambda.map((l) => l + Math.sqrt(l));
    const hPlan = this.hPlans.plan(models, { ...common, cMax: 1 }, target);
    const batch = views.map((_, i) => state.batch[i] ?? hPlan?.stages[i]!.batch ?? 1);
    const capacity = views.map((v, i) =>
      liveInstances(v.obs).reduce((sum, inst) => sum + throughput(v.model, batch[i]!, inst.cores, SEMANTICS), 0),
    );
    const T = Math.min(...capacity);
    const forecast = Math.max(...p.stages.map((o) => o.ratePred));
    const inc = forecast > T;
    const below = lambda.every((l, i) => l < capacity[i]!);
    const maxed = views.findIndex((v) => v.cores >= cMax);
    const signals = `λ ${lambda[0]}, T ${T}, forecast ${forecast.toFixed(1)}${inc ? " > T" : ""}`;
    const next = { ...state, since, batch };
    if ((!inc && below) || maxed >= 0) {
      const why = maxed >= 0 ? `${this.stageName(views, maxed)}at C_max = ${cMax} cores` : "no increase expected";
      return this.horizontalStep(views, hPlan, `${signals}; ${why}`, next);
    }
    return this.verticalStep(views, common, target, signals, next);
  }

  private stageName(views: StageView[], i: number): string {
    return views.length > 1 ? `stage ${views[i]!.obs.task} ` : "";
  }

  private horizontalStep(
    views: StageView[],
    h: StagesPlan | null,
    why: string,
    state: ThemisState,
  ): { plans: Plan[]; state: ThemisState } {
    if (!h)
      return {
        plans: views.map((v) =>
          currentPlan(v.obs, `${why}: no 1-core configuration meets the SLO; keeping`, "horizontal"),
        ),
        state: { ...state, mode: "horizontal" },
      };
    const live = views.map((v) => liveInstances(v.obs));
    const out = views.map((_, i) => h.stages[i]!.replicas > live[i]!.length);
    const layout = (i: number) => {
      const v = views[i]!;
      const spare = this.o.spare && v.cores > 1 ? 1 : 0;
      return uniform(v.variant.name, h.stages[i]!.replicas + spare, 1);
    };
    const describeStage = (i: number) => {
      const v = views[i]!;
      const spare = this.o.spare && v.cores > 1;
      return `${this.stageName(views, i)}${h.stages[i]!.replicas}${spare ? " + 1 spare" : ""} × 1 core, b=${h.stages[i]!.batch}`;
    };
    if (out.some(Boolean)) {
      const plans = views.map((v, i) =>
        out[i]
          ? {
              instances: layout(i),
              batch: h.stages[i]!.batch,
              reason: `${why}: scale out now to ${describeStage(i)}`,
              mode: "horizontal",
            }
          : currentPlan(v.obs, `${why}: enough instances`, "horizontal"),
      );
      const batch = state.batch.map((b, i) => (out[i] ? h.stages[i]!.batch : b));
      return { plans, state: { ...state, mode: "horizontal", stable: 0, batch } };
    }
    const stable = Math.min(state.stable + 1, this.o.stableDecisions);
    if (stable < this.o.stableDecisions)
      return {
        plans: views.map((v) =>
          currentPlan(v.obs, `${why}: stable ${stable}/${this.o.stableDecisions} before scaling in`, "horizontal"),
        ),
        state: { ...state, mode: "horizontal", stable },
      };
    const plans: Plan[] = views.map((v, i) => ({
      instances: layout(i),
      batch: h.stages[i]!.batch,
      reason: `${why}: ${this.o.stableDecisions} agreeing decisions, ${describeStage(i)}`,
      mode: "horizontal",
    }));
    const changes = views.some((v, i) => !sameLayout(live[i]!, plans[i]!));
    return {
      plans,
      state: {
        ...state,
        mode: "horizontal",
        stable: changes ? 0 : stable,
        batch: h.stages.map((s) => s.batch),
      },
    };
  }

  private verticalStep(
    views: StageView[],
    common: ReturnType<typeof planOptions>,
    target: number[],
    signals: string,
    state: ThemisState,
  ): { plans: Plan[]; state: ThemisState } {
    const live = views.map((v) => liveInstances(v.obs));
    const v = vertical(
      views.map((x) => x.model),
      { ...common, lambda: target, current: views.map((x) => x.n) },
    );
    if (!v)
      return {
        plans: views.map((x) =>
          currentPlan(x.obs, `${signals}: no vertical configuration meets the SLO; keeping`, "vertical"),
        ),
        state: { ...state, mode: "vertical" },
      };
    const plans: Plan[] = views.map((x, i) => {
      const s = v.stages[i]!;
      const extra = v.extra?.[i] ?? 0;
      const grown = live[i]!.map((inst) => ({ variant: x.variant.name, cores: Math.max(inst.cores, s.cores) }));
      if (grown.length === 0) grown.push({ variant: x.variant.name, cores: s.cores });
      const instances = [...grown, ...uniform(x.variant.name, extra, s.cores)];
      return {
        instances,
        batch: s.batch,
        reason: `${signals}: vertical, ${this.stageName(views, i)}${s.cores} cores each, b=${s.batch}${extra > 0 ? `, ${extra} more instance(s) of ${s.cores} cores (C_max cannot carry λ+√λ)` : ""} (cores only go up)`,
        mode: "vertical",
      };
    });
    const changes = views.some((x, i) => !sameLayout(live[i]!, plans[i]!));
    return {
      plans,
      state: {
        ...state,
        mode: "vertical",
        stable: changes ? 0 : state.stable,
        batch: v.stages.map((s) => s.batch),
      },
    };
  }
}

function sameInstances(a: Observation["instances"], b: Observation["instances"]): boolean {
  return (
    a.length === b.length &&
    a.every((x, i) => x.variant === b[i]!.variant && x.cores === b[i]!.cores && x.state === b[i]!.state)
  );
}

function sameState(a: ThemisState, b: ThemisState): boolean {
  return (
    a.mode === b.mode &&
    a.stable === b.stable &&
    a.since === b.since &&
    a.batch.length === b.batch.length &&
    a.batch.every((x, i) => x === b.batch[i])
  );
}

/** Does the plan ask for exactly the instances (variant and cores) that live now? */
function sameLayout(live: readonly { variant: string; cores: number }[], plan: Plan): boolean {
  const key = (xs: readonly { variant: string; cores: number }[]) =>
    xs
      .map((i) => `${i.variant}:${i.cores}`)
      .sort()
      .join(",");
  return key(live) === key(plan.instances);
}
