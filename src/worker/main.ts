// Entry point of a worker process: `node --import tsx src/worker/main.ts --model <file> --threads <c>`.
// Loads the model, warms it up, listens, and announces itself on stdout as one JSON line.
import fs from "node:fs/promises";
import os from "node:os";
import { parseArgs } from "node:util";
import { Engine } from "../engine/engine.js";
import { controlFeeds } from "../engine/subnet-feeds.js";
import { readSubnetTable } from "../repository/subnets.js";
import { CGROUP_CPU_MAX, followCpuLimit, readCpuLimit, threadsFor } from "./cgroup-cpu.js";
import { WorkerServer } from "./server.js";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    threads: { type: "string", default: "1" },
    cpus: { type: "string", default: "" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    "hot-ms": { type: "string", default: "1" },
    // In a pod: `--threads auto --follow-cgroup` sizes the session from, and follows, the cgroup's CPU quota.
    "follow-cgroup": { type: "boolean", default: false },
    "cgroup-cpu-max": { type: "string", default: CGROUP_CPU_MAX },
  },
});

async function main(): Promise<void> {
  if (!values.model) throw new Error("--model <path to model.onnx> is required");
  const t0 = performance.now();
  const bytes = await fs.readFile(values.model);
  // A supernet variant: its default subnet's control values go with every batch that names no subnet.
  const subnets = await readSubnetTable(values.model);
  const controls = subnets ? controlFeeds(subnets.controls.get(subnets.defaultName)!) : undefined;
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
