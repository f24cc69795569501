// Fair shares of a core budget. When the tasks' plans want more cores than the budget holds, the control
// loop does not let whoever acts first take what is free (arrival order): it allocates the budget by an
// explicit objective, as Faro does for a constrained multi-model cluster — here, the least total weighted
// expected SLO violations per second,
//     min Σ_t w_t · V_t(g_t)   s.t.  Σ_t g_t ≤ B,  min(m_t, want_t) ≤ g_t ≤ want_t,  g_t integer,
// with per-task weights w_t and guaranteed minimums m_t (task.yaml's `sharing`). V_t is each task's expected
// violations per second at g cores, from its arrival rate λ, the corrected latency model and its SLO: g
// 1-core servers each carrying κ requests/s (the best batch that meets the SLO behind one running batch),
// and a queue that holds what can still make its deadline — a deadline-ordered queue answers the rest at
// once — so the task is an M/M/c/K queue with c = g and K = g + ⌊g·κ·s⌋ (s: the SLO less the batch's own
// time), and its violations are the arrivals it blocks:
//     V(g) = λ · P_K(g),   P_K = (a^c / c!) ρ^(K−c) p₀,   a = λ/κ, ρ = a/c.
// Overloaded, P_K tends to 1 − 1/ρ (what exceeds gκ is lost); lightly loaded, to the few requests that
// arrive to a full queue. The problem is separable, so an exact dynamic program over tasks and cores solves
// it (the greedy marginal rule is used only where the DP would be too large); cores the objective is
// indifferent to go to the tasks furthest below what they want, by weight.
import type { VariantModel } from "../router/scheduling/types.js";
import { instanceCapacity } from "./scaling/capacity.js";

export type CoreSharing = "arrival" | "fair";

/**
 * "utility" (default): maximise Σ w·λ·ln(attainment) — each request's log expected attainment, a concave
 * (proportionally fair) utility: like total violations where they are few, but starving a task costs without
 * bound. "violations": minimise Σ w·V, the total weighted expected violations, whoever carries them.
 */
export type SharingObjective = "utility" | "violations";

export interface ShareClaim {
  task: string;
  weight: number;
  /** Cores guaranteed (capped at `want`). */
  minCores: number;
  /** Cores the task's latest plan asks for. */
  want: number;
  /** Expected SLO violations per second with `cores` cores. */
  violations(cores: number): number;
}

export interface Allocation {
  grants: Map<string, number>;
  /** Σ w·V at the grants (violations per second, weighted). */
  objective: number;
  /** Tasks granted less than they want: by how much. */
  cut: { task: string; want: number; grant: number }[];
  /** "dp" (exact) or "greedy" (marginal rule, for very large problems). */
  solver: "dp" | "greedy";
}

/** Largest DP (Σ over tasks of choices × budget) solved exactly. */
const DP_LIMIT = 4_000_000;

/** Allocates `budget` cores among the claims (see the header); every claim gets a grant. */
export function allocateCores(claims: readonly ShareClaim[], budget: number): Allocation {
  for (const c of claims) {
    if (!(c.weight > 0)) throw new Error(`task '${c.task}': sharing weight must be > 0, got ${c.weight}`);
    if (!Number.isInteger(c.want) || c.want < 0) throw new Error(`task '${c.task}': wanted cores ${c.want}`);
  }
  const B = Math.max(0, Math.floor(budget));
  // guaranteed minimums first; when they alone exceed the budget, the heaviest tasks' are kept
  const lo = new Map<string, number>();
  let left = B;
  for (const c of [...claims].sort((a, b) => b.weight - a.weight || a.task.localeCompare(b.task))) {
    const m = Math.min(Math.min(c.minCores, c.want), left);
    lo.set(c.task, m);
    left -= m;
  }
  const size = claims.reduce((n, c) => n + (c.want - lo.get(c.task)! + 1), 0) * (left + 1);
  const extra = size <= DP_LIMIT ? dp(claims, lo, left) : greedy(claims, lo, left);
  const grants = new Map<string, number>();
  claims.forEach((c, i) => grants.set(c.task, lo.get(c.task)! + extra[i]!));
  fillIndifferent(claims, grants, B);
  let objective = 0;
  for (const c of claims) objective += c.weight * c.violations(grants.get(c.task)!);
  return {
    grants,
    objective,
    cut: claims
      .filter((c) => grants.get(c.task)! < c.want)
      .map((c) => ({ task: c.task, want: c.want, grant: grants.get(c.task)! })),
    solver: size <= DP_LIMIT ? "dp" : "greedy",
  };
}

