// npm run bench:peers [-- --json] [--servers sloserve,triton,ray,mlserver] [--models digits/cnn-large,vision/resnet18]
//                     [--no-autoscale] [--no-data-path] [--quick]
// sloserve measured beside the servers users pick instead, in one run, on the same cores, the same
// ONNX files and the same clients (../shared/docs/PEERS.md):
//  1. data path, per server and model, each server's whole process tree pinned to the server cores
//     and the clients to the others: saturated rows/s per server core (highest rate `sloserve bench`
//     sustains; perf_analyzer's concurrency sweep beside it where it can drive the server), latency
//     added at low load over raw onnxruntime in the server's own runtime, and CPU per request of the
//     whole tree (user+sys from /proc), minus the model's own CPU per row = the front end's share;
//  2. autoscalers: sloserve themis and horizontal vs Ray Serve's autoscaler on one trace window,
//     one core budget: SLO attainment and core-seconds.
// The peers come from scripts/peers-env.sh (run here when its environments are missing).
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { promisify } from "node:util";
import { parse as parseYaml } from "yaml";
import { fmt } from "../../src/terminal/table.js";
import { emit } from "../../src/terminal/report.js";
import { rayKnobsFromProfile, runAutoscaler, type AutoscaleResult, type TraceWindow } from "../peers/autoscale.js";
import { Clients, type PerfPoint, type Step } from "../peers/clients.js";
import { profileGateway, type GatewayProfile } from "../peers/gateway-profile.js";
import { cpuBetween, supportsProc, treeCpu } from "../peers/proc.js";
import {
  SERVER_NAMES,
  SERVERS,
  scratchRepository,
  startServer,
  stopAllServers,
  type ModelUnderTest,
  type Protocol,
  type ServerName,
} from "../peers/servers.js";

const exec = promisify(execFile);
const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    servers: { type: "string", default: SERVER_NAMES.join(",") },
    models: { type: "string", default: "digits/cnn-large,vision/resnet18" },
    "models-dir": { type: "string", default: path.join(repoRoot, "models") },
    "no-autoscale": { type: "boolean", default: false },
    "no-data-path": { type: "boolean", default: false },
    "no-profile": { type: "boolean", default: false },
    "profile-rate": { type: "string", default: "400" },
    quick: { type: "boolean", default: false },
    trace: {
      type: "string",
      default: path.join(
        repoRoot,
        "..",
        "shared",
        "traces",
        "twitter-2021-08",
        "twitter_2021-08_tweets_per_second.txt",
      ),
    },
    "trace-format": { type: "string", default: "twitter" },
    "trace-start": { type: "string", default: "1301160" },
    "trace-duration": { type: "string", default: "90" },
    "trace-rate": { type: "string", default: "12" },
    "autoscale-model": { type: "string", default: "vision/resnet18" },
  },
});
const log = (m: string) => process.stderr.write(`${m}\n`);
const quick = values.quick!;
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.once(sig, () => {
    log(`peers: ${sig}: stopping the servers under test`);
    void stopAllServers().then(() => process.exit(130));
  });

const servers = values.servers!.split(",").map((s) => s.trim()) as ServerName[];
for (const s of servers)
  if (!(SERVER_NAMES as readonly string[]).includes(s))
    throw new Error(`--servers: '${s}' is not one of ${SERVER_NAMES.join(", ")}`);
if (!supportsProc() || os.platform() !== "linux") throw new Error("bench:peers needs Linux (/proc and taskset)");

// Cores: the servers on the first, the clients on the rest (on one core, everything shares it).
const ncpu = os.availableParallelism();
const serverCores = [0];
const clientCores = ncpu > 1 ? Array.from({ length: ncpu - 1 }, (_, i) => i + 1) : [0];

log("peers: preparing the peers' environments (scripts/peers-env.sh)");
const envRoot = (
  await exec("bash", [path.join(repoRoot, "scripts", "peers-env.sh")], { maxBuffer: 16 << 20 }).catch((e) => {
    throw new Error(`scripts/peers-env.sh failed: ${String(e.stderr ?? e.message).slice(-2000)}`);
  })
).stdout.trim();
const paBin = path.join(envRoot, "bin", "perf_analyzer");
const clients = new Clients(repoRoot, clientCores, fs.existsSync(paBin) ? paBin : null);

