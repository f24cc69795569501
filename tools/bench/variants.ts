// npm run bench:variants [-- --json] [--task t] [--budget-ms n] [--images n]: every generated variant
// against its source, in one run: latency at batch 1 and 8 on 1 and 2 pinned cores (the source and
// the variant timed in alternating rounds, so load from elsewhere hits both alike), and accuracy
// (variant.yaml, measured). Then the `ocr` pipeline's combinations of stage variants: end-to-end
// latency of the in-process pipeline per image, and end-to-end accuracy (models/ocr/accuracy.yaml).
// Goals (issue 15): an int8 variant per model ≥ 1.5× faster at ≤ 1 point accuracy loss; the ocr
// combinations spanning ≥ 4× in end-to-end latency.
import path from "node:path";
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { spawnWorker, type WorkerHandle } from "../../src/cluster/local/worker-process.js";
import { DEFAULT_MODELS_DIR, prepareZoo } from "../../src/bundled-zoo/prepare.js";
import { fmt } from "../../src/terminal/table.js";
import { Engine } from "../../src/engine/engine.js";
import { ctcCharset } from "../../src/ocr/ctc.js";
import { findCombination, readE2eRecord } from "../../src/ocr/e2e-record.js";
import { ocrEvalSet } from "../../src/ocr/eval-set.js";
import { readDictionary } from "../../src/ocr/models.js";
import { ocr } from "../../src/ocr/pipeline.js";
import { describeMachine } from "../../src/profiler/machine.js";
import { quantile } from "../../src/stats/quantile.js";
import { loadRepository, type Variant } from "../../src/repository/repository.js";
import { emit } from "../../src/terminal/report.js";
import { cpuCostPerRun } from "../../src/variants/cost.js";
import { taskSupport } from "../../src/variants/tasks.js";

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    models: { type: "string", default: DEFAULT_MODELS_DIR },
    task: { type: "string", multiple: true, default: ["ocr-det", "ocr-rec", "digits"] },
    "budget-ms": { type: "string", default: "400" },
    rounds: { type: "string", default: "3" },
    images: { type: "string", default: "8" },
  },
});
const log = (m: string) => process.stderr.write(`${m}\n`);
const budgetMs = Number(values["budget-ms"]);
const rounds = Number(values.rounds);
const BATCHES = [1, 8];
const CORES = [1, 2];

await prepareZoo(values.models!, log);
const repo = await loadRepository(path.resolve(values.models!), { tasks: values.task });

interface Row {
  task: string;
  variant: string;
  source: string;
  int8: boolean;
  resolution?: number;
  accuracy: number;
  source_accuracy: number;
  accuracy_loss_points: number;
  /** "b=1,c=1" → p50 ms of the variant and of its source, and source/variant. */
  latency: Record<string, { variant_ms: number; source_ms: number; speedup: number }>;
  /** CPU ms per inference on one thread (the task's cost batch), alternating source and variant. */
  cpu: { batch: number; variant_ms: number; source_ms: number; speedup: number };
}

/** Median CPU cost of each, measured in alternating rounds so that both see the same machine. */
async function cpuAlternating(source: Variant, v: Variant, batch: number): Promise<Row["cpu"]> {
  const [a, b] = [new Uint8Array(await readFile(source.modelPath)), new Uint8Array(await readFile(v.modelPath))];
  const sa: number[] = [];
  const sb: number[] = [];
  for (let r = 0; r < 3; r++) {
    sa.push((await cpuCostPerRun(a, batch, { runs: 9 })).cpuMs);
    sb.push((await cpuCostPerRun(b, batch, { runs: 9 })).cpuMs);
  }
  const [ms, mv] = [quantile(sa, 0.5), quantile(sb, 0.5)];
  return {
    batch,
    variant_ms: Number(mv.toFixed(3)),
    source_ms: Number(ms.toFixed(3)),
    speedup: Number((ms / mv).toFixed(3)),
  };
}

