// Entry point of a worker process: `node --import tsx src/worker/main.ts --model <file> --threads <c>
// [--subnets <json>]`. Loads the model, warms it up, listens, and announces itself on stdout as one JSON
// line. A supernet's subnet table comes from the parent, which read the repository.
import fs from "node:fs/promises";
import os from "node:os";
import { parseArgs } from "node:util";
import { Engine } from "../engine/engine.js";
import { controlFeeds } from "../engine/subnet-feeds.js";
import type { SubnetTable } from "../engine/subnets.js";
import { CGROUP_CPU_MAX, followCpuLimit, readCpuLimit, threadsFor } from "./cgroup-cpu.js";
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
    // Started by a gateway on this machine (the local backend): end when it ends (see exitWithParent).
    "exit-with-parent": { type: "boolean", default: false },
    // In a pod: `--threads auto --follow-cgroup` sizes the session from, and follows, the cgroup's CPU quota.
    "follow-cgroup": { type: "boolean", default: false },
    "cgroup-cpu-max": { type: "string", default: CGROUP_CPU_MAX },
  },
});

async function main(): Promise<void> {
  if (!values.model) throw new Error("--model <path to model.onnx> is required");
  const token = process.env[WORKER_TOKEN_ENV];
  if (!token) throw new Error(`${WORKER_TOKEN_ENV} must hold the channel secret the parent will open with`);
  delete process.env[WORKER_TOKEN_ENV];
  if (values["exit-with-parent"]) exitWithParent();
  const t0 = performance.now();
  const bytes = await fs.readFile(values.model);
  // A supernet variant: its default subnet's control values go with every batch that names no subnet.
  const subnets = values.subnets ? (JSON.parse(values.subnets) as SubnetTable) : null;
  const controls = subnets ? controlFeeds(subnets.controls[subnets.defaultName]!) : undefined;
  const threads = values.threads === "auto" ? await cgroupThreads(values["cgroup-cpu-max"]!) : Number(values.threads);
  if (!Number.isInteger(threads) || threads < 1)
    throw new Error(`--threads must be a positive integer or 'auto', got '${values.threads}'`);
  const engine = await Engine.create(bytes, { threads, controls });
  const sessionMs = performance.now() - t0;
  await engine.run(engine.zeroFeeds(1));
  const warmupMs = performance.now() - t0 - sessionMs;
  const cpus = values.cpus ? values.cpus.split(",").map(Number) : [];
  const server = new WorkerServer({
    engine,
    subnets: subnets ?? undefined,
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
  process.stdout.write(JSON.stringify({ event: "ready", pid: process.pid, port, sessionMs, warmupMs }) + "\n");
}

async function cgroupThreads(file: string): Promise<number> {
  const cores = await readCpuLimit(file).catch(() => null);
  return cores === null ? os.availableParallelism() : threadsFor(cores);
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ event: "error", error: (err as Error).message }) + "\n");
  process.exit(1);
});
