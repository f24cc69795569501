// Scale to zero (issue 18), in the simulator, over five seeds (median and range): sparse functions of the
// Azure Functions trace (most of their minutes without a request), each served by a copy of a zoo task.
// The same arrivals with every task keeping its instance, and with scale_to_zero_after (with and without the
// warm pool): the cores held and the pool workers kept against SLO attainment, for each workload (a zoo
// variant and an SLO). Each variant's cold starts, a new worker process and a warm-pool worker, are measured
// on this machine in the run.
// Writes results.md, results.json (one line per cell) and a chart of one seed.
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { spawnWorker } from "../../../src/cluster/local/worker-process.js";
import { loadRepository } from "../../../src/repository/repository.js";
import { simulate, simTaskFromRepository, type SimTask, type SimulationResult } from "../../../src/sim/index.js";
import { arrivalsFromCounts, azureFunctionSeries, loadAzureFunctions } from "../../../src/traces/index.js";
import { median } from "../../../src/stats/quantile.js";
import { measureColdStarts } from "../../../test/support/pressure.js";
import type { ExperimentContext } from "../main.js";
import { timeSeriesSvg } from "../charts.js";
import { markdownTable, writeResults } from "../report.js";
import { fmtSpread, spreadOf } from "../spread.js";

const Setting = z
  .object({
    name: z.string(),
    after_s: z.number().positive().optional(),
    pool: z.object({ min: z.number().int().nonnegative(), max: z.number().int().positive() }).strict().optional(),
  })
  .strict();

const Config = z
  .object({
    trace: z.string(),
    seeds: z.array(z.number().int()).min(5),
    first_minute: z.number().int().nonnegative(),
    minutes: z.number().int().positive(),
    active_fraction: z.object({ min: z.number().min(0).max(1), max: z.number().min(0).max(1) }).strict(),
    functions: z.number().int().positive(),
    workloads: z
      .array(z.object({ task: z.string(), variant: z.string(), slo_ms: z.number().positive() }).strict())
      .min(1),
    nodes: z.object({ count: z.number().int().positive(), cores: z.number().int().positive() }).strict(),
    policies: z.array(z.string()).min(1),
    settings: z.array(Setting).min(2),
    start_rounds: z.number().int().positive(),
  })
  .strict();
type Config = z.infer<typeof Config>;

interface Measured {
  workload: string;
  coldMs: number[];
  warmMs: number[];
  ratio: number;
}

const keyOf = (workload: string, policy: string, setting: string) => `${workload}\u0000${policy}\u0000${setting}`;

interface Cell {
  seed: number;
  requests: number;
  met: number;
  attainmentPct: number;
  /** Answered at once because no instance could start in time (503 with Retry-After). */
  refused: number;
  latencyP99Ms: number;
  meanCores: number;
  meanPooled: number;
  starts: number;
}