/** Exact: least Σ w·V over the cores beyond the minimums, by a DP over tasks × cores used. */
function dp(claims: readonly ShareClaim[], lo: Map<string, number>, budget: number): number[] {
  const n = claims.length;
  let cost = new Float64Array(budget + 1);
  const choice: Int32Array[] = [];
  for (let t = 0; t < n; t++) {
    const c = claims[t]!;
    const base = lo.get(c.task)!;
    const span = Math.min(c.want - base, budget);
    const v = Array.from({ length: span + 1 }, (_, k) => c.weight * c.violations(base + k));
    const next = new Float64Array(budget + 1).fill(Infinity);
    const pick = new Int32Array(budget + 1);
    for (let b = 0; b <= budget; b++)
      for (let k = 0; k <= Math.min(span, b); k++) {
        const x = cost[b - k]! + v[k]!;
        // ties go to fewer cores here: the indifferent ones are handed out by deficit afterwards
        if (x < next[b]! - 1e-12) {
          next[b] = x;
          pick[b] = k;
        }
      }
    cost = next;
    choice.push(pick);
  }
  let best = 0;
  for (let b = 1; b <= budget; b++) if (cost[b]! < cost[best]! - 1e-12) best = b;
  const out = new Array<number>(n).fill(0);
  for (let t = n - 1; t >= 0; t--) {
    out[t] = choice[t]![best]!;
    best -= out[t]!;
  }
  return out;
}

/** Greedy marginal rule: one core at a time to the largest weighted drop in expected violations. */
function greedy(claims: readonly ShareClaim[], lo: Map<string, number>, budget: number): number[] {
  const out = new Array<number>(claims.length).fill(0);
  for (let left = budget; left > 0; left--) {
    let best = -1;
    let gain = 1e-12;
    claims.forEach((c, i) => {
      const g = lo.get(c.task)! + out[i]!;
      if (g >= c.want) return;
      const d = c.weight * (c.violations(g) - c.violations(g + 1));
      if (d > gain) [best, gain] = [i, d];
    });
    if (best < 0) break;
    out[best]!++;
  }
  return out;
}

/** Cores the objective does not care about go to the tasks furthest below their want, weighted. */
function fillIndifferent(claims: readonly ShareClaim[], grants: Map<string, number>, budget: number): void {
  let used = 0;
  for (const g of grants.values()) used += g;
  while (used < budget) {
    let best: ShareClaim | undefined;
    let deficit = 0;
    for (const c of claims) {
      const d = (c.weight * (c.want - grants.get(c.task)!)) / Math.max(1, c.want);
      if (d > deficit) [best, deficit] = [c, d];
    }
    if (!best) return;
    grants.set(best.task, grants.get(best.task)! + 1);
    used++;
  }
}

/** What V_t is computed from. */
export interface ServiceDemand {
  /** Arrivals per second. */
  lambda: number;
  /** The (corrected) model of the variant the task scales. */
  model: VariantModel;
  sloMs: number;
}

/** Expected SLO violations per second of a task as a function of its 1-core servers (see the header). */
export function violationModel(d: ServiceDemand): (cores: number) => number {
  const { lambda } = d;
  if (!(lambda > 0)) return () => 0;
  const cap = instanceCapacity(d.model, d.sloMs, 1);
  const kappa = cap.throughput;
  const slackS = Math.max(0, d.sloMs - d.model.latency(cap.batch, 1)) / 1000;
  return (cores) => {
    if (cores <= 0) return lambda;
    return lambda * blocking(cores, cores + Math.floor(cores * kappa * slackS), lambda / kappa);
  };
}

/**
 * A claim's cost per core count under the objective: w is applied by the allocator. "utility" is
 * −λ·ln(1 − V/λ) (attainment floored at 10⁻⁶), which is V to first order.
 */
export function shareCost(d: ServiceDemand, objective: SharingObjective): (cores: number) => number {
  const v = violationModel(d);
  if (objective === "violations" || !(d.lambda > 0)) return v;
  return (cores) => -d.lambda * Math.log(Math.max(1e-6, 1 - v(cores) / d.lambda));
}

/** The blocking probability of an M/M/c/K queue offered `a` erlangs (in log space: a^c/c! overflows). */
export function blocking(c: number, K: number, a: number): number {
  if (a <= 0) return 0;
  const rho = a / c;
  const logA = Math.log(a);
  const logRho = Math.log(rho);
  // log of each state's unnormalised probability, n = 0..K, then log-sum-exp
  let log = 0;
  let max = 0;
  const logs = new Float64Array(K + 1);
  for (let n = 1; n <= K; n++) {
    log += n <= c ? logA - Math.log(n) : logRho;
    logs[n] = log;
    if (log > max) max = log;
  }
  let sum = 0;
  for (let n = 0; n <= K; n++) sum += Math.exp(logs[n]! - max);
  return Math.exp(logs[K]! - max) / sum;
}

/** A plan's instances cut down to `cores` cores: whole instances first, the last one shrunk to fit. */
export function trimInstances<I extends { cores: number }>(instances: readonly I[], cores: number): I[] {
  const out: I[] = [];
  let left = cores;
  for (const i of [...instances].sort((a, b) => b.cores - a.cores)) {
    if (left <= 0) break;
    if (i.cores <= left) {
      out.push(i);
      left -= i.cores;
    } else {
      out.push({ ...i, cores: left });
      left = 0;
    }
  }
  return out;
}
