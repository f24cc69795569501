// Starts an instance as a worker process pinned to its cores, and measures its cold start:
// from spawn until the worker has loaded and warmed its session and accepts batches.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { createRequire } from "node:module";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { SubnetTable } from "../../engine/subnets.js";
import { WorkerClient } from "../../worker/client.js";
import { WORKER_TOKEN_ENV } from "../../worker/protocol.js";

const require = createRequire(import.meta.url);
const TSX_LOADER = pathToFileURL(require.resolve("tsx/esm")).href;
const WORKER_MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../worker/main.ts");

export interface SpawnOptions {
  /** The model to serve; null starts a warm-pool worker (onnxruntime loaded, no model yet: see loadInto). */
  modelPath: string | null;
  threads: number;
  /** Cores to pin to; empty = no pinning. */
  cpus: number[];
  host?: string;
  readyTimeoutMs?: number;
  /** Busy-poll after each batch (ms; the worker's default when unset). */
  hotMs?: number;
  /** A supernet variant's subnets (absent for an ordinary model). */
  subnets?: SubnetTable | null;
  /** Aborting it kills the worker, started or not: a start can be cancelled. */
  signal?: AbortSignal;
}

export interface WorkerHandle {
  pid: number;
  port: number;
  client: WorkerClient;
  proc: ChildProcess;
  /** spawn → ready (or, for a warm-pool worker given a model, load → ready), ms */
  coldStartMs: number;
  /** It came from the warm pool. */
  warm?: boolean;
  sessionMs: number;
  warmupMs: number;
  /** Resolves with the exit code when the process ends, for whatever reason. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export async function spawnWorker(opts: SpawnOptions): Promise<WorkerHandle> {
  const host = opts.host ?? "127.0.0.1";
  const what = opts.modelPath === null ? "a warm-pool worker" : `the worker for ${opts.modelPath}`;
  const nodeArgs = [
    "--import",
    TSX_LOADER,
    WORKER_MAIN,
    ...(opts.modelPath === null ? ["--pool"] : ["--model", opts.modelPath]),
    "--threads",
    String(opts.threads),
    "--host",
    host,
    "--cpus",
    opts.cpus.join(","),
    ...(opts.hotMs === undefined ? [] : ["--hot-ms", String(opts.hotMs)]),
    ...(opts.subnets ? ["--subnets", JSON.stringify(opts.subnets)] : []),
    "--exit-with-parent",
  ];
  opts.signal?.throwIfAborted();
  const usePin = process.platform === "linux" && opts.cpus.length > 0;
  const token = randomBytes(32).toString("hex");
  // stdin is a pipe the worker watches: it exits when we are gone (see worker/main.ts)
  const spawnOpts = {
    stdio: ["pipe", "pipe", "pipe"] as ["pipe", "pipe", "pipe"],
    env: { ...process.env, [WORKER_TOKEN_ENV]: token },
  };
  const t0 = performance.now();
  const proc = usePin
    ? spawn("taskset", ["-c", opts.cpus.join(","), process.execPath, ...nodeArgs], spawnOpts)
    : spawn(process.execPath, nodeArgs, spawnOpts);
  (proc.stdin as Socket).unref();
  proc.stdin!.on("error", () => undefined);
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const abort = () => proc.kill("SIGKILL");
  opts.signal?.addEventListener("abort", abort, { once: true });
  void exited.then(() => opts.signal?.removeEventListener("abort", abort));
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const ready = await new Promise<{ port: number; pid: number; sessionMs: number; warmupMs: number }>(
    (resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill("SIGKILL");
        reject(new Error(`${what} did not become ready within ${opts.readyTimeoutMs ?? 120_000} ms`));
      }, opts.readyTimeoutMs ?? 120_000);
      const lines = readline.createInterface({ input: proc.stdout! });
      lines.on("line", (line) => {
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line);
        } catch {
          return;
        }
        clearTimeout(timer);
        if (msg.event === "ready" || msg.event === "pooled") resolve(msg as never);
        else reject(new Error(`${what} failed to start: ${String(msg.error)}`));
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(
          opts.signal?.aborted
            ? new Error(`the start of ${what} was cancelled`)
            : new Error(`${what} exited with code ${code} before it was ready${stderr ? `: ${stderr.trim()}` : ""}`),
        );
      });
    },
  );
  let client: WorkerClient;
  try {
    client = await WorkerClient.connect(host, ready.port, token);
    opts.signal?.throwIfAborted();
  } catch (err) {
    proc.kill("SIGKILL");
    throw err;
  }
  const coldStartMs = performance.now() - t0;
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
    try {
      await client.call("shutdown");
    } catch {
      // the worker may close the socket before answering; its exit is what counts
    }
    await exited;
    clearTimeout(timer);
    client.close();
  };
  return {
    pid: ready.pid,
    port: ready.port,
    client,
    proc,
    coldStartMs,
    sessionMs: ready.sessionMs,
    warmupMs: ready.warmupMs,
    exited,
    stop,
  };
}

/**
 * A warm-pool worker takes its model: session, warm-up, its cores. Returns the handle as a started worker's
 * (its cold start now only what `load` took).
 */
export async function loadInto(
  handle: WorkerHandle,
  model: { modelPath: string; threads: number; cpus: number[]; subnets?: SubnetTable | null },
): Promise<WorkerHandle> {
  const t0 = performance.now();
  const { header } = await handle.client.call("load", model);
  return {
    ...handle,
    warm: true,
    coldStartMs: performance.now() - t0,
    sessionMs: header.sessionMs,
    warmupMs: header.warmupMs,
  };
}
