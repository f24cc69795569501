// npm run bench:pressure [-- --json] [--rounds 3] [--variants task/variant,...] [--seconds 15] [--factor 10]
//   [--clients 1000] [--burst 200]: serving under pressure (issue 18) on the real server, the scenarios that
// test/e2e/pressure.test.ts checks (test/support/pressure.ts):
//   zero      — a digits task scaled to zero gets one request: its latency when the warm pool's start fits the
//               SLO, and how soon a request whose SLO no start can meet is told (503 + Retry-After);
//   herd      — a burst at wake-up: instances started against what the plan asked (no policy, and kpa);
//   pool      — cold start of zoo variants, a new worker process against a warm-pool worker (same run,
//               alternating rounds);
//   overload  — 10× one core's capacity in two classes: the high class's attainment and p99, the low class's
//               shedding;
//   cancel    — 1,000 REST clients queued and then gone: queue left, batches run after, time to clear.
// Goals: first request at zero within its SLO; 503 at once; starts = planned; pool ≥ 2× faster; high class
// ≥ 99 % within SLO with p99 ≤ SLO; no queued work and at most the batches already out after the disconnects.
import { parseArgs } from "node:util";
import { emit } from "../../src/terminal/report.js";
import { fmt } from "../../src/terminal/table.js";
import {
  disconnects,
  herdAtWake,
  measureColdStarts,
  overloadClasses,
  wakeFromZero,
} from "../../test/support/pressure.js";

const DEFAULT_VARIANTS = [
  "digits/cnn-small",
  "digits/cnn-large",
  "digits/mlp-large",
  "vision/mobilenetv2",
  "vision/resnet18",
  "ocr-det/ppocrv4-mobile",
  "ocr-rec/ppocrv4-mobile",
];

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    rounds: { type: "string", default: "3" },
    variants: { type: "string", default: DEFAULT_VARIANTS.join(",") },
    seconds: { type: "string", default: "15" },
    factor: { type: "string", default: "10" },
    "slo-ms": { type: "string", default: "1500" },
    clients: { type: "string", default: "1000" },
    burst: { type: "string", default: "200" },
  },
});
const num = (name: keyof typeof values, min: number): number => {
  const x = Number(values[name]);
  if (!Number.isFinite(x) || x < min) throw new Error(`--${name} must be a number ≥ ${min}, got '${values[name]}'`);
  return x;
};
const rounds = Math.round(num("rounds", 1));
const seconds = num("seconds", 1);
const factor = num("factor", 1);
const sloMs = num("slo-ms", 1);
const clients = Math.round(num("clients", 1));
const burst = Math.round(num("burst", 1));
const variants = values.variants!.split(",").map((s) => {
  const [task, variant, ...rest] = s.trim().split("/");
  if (!task || !variant || rest.length > 0) throw new Error(`--variants takes task/variant,…; got '${s}'`);
  return { task, variant };
});
const log = (m: string) => process.stderr.write(`bench:pressure: ${m}\n`);