const modelsDir = path.resolve(values["models-dir"]!);
function modelUnderTest(spec: string, sloMs?: number): ModelUnderTest {
  const [task, variant] = spec.split("/");
  if (!task || !variant) throw new Error(`--models: '${spec}' is not task/variant`);
  const dir = path.join(modelsDir, task, variant);
  if (!fs.existsSync(path.join(dir, "variant.yaml"))) throw new Error(`no variant ${spec} in ${modelsDir}`);
  const file = path.join(dir, "model.onnx");
  const taskSlo = (parseYaml(fs.readFileSync(path.join(modelsDir, task, "task.yaml"), "utf8")) as { slo_ms: number })
    .slo_ms;
  const maxBatch = (parseYaml(fs.readFileSync(path.join(dir, "variant.yaml"), "utf8")) as { max_batch: number })
    .max_batch;
  return {
    task,
    variant,
    file,
    maxBatch,
    sloMs: taskSlo,
    sloserveRepo: scratchRepository(repoRoot, modelsDir, task, variant, sloMs ?? taskSlo),
  };
}
async function ensureModelFile(m: { file: string; task: string }): Promise<void> {
  if (fs.existsSync(m.file)) return;
  if (m.task.startsWith("vision")) {
    log(`peers: ${m.file} is built on first use: sloserve zoo vision`);
    await exec(process.execPath, [path.join(repoRoot, "bin", "sloserve.js"), "zoo", "vision"], { cwd: repoRoot });
  }
  if (!fs.existsSync(m.file)) throw new Error(`${m.file} is missing`);
}

interface RawFigures {
  runtime: string;
  points: { batch: number; p50_ms: number; p99_ms: number; rows_per_s: number }[];
  lowload: { p50_ms: number; p99_ms: number };
  cpu_us_per_row_b1: number;
}
async function rawRuntime(
  kind: "node" | "python",
  m: ModelUnderTest,
  gapMs: number,
  samples: number,
): Promise<RawFigures> {
  const args = [m.file, "--max-batch", String(m.maxBatch), "--gap-ms", String(gapMs), "--samples", String(samples)];
  args.push("--budget-s", quick ? "0.5" : "1.5");
  const argv =
    kind === "node"
      ? [process.execPath, "--import", "tsx", path.join(repoRoot, "tools", "peers", "raw-ort-node.ts"), ...args]
      : [path.join(envRoot, "clients", "bin", "python"), path.join(repoRoot, "tools", "peers", "raw_ort.py"), ...args];
  const { stdout } = await exec("taskset", ["-c", serverCores.join(","), ...argv], { cwd: repoRoot });
  return JSON.parse(stdout.trim().split("\n").pop()!) as RawFigures;
}

interface ProtocolFigures {
  saturated_rows_per_s: number;
  rows_per_s_per_core: number;
  /** Rows answered per CPU-second of the server's tree (best run without errors): rows/s per core, contention aside. */
  saturated_rows_per_cpu_s: number;
  saturation_client_lag_p99_ms: number;
  saturation_steps: Step[];
  lowload_rate: number;
  lowload_requests: number;
  lowload_p50_ms: number;
  lowload_p99_ms: number;
  added_p50_ms: number;
  added_p99_ms: number;
  cpu_rate: number;
  cpu_requests: number;
  /** Tree CPU per request over what it burns idle (idle_cores × the run's span taken out). */
  cpu_us_per_request: number;
  /** The above less the model's own CPU per one-row run in the same runtime. */
  frontend_cpu_us_per_request: number;
  /** sloserve only: its gateway process alone (the issue's "gateway CPU"). */
  gateway_cpu_us_per_request?: number;
  lowload_errors: Record<string, number>;
}
interface ServerFigures {
  server: string;
  runtime: string;
  cores: number;
  /** CPU the whole tree burns per second with no request (cores). */
  idle_cores: number;
  protocols: Partial<Record<Protocol, ProtocolFigures>>;
  perf_analyzer: Partial<Record<"http" | "grpc", PerfPoint[]>> & { unavailable?: string };
  best_rows_per_s_per_core: number;
  best_rows_per_cpu_s: number;
  best_added_p50_ms: number;
  best_frontend_cpu_us_per_request: number;
  error?: string;
}

