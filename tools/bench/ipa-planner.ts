// npm run bench:ipa [-- --json]: solve time of IPA's two solvers — the exact chain DP and the HiGHS MILP —
// on seeded chains of 1..8 stages (3 variants each, B_max 8, 1- or 2-core instances, the policy's default
// 1,000-unit latency budget), whether they agree, and the MILP on fork-join graphs (which the DP cannot
// take). Also FA2's DP on the same chains (one variant per stage).
import { parseArgs } from "node:util";
import { fa2Plan } from "../../src/autoscaler/planner/fa2.js";
import { solveIpaChain } from "../../src/autoscaler/planner/ipa-dp.js";
import { loadHighsSolver, solveIpaMilp } from "../../src/autoscaler/planner/ipa-milp.js";
import { IPA_PRESETS, type IpaProblem, type IpaStage } from "../../src/autoscaler/planner/ipa-problem.js";
import { describeMachine } from "../../src/profiler/machine.js";
import { quantile } from "../../src/stats/quantile.js";
import { seededRandom } from "../../src/stats/random.js";
import { emit } from "../../src/terminal/report.js";
import { fmt } from "../../src/terminal/table.js";

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    instances: { type: "string", default: "10" },
  },
});
const N = Math.max(1, Number(values.instances));

function stage(r: () => number, name: string): IpaStage {
  let scale = 1;
  let acc = 0.6 + r() * 0.1;
  const variants = ["light", "medium", "heavy"].map((v) => {
    const out = {
      name: v,
      accuracy: acc,
      fit: { alpha: (10 + r() * 30) * scale, beta: r() * 4 * scale, gamma: r() * 10, zeta: 2 + r() * 8 },
      maxBatch: 8,
      loadMs: 500 + r() * 2500,
    };
    scale *= 2 + r();
    acc = Math.min(1, acc + 0.05 + r() * 0.1);
    return out;
  });
  return { name, variants, cores: [1, 2], current: "medium" };
}

function chain(S: number, seed: number): IpaProblem {
  const r = seededRandom(seed);
  const stages = Array.from({ length: S }, (_, i) => stage(r, `s${i}`));
  const sloMs = stages.reduce((a, s) => a + 3 * (s.variants[1]!.fit.alpha + s.variants[1]!.fit.zeta), 0);
  return { stages, lambda: 5 + r() * 60, sloMs, weights: IPA_PRESETS.balanced, bMax: 8 };
}

const time = (f: () => unknown): [number, unknown] => {
  const t0 = performance.now();
  const out = f();
  return [performance.now() - t0, out];
};

const highs = await loadHighsSolver();
const machine = describeMachine();
const rows: {
  stages: number;
  dp_p50_ms: number;
  dp_p99_ms: number;
  milp_p50_ms: number;
  milp_p99_ms: number;
  fa2_p50_ms: number;
  agree: number;
  instances: number;
}[] = [];
for (const S of [1, 2, 3, 4, 6, 8]) {
  const dp: number[] = [];
  const milp: number[] = [];
  const fa2: number[] = [];
  let agree = 0;
  for (let k = 0; k < N; k++) {
    const p = chain(S, 1000 * S + k);
    const [a, ra] = time(() => solveIpaChain(p));
    const [b, rb] = time(() => solveIpaMilp(p, highs));
    const [c] = time(() =>
      fa2Plan(
        {
          stages: p.stages.map((s) => ({
            name: s.name,
            model: s.variants[1]!.fit,
            maxBatch: 8,
            lambda: p.lambda,
            cores: [1, 2],
          })),
        },
        { sloMs: p.sloMs, bMax: 8, semantics: "v1", unitMs: p.sloMs / 1000 },
      ),
    );
    dp.push(a);
    milp.push(b);
    fa2.push(c);
    const oa = (ra as { objective: number } | null)?.objective;
    const ob = (rb as { objective: number } | null)?.objective;
    if (
      (oa === undefined) === (ob === undefined) &&
      (oa === undefined || Math.abs(oa - ob!) < 1e-6 * Math.max(1, Math.abs(oa)))
    )
      agree++;
  }
  rows.push({
    stages: S,
    dp_p50_ms: quantile(dp, 0.5),
    dp_p99_ms: quantile(dp, 0.99),
    milp_p50_ms: quantile(milp, 0.5),
    milp_p99_ms: quantile(milp, 0.99),
    fa2_p50_ms: quantile(fa2, 0.5),
    agree,
    instances: N,
  });
}

// fork-join: a → (b | c) → d, b's rows fanned out 3×; the MILP alone
const dag: number[] = [];
for (let k = 0; k < N; k++) {
  const p = chain(4, 77_000 + k);
  const [ms] = time(() =>
    solveIpaMilp(
      {
        ...p,
        edges: [
          { from: "s0", to: "s1", fanOut: 3 },
          { from: "s0", to: "s2" },
          { from: "s1", to: "s3" },
          { from: "s2", to: "s3" },
        ],
      },
      highs,
    ),
  );
  dag.push(ms);
}

const ms = (x: number) => fmt(x, 2);
emit(
  {
    title: `bench:ipa — IPA's solvers, ${N} seeded instances per size (${machine.cpu}, ${machine.cores} cores)`,
    tables: [
      {
        head: ["stages", "DP p50 ms", "DP p99 ms", "MILP p50 ms", "MILP p99 ms", "FA2 p50 ms", "DP = MILP"],
        rows: rows.map((r) => [
          String(r.stages),
          ms(r.dp_p50_ms),
          ms(r.dp_p99_ms),
          ms(r.milp_p50_ms),
          ms(r.milp_p99_ms),
          ms(r.fa2_p50_ms),
          `${r.agree}/${r.instances}`,
        ]),
      },
      {
        head: ["fork-join (4 stages)", "MILP p50 ms", "MILP p99 ms"],
        rows: [["a → (b | c) → d", ms(quantile(dag, 0.5)), ms(quantile(dag, 0.99))]],
      },
    ],
    figures: {
      machine: { cpu: machine.cpu, cores: machine.cores },
      chains: rows,
      fork_join: { milp_p50_ms: quantile(dag, 0.5), milp_p99_ms: quantile(dag, 0.99), instances: N },
    },
    notes: [
      "Each stage: 3 variants × B_max 8 × {1, 2} cores; latency budget 1,000 units (the policy's default SLO/1000).",
      "DP = MILP: instances whose optimum and feasibility verdict agree (they must all agree).",
    ],
  },
  values.json!,
);
