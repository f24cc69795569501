// Can the simulator be trusted? The same trace, live against the real server (worker processes, real
// models, real sockets) and in the simulator fed with the profiles measured on this machine — first as
// the profiles alone, then with what the simulator otherwise leaves out, measured in a calibration run
// before the trace: the front end (the load generator, pinned to a core of its own, and the gateway on
// that core: their CPU per request, the wire time left over) and the spread of the batch times when
// serving beyond what profiling saw (live compute over the profile's median, resampled as measured, plus the
// transport to and from the worker). The goal is judged on the calibrated simulation.
import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { freePort } from "../../bench/net.js";
import { runLoad, type LoadRun } from "../../../src/loadgen/run.js";
import { buildSchedule, type ArrivalSource } from "../../../src/loadgen/schedule.js";
import { loadRepository } from "../../../src/repository/repository.js";
import { quantile, median } from "../../../src/stats/quantile.js";
import { pinProcess } from "../../../src/worker/pin.js";
import type { ExperimentContext } from "../main.js";
import { markdownTable, num, pct, writeResults } from "../report.js";
import {
  ProfileServiceModel,
  ResampledServiceModel,
  simTaskFromRepository,
  simulate,
  type FrontEndModel,
  type ServiceModel,
  type SimTask,
} from "../../../src/sim/index.js";
import type { Xoshiro128 } from "../../../src/stats/random.js";
import { fetchServedPoints, mergeServedPoints, type ServedPointRecord } from "../../../src/profiler/from-serving.js";

const Config = z.object({
  trace: z.string(),
  start_s: z.number().nonnegative(),
  duration_s: z.number().positive(),
  mean_rate: z.number().positive(),
  seed: z.number().int(),
  task: z.string(),
  variant: z.string(),
  slo_ms: z.number().positive(),
  /** Worker cores (cores 0..n−1). */
  server_cores: z.number().int().positive(),
  /** The core the load generator (this process) and the gateway process are pinned to. */
  front_end_core: z.number().int().nonnegative(),
  scaling: z.string(),
  /** Seconds of load at the trace's mean rate that calibrate the model, before the trace… */
  calibration_s: z.number().positive(),
  /** …with gamma inter-arrivals of this CV² (bursts form the larger batches the trace will too). */
  calibration_cv2: z.number().positive(),
});
type Config = z.infer<typeof Config>;

interface Side {
  requests: number;
  attainmentPct: number;
  p50Ms: number;
  p99Ms: number;
  meanCores: number;
}

/** What the calibration run measured. */
interface Calibration {
  requests: number;
  gatewayCpuMsPerRequest: number;
  clientCpuMsPerRequest: number;
  /** Median client latency − server latency at the calibration load: the front end on a request's path. */
  overheadMs: number;
  /** Front-end CPU per request beyond that (gateway and client work off the request's path). */
  offPathMs: number;
  /** Live compute over the profile's median at the batch and cores served, one per answered request. */
  ratios: number[];
  /** The same by batch size. */
  perRows: Map<number, number[]>;
  /** Their median, and their 99th percentile over the profile's p99/p50. */
  p50Ratio: number;
  p99Ratio: number;
  /** Dispatch to answer minus compute, 10th percentile: the worker transport (no queueing in the worker). */
  transportMs: number;
}