interface LoadLevels {
  /** low-load latency: evenly spaced one-row requests, none waiting for another */
  rate: number;
  seconds: number;
  /** CPU per request: a rate every server sustains */
  cpuRate: number;
  cpuSeconds: number;
}

async function measureServer(name: ServerName, m: ModelUnderTest, raw: RawFigures, low: LoadLevels) {
  const info = SERVERS[name];
  const rawBest = Math.max(...raw.points.map((p) => p.rows_per_s));
  const fig: ServerFigures = {
    server: info.label,
    runtime: info.runtime,
    cores: serverCores.length,
    idle_cores: NaN,
    protocols: {},
    perf_analyzer: info.perfAnalyzer.why ? { unavailable: info.perfAnalyzer.why } : {},
    best_rows_per_s_per_core: NaN,
    best_rows_per_cpu_s: NaN,
    best_added_p50_ms: NaN,
    best_frontend_cpu_us_per_request: NaN,
  };
  log(`peers: ${name} serving ${m.task}/${m.variant} on core ${serverCores.join(",")}`);
  const s = await startServer(name, m, { repoRoot, envRoot, cores: serverCores });
  try {
    // what the tree burns with no request at all (Ray's GCS and raylet, timers, pollers), per second
    await new Promise((r) => setTimeout(r, 1000));
    const idle0 = treeCpu(s.pid);
    const idleT0 = performance.now();
    await new Promise((r) => setTimeout(r, quick ? 1500 : 3000));
    const idleCores = cpuBetween(idle0, treeCpu(s.pid)) / ((performance.now() - idleT0) / 1000);
    fig.idle_cores = idleCores;
    for (const protocol of info.protocols) {
      // warm-up, then low-load latency: requests far enough apart that none waits for another
      await clients.bench(s, { protocol, rate: low.rate, durationS: 2, arrival: "uniform" });
      const r = await clients.bench(s, { protocol, rate: low.rate, durationS: low.seconds, arrival: "uniform" });
      // CPU per request at a rate every server sustains, the idle burn taken out
      const before = treeCpu(s.pid);
      const t0 = performance.now();
      const c = await clients.bench(s, { protocol, rate: low.cpuRate, durationS: low.cpuSeconds, arrival: "uniform" });
      const after = treeCpu(s.pid);
      const spanS = (performance.now() - t0) / 1000;
      const cpuUs = ((cpuBetween(before, after) - idleCores * spanS) * 1e6) / c.ok;
      const gatewayUs = (((after.get(s.pid) ?? 0) - (before.get(s.pid) ?? 0)) * 1e6) / c.ok;
      log(
        `  ${name}/${protocol} low load ${low.rate} req/s: p50 ${fmt(r.latencyMs.p50, 3)} ms; at ${low.cpuRate} req/s ${fmt(cpuUs, 0)} µs CPU/request over idle (idle ${fmt(idleCores, 3)} cores)`,
      );
      const sat = await clients.saturate(s, protocol, {
        startRate: Math.max(5, Math.round(rawBest / 64)),
        maxRate: 2 * rawBest,
        stepS: quick ? 2 : 3,
        bisect: quick ? 1 : 3,
        log,
      });
      fig.protocols[protocol] = {
        saturated_rows_per_s: sat.rowsPerS,
        rows_per_s_per_core: sat.rowsPerS / serverCores.length,
        saturated_rows_per_cpu_s: sat.rowsPerCpuS,
        saturation_client_lag_p99_ms: sat.lagP99Ms,
        saturation_steps: sat.steps,
        lowload_rate: low.rate,
        lowload_requests: r.sent,
        lowload_p50_ms: r.latencyMs.p50,
        lowload_p99_ms: r.latencyMs.p99,
        added_p50_ms: r.latencyMs.p50 - raw.lowload.p50_ms,
        added_p99_ms: r.latencyMs.p99 - raw.lowload.p99_ms,
        cpu_rate: low.cpuRate,
        cpu_requests: c.ok,
        cpu_us_per_request: cpuUs,
        frontend_cpu_us_per_request: cpuUs - raw.cpu_us_per_row_b1,
        ...(name === "sloserve" ? { gateway_cpu_us_per_request: gatewayUs } : {}),
        lowload_errors: { ...r.errors, ...c.errors },
      };
    }
    const levels = [1, m.maxBatch, 2 * m.maxBatch];
    for (const p of info.perfAnalyzer.protocols) {
      try {
        fig.perf_analyzer[p] = await clients.perfAnalyzer(
          s,
          p,
          quick ? [1, m.maxBatch] : levels,
          m.maxBatch > 16 ? 2000 : 5000,
        );
        log(
          `  ${name} perf_analyzer ${p}: ${fig.perf_analyzer[p]!.map((x) => `c${x.concurrency} ${fmt(x.inferPerS, 0)}/s`).join(", ")}`,
        );
      } catch (e) {
        fig.perf_analyzer.unavailable = (e as Error).message;
        log(`  ${(e as Error).message}`);
      }
    }
  } finally {
    await s.stop();
  }
  const ps = Object.values(fig.protocols);
  fig.best_rows_per_s_per_core = Math.max(...ps.map((p) => p.rows_per_s_per_core));
  fig.best_rows_per_cpu_s = Math.max(...ps.map((p) => p.saturated_rows_per_cpu_s));
  fig.best_added_p50_ms = Math.min(...ps.map((p) => p.added_p50_ms));
  fig.best_frontend_cpu_us_per_request = Math.min(...ps.map((p) => p.frontend_cpu_us_per_request));
  return fig;
}

