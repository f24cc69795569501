// The servers under test, each started as one process tree pinned (taskset) to the same cores:
// sloserve (its gateway and its instance's worker) and the Python peers from tools/peers/*.py in
// their virtual environments (scripts/peers-env.sh). Each serves one ONNX file under one name.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { freePort } from "../bench/net.js";
import { stopTree } from "./proc.js";

export const SERVER_NAMES = ["sloserve", "triton", "ray", "mlserver"] as const;
export type ServerName = (typeof SERVER_NAMES)[number];
/** `rest` is the binary tensor extension; `rest-json` plain JSON (for servers without the extension). */
export type Protocol = "rest" | "rest-json" | "grpc";

export interface ServerInfo {
  /** What the figures call it, and what runs the model. */
  label: string;
  runtime: "onnxruntime-node" | "python onnxruntime";
  /** Protocols measured, in the order figures report them (REST first). */
  protocols: Protocol[];
  /** Protocols perf_analyzer can drive against it, or why it cannot. */
  perfAnalyzer: { protocols: ("http" | "grpc")[]; why?: string };
  venv?: string;
}

export const SERVERS: Record<ServerName, ServerInfo> = {
  sloserve: {
    label: "sloserve (gateway + 1 onnxruntime-node worker)",
    runtime: "onnxruntime-node",
    protocols: ["rest", "grpc"],
    perfAnalyzer: { protocols: ["http", "grpc"] },
  },
  triton: {
    label: "Triton 2.51 (nvidia-pytriton 0.7.0; model: Python onnxruntime via PyTriton's Python-backend proxy)",
    runtime: "python onnxruntime",
    protocols: ["rest", "grpc"],
    perfAnalyzer: { protocols: ["http", "grpc"] },
    venv: "triton",
  },
  ray: {
    label: "Ray Serve 2.60 (@serve.batch, FastAPI OIP v2 ingress)",
    runtime: "python onnxruntime",
    protocols: ["rest"],
    perfAnalyzer: { protocols: ["http"] },
    venv: "ray",
  },
  mlserver: {
    label: "MLServer 1.7.1 (custom onnxruntime MLModel, adaptive batching)",
    runtime: "python onnxruntime",
    protocols: ["rest-json", "grpc"],
    perfAnalyzer: {
      protocols: [],
      why: "perf_analyzer 2.60 needs the model-config endpoint, which MLServer does not serve (`error: failed to get model config: Method not found!`)",
    },
    venv: "mlserver",
  },
};

export interface ModelUnderTest {
  task: string;
  variant: string;
  /** The ONNX file every server loads. */
  file: string;
  maxBatch: number;
  /** The task's declared objective. */
  sloMs: number;
  /** A one-task, one-variant sloserve repository made for this run (see scratchRepository). */
  sloserveRepo: string;
}

export interface StartOptions {
  repoRoot: string;
  envRoot: string;
  cores: number[];
  /** sloserve: node flags for its gateway process (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** sloserve: its autoscaler (none for the data-path runs). */
  sloserveAutoscaler?: string;
  /** Ray: its autoscaler's knobs; absent = one fixed replica. */
  rayAutoscale?: RayAutoscale;
}

export interface RayAutoscale {
  maxReplicas: number;
  targetOngoingRequests: number;
  maxOngoingRequests: number;
  upscaleDelayS: number;
  downscaleDelayS: number;
  batchWaitS: number;
  maxBatch: number;
}

export interface RunningServer {
  name: ServerName;
  pid: number;
  httpUrl: string;
  grpcAddr: string;
  /** The name clients put in /v2/models/{name}. */
  model: string;
  /** Lines the server printed on stdout (Ray's replica counts). */
  stdout: string[];
  stop(): Promise<void>;
}

const STARTUP_MS = 240_000;

/** Servers started and not yet stopped, so that an interrupted benchmark takes them down with it. */
const live = new Set<RunningServer>();

export async function stopAllServers(): Promise<void> {
  await Promise.all([...live].map((s) => s.stop()));
}

