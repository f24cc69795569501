// What `sloserve bench` prints: perf_analyzer-style tables (client latency percentiles and
// throughput; the server's own account when its responses carry one; SLO attainment; errors by
// status; the pacer's schedule lag), a CSV of per-rate or per-request rows, or one JSON object.
import fs from "node:fs";
import { fmt } from "../terminal/table.js";
import { emit, type BenchReport } from "../terminal/report.js";
import { LAG_WARN_MS } from "./pacer.js";
import type { LoadRun } from "./run.js";
import type { SweepResult, SweepTarget } from "./sweep.js";

export interface ReportContext {
  model: string;
  protocol: string;
  source: string;
  sweep?: { result: SweepResult<LoadRun>; target: SweepTarget };
}

const pct = (x: number | null) => (x === null ? "-" : `${fmt(x * 100)}%`);
const ms = (x: number | null | undefined) => (x === null || x === undefined ? "-" : fmt(x));
const rateOf = (r: LoadRun) => fmt(r.rate ?? r.summary.offeredRate, 1);

export function lagWarning(r: LoadRun): string | null {
  const l = r.summary.lag;
  return l.lagged
    ? `warning: the load generator lagged its schedule (p99 ${fmt(l.p99Ms, 3)} ms > ${LAG_WARN_MS} ms, max ${fmt(l.maxMs, 1)} ms): the offered load was burstier than asked; give it a core of its own or lower the rate`
    : null;
}

export function buildReport(runs: LoadRun[], ctx: ReportContext): BenchReport {
  const s = runs.map((r) => r.summary);
  const hasServer = s.some((x) => x.serverLatencyMs || x.serverSloReported > 0);
  const tables: BenchReport["tables"] = [
    {
      head: [
        "rate req/s",
        "sent",
        "ok",
        "throughput/s",
        "p50 ms",
        "p90 ms",
        "p95 ms",
        "p99 ms",
        "mean ms",
        `attainment${s[0]?.sloMs ? ` (≤${s[0].sloMs} ms)` : ""}`,
        "errors",
        "lag p50/p99/max ms",
      ],
      rows: runs.map((r) => {
        const x = r.summary;
        const errors = x.sent - x.ok;
        return [
          rateOf(r),
          String(x.sent),
          String(x.ok),
          fmt(x.throughput, 1),
          ms(x.latencyMs.p50),
          ms(x.latencyMs.p90),
          ms(x.latencyMs.p95),
          ms(x.latencyMs.p99),
          ms(x.latencyMs.mean),
          pct(x.attainment),
          String(errors),
          `${fmt(x.lag.p50Ms, 3)}/${fmt(x.lag.p99Ms, 3)}/${fmt(x.lag.maxMs, 2)}`,
        ];
      }),
    },
  ];
  if (hasServer) {
    tables.push({
      head: [
        "rate req/s",
        "server p50 ms",
        "server p99 ms",
        "queue ms",
        "compute ms",
        "client overhead ms",
        "server slo_met",
        "server attainment",
        "late on client only",
        "variants",
      ],
      rows: runs.map((r) => {
        const x = r.summary;
        const variants = Object.entries(x.variants)
          .map(([v, n]) => `${v}:${n}`)
          .join(" ");
        return [
          rateOf(r),
          ms(x.serverLatencyMs?.p50),
          ms(x.serverLatencyMs?.p99),
          ms(x.serverQueueMs),
          ms(x.serverComputeMs),
          ms(x.clientOverheadMs),
          x.serverSloMet === null ? "-" : `${x.serverSloMet}/${x.serverSloReported}`,
          pct(x.serverAttainment),
          x.sloMs === null ? "-" : String(x.lateOnClientOnly),
          variants || "-",
        ];
      }),
    });
  }
  const errorRows = runs.flatMap((r) =>
    Object.entries(r.summary.errors).map(([status, n]) => [rateOf(r), status, String(n)]),
  );
  if (errorRows.length) tables.push({ head: ["rate req/s", "status", "count"], rows: errorRows });
  const notes: string[] = [];
  if (!hasServer)
    notes.push("(the server's responses carry no latency_us/slo_met parameters: client-side figures only)");
  if (s[0]?.sloMs === null) notes.push("(no --slo-ms: client-side attainment not judged)");
  for (const r of runs) {
    const w = lagWarning(r);
    if (w) notes.push(`${rateOf(r)} req/s: ${w}`);
  }
  if (ctx.sweep) {
    const { result, target } = ctx.sweep;
    const goal = [
      target.p99Ms !== undefined ? `p99 ≤ ${target.p99Ms} ms` : "",
      target.attainment !== undefined ? `attainment ≥ ${(target.attainment * 100).toFixed(2)}%` : "",
    ]
      .filter(Boolean)
      .join(" and ");
    const last = result.steps.at(-1);
    notes.push(
      result.best === null
        ? `no rate met ${goal} (${last?.rate} req/s: ${last?.miss})`
        : `highest rate meeting ${goal}: ${result.best} req/s${last?.miss ? ` (${last.rate} req/s: ${last.miss})` : ""}`,
    );
  }
  return {
    title: `sloserve bench: ${ctx.model} over ${ctx.protocol}, ${ctx.source}`,
    tables,
    figures: {
      model: ctx.model,
      protocol: ctx.protocol,
      source: ctx.source,
      runs: runs.map((r) => ({ rate: r.rate ?? null, ...r.summary })),
      ...(ctx.sweep ? { sweep: { target: ctx.sweep.target, best_rate: ctx.sweep.result.best } } : {}),
    },
    notes,
  };
}