const figures: Record<string, unknown> = {
  machine: { cpu: os.cpus()[0]?.model.trim(), cores: ncpu, loadavg_at_start: os.loadavg().map((x) => +x.toFixed(2)) },
  server_cores: serverCores,
  client_cores: clientCores,
  envs: envRoot,
};
const tables: { head: string[]; rows: string[][] }[] = [];
const notes: string[] = [];

if (!values["no-data-path"]) {
  const dataPath: Record<string, unknown> = {};
  for (const spec of values.models!.split(",")) {
    const m = modelUnderTest(spec.trim(), 600_000);
    await ensureModelFile(m);
    // low load: evenly spaced one-row requests, 4× the model's own time apart at least
    const probe = await rawRuntime("node", m, 10, 20);
    const b1 = probe.points.find((p) => p.batch === 1)!.rows_per_s;
    const lowRate = Math.max(1, Math.min(20, Math.round(b1 / 4)));
    const levels: LoadLevels = {
      rate: lowRate,
      seconds: quick ? 4 : Math.max(10, Math.min(20, 300 / lowRate)),
      cpuRate: Math.max(1, Math.min(100, Math.round(b1 / 4))),
      cpuSeconds: quick ? 4 : 10,
    };
    const gapMs = 1000 / lowRate;
    const samples = quick ? 40 : Math.min(300, Math.round(lowRate * levels.seconds));
    log(
      `peers: ${spec}: raw onnxruntime (node and python) on core ${serverCores.join(",")}; low load ${lowRate} req/s, CPU at ${levels.cpuRate} req/s`,
    );
    const raw = {
      node: await rawRuntime("node", m, gapMs, samples),
      python: await rawRuntime("python", m, gapMs, samples),
    };
    const per: Record<string, ServerFigures> = {};
    for (const name of servers) {
      const rawOf = SERVERS[name].runtime === "onnxruntime-node" ? raw.node : raw.python;
      try {
        per[name] = await measureServer(name, m, rawOf, levels);
      } catch (e) {
        log(`peers: ${name} on ${spec} failed: ${(e as Error).message}`);
        per[name] = { error: (e as Error).message } as ServerFigures;
      }
    }
    const goals = dataPathGoals(per);
    dataPath[spec] = {
      raw_onnxruntime: {
        node: { best_rows_per_s: Math.max(...raw.node.points.map((p) => p.rows_per_s)), ...raw.node },
        python: { best_rows_per_s: Math.max(...raw.python.points.map((p) => p.rows_per_s)), ...raw.python },
      },
      load_levels: levels,
      servers: per,
      goals,
    };
    tables.push({
      head: [
        `${spec} server`,
        "protocol",
        "rows/s/core",
        "rows/CPU-s",
        "low-load p50 ms",
        "p99 ms",
        "added p50 ms",
        "added p99 ms",
        "CPU µs/req",
        "front-end µs/req",
      ],
      rows: Object.entries(per).flatMap(([name, f]) =>
        f.error
          ? [[name, "-", "failed", "-", "-", "-", "-", "-", "-", "-"]]
          : Object.entries(f.protocols).map(([p, x]) => [
              name,
              p,
              fmt(x.rows_per_s_per_core, 0),
              fmt(x.saturated_rows_per_cpu_s, 0),
              fmt(x.lowload_p50_ms, 3),
              fmt(x.lowload_p99_ms, 3),
              fmt(x.added_p50_ms, 3),
              fmt(x.added_p99_ms, 3),
              fmt(x.cpu_us_per_request, 0),
              fmt(x.frontend_cpu_us_per_request, 0) +
                (x.gateway_cpu_us_per_request !== undefined
                  ? ` (gateway ${fmt(x.gateway_cpu_us_per_request, 0)})`
                  : ""),
            ]),
      ),
    });
    const paRows = Object.entries(per).flatMap(([name, f]) =>
      (["http", "grpc"] as const).flatMap((p) =>
        (f.perf_analyzer?.[p] ?? []).map((x) => [
          name,
          p,
          String(x.concurrency),
          fmt(x.inferPerS, 0),
          fmt(x.p50Ms, 3),
          fmt(x.p99Ms, 3),
        ]),
      ),
    );
    if (paRows.length)
      tables.push({
        head: [`${spec} perf_analyzer`, "protocol", "concurrency", "infer/s", "p50 ms", "p99 ms"],
        rows: paRows,
      });
    notes.push(
      `${spec}: raw onnxruntime best rows/s on 1 core: node ${fmt(Math.max(...raw.node.points.map((p) => p.rows_per_s)), 0)}, python ${fmt(Math.max(...raw.python.points.map((p) => p.rows_per_s)), 0)}; low load ${lowRate} req/s, raw p50 node ${fmt(raw.node.lowload.p50_ms, 3)} ms, python ${fmt(raw.python.lowload.p50_ms, 3)} ms; model CPU per one-row run: node ${fmt(raw.node.cpu_us_per_row_b1, 0)} µs, python ${fmt(raw.python.cpu_us_per_row_b1, 0)} µs.`,
      `${spec} goals (sloserve at its best protocol vs each peer at its best): ${goalText(goals)}`,
    );
    for (const [name, f] of Object.entries(per))
      if (f.perf_analyzer?.unavailable) notes.push(`${name}: no perf_analyzer figures: ${f.perf_analyzer.unavailable}`);
  }
  figures.data_path = dataPath;
}

