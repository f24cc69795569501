// Entry point of a worker process: `node --import tsx src/worker/main.ts --model <file> --threads <c>
// [--subnets <json>]`. Loads the model, warms it up, listens, and announces itself on stdout as one JSON
// line. A supernet's subnet table comes from the parent, which read the repository. With `--pool` instead of
// a model it only loads onnxruntime and waits, warm, for the gateway to send it a model.
import os from "node:os";
import { parseArgs } from "node:util";
import type { SubnetTable } from "../engine/subnets.js";
import { CGROUP_CPU_MAX, followCpuLimit, readCpuLimit, threadsFor } from "./cgroup-cpu.js";
import { loadModel } from "./load-model.js";
import { WORKER_TOKEN_ENV } from "./protocol.js";
import { WorkerServer } from "./server.js";

/**
 * The parent holds the other end of our stdin and never writes to it: when the parent dies, however it
 * dies (kill -9 included), the kernel closes that end and we see end of file. A worker never outlives
 * the process that started it.
 */
function exitWithParent(): void {
  const gone = () => {
    process.stderr.write("worker: parent process is gone; exiting\n");
    process.exit(3);
  };
  process.stdin.on("end", gone);
  process.stdin.on("close", gone);
  process.stdin.on("error", gone);
  process.stdin.resume();
}

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    threads: { type: "string", default: "1" },
    cpus: { type: "string", default: "" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    "hot-ms": { type: "string", default: "1" },
    subnets: { type: "string" },
    // A warm-pool worker: onnxruntime loaded, no model until the gateway sends `load` (WorkerOps.load).
    pool: { type: "boolean", default: false },
    // Started by a gateway on this machine (the local backend): end when it ends (see exitWithParent).
    "exit-with-parent": { type: "boolean", default: false },
    // In a pod: `--threads auto --follow-cgroup` sizes the session from, and follows, the cgroup's CPU quota.
    "follow-cgroup": { type: "boolean", default: false },
    "cgroup-cpu-max": { type: "string", default: CGROUP_CPU_MAX },
  },
});

async function main(): Promise<void> {
  const pooled = values.pool === true;
  if (!values.model && !pooled) throw new Error("--model <path to model.onnx> (or --pool) is required");
  const token = process.env[WORKER_TOKEN_ENV];
  if (!token) throw new Error(`${WORKER_TOKEN_ENV} must hold the channel secret the parent will open with`);
  delete process.env[WORKER_TOKEN_ENV];
  if (values["exit-with-parent"]) exitWithParent();
  const subnets = values.subnets ? (JSON.parse(values.subnets) as SubnetTable) : null;
  const threads = values.threads === "auto" ? await cgroupThreads(values["cgroup-cpu-max"]!) : Number(values.threads);
  const model = pooled ? null : await loadModel(values.model!, threads, subnets);
  const cpus = values.cpus ? values.cpus.split(",").map(Number) : [];
  const server = new WorkerServer({
    model,
    host: values.host!,
    port: Number(values.port),
    cpus,
    hotMs: Number(values["hot-ms"]),
    token,
  });
  const port = await server.listen();
  process.on("SIGTERM", () => void server.shutdown());
  if (values["follow-cgroup"])
    followCpuLimit((t) => server.resize(t, cpus).then(() => undefined), {
      file: values["cgroup-cpu-max"],
      initialThreads: threads,
      unlimitedThreads: os.availableParallelism(),
    });
  process.stdout.write(
    JSON.stringify(
      model
        ? { event: "ready", pid: process.pid, port, sessionMs: model.sessionMs, warmupMs: model.warmupMs }
        : { event: "pooled", pid: process.pid, port, sessionMs: 0, warmupMs: 0 },
    ) + "\n",
  );
}

async function cgroupThreads(file: string): Promise<number> {
  const cores = await readCpuLimit(file).catch(() => null);
  return cores === null ? os.availableParallelism() : threadsFor(cores);
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ event: "error", error: (err as Error).message }) + "\n");
  process.exit(1);
});