export default async function run(ctx: ExperimentContext): Promise<void> {
  const cfg = Config.parse(YAML.parse(await readFile(path.join(ctx.dir, "config.yaml"), "utf8")));
  if (cfg.front_end_core < cfg.server_cores)
    throw new Error(`front_end_core ${cfg.front_end_core} is one of the workers' cores 0..${cfg.server_cores - 1}`);
  if (cfg.front_end_core >= os.availableParallelism())
    throw new Error(`front_end_core ${cfg.front_end_core}: this machine has ${os.availableParallelism()} cores`);
  const source: ArrivalSource = {
    kind: "trace",
    file: cfg.trace,
    format: "twitter",
    startS: cfg.start_s,
    durationS: cfg.duration_s,
    rate: cfg.mean_rate,
    seed: cfg.seed,
  };
  const schedule = buildSchedule(source);
  const repo = await loadRepository(path.resolve("models"), { tasks: [cfg.task], profilesOnly: true });
  const variant = repo.tasks.get(cfg.task)!.variants.get(cfg.variant);
  if (!variant?.profile) throw new Error(`no profile for ${cfg.task}/${cfg.variant}`);
  const profile = new ProfileServiceModel(variant.profile.points);
  const loadBefore = os.loadavg();
  const cores = os.availableParallelism();
  const pinned = await pinProcess(process.pid, [cfg.front_end_core]);
  ctx.log(
    `fidelity: load generator ${pinned ? `pinned to core ${cfg.front_end_core}` : "NOT pinned"}; calibration, then ${schedule.times.length} requests over ${cfg.duration_s} s live`,
  );
  // pinned back to every core afterwards: the simulations and the report's machine line need them
  const live = await runLive(cfg, source, profile).finally(() =>
    pinProcess(
      process.pid,
      Array.from({ length: cores }, (_, i) => i),
    ),
  );
  const loadAfter = os.loadavg();
  ctx.log("fidelity: the same arrivals in the simulator, from the profiles alone and calibrated");
  const c = live.calibration;
  const model = (m: Calibration) => ({
    frontEnd: { inMs: m.overheadMs / 2, outMs: m.overheadMs / 2, offPathMs: m.offPathMs } satisfies FrontEndModel,
    service: new TransportedServiceModel(new ResampledServiceModel(profile, m.ratios, m.perRows), m.transportMs),
  });
  const plain = await simulateSide(cfg, repo, schedule.times);
  const calibrated = await simulateSide(cfg, repo, schedule.times, model(c));
  // the corrected profile: the points the live server's online latency model measured during the calibration,
  // in place of the profile's (what `sloserve profile --update-from-serving` would write), as the batch times
  const merged = mergeServedPoints(variant.profile, live.served, { minSamples: 20, source: "calibration run" });
  const correctedPoints = merged ? merged.profile.points : variant.profile.points;
  const corrected = await simulateSide(cfg, repo, schedule.times, {
    frontEnd: model(c).frontEnd,
    service: new TransportedServiceModel(new ProfileServiceModel(correctedPoints), c.transportMs),
  });
  // the same model with what the trace's own run measured: the model's structure, without the machine's drift
  const replayed = await simulateSide(cfg, repo, schedule.times, model(live.replay));
  const diff = (s: Side) => ({
    attainment: s.attainmentPct - live.side.attainmentPct,
    p50: (s.p50Ms - live.side.p50Ms) / live.side.p50Ms,
    p99: (s.p99Ms - live.side.p99Ms) / live.side.p99Ms,
    cores: (s.meanCores - live.side.meanCores) / live.side.meanCores,
  });
  const dPlain = diff(plain);
  const dCal = diff(calibrated);
  const dCor = diff(corrected);
  const correctedMet = { attainment: Math.abs(dCor.attainment) <= 2, p99: Math.abs(dCor.p99) <= 0.1 };
  const dReplay = diff(replayed);
  const attainmentMet = Math.abs(dCal.attainment) <= 2;
  const p99Met = Math.abs(dCal.p99) <= 0.1;
  const row = (name: string, s: Side) => [
    name,
    s.requests,
    pct(s.attainmentPct),
    num(s.p50Ms),
    num(s.p99Ms),
    num(s.meanCores, 2),
  ];
  const diffRow = (name: string, d: ReturnType<typeof diff>) => [
    name,
    "",
    `${d.attainment >= 0 ? "+" : ""}${num(d.attainment, 2)} points`,
    pct(d.p50 * 100, 1),
    pct(d.p99 * 100, 1),
    pct(d.cores * 100, 1),
  ];
  const machine = `load average ${loadBefore.map((x) => x.toFixed(1)).join(" / ")} (1/5/15 min) before the live runs, ${loadAfter.map((x) => x.toFixed(1)).join(" / ")} after, on ${cores} cores`;
  await writeFile(
    path.join(ctx.dir, "results.json"),
    JSON.stringify(
      {
        command: "npm run experiment fidelity",
        written: new Date().toISOString(),
        loadAverage: { before: loadBefore, after: loadAfter, cores },
        loadGeneratorPinned: pinned,
        config: cfg,
        calibration: {
          ...c,
          perRows: perRowsSummary(c.perRows),
          ratios: {
            count: c.ratios.length,
            p10: quantile(c.ratios, 0.1),
            p50: quantile(c.ratios, 0.5),
            p90: quantile(c.ratios, 0.9),
            p99: quantile(c.ratios, 0.99),
            max: Math.max(...c.ratios),
          },
        },
        live: live.side,
        simulated: { profilesOnly: plain, calibrated, correctedProfile: corrected, measuredInTheTracesRun: replayed },
        differences: {
          profilesOnly: dPlain,
          calibrated: dCal,
          correctedProfile: dCor,
          measuredInTheTracesRun: dReplay,
        },
        servedPoints: merged?.changes ?? [],
        traceRunMeasurements: {
          ...live.replay,
          ratios: {
            count: live.replay.ratios.length,
            p50: live.replay.p50Ratio,
            p99: quantile(live.replay.ratios, 0.99),
          },
          perRows: perRowsSummary(live.replay.perRows),
        },
        goals: {
          attainmentWithin2Points: attainmentMet,
          p99Within10Pct: p99Met,
          correctedProfile: { attainmentWithin2Points: correctedMet.attainment, p99Within10Pct: correctedMet.p99 },
        },
      },
      null,
      1,
    ) + "\n",
  );
  await writeResults(ctx.dir, {
    title: "fidelity: the simulator against the live server",
    command: "npm run experiment fidelity",
    intro: [
      `**Setting.** Twitter seconds ${cfg.start_s}–${cfg.start_s + cfg.duration_s} rescaled to a mean of ${cfg.mean_rate} req/s (${schedule.times.length} requests, Poisson within each second), task \`${cfg.task}\` pinned to \`${cfg.variant}\` (SLO ${cfg.slo_ms} ms), scaling ${cfg.scaling}, ${cfg.server_cores} worker core(s) (cores 0–${cfg.server_cores - 1}). Live: \`sloserve serve\` in its own process, pinned with the load generator (\`sloserve bench\`'s engine, open loop over REST with binary tensors, in this process${pinned ? "" : " — pinning FAILED here"}) to core ${cfg.front_end_core}; latency and attainment measured on the client, cores from the server's per-second dashboard frames. Simulated: the same arrival times.`,
      `**Machine while measuring.** ${machine}. Other work shared this machine; the live figures are only as quiet as it was.`,
      `**Calibration** (${cfg.calibration_s} s of gamma arrivals, CV² ${cfg.calibration_cv2}, at ${cfg.mean_rate} req/s, live, before the trace; ${c.requests} requests). Gateway process CPU ${num(c.gatewayCpuMsPerRequest, 3)} ms per request and load generator CPU ${num(c.clientCpuMsPerRequest, 3)} ms per request, both on core ${cfg.front_end_core}; client − server latency ${num(c.overheadMs, 2)} ms (median): the front end on a request's path; the remaining ${num(c.offPathMs, 2)} ms of that core's CPU per request is off the path. Batch compute when serving over the profile's median at the same batch: ${num(quantile(c.ratios, 0.1), 2)}× / ${num(c.p50Ratio, 2)}× / ${num(quantile(c.ratios, 0.9), 2)}× / ${num(quantile(c.ratios, 0.99), 2)}× (10th / 50th / 90th / 99th percentile; the 99th is ${num(c.p99Ratio, 2)}× the profile's own p99); transport to and from the worker ${num(c.transportMs, 2)} ms per batch (10th percentile of dispatch-to-answer minus compute).`,
      `**Model.** "profiles only": the simulator as the experiments run it (batch times drawn from the profile's p50/p99, requests reach the router at their arrival). "calibrated": the front end as one FIFO core that each request crosses on the way in and out (half the measured on-path time each way, the off-path CPU keeping the core busy for the requests behind), judged on the client's clock, and each batch time the profile's median times a ratio drawn from the ones measured at that batch size (all of them for a size seen fewer than 20 times), plus the transport.`,
    ],
    sections: [
      {
        heading: "Results",
        body: [
          markdownTable(
            ["", "requests", "SLO attainment", "p50 ms", "p99 ms", "mean cores"],
            [
              row("live", live.side),
              row("simulated, profiles only", plain),
              row("simulated, calibrated", calibrated),
              row("simulated, calibrated, corrected profile", corrected),
              row("simulated, measured in the trace's run", replayed),
              diffRow("profiles only − live", dPlain),
              diffRow("calibrated − live", dCal),
              diffRow("corrected profile − live", dCor),
              diffRow("measured in the trace's run − live", dReplay),
            ],
          ),
          `Goals (calibrated): attainment within 2 points — ${attainmentMet ? "met" : "missed"} (${num(dCal.attainment, 2)}); p99 within 10 % — ${p99Met ? "met" : "missed"} (${pct(dCal.p99 * 100, 1)}). With the corrected profile: attainment ${correctedMet.attainment ? "met" : "missed"} (${num(dCor.attainment, 2)}), p99 ${correctedMet.p99 ? "met" : "missed"} (${pct(dCor.p99 * 100, 1)}).`,
          `**The corrected model.** Both worlds run the online latency model (src/core/online-latency.ts): the live server by default, the simulator with \`onlineLatency\` on, so EDF sizes batches with what the worker's batches really take. "corrected profile" replaces the calibration's ratio resampling by the points the live server's online model measured during the calibration run (${merged ? merged.changes.map((x) => `b=${x.batch}: ${x.from === undefined ? "new" : `${num(x.from, 1)} →`} ${num(x.to, 1)} ms over ${x.samples}`).join(", ") : "none measured 20 times"}; what \`sloserve profile --update-from-serving\` would write into profile.json) as the simulated batch times, with the same front end and transport.`,
          `The last simulated row takes the same measurements from the trace's own live run (front-end time ${num(live.replay.overheadMs, 2)} ms on path and ${num(live.replay.offPathMs, 2)} ms off it; batch compute ${num(live.replay.p50Ratio, 2)}× the profile's median, ${num(quantile(live.replay.ratios, 0.99), 2)}× at the 99th percentile; transport ${num(live.replay.transportMs, 2)} ms): it checks the model's structure (the front end, queueing, batching) apart from how much the machine drifted between the calibration and the trace. It is not a prediction, and no goal is judged on it.`,
        ],
      },
    ],
  });
}