export default async function run(ctx: ExperimentContext): Promise<void> {
  const cfg = Config.parse(YAML.parse(await readFile(path.join(ctx.dir, "config.yaml"), "utf8")));
  const repo = await loadRepository(path.resolve("models"), { tasks: [...new Set(cfg.workloads.map((w) => w.task))] });

  // ---- the sparse functions ----------------------------------------------------------------------
  const all = loadAzureFunctions(cfg.trace, { firstMinute: cfg.first_minute, minutes: cfg.minutes });
  const sparse = all.functions
    .map((fn) => ({ fn, active: fn.counts.reduce((n, c) => n + (c > 0 ? 1 : 0), 0) / cfg.minutes }))
    .filter((x) => x.active >= cfg.active_fraction.min && x.active <= cfg.active_fraction.max)
    .sort((a, b) => b.fn.total - a.fn.total || a.fn.row - b.fn.row)
    .slice(0, cfg.functions);
  if (sparse.length < cfg.functions)
    throw new Error(`only ${sparse.length} functions of the window are active in the fraction of minutes asked`);

  const poolSpawn = await timePoolSpawns(cfg.start_rounds);
  ctx.log(`scale-to-zero: a pool worker's own start ${fmtList(poolSpawn)} ms`);
  const cells = new Map<string, Cell[]>();
  const json: Record<string, unknown>[] = [];
  const measured: Measured[] = [];
  const chart: Record<string, SimulationResult> = {};
  for (const w of cfg.workloads) {
    const label = `${w.task}/${w.variant}, SLO ${w.slo_ms} ms`;
    const task = repo.tasks.get(w.task);
    if (!task?.variants.get(w.variant)?.profile)
      throw new Error(`no profiled variant ${w.task}/${w.variant}; run 'sloserve profile --task ${w.task}'`);
    // the variant's starts, measured now: a new worker process, and a warm-pool worker taking the model
    const [starts] = await measureColdStarts([{ task: w.task, variant: w.variant }], cfg.start_rounds);
    measured.push({ workload: label, coldMs: starts!.coldMs, warmMs: starts!.warmMs, ratio: starts!.ratio });
    ctx.log(
      `scale-to-zero: ${w.task}/${w.variant}: new process ${fmtList(starts!.coldMs)} ms, pool worker ${fmtList(starts!.warmMs)} ms`,
    );
    const taskOf = (name: string, policy: string, afterS: number | undefined): SimTask => {
      const t = simTaskFromRepository(task, {
        name,
        sloMs: w.slo_ms,
        scaling: policy === "none" ? undefined : policy,
        scaleToZeroAfterMs: afterS === undefined ? undefined : afterS * 1000,
      });
      const v = t.variants.filter((x) => x.name === w.variant);
      // what this machine measured now, believed by the policies (as a fresh profile would be) and drawn by the
      // simulated starts alike
      return {
        ...t,
        variants: v.map((x) => ({
          ...x,
          loadMs: median(starts!.coldMs),
          coldStart: starts!.coldMs,
          warmStart: starts!.warmMs,
        })),
      };
    };
    for (const policy of cfg.policies)
      for (const seed of cfg.seeds) {
        const arrivals = sparse.map(({ fn }, i) => ({
          target: `fn${i}`,
          times: arrivalsFromCounts(azureFunctionSeries(all, fn), { spread: "poisson", seed: seed * 1000 + i }).times,
        }));
        for (const s of cfg.settings) {
          let startsSeen = 0;
          const r = await simulate({
            tasks: sparse.map((_, i) => taskOf(`fn${i}`, policy, s.after_s)),
            arrivals,
            deployment: sparse.map((_, i) => ({ task: `fn${i}`, variant: w.variant, cores: 1 })),
            nodes: cfg.nodes,
            seed,
            admission: "predictive",
            warmPool: s.pool ? { ...s.pool, poolSpawn } : undefined,
            controller: { maxCores: cfg.nodes.cores },
            mix: false,
            observe: (core) => {
              const seen = new Set<string>();
              core.cluster.onChange(() => {
                for (const i of core.cluster.instances())
                  if (!seen.has(i.id)) {
                    seen.add(i.id);
                    startsSeen++;
                  }
              });
            },
          });
          const cell = figures(r, seed);
          // the deployment's instances at t = 0 are not starts
          cell.starts = Math.max(0, startsSeen - sparse.length);
          const key = keyOf(label, policy, s.name);
          cells.set(key, [...(cells.get(key) ?? []), cell]);
          json.push({ workload: label, policy, setting: s.name, ...cell });
          if (w === cfg.workloads[0] && policy === cfg.policies[0] && seed === cfg.seeds[0]) chart[s.name] = r;
        }
        ctx.log(
          `scale-to-zero: ${label}, ${policy}, seed ${seed}: ${cfg.settings
            .map(
              (s) =>
                `${s.name} ${cells
                  .get(keyOf(label, policy, s.name))!
                  .at(-1)!
                  .meanCores.toFixed(2)} cores ${cells
                  .get(keyOf(label, policy, s.name))!
                  .at(-1)!
                  .attainmentPct.toFixed(2)} %`,
            )
            .join(", ")}`,
        );
      }
  }

  await writeFile(
    path.join(ctx.dir, "results.json"),
    `{\n "command": "npm run experiment scale-to-zero",\n "config": ${JSON.stringify(cfg)},\n "pool_spawn_ms": ${JSON.stringify(poolSpawn)},\n "starts": ${JSON.stringify(measured)},\n "runs": [\n${json.map((x) => `  ${JSON.stringify(x)}`).join(",\n")}\n ]\n}\n`,
  );

  const keep = cfg.settings[0]!.name;
  const rows: (string | number)[][] = [];
  for (const w of measured)
    for (const policy of cfg.policies)
      for (const s of cfg.settings) {
        const c = cells.get(keyOf(w.workload, policy, s.name))!;
        const base = cells.get(keyOf(w.workload, policy, keep))!;
        const sp = (f: (x: Cell) => number) => spreadOf(c.map(f));
        rows.push([
          w.workload,
          policy,
          s.name,
          fmtSpread(
            sp((x) => x.meanCores),
            2,
          ),
          fmtSpread(spreadOf(c.map((x, i) => (100 * x.meanCores) / base[i]!.meanCores)), 0, " %"),
          fmtSpread(
            sp((x) => x.meanPooled),
            2,
          ),
          fmtSpread(
            sp((x) => x.attainmentPct),
            2,
            " %",
          ),
          fmtSpread(
            sp((x) => x.refused),
            0,
          ),
          fmtSpread(
            sp((x) => x.latencyP99Ms),
            1,
            " ms",
          ),
          fmtSpread(
            sp((x) => x.starts),
            0,
          ),
        ]);
      }
  const total = sparse.reduce((n, x) => n + x.fn.total, 0);
  // in words, per workload: each setting against keeping the instances (the first policy's runs)
  const reading = measured.map((w) => {
    const med = (setting: string, f: (x: Cell) => number) =>
      spreadOf(cells.get(keyOf(w.workload, cfg.policies[0]!, setting))!.map(f)).median;
    const base = med(keep, (x) => x.meanCores);
    return `${w.workload}: ${cfg.settings
      .map(
        (s) =>
          `"${s.name}" holds ${med(s.name, (x) => x.meanCores).toFixed(2)} cores (${((100 * med(s.name, (x) => x.meanCores)) / base).toFixed(0)} %)${s.pool ? ` and ${med(s.name, (x) => x.meanPooled).toFixed(2)} pool workers` : ""} for ${med(s.name, (x) => x.attainmentPct).toFixed(2)} % attainment (${med(s.name, (x) => x.refused).toFixed(0)} refused at zero)`,
      )
      .join("; ")}.`;
  });
  const series = (f: (r: SimulationResult) => ArrayLike<number>, mean = false) =>
    Object.entries(chart).map(([name, r]) => ({ name, values: perMinute(f(r), mean) }));
  const svg = await timeSeriesSvg(
    `${cfg.functions} sparse Azure functions as ${measured[0]!.workload}, ${cfg.policies[0]}, seed ${cfg.seeds[0]}`,
    [
      { title: "arrivals per minute", unit: "requests", lines: [series((r) => r.series.arrivals)[0]!] },
      { title: "cores held (minute average)", unit: "cores", lines: series((r) => r.series.cores, true) },
      { title: "SLO violations per minute", unit: "requests", lines: series((r) => r.series.violations) },
    ],
    { timeUnit: "time (min)" },
  );
  await writeResults(
    ctx.dir,
    {
      title: "scale-to-zero: cost and attainment with and without scale_to_zero_after on a sparse trace",
      command: "npm run experiment scale-to-zero",
      intro: [
        `**Setting.** The simulator (the serving core the server runs: router with predictive admission and the cold path, on-demand starts, the scale-to-zero step, the warm-pool planner, the control loop) on virtual time. ${cfg.functions} functions of ../shared/traces/azure-functions-2019 (minutes ${cfg.first_minute}–${cfg.first_minute + cfg.minutes} of the day), the busiest of those active in ${cfg.active_fraction.min * 100}–${cfg.active_fraction.max * 100} % of the window's minutes (${sparse.map((x) => `${(100 * x.active).toFixed(0)} %`).join(", ")}; ${total} invocations in all), each minute's count spread as Poisson arrivals. Each function is a copy of a zoo task served by one variant (its measured profile as the batch times) — ${cfg.workloads.map((w) => `\`${w.task}/${w.variant}\` with an SLO of ${w.slo_ms} ms`).join(", then ")} — on ${cfg.nodes.count} nodes × ${cfg.nodes.cores} cores; each starts with one 1-core instance. ${cfg.seeds.length} seeds (${cfg.seeds.join(", ")}) draw the arrivals within each minute and the batch and start times. Figures are the median over seeds with the range in brackets; the share of cores is computed per seed against "${keep}" on the same arrivals.`,
        `**Starts, measured on this machine in this run** (${cfg.start_rounds} each, alternating; the simulator draws from these samples): ${measured.map((m) => `${m.workload.split(",")[0]}: a new worker process ${fmtList(m.coldMs)} ms (median ${median(m.coldMs).toFixed(0)}), a warm-pool worker taking the model ${fmtList(m.warmMs)} ms (median ${median(m.warmMs).toFixed(0)}, ${m.ratio.toFixed(1)}× faster)`).join("; ")}; a pool worker's own start (onnxruntime, no model) ${fmtList(poolSpawn)} ms.`,
        `**Settings.** ${cfg.settings.map((s) => `"${s.name}": ${s.after_s === undefined ? "the task keeps its instance" : `scale_to_zero_after ${s.after_s} s`}${s.pool ? `, a warm pool sized by recent starts between ${s.pool.min} and ${s.pool.max}` : ", no warm pool"}`).join("; ")}. Policies: ${cfg.policies.map((p) => (p === "none" ? "none (one instance, more started on demand)" : p)).join(", ")}. A request that finds its task at zero is held while an instance starts when the start fits its deadline, and answered 503 with Retry-After at once when it does not (counted as refused, a violation).`,
      ],
      sections: [
        {
          heading: "Cost and attainment",
          body: [
            markdownTable(
              [
                "workload",
                "policy",
                "setting",
                "mean cores held",
                `cores vs ${keep} (per seed)`,
                "mean pool workers",
                "SLO attainment",
                "refused at zero",
                "p99 latency",
                "instance starts",
              ],
              rows,
            ),
            `**Reading** (${cfg.policies[0]}, medians). ${reading.join(" ")} A start that fits the SLO costs only the first requests' latency; one that does not (a new process for the tight SLO) refuses the requests that find their task at zero, which the warm pool's start avoids for the price of about one idle process.`,
            `"mean pool workers": warm-pool processes kept (onnxruntime loaded, no model, no core: their cost is memory, ~the runtime's resident size each). "instance starts": every start in the run (wake-ups from zero and scale-outs). Attainment counts every request: served within the SLO over all arrivals.`,
            `![arrivals, cores and violations per minute by setting](cores.svg)`,
          ],
        },
      ],
    },
    { "cores.svg": svg },
  );
}

function figures(r: SimulationResult, seed: number): Cell {
  const s = r.summary;
  return {
    seed,
    requests: s.requests,
    met: s.met,
    attainmentPct: s.attainmentPct,
    refused: s.rejected,
    latencyP99Ms: s.latencyP99Ms,
    meanCores: s.meanCores,
    meanPooled: s.meanPooled,
    starts: 0,
  };
}

/** Spawn → ready of a warm-pool worker (onnxruntime loaded, no model), `n` times. */
async function timePoolSpawns(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const w = await spawnWorker({ modelPath: null, threads: 1, cpus: [] });
    out.push(performance.now() - t0);
    await w.stop();
  }
  return out;
}

/** Per-second values summed (or averaged) per minute. */
function perMinute(xs: ArrayLike<number>, mean: boolean): number[] {
  const out: number[] = [];
  for (let m = 0; m * 60 < xs.length; m++) {
    let sum = 0;
    let n = 0;
    for (let k = m * 60; k < Math.min(xs.length, m * 60 + 60); k++, n++) sum += xs[k]!;
    out.push(mean ? sum / Math.max(1, n) : sum);
  }
  return out;
}

const fmtList = (xs: number[]) => xs.map((x) => x.toFixed(0)).join("/");
