// IPA's solver for any pipeline graph: a mixed-integer linear program solved by HiGHS (the `highs`
// package, HiGHS compiled to WebAssembly). The same options as the DP (ipa-problem.ts), one binary
// x[s,k] per stage option, exactly one per stage:
//   end-to-end latency: a completion time e_s ≥ span(s) + e_u for every edge u → s (e_s ≥ span(s) at a
//     source) and e_s ≤ budget — every source-to-sink path at once, without listing the paths;
//   PAS as a product: p_s = Σ_k a_k·w[s,k] with w[s,k] = p_{s−1}·x[s,k] in topological order, which is
//     linear and exact for binary x (w ≤ x, w ≤ p_{s−1}, w ≥ p_{s−1} − 1 + x, w ≥ 0; all scores in [0,1]);
//     with `accuracy: "sum"`, PAS = Σ a_k·x[s,k];
//   maximise α·PAS − Σ penalty_k·x[s,k].
// The authors solved the same model with Gurobi (their code could not multiply accuracies there and
// summed them; here the product is linearised).
// The package's types describe its CommonJS build, which TypeScript (NodeNext) reads as a namespace
// without a call signature; Node loads its ES module build, whose loader is the namespace's `default`.
import * as highsModule from "highs";
import type { Highs } from "highs";

const loadHighs = (highsModule as unknown as { default: () => Promise<Highs> }).default;
import {
  budgetOf,
  evaluate,
  predecessors,
  stageOptions,
  stageRates,
  topologicalOrder,
  validateProblem,
  type IpaOption,
  type IpaProblem,
  type IpaSolution,
} from "./ipa-problem.js";

export type HighsSolver = Highs;

let loading: Promise<Highs> | null = null;

/** HiGHS, instantiated once per process (about 40 ms); solve() is synchronous afterwards. */
export function loadHighsSolver(): Promise<Highs> {
  loading ??= loadHighs();
  return loading;
}

export interface MilpStats {
  variables: number;
  constraints: number;
  /** The LP text handed to HiGHS (for a failing case's report). */
  lp: string;
}

/** The optimum of any pipeline graph, or null when no plan is feasible. */
export function solveIpaMilp(p: IpaProblem, highs: Highs, stats?: (s: MilpStats) => void): IpaSolution | null {
  validateProblem(p);
  const rates = stageRates(p);
  const options = p.stages.map((_, s) => stageOptions(p, s, rates[s]!));
  if (options.some((o) => o.length === 0)) return null;
  const { lp, variables, constraints } = buildLp(p, options);
  stats?.({ lp, variables, constraints });
  // exact optimum: no relative or absolute gap left to HiGHS' defaults (1e-4 relative)
  const r = highs.solve(lp, { output_flag: false, mip_rel_gap: 0, mip_abs_gap: 1e-9 });
  if (r.Status === "Infeasible") return null;
  if (r.Status !== "Optimal")
    throw new Error(`HiGHS ended with status '${r.Status}' on an IPA problem of ${p.stages.length} stages`);
  const picks: IpaOption[] = options.map((opts, s) => {
    let k = 0;
    let best = -Infinity;
    opts.forEach((_, j) => {
      const v = r.Columns[x(s, j)]?.Primal ?? 0;
      if (v > best) {
        best = v;
        k = j;
      }
    });
    return opts[k]!;
  });
  const sol = evaluate(p, picks, rates);
  if (!sol) throw new Error("HiGHS returned a plan over the latency budget: a modelling error, not an infeasible load");
  return sol;
}

const x = (s: number, k: number) => `x_${s}_${k}`;
const w = (s: number, k: number) => `w_${s}_${k}`;
const pv = (s: number) => `p_${s}`;
const e = (s: number) => `e_${s}`;

/** Numbers as LP text: finite, no exponent HiGHS' reader might trip on. */
function num(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`non-finite coefficient ${v} in the IPA MILP`);
  return Math.abs(v) < 1e-12 ? "0" : v.toFixed(12).replace(/\.?0+$/, "");
}

