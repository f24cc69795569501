// npm run bench:profile [-- --json] [--task t]: profiles the zoo on this machine, side by side in
// one run, and prints how well the latency model fits, in-place resize vs cold start, and
// ResNet-50's batch-1 latency at 1 and 2 cores.
import path from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_MODELS_DIR, prepareZoo } from "../../src/bundled-zoo/prepare.js";
import { progress } from "../../src/terminal/progress.js";
import { fmt } from "../../src/terminal/table.js";
import { median } from "../../src/stats/quantile.js";
import { latencyOf } from "../../src/stats/latency-model.js";
import { describeMachine } from "../../src/profiler/machine.js";
import { profileSteps, profileVariant } from "../../src/profiler/profiler.js";
import { loadRepository, type Variant } from "../../src/repository/repository.js";
import type { Profile } from "../../src/repository/schema.js";
import { emit } from "../../src/terminal/report.js";

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    models: { type: "string", default: DEFAULT_MODELS_DIR },
    task: { type: "string", multiple: true },
    "budget-ms": { type: "string", default: "600" },
  },
});

const log = (m: string) => process.stderr.write(`${m}\n`);
await prepareZoo(values.models!, log);
const repo = await loadRepository(path.resolve(values.models!), { tasks: values.task });
const variants: Variant[] = [...repo.tasks.values()].flatMap((t) => [...t.variants.values()]);
const settings = { budgetMs: Number(values["budget-ms"]) };
const total = variants.reduce((n, v) => n + profileSteps(v, settings), 0);
const bar = progress("bench:profile");
let offset = 0;
const profiles: Profile[] = [];
for (const v of variants) {
  profiles.push(await profileVariant(v, { ...settings, onStep: (d, _t, label) => bar.step(offset + d, total, label) }));
  offset += profileSteps(v, settings);
}
bar.stop();

const relErrors = profiles.flatMap((p) =>
  p.points.map((pt) => Math.abs(latencyOf(p.fit.p50, pt.batch, pt.cores) - pt.p50_ms) / pt.p50_ms),
);
const relErrorsP99 = profiles.flatMap((p) =>
  p.points.map((pt) => Math.abs(latencyOf(p.fit.p99, pt.batch, pt.cores) - pt.p99_ms) / pt.p99_ms),
);
const resize = profiles.flatMap((p) => p.resize_ms.samples);
const cold = profiles.flatMap((p) => p.load_ms.samples);
const ratios = profiles.filter((p) => p.resize_ms.samples.length > 0).map((p) => p.resize_ms.p50 / p.load_ms.p50);
const r50 = profiles.find((p) => p.variant === "resnet50");
const r50at = (c: number) => r50?.points.find((pt) => pt.batch === 1 && pt.cores === c)?.p50_ms ?? Number.NaN;

const figures = {
  machine: describeMachine(),
  fit_median_rel_error: median(relErrors),
  fit_max_rel_error: Math.max(...relErrors),
  fit_p99_median_rel_error: median(relErrorsP99),
  fit_p99_max_rel_error: Math.max(...relErrorsP99),
  resize_ms_p50: median(resize),
  cold_start_ms_p50: median(cold),
  resize_over_cold_start: median(ratios),
  resize_over_cold_start_max: Math.max(...ratios),
  resnet50_b1_c1_ms: r50at(1),
  resnet50_b1_c2_ms: r50at(2),
  variants: profiles.map((p) => ({
    variant: `${p.task}/${p.variant}`,
    fit_median_rel_error: p.fit.p50.median_rel_error,
    fit_max_rel_error: p.fit.p50.max_rel_error,
    cold_start_ms: p.load_ms.p50,
    resize_ms: p.resize_ms.p50,
    peak_rss_mb: p.peak_rss_mb,
    b1_c1_ms: p.points.find((pt) => pt.batch === 1 && pt.cores === 1)?.p50_ms,
  })),
};

const pct = (x: number) => `${fmt(x * 100, 1)} %`;
emit(
  {
    title: `bench:profile — ${figures.machine.cpu}, ${figures.machine.cores} cores, onnxruntime ${figures.machine.onnxruntime}`,
    tables: [
      {
        head: [
          "variant",
          "grid",
          "fit median err",
          "fit max err",
          "cold start ms",
          "resize ms",
          "resize/cold",
          "peak RSS MB",
          "b=1 c=1 ms",
        ],
        rows: profiles.map((p) => [
          `${p.task}/${p.variant}`,
          String(p.points.length),
          pct(p.fit.p50.median_rel_error),
          pct(p.fit.p50.max_rel_error),
          fmt(p.load_ms.p50, 0),
          fmt(p.resize_ms.p50, 1),
          p.resize_ms.samples.length ? `1/${fmt(p.load_ms.p50 / p.resize_ms.p50, 1)}` : "-",
          fmt(p.peak_rss_mb, 0),
          fmt(p.points.find((pt) => pt.batch === 1 && pt.cores === 1)?.p50_ms ?? Number.NaN, 3),
        ]),
      },
      {
        head: ["figure", "value", "goal"],
        rows: [
          ["fit median relative error (p50 fit, all grid points)", pct(figures.fit_median_rel_error), "<= 10 %"],
          ["fit max relative error", pct(figures.fit_max_rel_error), ""],
          [
            "fit median / max relative error (p99 fit)",
            `${pct(figures.fit_p99_median_rel_error)} / ${pct(figures.fit_p99_max_rel_error)}`,
            "",
          ],
          ["in-place resize p50 ms", fmt(figures.resize_ms_p50, 1), ""],
          ["cold start p50 ms (spawn + session + warm-up)", fmt(figures.cold_start_ms_p50, 0), ""],
          [
            "resize / cold start (median over variants, max)",
            `${fmt(figures.resize_over_cold_start, 3)} (max ${fmt(figures.resize_over_cold_start_max, 3)})`,
            "<= 0.2",
          ],
          [
            "ResNet-50 batch-1 latency, 1 core / 2 cores (ms)",
            `${fmt(figures.resnet50_b1_c1_ms, 1)} / ${fmt(figures.resnet50_b1_c2_ms, 1)}`,
            "",
          ],
        ],
      },
    ],
    figures,
  },
  values.json!,
);
