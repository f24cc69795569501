// The two clients every server meets: `sloserve bench` (open loop, run as its own process pinned
// to the client cores) and Triton's perf_analyzer (closed loop, concurrency sweep), and the search
// for the highest rate a server sustains, made of short `sloserve bench` runs.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { cpuBetween, treeCpu } from "./proc.js";
import type { Protocol, RunningServer } from "./servers.js";

const run = promisify(execFile);

export interface BenchRun {
  sent: number;
  ok: number;
  throughput: number;
  latencyMs: { p50: number; p90: number; p95: number; p99: number; mean: number; max: number };
  attainment: number | null;
  errors: Record<string, number>;
  lag: { p50Ms: number; p99Ms: number; maxMs: number; lagged: boolean };
}

export interface BenchArgs {
  protocol: Protocol;
  /** Offered rate; with `trace`: the window's mean rate. */
  rate: number;
  durationS: number;
  arrival?: "uniform" | "poisson";
  sloMs?: number;
  trace?: { file: string; format: string; startS: number };
  timeoutMs?: number;
  seed?: number;
}

export class Clients {
  constructor(
    readonly repoRoot: string,
    readonly cores: number[],
    readonly perfAnalyzerBin: string | null,
  ) {}

  /** One `sloserve bench --json` run against a server. */
  async bench(s: RunningServer, a: BenchArgs): Promise<BenchRun> {
    const argv = [
      "-c",
      this.cores.join(","),
      process.execPath,
      path.join(this.repoRoot, "bin", "sloserve.js"),
      "bench",
      "-m",
      s.model,
      "--protocol",
      a.protocol,
      "--url",
      s.httpUrl,
      "--grpc-url",
      s.grpcAddr,
      "--rate",
      String(a.rate),
      "--duration",
      String(a.durationS),
      "--seed",
      String(a.seed ?? 1),
      "--timeout-ms",
      String(a.timeoutMs ?? 30_000),
      "--json",
      "--no-progress",
    ];
    if (a.trace) argv.push("--trace", a.trace.file, "--format", a.trace.format, "--start", String(a.trace.startS));
    else argv.push("--arrival", a.arrival ?? "uniform");
    if (a.sloMs !== undefined) argv.push("--slo-ms", String(a.sloMs));
    const { stdout } = await run("taskset", argv, { cwd: this.repoRoot, maxBuffer: 64 << 20 }).catch((e) => {
      throw new Error(`sloserve bench against ${s.name} failed: ${String(e.stderr ?? e.message).slice(-2000)}`);
    });
    const report = JSON.parse(stdout.trim().split("\n").pop()!) as { runs: BenchRun[] };
    return report.runs[0]!;
  }

  /**
   * The highest rate (one-row requests, uniform arrivals) the server answers completely and on
   * time: doubling from `startRate` while it keeps up, then bisecting. A run keeps up when every
   * request is answered 200 and the answers keep pace (throughput, which counts the time to the
   * last answer, ≥ 95 % of the offered rate). Returns the best throughput among runs that kept up,
   * and the most rows the server's process tree answered per CPU-second it used in any run without
   * errors: on a machine shared with other work a pinned core is not the server's alone, and rows
   * per CPU-second is what saturated rows/s per core would be if it were.
   */
  async saturate(
    s: RunningServer,
    protocol: Protocol,
    o: { startRate: number; maxRate: number; stepS: number; bisect: number; log: (m: string) => void },
  ): Promise<{
    rowsPerS: number;
    rate: number;
    lagP99Ms: number;
    rowsPerCpuS: number;
    steps: Step[];
  }> {
    const steps: Step[] = [];
    let best = { rowsPerS: 0, rate: 0, lagP99Ms: 0 };
    let rowsPerCpuS = 0;
    const tryRate = async (rate: number) => {
      const before = treeCpu(s.pid);
      const r = await this.bench(s, { protocol, rate, durationS: o.stepS, arrival: "uniform", timeoutMs: 10_000 });
      const cpuS = cpuBetween(before, treeCpu(s.pid));
      const failed = Object.values(r.errors).reduce((a, b) => a + b, 0);
      const kept = failed === 0 && r.ok === r.sent && r.throughput >= 0.95 * rate;
      steps.push({ rate, throughput: r.throughput, ok: kept, cpu_s: cpuS, rows_per_cpu_s: r.ok / cpuS });
      if (failed === 0 && cpuS > 0) rowsPerCpuS = Math.max(rowsPerCpuS, r.ok / cpuS);
      o.log(
        `  ${s.name}/${protocol} at ${rate.toFixed(0)} req/s: ${r.throughput.toFixed(0)}/s ${kept ? "kept up" : `fell behind${failed ? ` (${failed} errors)` : ""}`}, ${(r.ok / cpuS).toFixed(0)} rows per CPU-second`,
      );
      if (kept && r.throughput > best.rowsPerS) best = { rowsPerS: r.throughput, rate, lagP99Ms: r.lag.p99Ms };
      return kept;
    };
    let lo = 0;
    let hi = 0;
    for (let rate = o.startRate; ; rate *= 2) {
      if (rate > o.maxRate || !(await tryRate(Math.min(rate, o.maxRate)))) {
        hi = Math.min(rate, o.maxRate);
        break;
      }
      lo = rate;
      if (rate >= o.maxRate) break;
    }
    for (let i = 0; i < o.bisect && hi > 0 && hi - lo > 0.05 * hi; i++) {
      const mid = lo === 0 ? hi / 2 : (lo + hi) / 2;
      if (await tryRate(mid)) lo = mid;
      else hi = mid;
    }
    return { ...best, rowsPerCpuS, steps };
  }