if (!values["no-profile"] && servers.includes("sloserve")) {
  // where sloserve's gateway spends its CPU per request, on the smallest model (the front end dominates)
  const m = modelUnderTest("digits/cnn-large", 600_000);
  const rate = Number(values["profile-rate"]);
  const profiles: GatewayProfile[] = [];
  for (const protocol of SERVERS.sloserve.protocols) {
    log(`peers: CPU profile of sloserve's gateway, ${protocol} at ${rate} req/s`);
    const start = { repoRoot, envRoot, cores: serverCores };
    const p = await profileGateway(m, protocol, { start, clients, rate, seconds: quick ? 4 : 15, top: 15, repoRoot });
    profiles.push(p);
    tables.push({
      head: [`gateway ${protocol}: function`, "where", "% of busy", "µs/request"],
      rows: p.top.map((e) => [e.function, e.where, fmt(e.share * 100, 1), fmt((e.self_ms * 1000) / p.requests, 1)]),
    });
    notes.push(
      `gateway profile ${protocol}: ${p.requests} requests at ${rate} req/s, ${fmt(p.busy_us_per_request, 0)} µs busy per request in the profile, idle ${fmt(p.idle_share * 100, 0)} % of the samples.`,
    );
  }
  figures.gateway_profile = { model: "digits/cnn-large", profiles };
}