function perRowsSummary(m: Map<number, number[]>): Record<string, { count: number; p50: number; p99: number }> {
  return Object.fromEntries(
    [...m].map(([b, rs]) => [String(b), { count: rs.length, p50: quantile(rs, 0.5), p99: quantile(rs, 0.99) }]),
  );
}

/** Batch times of a model plus a fixed transport per batch. */
class TransportedServiceModel implements ServiceModel {
  constructor(
    private readonly base: ServiceModel,
    private readonly transportMs: number,
  ) {}
  median(rows: number, cores: number): number {
    return this.base.median(rows, cores) + this.transportMs;
  }
  p99(rows: number, cores: number): number {
    return this.base.p99(rows, cores) + this.transportMs;
  }
  sample(rows: number, cores: number, rng: Xoshiro128): number {
    return this.base.sample(rows, cores, rng) + this.transportMs;
  }
}

async function simulateSide(
  cfg: Config,
  repo: Awaited<ReturnType<typeof loadRepository>>,
  times: ArrayLike<number>,
  calibrated?: { frontEnd: FrontEndModel; service: ServiceModel },
): Promise<Side> {
  const task: SimTask = simTaskFromRepository(repo.tasks.get(cfg.task)!, {
    scaling: cfg.scaling === "none" ? undefined : cfg.scaling,
    sloMs: cfg.slo_ms,
  });
  // the live client pins the variant: so does the simulated one
  task.variants = task.variants
    .filter((v) => v.name === cfg.variant)
    .map((v) => (calibrated ? { ...v, service: calibrated.service } : v));
  const sim = await simulate({
    tasks: [task],
    arrivals: [{ target: cfg.task, times }],
    deployment: [{ task: cfg.task, variant: cfg.variant, cores: 1 }],
    nodes: [cfg.server_cores],
    seed: cfg.seed,
    controller: { maxCores: cfg.server_cores },
    // as the live server runs by default: policies read the profile corrected by the batches they see
    onlineLatency: true,
    ...(calibrated ? { frontEnd: calibrated.frontEnd } : {}),
  });
  return {
    requests: sim.summary.requests,
    attainmentPct: sim.summary.attainmentPct,
    p50Ms: sim.summary.latencyP50Ms,
    p99Ms: sim.summary.latencyP99Ms,
    meanCores: sim.summary.meanCores,
  };
}