export async function startServer(name: ServerName, m: ModelUnderTest, o: StartOptions): Promise<RunningServer> {
  const [http, grpc, metrics] = [await freePort(), await freePort(), await freePort()];
  const info = SERVERS[name];
  const py = info.venv ? path.join(o.envRoot, info.venv, "bin", "python") : "";
  if (info.venv && !fs.existsSync(py)) throw new Error(`${name}: no ${py}; run scripts/peers-env.sh`);
  const peers = path.join(o.repoRoot, "tools", "peers");
  const common = ["--model-file", m.file, "--name", m.task, "--max-batch", String(m.maxBatch)];
  let argv: string[];
  switch (name) {
    case "sloserve":
      argv = [
        process.execPath,
        ...(o.nodeArgs ?? []),
        path.join(o.repoRoot, "bin", "sloserve.js"),
        "serve",
        "--models",
        m.sloserveRepo,
        "--port",
        String(http),
        "--grpc-port",
        String(grpc),
        "--metrics-port",
        String(metrics),
        "--cores",
        String(o.cores.length),
        "--deploy",
        `${m.task}=${m.variant}:1`,
        "--autoscaler",
        o.sloserveAutoscaler ?? "none",
        "--log-level",
        "warn",
      ];
      break;
    case "triton":
      argv = [py, path.join(peers, "triton_peer.py"), ...common, "--http-port", `${http}`, "--grpc-port", `${grpc}`];
      break;
    case "mlserver":
      argv = [py, path.join(peers, "mlserver_peer.py"), ...common, "--http-port", `${http}`, "--grpc-port", `${grpc}`];
      break;
    case "ray": {
      const a = o.rayAutoscale;
      argv = [py, path.join(peers, "ray_peer.py"), "--model-file", m.file, "--name", m.task];
      argv.push(
        "--max-batch",
        String(a?.maxBatch ?? m.maxBatch),
        "--http-port",
        `${http}`,
        "--cpus",
        `${o.cores.length}`,
      );
      if (a)
        argv.push(
          "--autoscale",
          "--report-replicas",
          "--max-replicas",
          `${a.maxReplicas}`,
          "--target-ongoing",
          `${a.targetOngoingRequests}`,
          "--max-ongoing",
          `${a.maxOngoingRequests}`,
          "--upscale-delay-s",
          `${a.upscaleDelayS}`,
          "--downscale-delay-s",
          `${a.downscaleDelayS}`,
          "--batch-wait-s",
          `${a.batchWaitS}`,
        );
      // one replica may hold two full batches: one running, one forming
      else argv.push("--max-ongoing", String(2 * m.maxBatch));
      break;
    }
  }
  const child = spawn("taskset", ["-c", o.cores.join(","), ...argv], {
    cwd: o.repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      PYTHONPATH: [peers, process.env.PYTHONPATH].filter(Boolean).join(":"),
      PYTHONUNBUFFERED: "1",
      RAY_USAGE_STATS_ENABLED: "0",
    },
  });
  const stdout: string[] = [];
  let err = "";
  let partial = "";
  child.stdout!.on("data", (d: Buffer) => {
    const lines = (partial + d.toString()).split("\n");
    partial = lines.pop()!;
    stdout.push(...lines);
  });
  child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const running: RunningServer = {
    name,
    pid: child.pid!,
    httpUrl: `http://127.0.0.1:${http}`,
    grpcAddr: `127.0.0.1:${grpc}`,
    model: m.task,
    stdout,
    stop: async () => {
      live.delete(running);
      await stopTree(child.pid!, 20_000);
    },
  };
  live.add(running);
  try {
    await waitReady(child, running, () => err);
  } catch (e) {
    await running.stop();
    throw e;
  }
  return running;
}

async function waitReady(child: ChildProcess, s: RunningServer, err: () => string): Promise<void> {
  let exited: string | null = null;
  child.once("exit", (code, sig) => (exited = `exited (${sig ?? code})`));
  const end = Date.now() + STARTUP_MS;
  while (Date.now() < end) {
    if (exited) throw new Error(`${s.name} ${exited} before it was ready:\n${err()}`);
    try {
      const res = await fetch(`${s.httpUrl}/v2/models/${s.model}/ready`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${s.name} was not ready within ${STARTUP_MS / 1000} s:\n${err()}`);
}

/**
 * A sloserve repository with one task and one variant (the file copied: sloserve refuses links
 * that leave its repository), its objective set to `sloMs`: the data-path runs give it an
 * objective no request can miss so that it batches like the peers instead of shedding work.
 */
export function scratchRepository(
  repoRoot: string,
  modelsDir: string,
  task: string,
  variant: string,
  sloMs: number,
): string {
  const dir = path.join(repoRoot, ".sloserve", "peers", `${task}-${variant}-slo${sloMs}`);
  const src = path.join(modelsDir, task);
  const files = ["model.onnx", "variant.yaml", "profile.json"];
  for (const f of files)
    if (!fs.existsSync(path.join(src, variant, f))) throw new Error(`${path.join(src, variant, f)} is missing`);
  const yaml = fs.readFileSync(path.join(src, "task.yaml"), "utf8");
  if (!/^slo_ms:/m.test(yaml)) throw new Error(`${src}/task.yaml has no slo_ms line`);
  fs.mkdirSync(path.join(dir, task, variant), { recursive: true });
  fs.writeFileSync(path.join(dir, task, "task.yaml"), yaml.replace(/^slo_ms:.*$/m, `slo_ms: ${sloMs}`));
  for (const f of files) {
    const from = path.join(src, variant, f);
    const to = path.join(dir, task, variant, f);
    const st = fs.statSync(from);
    if (!fs.existsSync(to) || fs.statSync(to).size !== st.size || fs.statSync(to).mtimeMs < st.mtimeMs)
      fs.copyFileSync(from, to);
  }
  return dir;
}