export function printReport(runs: LoadRun[], ctx: ReportContext, json: boolean): void {
  emit(buildReport(runs, ctx), json);
}

const RATE_COLUMNS = [
  "rate",
  "sent",
  "ok",
  "duration_s",
  "throughput",
  "p50_ms",
  "p90_ms",
  "p95_ms",
  "p99_ms",
  "mean_ms",
  "server_p50_ms",
  "server_p99_ms",
  "queue_ms",
  "compute_ms",
  "client_overhead_ms",
  "slo_ms",
  "attainment",
  "server_slo_met",
  "server_slo_reported",
  "late_on_client_only",
  "errors",
  "lag_p50_ms",
  "lag_p99_ms",
  "lag_max_ms",
];
const REQUEST_COLUMNS = [
  "rate",
  "request",
  "scheduled_ms",
  "lag_ms",
  "latency_ms",
  "status",
  "server_latency_ms",
  "queue_ms",
  "compute_ms",
  "slo_met",
  "variant",
  "batch_size",
];

const cell = (x: number | string | null | undefined) =>
  x === null || x === undefined || (typeof x === "number" && Number.isNaN(x))
    ? ""
    : typeof x === "number"
      ? String(Number(x.toFixed(4)))
      : /[",\n]/.test(x)
        ? `"${x.replace(/"/g, '""')}"`
        : x;

export function rateCsv(runs: LoadRun[]): string {
  const lines = [RATE_COLUMNS.join(",")];
  for (const r of runs) {
    const x = r.summary;
    lines.push(
      [
        r.rate ?? x.offeredRate,
        x.sent,
        x.ok,
        x.durationS,
        x.throughput,
        x.latencyMs.p50,
        x.latencyMs.p90,
        x.latencyMs.p95,
        x.latencyMs.p99,
        x.latencyMs.mean,
        x.serverLatencyMs?.p50,
        x.serverLatencyMs?.p99,
        x.serverQueueMs,
        x.serverComputeMs,
        x.clientOverheadMs,
        x.sloMs,
        x.attainment,
        x.serverSloMet,
        x.serverSloReported,
        x.lateOnClientOnly,
        x.sent - x.ok,
        x.lag.p50Ms,
        x.lag.p99Ms,
        x.lag.maxMs,
      ]
        .map(cell)
        .join(","),
    );
  }
  return lines.join("\n") + "\n";
}

export function requestCsv(runs: LoadRun[]): string {
  const lines = [REQUEST_COLUMNS.join(",")];
  for (const r of runs) {
    const rec = r.recorder;
    const t0 = rec.sent ? rec.scheduledMs[0]! - r.schedule.times[0]! : 0;
    for (let i = 0; i < rec.sent; i++) {
      const status = rec.statuses[rec.status[i]!] ?? "no answer";
      const met = rec.serverSloMet[i]!;
      lines.push(
        [
          r.rate ?? r.summary.offeredRate,
          i,
          rec.scheduledMs[i]! - t0,
          rec.sentMs[i]! - rec.scheduledMs[i]!,
          status === "200" ? rec.clientLatencyMs(i) : null,
          status,
          rec.serverLatencyUs[i]! / 1000,
          rec.queueUs[i]! / 1000,
          rec.computeUs[i]! / 1000,
          met < 0 ? null : met ? "true" : "false",
          rec.variant[i]! >= 0 ? rec.variants[rec.variant[i]!] : null,
          rec.batchSize[i]! > 0 ? rec.batchSize[i]! : null,
        ]
          .map(cell)
          .join(","),
      );
    }
  }
  return lines.join("\n") + "\n";
}

export function writeCsv(file: string, runs: LoadRun[], rows: "rate" | "request"): void {
  fs.writeFileSync(file, rows === "request" ? requestCsv(runs) : rateCsv(runs));
}