/**
 * `a x + b y …` with signs written out; a variable named twice gets the sum of its coefficients (HiGHS'
 * LP reader does not add repeated terms up).
 */
function linear(terms: [number, string][]): string {
  const summed = new Map<string, number>();
  for (const [c, v] of terms) summed.set(v, (summed.get(v) ?? 0) + c);
  const parts = [...summed].map(([v, c]) => [c, v] as [number, string]).filter(([c]) => c !== 0);
  if (parts.length === 0) return "0 " + terms[0]![1];
  return parts.map(([c, v], i) => `${c < 0 ? "- " : i === 0 ? "" : "+ "}${num(Math.abs(c))} ${v}`).join(" ");
}

function buildLp(p: IpaProblem, options: IpaOption[][]): { lp: string; variables: number; constraints: number } {
  const T = budgetOf(p);
  const sum = p.accuracy === "sum";
  const alpha = p.weights.alpha;
  const order = topologicalOrder(p);
  const pred = predecessors(p);
  const rows: string[] = [];
  const bounds: string[] = [];
  const binaries: string[] = [];
  let nrow = 0;
  const row = (expr: string) => rows.push(` r${nrow++}: ${expr}`);

  const objective: [number, string][] = [];
  options.forEach((opts, s) =>
    opts.forEach((o, k) => {
      binaries.push(x(s, k));
      objective.push([-o.penalty, x(s, k)]);
    }),
  );
  // one option per stage
  options.forEach((opts, s) => row(`${linear(opts.map((_, k) => [1, x(s, k)]))} = 1`));
  // completion times along every edge, within the budget
  for (const s of order) {
    const span: [number, string][] = options[s]!.map((o, k) => [o.span, x(s, k)]);
    if (pred[s]!.length === 0) row(`${linear([[1, e(s)], ...span.map(([c, v]) => [-c, v] as [number, string])])} >= 0`);
    for (const u of pred[s]!)
      row(`${linear([[1, e(s)], [-1, e(u)], ...span.map(([c, v]) => [-c, v] as [number, string])])} >= 0`);
    bounds.push(` 0 <= ${e(s)} <= ${T}`);
  }
  // PAS
  if (sum) {
    options.forEach((opts, s) => opts.forEach((o, k) => objective.push([alpha * o.accuracy, x(s, k)])));
  } else {
    order.forEach((s, i) => {
      const opts = options[s]!;
      if (i === 0) {
        row(`${linear([[1, pv(s)], ...opts.map((o, k) => [-o.accuracy, x(s, k)] as [number, string])])} = 0`);
      } else {
        const prev = pv(order[i - 1]!);
        opts.forEach((_, k) => {
          row(
            `${linear([
              [1, w(s, k)],
              [-1, x(s, k)],
            ])} <= 0`,
          );
          row(
            `${linear([
              [1, w(s, k)],
              [-1, prev],
            ])} <= 0`,
          );
          row(
            `${linear([
              [1, w(s, k)],
              [-1, prev],
              [-1, x(s, k)],
            ])} >= -1`,
          );
          bounds.push(` 0 <= ${w(s, k)} <= 1`);
        });
        row(`${linear([[1, pv(s)], ...opts.map((o, k) => [-o.accuracy, w(s, k)] as [number, string])])} = 0`);
      }
      bounds.push(` 0 <= ${pv(s)} <= 1`);
    });
    objective.push([alpha, pv(order[order.length - 1]!)]);
  }
  const lp = [
    "Maximize",
    ` obj: ${linear(objective)}`,
    "Subject To",
    ...rows,
    "Bounds",
    ...bounds,
    "Binary",
    ` ${binaries.join(" ")}`,
    "End",
  ].join("\n");
  const variables = binaries.length + p.stages.length * (sum ? 1 : 2) + (sum ? 0 : options.flat().length);
  return { lp, variables, constraints: nrow };
}
