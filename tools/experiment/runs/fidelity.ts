// Can the simulator be trusted? The same trace, live against the real server (worker processes, real
// models, real sockets) and in the simulator fed with the profiles measured on this machine.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { freePort } from "../../bench/net.js";
import { runLoad } from "../../../src/loadgen/run.js";
import { buildSchedule, type ArrivalSource } from "../../../src/loadgen/schedule.js";
import { loadRepository } from "../../../src/repository/repository.js";
import type { ExperimentContext } from "../main.js";
import { markdownTable, num, pct, writeResults } from "../report.js";
import { simTaskFromRepository, simulate } from "../../../src/sim/index.js";

const Config = z.object({
  trace: z.string(),
  start_s: z.number().nonnegative(),
  duration_s: z.number().positive(),
  mean_rate: z.number().positive(),
  seed: z.number().int(),
  task: z.string(),
  variant: z.string(),
  slo_ms: z.number().positive(),
  cores: z.number().int().positive(),
  scaling: z.string(),
});

interface Side {
  requests: number;
  attainmentPct: number;
  p50Ms: number;
  p99Ms: number;
  meanCores: number;
}

export default async function run(ctx: ExperimentContext): Promise<void> {
  const cfg = Config.parse(YAML.parse(await readFile(path.join(ctx.dir, "config.yaml"), "utf8")));
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
  ctx.log(`fidelity: ${schedule.times.length} requests over ${cfg.duration_s} s, live first`);
  const live = await runLive(cfg, source);
  ctx.log("fidelity: the same arrivals in the simulator");
  const repo = await loadRepository(path.resolve("models"));
  const sim = await simulate({
    tasks: [
      simTaskFromRepository(repo.tasks.get(cfg.task)!, {
        scaling: cfg.scaling === "none" ? undefined : cfg.scaling,
        sloMs: cfg.slo_ms,
      }),
    ],
    arrivals: [{ target: cfg.task, times: schedule.times }],
    deployment: [{ task: cfg.task, variant: cfg.variant, cores: 1 }],
    nodes: [cfg.cores],
    seed: cfg.seed,
    controller: { intervalMs: 1000, maxCores: cfg.cores },
  });
  const simSide: Side = {
    requests: sim.summary.requests,
    attainmentPct: sim.summary.attainmentPct,
    p50Ms: sim.summary.latencyP50Ms,
    p99Ms: sim.summary.latencyP99Ms,
    meanCores: sim.summary.meanCores,
  };
  const dAtt = simSide.attainmentPct - live.attainmentPct;
  const dP99 = (simSide.p99Ms - live.p99Ms) / live.p99Ms;
  await writeResults(ctx.dir, {
    title: "fidelity: the simulator against the live server",
    command: "npm run experiment fidelity",
    intro: [
      `**Setting.** Twitter seconds ${cfg.start_s}–${cfg.start_s + cfg.duration_s} rescaled to a mean of ${cfg.mean_rate} req/s (${schedule.times.length} requests, Poisson within each second), task \`${cfg.task}\` (SLO ${cfg.slo_ms} ms), starting from one 1-core ${cfg.variant}, scheduling from task.yaml, scaling ${cfg.scaling}, ${cfg.cores} cores. Live: \`sloserve serve\` in its own process with real worker processes, driven open-loop over REST (binary tensors) by \`sloserve bench\`'s engine; latency and attainment measured on the client, cores from the server's per-second dashboard frames. Simulated: the same arrival times, the profiles in models/${cfg.task}/*/profile.json.`,
    ],
    sections: [
      {
        heading: "Results",
        body: [
          markdownTable(
            ["", "requests", "SLO attainment", "p50 ms", "p99 ms", "mean cores"],
            [
              [
                "live",
                live.requests,
                pct(live.attainmentPct),
                num(live.p50Ms),
                num(live.p99Ms),
                num(live.meanCores, 2),
              ],
              [
                "simulated",
                simSide.requests,
                pct(simSide.attainmentPct),
                num(simSide.p50Ms),
                num(simSide.p99Ms),
                num(simSide.meanCores, 2),
              ],
              [
                "difference",
                "",
                `${dAtt >= 0 ? "+" : ""}${num(dAtt, 2)} points`,
                pct(((simSide.p50Ms - live.p50Ms) / live.p50Ms) * 100, 1),
                pct(dP99 * 100, 1),
                pct(((simSide.meanCores - live.meanCores) / live.meanCores) * 100, 1),
              ],
            ],
          ),
          `Goals: attainment within 2 points — ${Math.abs(dAtt) <= 2 ? "met" : "missed"} (${num(dAtt, 2)}); p99 within 10 % — ${Math.abs(dP99) <= 0.1 ? "met" : "missed"} (${pct(dP99 * 100, 1)}).`,
          "The live side includes what the simulator does not model: the HTTP hop and the load generator sharing this 2-core machine with the workers (the client and gateway processes are not pinned, the workers are), and onnxruntime's run-to-run spread beyond the profile's p99.",
        ],
      },
    ],
  });
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

async function runLive(cfg: z.infer<typeof Config>, source: ArrivalSource): Promise<Side> {
  const [http, grpc, metrics] = [await freePort(), await freePort(), await freePort()];
  const server = spawn(
    process.execPath,
    [
      "bin/sloserve.js",
      "serve",
      "--port",
      String(http),
      "--grpc-port",
      String(grpc),
      "--metrics-port",
      String(metrics),
      "--cores",
      String(cfg.cores),
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
  try {
    await ready(url, server);
    const t0 = Date.now();
    const r = await runLoad({
      source,
      model: cfg.task,
      protocol: "rest",
      url,
      grpcUrl: `127.0.0.1:${grpc}`,
      sloMs: cfg.slo_ms,
      seed: cfg.seed,
    });
    const history = (await (await fetch(`${url}/dashboard/api/history`)).json()) as {
      frames: { t: number; series: Record<string, { cores: number }> }[];
    };
    const cores = history.frames.filter((f) => f.t >= t0 && f.series[cfg.task]).map((f) => f.series[cfg.task]!.cores);
    const s = r.summary;
    return {
      requests: s.requests,
      attainmentPct: (s.attainment ?? 0) * 100,
      p50Ms: s.latencyMs.p50,
      p99Ms: s.latencyMs.p99,
      meanCores: cores.reduce((a, b) => a + b, 0) / Math.max(1, cores.length),
    };
  } finally {
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
  }
}
