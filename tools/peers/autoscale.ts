// Autoscalers side by side, live: one model, one trace window replayed by `sloserve bench`, one
// core budget, each autoscaler doing its own job: sloserve's (themis, horizontal) and Ray Serve's.
// Allocated cores are sampled every second (sloserve: its sloserve_cores gauge; Ray: running
// replicas × 1 CPU each, from serve.status()) and integrated into core-seconds.
import fs from "node:fs";
import type { BenchRun, Clients } from "./clients.js";
import {
  startServer,
  type ModelUnderTest,
  type RayAutoscale,
  type RunningServer,
  type StartOptions,
} from "./servers.js";

export interface TraceWindow {
  file: string;
  format: string;
  startS: number;
  durationS: number;
  /** Mean rate the window is rescaled to. */
  rate: number;
}

export interface AutoscaleResult {
  autoscaler: string;
  sent: number;
  within_slo: number;
  slo_violations: number;
  attainment: number;
  core_seconds: number;
  mean_cores: number;
  max_cores: number;
  p50_ms: number;
  p99_ms: number;
  errors: Record<string, number>;
}

/** Ray Serve's knobs derived from the variant's measured profile (1-core points) and the objective. */
export function rayKnobsFromProfile(
  profileFile: string,
  sloMs: number,
  maxReplicas: number,
): RayAutoscale & { why: string } {
  const profile = JSON.parse(fs.readFileSync(profileFile, "utf8")) as {
    points: { batch: number; cores: number; p99_ms: number }[];
  };
  const oneCore = profile.points.filter((p) => p.cores === 1).sort((a, b) => a.batch - b.batch);
  if (oneCore.length === 0) throw new Error(`${profileFile} has no 1-core points`);
  // the largest batch one replica finishes within half the objective: the other half is for waiting
  const fit = oneCore.filter((p) => p.p99_ms <= sloMs / 2);
  const b = (fit.at(-1) ?? oneCore[0]!).batch;
  return {
    maxReplicas,
    targetOngoingRequests: b,
    maxOngoingRequests: 2 * b,
    upscaleDelayS: 1,
    downscaleDelayS: 5,
    batchWaitS: 0,
    maxBatch: b,
    why:
      `profile: batch ${b} is the largest whose 1-core p99 (${oneCore.find((p) => p.batch === b)!.p99_ms.toFixed(0)} ms) fits half the ${sloMs} ms objective → ` +
      `target_ongoing_requests ${b}, max_ongoing_requests ${2 * b} (one batch running, one waiting), @serve.batch max_batch_size ${b}, batch_wait_timeout_s 0; ` +
      `upscale_delay_s 1 and downscale_delay_s 5 match sloserve's 1-s control loop and its 5 calm decisions before it shrinks (Ray's defaults, 30 s and 600 s, would not act within the window); ` +
      `min_replicas 1, max_replicas ${maxReplicas} (the core budget), 1 CPU and 1 onnxruntime thread per replica`,
  };
}

export async function runAutoscaler(
  autoscaler: "themis" | "horizontal" | "ray",
  m: ModelUnderTest,
  start: StartOptions,
  clients: Clients,
  trace: TraceWindow,
  log: (m: string) => void,
): Promise<AutoscaleResult> {
  const server = await startServer(autoscaler === "ray" ? "ray" : "sloserve", m, {
    ...start,
    sloserveAutoscaler: autoscaler === "ray" ? undefined : autoscaler,
  });
  log(`autoscaler ${autoscaler}: serving on cores ${start.cores.join(",")}, replaying the trace`);
  const samples: { t: number; cores: number }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const cores = await allocatedCores(server).catch(() => NaN);
      if (Number.isFinite(cores)) samples.push({ t: performance.now(), cores });
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  let r: BenchRun;
  try {
    r = await clients.bench(server, {
      protocol: "rest",
      rate: trace.rate,
      durationS: trace.durationS,
      sloMs: m.sloMs,
      trace: { file: trace.file, format: trace.format, startS: trace.startS },
    });
  } finally {
    sampling = false;
    await sampler;
    await server.stop();
  }
  let coreSeconds = 0;
  for (let i = 1; i < samples.length; i++)
    coreSeconds += (samples[i - 1]!.cores * (samples[i]!.t - samples[i - 1]!.t)) / 1000;
  const spanS = samples.length > 1 ? (samples.at(-1)!.t - samples[0]!.t) / 1000 : NaN;
  const within = Math.round((r.attainment ?? 0) * r.sent);
  return {
    autoscaler: autoscaler === "ray" ? "ray serve" : `sloserve ${autoscaler}`,
    sent: r.sent,
    within_slo: within,
    slo_violations: r.sent - within,
    attainment: r.attainment ?? 0,
    core_seconds: coreSeconds,
    mean_cores: coreSeconds / spanS,
    max_cores: Math.max(...samples.map((s) => s.cores)),
    p50_ms: r.latencyMs.p50,
    p99_ms: r.latencyMs.p99,
    errors: r.errors,
  };
}

async function allocatedCores(s: RunningServer): Promise<number> {
  if (s.name === "ray") {
    for (let i = s.stdout.length - 1; i >= 0; i--) {
      const line = s.stdout[i]!;
      if (!line.startsWith("{")) continue;
      const n = (JSON.parse(line) as { replicas: number }).replicas;
      if (n >= 0) return n; // one CPU per replica
    }
    return NaN;
  }
  const res = await fetch(`${s.httpUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
  const text = await res.text();
  let cores = 0;
  for (const line of text.split("\n")) if (line.startsWith("sloserve_cores{")) cores += Number(line.split(" ").pop());
  return cores;
}