if (!values["no-autoscale"]) {
  if (!fs.existsSync(values.trace!))
    throw new Error(`--trace ${values.trace} does not exist (the shared traces sit in ../shared/traces)`);
  const m = modelUnderTest(values["autoscale-model"]!);
  await ensureModelFile(m);
  const budget = Array.from({ length: ncpu }, (_, i) => i);
  const knobs = rayKnobsFromProfile(path.join(modelsDir, m.task, m.variant, "profile.json"), m.sloMs, budget.length);
  const trace: TraceWindow = {
    file: values.trace!,
    format: values["trace-format"]!,
    startS: Number(values["trace-start"]),
    durationS: quick ? 20 : Number(values["trace-duration"]),
    rate: Number(values["trace-rate"]),
  };
  const results: AutoscaleResult[] = [];
  for (const a of ["themis", "horizontal", "ray"] as const) {
    try {
      results.push(
        await runAutoscaler(a, m, { repoRoot, envRoot, cores: budget, rayAutoscale: knobs }, clients, trace, log),
      );
    } catch (e) {
      log(`peers: autoscaler ${a} failed: ${(e as Error).message}`);
      results.push({ autoscaler: a, error: (e as Error).message } as unknown as AutoscaleResult);
    }
  }
  const ray = results.find((r) => r.autoscaler === "ray serve");
  const goals = Object.fromEntries(
    results
      .filter((r) => r.autoscaler.startsWith("sloserve") && ray && Number.isFinite(r.slo_violations))
      .map((r) => [
        r.autoscaler,
        {
          ten_times_fewer_violations: r.slo_violations * 10 <= ray!.slo_violations,
          core_seconds_at_most_ray: r.core_seconds <= ray!.core_seconds,
        },
      ]),
  );
  figures.autoscale = {
    model: `${m.task}/${m.variant}`,
    slo_ms: m.sloMs,
    trace: { ...trace, file: path.relative(repoRoot, trace.file) },
    core_budget: budget.length,
    server_cores: budget,
    client_cores: clientCores,
    ray_knobs: knobs,
    results,
    goals,
  };
  tables.push({
    head: [
      "autoscaler",
      "sent",
      "SLO violations",
      "attainment",
      "core-seconds",
      "mean cores",
      "max cores",
      "p50 ms",
      "p99 ms",
    ],
    rows: results.map((r) =>
      Number.isFinite(r.sent)
        ? [
            r.autoscaler,
            String(r.sent),
            String(r.slo_violations),
            fmt(r.attainment, 4),
            fmt(r.core_seconds, 1),
            fmt(r.mean_cores, 2),
            String(r.max_cores),
            fmt(r.p50_ms, 1),
            fmt(r.p99_ms, 1),
          ]
        : [r.autoscaler, "failed", "-", "-", "-", "-", "-", "-", "-"],
    ),
  });
  notes.push(
    `Ray Serve's knobs: ${knobs.why}.`,
    `autoscale goals (≥10× fewer violations than Ray at ≤ its core-seconds): ${JSON.stringify(goals)}`,
  );
}

figures.machine = { ...(figures.machine as object), loadavg_at_end: os.loadavg().map((x) => +x.toFixed(2)) };
emit(
  {
    title: `bench:peers — servers on core(s) ${serverCores.join(",")}, clients on ${clientCores.join(",")} (${os.cpus()[0]?.model.trim()}; load average at start ${(figures.machine as { loadavg_at_start: number[] }).loadavg_at_start.join(" ")})`,
    tables,
    figures,
    notes,
  },
  values.json!,
);
process.exit(0);

function dataPathGoals(per: Record<string, ServerFigures>) {
  const slo = per.sloserve;
  if (!slo || slo.error) return { unavailable: "sloserve was not measured" };
  const out: Record<
    string,
    { rows_per_core_at_least: boolean; rows_per_cpu_s_at_least: boolean; added_p50_at_most: boolean }
  > = {};
  for (const [name, f] of Object.entries(per)) {
    if (name === "sloserve" || f.error) continue;
    out[name] = {
      rows_per_core_at_least: slo.best_rows_per_s_per_core >= f.best_rows_per_s_per_core,
      rows_per_cpu_s_at_least: slo.best_rows_per_cpu_s >= f.best_rows_per_cpu_s,
      added_p50_at_most: slo.best_added_p50_ms <= f.best_added_p50_ms,
    };
  }
  return out;
}

function goalText(goals: ReturnType<typeof dataPathGoals>): string {
  if ("unavailable" in goals) return String(goals.unavailable);
  return Object.entries(goals)
    .map(
      ([n, g]) =>
        `vs ${n}: rows/s/core ${g.rows_per_core_at_least ? "holds" : "missed"}, rows/CPU-s ${g.rows_per_cpu_s_at_least ? "holds" : "missed"}, added p50 ${g.added_p50_at_most ? "holds" : "missed"}`,
    )
    .join("; ");
}
