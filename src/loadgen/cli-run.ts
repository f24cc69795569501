// The bench command's work once its flags are parsed: one run or a sweep, a progress bar on stderr
// while it runs, then the report (stdout) and the CSV.
import type { Progress } from "../terminal/progress.js";
import { lagWarning, printReport, writeCsv } from "./output.js";
import { openSession, type LoadOptions, type LoadRun } from "./run.js";
import { missReason, parseSweep, sweepRates, type SweepResult, type SweepTarget } from "./sweep.js";

export interface BenchOutput {
  sweep?: string;
  target: SweepTarget;
  csv?: string;
  csvRows: "rate" | "request";
  json: boolean;
  progress?: (title: string) => Progress;
}

const log = (msg: string) => process.stderr.write(`${msg}\n`);

export async function benchCommand(o: LoadOptions, out: BenchOutput): Promise<void> {
  const rates = out.sweep ? parseSweep(out.sweep) : undefined;
  // Check the target before any load is sent: a typo should not cost a whole sweep.
  if (rates)
    missReason(
      {
        ok: 1,
        attainment: o.sloMs === undefined ? null : 1,
        latencyMs: { p50: 0, p90: 0, p95: 0, p99: 0, mean: 0, max: 0 },
      },
      out.target,
    );
  const session = await openSession(o);
  let runs: LoadRun[];
  let sweep: SweepResult<LoadRun> | undefined;
  try {
    const runOne = async (rate?: number) => {
      const bar = out.progress?.(rate === undefined ? "bench" : `bench ${rate} req/s`);
      try {
        return await session.run(
          rate,
          bar ? (p) => bar.step(p.sent, p.total, `answered ${p.answered}, ok ${p.ok}`) : undefined,
        );
      } finally {
        bar?.stop();
      }
    };
    if (rates) {
      sweep = await sweepRates(
        rates,
        out.target,
        (r) => runOne(r),
        (s) => log(`${s.rate} req/s: ${s.miss ?? "meets the target"}`),
      );
      runs = sweep.steps.map((s) => s.result);
    } else runs = [await runOne()];
  } finally {
    await session.close();
  }
  // The table's notes carry the lag warning; JSON readers get it on stderr as well.
  if (out.json) {
    for (const r of runs) {
      const w = lagWarning(r);
      if (w) log(w);
    }
  }
  const source =
    o.source.kind === "trace"
      ? `trace ${o.source.file} (${o.source.format})`
      : `${o.source.arrival} arrivals${o.source.arrival === "gamma" ? ` CV² ${o.source.cv2}` : ""}`;
  printReport(
    runs,
    {
      model: o.model,
      protocol: o.protocol,
      source,
      ...(sweep ? { sweep: { result: sweep, target: out.target } } : {}),
    },
    out.json,
  );
  if (out.csv) writeCsv(out.csv, runs, out.csvRows);
}