async function timeAlternating(a: WorkerHandle, b: WorkerHandle, batch: number): Promise<[number, number]> {
  const sa: number[] = [];
  const sb: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const [w, into] of [
      [a, sa],
      [b, sb],
    ] as const) {
      const { header } = await w.client.call("bench", { batch, warmup: 1, minSamples: 3, budgetMs: budgetMs / rounds });
      into.push(...(header.samples as number[]));
    }
  }
  return [quantile(sa, 0.5), quantile(sb, 0.5)];
}

const rows: Row[] = [];
for (const task of repo.tasks.values()) {
  const generated = [...task.variants.values()].filter((v) => v.config.derived_from);
  for (const v of generated) {
    const d = v.config.derived_from!;
    const source = task.variants.get(d.variant);
    if (!source) throw new Error(`${task.name}/${v.name}: its source '${d.variant}' is missing`);
    const maxBatch = Math.min(v.config.max_batch, source.config.max_batch);
    const row: Row = {
      task: task.name,
      variant: v.name,
      source: source.name,
      int8: d.transforms.some((t) => t.kind === "int8"),
      resolution: d.transforms.find((t) => t.kind === "resolution")?.size as number | undefined,
      accuracy: v.config.accuracy.value,
      source_accuracy: source.config.accuracy.value,
      accuracy_loss_points: Number(((source.config.accuracy.value - v.config.accuracy.value) * 100).toFixed(3)),
      latency: {},
      cpu: await cpuAlternating(source, v, taskSupport(task.name).costBatch),
    };
    for (const c of CORES) {
      const spawn = (x: Variant) => spawnWorker({ modelPath: x.modelPath, threads: c, cpus: [...Array(c).keys()] });
      const ws = await spawn(source);
      const wv = await spawn(v).catch(async (err) => {
        await ws.stop();
        throw err;
      });
      try {
        for (const b of BATCHES.filter((x) => x <= maxBatch)) {
          log(`${task.name}/${v.name} vs ${source.name}: b=${b} c=${c}`);
          const [src, mine] = await timeAlternating(ws, wv, b);
          row.latency[`b=${b},c=${c}`] = {
            variant_ms: Number(mine.toFixed(3)),
            source_ms: Number(src.toFixed(3)),
            speedup: Number((src / mine).toFixed(3)),
          };
        }
      } finally {
        await ws.stop();
        await wv.stop();
      }
    }
    rows.push(row);
  }
}

/** Per model (task/source): the best int8 variant at the same input size within 1 point of accuracy. */
const goals = [...new Set(rows.map((r) => `${r.task}/${r.source}`))].map((model) => {
  const mine = rows.filter((r) => `${r.task}/${r.source}` === model && r.int8 && !r.resolution);
  const ok = mine.filter((r) => r.accuracy_loss_points <= 1);
  const best = (key: string) => Math.max(0, ...ok.map((r) => r.latency[key]?.speedup ?? 0));
  const settings = Object.fromEntries(
    BATCHES.flatMap((b) => CORES.map((c) => `b=${b},c=${c}`)).map((k) => [k, best(k)]),
  );
  const cpu = Math.max(0, ...ok.map((r) => r.cpu.speedup));
  return {
    model,
    int8_variants: mine.map((r) => r.variant),
    best_cpu_speedup_within_1_point: cpu,
    goal_met_cpu: cpu >= 1.5,
    best_speedup_within_1_point: settings,
    goal_met_b1_c1: (settings["b=1,c=1"] ?? 0) >= 1.5,
    goal_met_any_setting: Object.values(settings).some((s) => s >= 1.5),
  };
});