async function main(): Promise<void> {
  log("zero: the first request at a task scaled to zero");
  const fits = await wakeFromZero({ warmPool: 1, sloMs });
  const cannot = await wakeFromZero({ warmPool: 1, sloMs: 5 });
  const coldFits = await wakeFromZero({ warmPool: 0, sloMs });

  log(`herd: ${burst} requests at once at wake-up`);
  const herdNone = await herdAtWake({ burst, sloMs: 3000 });
  const herdKpa = await herdAtWake({ burst, sloMs: 3000, autoscaler: "kpa" });

  log(`pool: cold starts of ${variants.length} variants, ${rounds} rounds each way`);
  const starts = await measureColdStarts(variants, rounds, undefined, (r) =>
    log(`  ${r.task}/${r.variant}: ${fmt(r.ratio, 1)}×`),
  );
  const minRatio = Math.min(...starts.map((r) => r.ratio));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

  log(`overload: ${factor}× capacity in two classes for ${seconds} s`);
  const over = await overloadClasses({ seconds, factor, sloMs, highShare: 0.25 });

  log(`cancel: ${clients} clients queued, then gone`);
  const gone = await disconnects({ clients });

  const figures = {
    slo_ms: sloMs,
    zero: {
      warm_pool: { status: fits.status, latency_ms: fits.latencyMs, slo_met: fits.sloMet, warm_start: fits.warmStart },
      no_pool: { status: coldFits.status, latency_ms: coldFits.latencyMs, slo_met: coldFits.sloMet },
      cannot_meet: {
        slo_ms: 5,
        status: cannot.status,
        answered_ms: cannot.latencyMs,
        retry_after_s: Number(cannot.retryAfter),
        retry_after_ms: cannot.retryAfterMs,
      },
    },
    herd: {
      burst,
      none: { starts: herdNone.starts, planned: herdNone.planned, by_status: herdNone.byStatus },
      kpa: { starts: herdKpa.starts, planned: herdKpa.planned, by_status: herdKpa.byStatus },
    },
    pool: {
      rounds,
      variants: starts.map((r) => ({
        task: r.task,
        variant: r.variant,
        new_process_ms: r.coldMs,
        pool_ms: r.warmMs,
        new_process_median_ms: median(r.coldMs),
        pool_median_ms: median(r.warmMs),
        ratio: r.ratio,
      })),
      min_ratio: minRatio,
    },
    overload: {
      capacity_rps: over.capacityPerS,
      factor,
      seconds,
      high: over.high,
      low: over.low,
    },
    cancel: gone,
    goals: {
      zero_first_request_within_slo: fits.status === 200 && fits.sloMet === true,
      zero_refused_at_once: cannot.status === 503 && cannot.latencyMs < 250 && Number(cannot.retryAfter) >= 1,
      herd_starts_planned_only: herdNone.starts === herdNone.planned && herdKpa.starts === herdKpa.planned,
      pool_at_least_2x_every_variant: minRatio >= 2,
      high_class_99pct_within_slo_server: over.high.serverAttainmentPct >= 99 && over.high.serverP99Ms <= sloMs,
      high_class_99pct_within_slo_client: over.high.attainmentPct >= 99 && over.high.p99Ms <= sloMs,
      disconnects_leave_nothing: gone.queuedAfter === 0 && gone.batchesAfter <= 3,
    },
  };
  const ms = (x: number) => `${fmt(x, 0)} ms`;
  emit(
    {
      title: `pressure: scale to zero, warm pool, priority classes, cancellation (SLO ${sloMs} ms)`,
      tables: [
        {
          head: ["scenario", "figure", "value", "goal"],
          rows: [
            [
              "zero, warm pool",
              "first request",
              `${fits.status}, ${ms(fits.latencyMs)}${fits.warmStart ? " (pool worker)" : ""}`,
              `200 ≤ ${sloMs} ms`,
            ],
            ["zero, no pool", "first request", `${coldFits.status}, ${ms(coldFits.latencyMs)}`, ""],
            [
              "zero, SLO 5 ms",
              "answered",
              `${cannot.status} in ${ms(cannot.latencyMs)}, Retry-After ${cannot.retryAfter} s`,
              "503 at once",
            ],
            [
              `herd of ${burst}, no policy`,
              "starts / planned",
              `${herdNone.starts} / ${herdNone.planned} (${JSON.stringify(herdNone.byStatus)})`,
              "equal",
            ],
            [
              `herd of ${burst}, kpa`,
              "starts / planned",
              `${herdKpa.starts} / ${herdKpa.planned} (${JSON.stringify(herdKpa.byStatus)})`,
              "equal",
            ],
            ...starts.map((r) => [
              `pool: ${r.task}/${r.variant}`,
              "new process → pool worker",
              `${ms(median(r.coldMs))} → ${ms(median(r.warmMs))} (${fmt(r.ratio, 1)}×)`,
              "≥ 2×",
            ]),
            [
              `overload ${factor}×, high class`,
              "within SLO, p99 (server)",
              `${fmt(over.high.serverAttainmentPct, 1)} %, ${ms(over.high.serverP99Ms)} (${over.high.sent} sent)`,
              `≥ 99 %, ≤ ${sloMs} ms`,
            ],
            [
              `overload ${factor}×, high class`,
              "within SLO, p99 (client)",
              `${fmt(over.high.attainmentPct, 1)} %, ${ms(over.high.p99Ms)}`,
              "",
            ],
            [
              `overload ${factor}×, low class`,
              "shed, within SLO",
              `${fmt(over.low.shedPct, 1)} % shed, ${fmt(over.low.attainmentPct, 1)} % within SLO (${over.low.sent} sent)`,
              "",
            ],
            [
              `${clients} disconnects`,
              "queued before → after",
              `${gone.queuedBefore} → ${gone.queuedAfter} in ${ms(gone.clearedMs)}`,
              "→ 0",
            ],
            [
              `${clients} disconnects`,
              "batches run after; skipped",
              `${gone.batchesAfter}; ${gone.skippedBatches} skipped (cancelled: ${gone.cancelledQueued} queued, ${gone.cancelledDispatched} dispatched)`,
              "≤ 3 (those out, one ending)",
            ],
          ],
        },
      ],
      figures,
      notes: [
        `Overload: the burn task (test/support/burn-model.ts, profiled on this machine: ${fmt(over.capacityPerS, 1)} rows/s on one core) in a server process of its own; the high class (priority 1) offered a quarter of capacity, the low class (priority 2) the rest of ${factor}×; attainment over every request sent, by the server's account (the slo_met and latency it reports) and by the load generator's clock (which shares this machine and adds its own delays).`,
        "Pool: LocalCluster start of the variant on one core, a new worker process against a warm-pool worker (onnxruntime loaded, no model), rounds alternating.",
        "Wall-clock figures on a shared machine: compare within one run.",
      ],
    },
    values.json!,
  );
}

main().catch((err) => {
  process.stderr.write(`bench:pressure: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
