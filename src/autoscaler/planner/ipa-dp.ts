// IPA's exact solver for chains: a dynamic program over stages × the integer latency budget. PAS is a
// product, so the objective α·Π a_s − Σ penalty_s does not split over stages; instead each budget cell
// keeps the Pareto set of (PAS so far, penalty so far) partial plans — a partial plan that is no more
// accurate and no cheaper than another one using no more budget can never finish better, so it is
// dropped (also across budgets: the cells are swept in increasing t with the running front). The best
// complete plan is read off the last stage's cells. With `accuracy: "sum"` the same sets collapse to
// the classic knapsack. Exact on the discrete problem of ipa-problem.ts, which the MILP solves too.
import {
  budgetOf,
  evaluate,
  isChain,
  stageOptions,
  stageRates,
  validateProblem,
  type IpaOption,
  type IpaProblem,
  type IpaSolution,
} from "./ipa-problem.js";

/** A partial plan: PAS and penalty of stages 0..s, and how it was reached. */
interface Partial {
  pas: number;
  penalty: number;
  option: number;
  parent: Partial | null;
}

/** The optimum of a chain, or null when no plan meets the SLO and carries the load. */
export function solveIpaChain(p: IpaProblem): IpaSolution | null {
  validateProblem(p);
  if (!isChain(p))
    throw new Error(
      "IPA's DP solves chains; a pipeline with fan-out branches or fan-in goes to the MILP (ipa-milp.ts)",
    );
  const rates = stageRates(p);
  const options = p.stages.map((_, s) => stageOptions(p, s, rates[s]!));
  if (options.some((o) => o.length === 0)) return null;
  const T = budgetOf(p);
  const sum = p.accuracy === "sum";
  const alpha = p.weights.alpha;

  // cells[t]: partial plans using exactly t units, already free of plans dominated at t' ≤ t
  let cells: Partial[][] = Array.from({ length: T + 1 }, () => []);
  cells[0]!.push({ pas: sum ? 0 : 1, penalty: 0, option: -1, parent: null });
  for (let s = 0; s < options.length; s++) {
    const next: Partial[][] = Array.from({ length: T + 1 }, () => []);
    const opts = options[s]!;
    for (let t = 0; t <= T; t++) {
      for (const part of cells[t]!) {
        for (let k = 0; k < opts.length; k++) {
          const o = opts[k]!;
          const u = t + o.span;
          if (u > T) continue;
          next[u]!.push({
            pas: sum ? part.pas + o.accuracy : part.pas * o.accuracy,
            penalty: part.penalty + o.penalty,
            option: k,
            parent: part,
          });
        }
      }
    }
    cells = sweepFronts(next);
  }
  let best: Partial | null = null;
  let bestValue = -Infinity;
  for (let t = 0; t <= T; t++)
    for (const part of cells[t]!) {
      const value = alpha * part.pas - part.penalty;
      if (value > bestValue) {
        bestValue = value;
        best = part;
      }
    }
  if (!best) return null;
  const picks: IpaOption[] = new Array(options.length);
  let cur: Partial | null = best;
  for (let s = options.length - 1; s >= 0; s--) {
    picks[s] = options[s]![cur!.option]!;
    cur = cur!.parent;
  }
  return evaluate(p, picks, rates);
}

/**
 * Keeps in each cell only the partial plans that no plan at the same or a smaller budget dominates. In
 * sum mode one best value per cell would do; the Pareto form serves both modes and stays small, since a
 * stage has only a handful of distinct accuracies.
 */
function sweepFronts(cells: Partial[][]): Partial[][] {
  // the running front over t' < t: PAS descending, penalty strictly descending
  let front: Partial[] = [];
  const out: Partial[][] = cells.map(() => []);
  for (let t = 0; t < cells.length; t++) {
    const here = cells[t]!;
    if (here.length === 0) continue;
    here.sort((a, b) => b.pas - a.pas || a.penalty - b.penalty);
    const kept: Partial[] = [];
    for (const c of here) {
      if (dominated(front, c) || dominated(kept, c)) continue;
      kept.push(c);
    }
    if (kept.length === 0) continue;
    out[t] = kept;
    front = mergeFront(front, kept);
  }
  return out;
}

function dominated(front: readonly Partial[], c: Partial): boolean {
  for (const f of front) if (f.pas >= c.pas && f.penalty <= c.penalty) return true;
  return false;
}

/** The non-dominated union of two fronts. */
function mergeFront(a: readonly Partial[], b: readonly Partial[]): Partial[] {
  const all = [...a, ...b].sort((x, y) => y.pas - x.pas || x.penalty - y.penalty);
  const out: Partial[] = [];
  let bestPenalty = Infinity;
  for (const x of all) {
    if (x.penalty < bestPenalty) {
      out.push(x);
      bestPenalty = x.penalty;
    }
  }
  return out;
}