/** Polls the server's readiness (it prepares the zoo first, which can take a while on a fresh clone). */
async function ready(url: string, server: ReturnType<typeof spawn>): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (server.exitCode !== null) throw new Error(`server exited with ${server.exitCode} before serving`);
    const ok = await fetch(`${url}/v2/health/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error("server not ready after 5 minutes");
}

/** CPU time (ms) a process has used so far: utime + stime of /proc/<pid>/stat. */
async function processCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // fields after the command (which may hold spaces) start after the last ')'
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(f[11]) + Number(f[12]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

async function runLive(
  cfg: Config,
  source: ArrivalSource,
  profile: ProfileServiceModel,
): Promise<{ side: Side; calibration: Calibration; replay: Calibration; served: ServedPointRecord[] }> {
  const [http, grpc, metrics] = [await freePort(), await freePort(), await freePort()];
  const server = spawn(
    "taskset",
    [
      "-c",
      String(cfg.front_end_core),
      process.execPath,
      "bin/sloserve.js",
      "serve",
      "--port",
      String(http),
      "--grpc-port",
      String(grpc),
      "--metrics-port",
      String(metrics),
      "--cores",
      String(cfg.server_cores),
      "--deploy",
      `${cfg.task}=${cfg.variant}:1`,
      "--autoscaler",
      cfg.scaling,
      "--log-level",
      "warn",
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const url = `http://127.0.0.1:${http}`;
  const load = (src: ArrivalSource) =>
    runLoad({
      source: src,
      model: `${cfg.task}/${cfg.variant}`,
      protocol: "rest",
      url,
      grpcUrl: `127.0.0.1:${grpc}`,
      sloMs: cfg.slo_ms,
      seed: cfg.seed,
      // no busy-waiting before each arrival: the front-end core's CPU is what this experiment measures
      pacer: { spinMs: 0, busyMs: 0 },
    });
  try {
    await ready(url, server);
    const pid = server.pid!;
    // calibration: Poisson at the trace's mean rate, another seed
    const gw0 = await processCpuMs(pid);
    const cl0 = process.cpuUsage();
    const cal = await load({
      kind: "synthetic",
      rate: cfg.mean_rate,
      durationS: cfg.calibration_s,
      arrival: "gamma",
      cv2: cfg.calibration_cv2,
      seed: cfg.seed + 1,
    });
    const gw1 = await processCpuMs(pid);
    const cl = process.cpuUsage(cl0);
    const calibration = calibrate(cal, gw1 - gw0, (cl.user + cl.system) / 1000, profile);
    const served = await fetchServedPoints(url);
    const t0 = Date.now();
    const gw2 = await processCpuMs(pid);
    const cl2 = process.cpuUsage();
    const r = await load(source);
    const gw3 = await processCpuMs(pid);
    const clTrace = process.cpuUsage(cl2);
    const replay = calibrate(r, gw3 - gw2, (clTrace.user + clTrace.system) / 1000, profile);
    const history = (await (await fetch(`${url}/dashboard/api/history`)).json()) as {
      frames: { t: number; series: Record<string, { cores: number }> }[];
    };
    const cores = history.frames.filter((f) => f.t >= t0 && f.series[cfg.task]).map((f) => f.series[cfg.task]!.cores);
    const s = r.summary;
    return {
      side: {
        requests: s.requests,
        attainmentPct: (s.attainment ?? 0) * 100,
        p50Ms: s.latencyMs.p50,
        p99Ms: s.latencyMs.p99,
        meanCores: cores.reduce((a, b) => a + b, 0) / Math.max(1, cores.length),
      },
      calibration,
      replay,
      served,
    };
  } finally {
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
  }
}