  /** perf_analyzer at each concurrency level (one-row requests): throughput and client latency. */
  async perfAnalyzer(
    s: RunningServer,
    protocol: "http" | "grpc",
    concurrency: number[],
    windowMs: number,
  ): Promise<PerfPoint[]> {
    const out: PerfPoint[] = [];
    for (const c of concurrency) {
      try {
        out.push(await this.perfAnalyzerAt(s, protocol, c, windowMs));
      } catch (e) {
        // a level that never settles on a noisy machine is reported as such; the others still count
        out.push({ concurrency: c, inferPerS: NaN, p50Ms: NaN, p99Ms: NaN, error: (e as Error).message.slice(-300) });
      }
    }
    if (out.every((p) => p.error)) throw new Error(out[0]!.error);
    return out;
  }

  private async perfAnalyzerAt(
    s: RunningServer,
    protocol: "http" | "grpc",
    concurrency: number,
    windowMs: number,
  ): Promise<PerfPoint> {
    if (!this.perfAnalyzerBin) throw new Error("perf_analyzer is not installed; run scripts/peers-env.sh");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sloserve-pa-"));
    const csv = path.join(dir, "pa.csv");
    const url = protocol === "http" ? s.httpUrl.replace(/^http:\/\//, "") : s.grpcAddr;
    try {
      const argv = ["-c", this.cores.join(","), this.perfAnalyzerBin, "-m", s.model, "-u", url, "-i", protocol];
      argv.push("--concurrency-range", String(concurrency), "--measurement-interval", String(windowMs));
      argv.push("--stability-percentage", "60", "--max-trials", "8", "-f", csv);
      await run("taskset", argv, { cwd: this.repoRoot, maxBuffer: 64 << 20, timeout: 300_000 }).catch((e) => {
        const said = `${String(e.stdout ?? "").slice(-600)} ${String(e.stderr ?? e.message).slice(-600)}`;
        throw new Error(`perf_analyzer against ${s.name} (${protocol}, concurrency ${concurrency}) failed: ${said}`);
      });
      const [head, row] = fs.readFileSync(csv, "utf8").trim().split("\n");
      const cols = head!.split(",");
      const f = (row ?? "").split(",").map(Number);
      const col = (name: string) => {
        const i = cols.indexOf(name);
        if (i < 0 || !Number.isFinite(f[i])) throw new Error(`perf_analyzer CSV has no '${name}': ${head} / ${row}`);
        return f[i]!;
      };
      return {
        concurrency,
        inferPerS: col("Inferences/Second"),
        p50Ms: col("p50 latency") / 1000,
        p99Ms: col("p99 latency") / 1000,
      };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

export interface Step {
  rate: number;
  throughput: number;
  ok: boolean;
  cpu_s: number;
  rows_per_cpu_s: number;
}

export interface PerfPoint {
  concurrency: number;
  inferPerS: number;
  p50Ms: number;
  p99Ms: number;
  error?: string;
}