// The ocr pipeline: every det × rec combination (classifier fixed), in-process, one thread per stage.
interface Combo {
  det: string;
  cls: string;
  rec: string;
  p50_ms_per_image: number;
  accuracy?: number;
}
const combos: Combo[] = [];
let span: number | undefined;
if (repo.tasks.has("ocr-det") && repo.tasks.has("ocr-rec")) {
  const full = await loadRepository(path.resolve(values.models!), { tasks: ["ocr-det", "ocr-cls", "ocr-rec"] });
  const record = await readE2eRecord(path.resolve(values.models!));
  const images = ocrEvalSet(Number(values.images));
  const charset = ctcCharset(await readDictionary());
  const open = async (v: Variant) => Engine.create(new Uint8Array(await readFile(v.modelPath)), { threads: 1 });
  const clsVariant = [...full.tasks.get("ocr-cls")!.variants.values()][0]!;
  const cls = await open(clsVariant);
  const recs = await Promise.all(
    [...full.tasks.get("ocr-rec")!.variants.values()].map(async (v) => [v, await open(v)] as const),
  );
  for (const detV of full.tasks.get("ocr-det")!.variants.values()) {
    const det = await open(detV);
    for (const [recV, rec] of recs) {
      log(`ocr pipeline: ${detV.name} + ${clsVariant.name} + ${recV.name}`);
      const engines = { det, cls, rec, charset };
      await ocr(images[0]!.image, engines);
      const times: number[] = [];
      for (const s of images) {
        const t0 = performance.now();
        await ocr(s.image, engines);
        times.push(performance.now() - t0);
      }
      combos.push({
        det: detV.name,
        cls: clsVariant.name,
        rec: recV.name,
        p50_ms_per_image: Number(quantile(times, 0.5).toFixed(3)),
        accuracy: record
          ? findCombination(record, { det: detV.name, cls: clsVariant.name, rec: recV.name })?.value
          : undefined,
      });
    }
    await det.close();
  }
  for (const [, r] of recs) await r.close();
  await cls.close();
  const ms = combos.map((c) => c.p50_ms_per_image);
  span = Math.max(...ms) / Math.min(...ms);
}

const settingKeys = BATCHES.flatMap((b) => CORES.map((c) => `b=${b},c=${c}`));
emit(
  {
    title: "bench:variants — generated variants against their sources (p50 ms; speed-up = source / variant)",
    tables: [
      {
        head: ["variant", "from", "accuracy %", "Δ points", "CPU ms (×)", ...settingKeys.map((k) => `${k} ms (×)`)],
        rows: rows.map((r) => [
          `${r.task}/${r.variant}`,
          r.source,
          fmt(r.accuracy * 100),
          fmt(-r.accuracy_loss_points),
          `${fmt(r.cpu.variant_ms)} (${fmt(r.cpu.speedup)}×)`,
          ...settingKeys.map((k) =>
            r.latency[k] ? `${fmt(r.latency[k]!.variant_ms)} (${fmt(r.latency[k]!.speedup)}×)` : "-",
          ),
        ]),
      },
      {
        head: [
          "model",
          "int8 variants",
          "best int8 CPU speed-up ≤1 pt",
          "best wall speed-up ≤1 pt (b=1,c=1)",
          "≥1.5× at b=1,c=1",
          "≥1.5× anywhere",
        ],
        rows: goals.map((g) => [
          g.model,
          g.int8_variants.join(", ") || "-",
          fmt(g.best_cpu_speedup_within_1_point),
          fmt(g.best_speedup_within_1_point["b=1,c=1"] ?? 0),
          g.goal_met_b1_c1 ? "yes" : "no",
          g.goal_met_any_setting ? "yes" : "no",
        ]),
      },
      {
        head: ["det", "cls", "rec", "ms / image (1 thread each)", "1-CER e2e %"],
        rows: combos.map((c) => [
          c.det,
          c.cls,
          c.rec,
          fmt(c.p50_ms_per_image),
          c.accuracy === undefined ? "-" : fmt(c.accuracy * 100),
        ]),
      },
    ].filter((t) => t.rows.length > 0),
    figures: {
      machine: describeMachine(),
      settings: { budget_ms: budgetMs, rounds, pipeline_images: Number(values.images) },
      variants: rows,
      int8_goal: goals,
      ocr_pipeline: {
        combinations: combos,
        latency_span: span,
        goal_span_4x: span === undefined ? undefined : span >= 4,
      },
    },
    notes: [
      span === undefined
        ? ""
        : `ocr pipeline: end-to-end latency spans ${fmt(span)}× across its stage variants (goal ≥ 4×)`,
      "Wall-clock figures on a shared machine are noisy; the speed-ups are ratios measured in alternating rounds.",
    ],
  },
  values.json!,
);