/** The calibration run's measurements (see Calibration). */
function calibrate(run: LoadRun, gatewayCpuMs: number, clientCpuMs: number, profile: ProfileServiceModel): Calibration {
  const rec = run.recorder;
  const overhead: number[] = [];
  const r50: number[] = [];
  const perRows = new Map<number, number[]>();
  const r99: number[] = [];
  const transport: number[] = [];
  let answered = 0;
  for (let i = 0; i < rec.sent; i++) {
    if (rec.statuses[rec.status[i]!] !== "200") continue;
    answered++;
    const server = rec.serverLatencyUs[i]! / 1000;
    const compute = rec.computeUs[i]! / 1000;
    const queue = rec.queueUs[i]! / 1000;
    const b = rec.batchSize[i]!;
    if (Number.isFinite(server)) overhead.push(rec.clientLatencyMs(i) - server);
    if (!(b > 0) || !Number.isFinite(compute)) continue;
    r50.push(compute / profile.median(b, 1));
    const list = perRows.get(b) ?? [];
    list.push(compute / profile.median(b, 1));
    perRows.set(b, list);
    r99.push(compute / profile.p99(b, 1));
    if (Number.isFinite(queue)) transport.push(server - queue - compute);
  }
  if (answered === 0 || r50.length === 0)
    throw new Error("the calibration run got no answers with server timings: is the server sloserve?");
  const perRequest = (ms: number) => ms / Math.max(1, rec.sent);
  const gw = perRequest(gatewayCpuMs);
  const cl = perRequest(clientCpuMs);
  const overheadMs = median(overhead);
  return {
    requests: rec.sent,
    gatewayCpuMsPerRequest: gw,
    clientCpuMsPerRequest: cl,
    overheadMs,
    offPathMs: Math.max(0, gw + cl - overheadMs),
    ratios: r50,
    perRows,
    p50Ratio: median(r50),
    p99Ratio: quantile(r99, 0.99),
    transportMs: Math.max(0, quantile(transport, 0.1)),
  };
}
