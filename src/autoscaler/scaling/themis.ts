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
import { servedFit } from "./served-model.js";

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
/** Sets of inputs whose answers holdsUntil and unchangedBy keep at once, per policy and shared. */
const KEPT_INPUTS = 8;
const MAX_SHARED = 4096;
/**
 * Answers of keeps() by everything the rule reads past warm-up but λ, the forecast against T and the count,
 * shared by all policies: the rule is a pure function of those. Whatever the rule comes to read from an
 * observation or a variant must be in the key (see answersFor).
 */
const SHARED_ANSWERS = new Map<string, Map<number | string, boolean>>();

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
  holdsUntil(
    obs: Observation,
    _before: ThemisState,
    after: ThemisState,
    forecastCeiling: number,
    arriving = 0,
  ): number | null {
    if (after.mode === "warmup") return after.since === null ? null : after.since + this.o.warmupMs;
    if (after.since === null || after.batch.length !== 1) return null;
    const { lambda: now, capacity, maxed } = this.signals(obs, after.batch[0]!);
    if (!this.keepsAll(obs, after, now, obs.ratePred > capacity)) return null;
    const second = Math.floor(obs.now / 1000);
    if (!maxed && !(forecastCeiling <= capacity)) return (second + 1) * 1000;
    // the counts recent will hold: this second's arrivals once it ends, then zeros
    const counts = [...obs.recent, arriving];
    const n = obs.recent.length;
    let lambda = now;
    for (let k = 1; k <= n + 1; k++) {
      // λ k seconds on, as recentMax reads the last rateWindowS of counts[k .. k + n) (zeros past the end)
      let m = 0;
      for (let i = Math.max(k, k + n - this.o.rateWindowS); i < Math.min(counts.length, k + n); i++)
        m = Math.max(m, counts[i]!);
      const next = Math.ceil(m - 1e-9);
      if (Object.is(next, lambda)) continue;
      lambda = next;
      // (the forecast stays at most T: it does not exceed it)
      if (!this.keepsAll(obs, after, next, false, k, counts)) return (second + k) * 1000;
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
    return same || this.keeps(this.answersFor(now, state), now, state, b.lambda, b.inc, 0, now.recent, state.stable);
  }

  /**
   * Whether deciding keeps the instances and advances the state from every state of `state`'s run of agreeing
   * decisions, at λ `lambda` with the forecast above T or not (`inc`), on `obs` — or on it `shift` seconds
   * later with no arrivals. Below the last count the rule does the same whatever the count, so `state`, the
   * last count and the full count stand for all of them.
   */
  private keepsAll(
    obs: Observation,
    state: ThemisState,
    lambda: number,
    inc: boolean,
    shift = 0,
    counts: readonly number[] = obs.recent,
  ): boolean {
    const answers = this.answersFor(obs, state);
    if (!this.keeps(answers, obs, state, lambda, inc, shift, counts, state.stable)) return false;
    if (state.mode !== "horizontal" || state.stable >= this.o.stableDecisions) return true;
    const last = this.o.stableDecisions - 1;
    return (
      (state.stable === last || this.keeps(answers, obs, state, lambda, inc, shift, counts, last)) &&
      this.keeps(answers, obs, state, lambda, inc, shift, counts, this.o.stableDecisions)
    );
  }

  /**
   * The answers kept for deciding on `obs` from `state`: past warm-up the rule reads nothing else that
   * changes with λ, the forecast against T and the count — the instances, the variant, its served model, the
   * rest of the state — so its answers are kept by those three until any of the rest changes (for a few sets
   * of the rest at once: a busy task's served model moves between a few values). Null in warm-up.
   */
  private answersFor(obs: Observation, state: ThemisState): Map<number | string, boolean> | null {
    if (state.since === null || obs.now - state.since < this.o.warmupMs || state.batch.length !== 1) return null;
    const fit = this.signals(obs, state.batch[0]!).fit;
    for (const k of this.kept)
      if (
        k.mode === state.mode &&
        k.since === state.since &&
        k.batch === state.batch[0] &&
        k.variants === obs.variants &&
        k.variant === obs.variant &&
        k.sloMs === obs.sloMs &&
        k.maxCores === obs.maxCores &&
        sameInstances(k.instances, obs.instances) &&
        Object.is(k.fit.alpha, fit.alpha) &&
        Object.is(k.fit.beta, fit.beta) &&
        Object.is(k.fit.gamma, fit.gamma) &&
        Object.is(k.fit.zeta, fit.zeta) &&
        Object.is(k.fit.memGb, fit.memGb)
      )
        return k.answers;
    // policies with the same settings share answers: many tasks copy one model and see the same few λ
    const key = exactJson([
      this.o,
      state.mode,
      state.since,
      state.batch[0],
      obs.variant,
      obs.variants.find((v) => v.name === obs.variant)?.maxBatch,
      obs.sloMs,
      obs.maxCores,
      obs.instances.map((i) => [i.variant, i.cores, i.state]),
      [fit.alpha, fit.beta, fit.gamma, fit.zeta, fit.memGb],
    ]);
    let answers = SHARED_ANSWERS.get(key);
    if (!answers) {
      if (SHARED_ANSWERS.size >= MAX_SHARED) SHARED_ANSWERS.clear();
      answers = new Map<number | string, boolean>();
      SHARED_ANSWERS.set(key, answers);
    }
    this.kept.unshift({
      mode: state.mode,
      since: state.since,
      batch: state.batch[0]!,
      variants: obs.variants,
      variant: obs.variant,
      sloMs: obs.sloMs,
      maxCores: obs.maxCores,
      instances: obs.instances.map((i) => ({ ...i })),
      fit,
      answers,
    });
    if (this.kept.length > KEPT_INPUTS) this.kept.pop();
    return answers;
  }

  /**
   * Whether deciding from `state` with its count at `stable` returns the instances that live now and the
   * state advanced, at λ `lambda` with the forecast above T or not (`inc`), on `obs` or on it `shift` seconds
   * later with no arrivals; `answers` (from answersFor) keeps the answer.
   */
  private keeps(
    answers: Map<number | string, boolean> | null,
    obs: Observation,
    state: ThemisState,
    lambda: number,
    inc: boolean,
    shift: number,
    counts: readonly number[],
    stable: number,
  ): boolean {
    const from = stable === state.stable ? state : { ...state, stable };
    if (answers === null) return this.decidesToKeep(shifted(obs, shift, counts), from);
    const full = this.o.stableDecisions;
    const count = stable + 1 < full ? 0 : stable + 1 === full ? 1 : 2 + stable;
    // λ is −0 or a whole number of requests (see recentMax)
    const key =
      Number.isSafeInteger(lambda) && lambda >= 0 && count < 64
        ? (lambda * 2 + (inc ? 1 : 0)) * 64 + count
        : `${Object.is(lambda, -0) ? "-0" : lambda}|${inc}|${count}`;
    let answer = answers.get(key);
    if (answer === undefined) {
      answer = this.decidesToKeep(shifted(obs, shift, counts), from);
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
    const alike =
      last !== null &&
      last.signals.batch === batch &&
      last.obs.variant === obs.variant &&
      last.obs.variants === obs.variants &&
      last.obs.maxCores === obs.maxCores &&
      sameInstances(last.obs.instances, obs.instances);
    const served =
      alike && last.obs.served !== obs.served
        ? servedFit(
            obs.variants.find((v) => v.name === obs.variant)!,
            obs.served,
          )
        : null;
    if (
      alike &&
      (served === null ||
        (Object.is(served.alpha, last.signals.fit.alpha) &&
          Object.is(served.beta, last.signals.fit.beta) &&
          Object.is(served.gamma, last.signals.fit.gamma) &&
          Object.is(served.zeta, last.signals.fit.zeta)))
    ) {
      // (the same variant: its memory is the same too)
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

/** JSON that keeps −0, NaN and ±Infinity apart (a key, not a message). */
function exactJson(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) =>
    typeof v === "number" && (Object.is(v, -0) || !Number.isFinite(v)) ? `#${Object.is(v, -0) ? "-0" : v}` : v,
  );
}

/**
 * `obs` as it reads `shift` seconds on, as far as the rule is concerned: recent holds counts[shift .. shift + n)
 * (zeros past the end), and the forecast is at most T (ratePred 0).
 */
function shifted(obs: Observation, shift: number, counts: readonly number[]): Observation {
  if (shift === 0) return obs;
  const n = obs.recent.length;
  const recent = Array.from({ length: n }, (_, i) => counts[shift + i] ?? 0);
  return { ...obs, now: (Math.floor(obs.now / 1000) + shift) * 1000, recent, ratePred: 0 };
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
