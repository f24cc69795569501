// npm run bench:serve [-- --json] [--task vision --variant resnet18] [--seconds 8]
// Side by side in one run, on the same variant and core: (a) sloserve's saturated throughput over
// REST-binary and gRPC as a ratio of raw onnxruntime at its best batch (measured in the same kind
// of pinned worker process, without sloserve around it); (b) the latency sloserve adds at low
// load; (c) the scheduling policies' decision time with 50 variants.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Agent, request } from "undici";
import { GRPC_PROTO_DIR } from "../../src/api/grpc.js";
import { spawnWorker } from "../../src/cluster/local/worker-process.js";
import { fmt } from "../../src/terminal/table.js";
import { DEFAULT_MODELS_DIR, prepareZoo } from "../../src/bundled-zoo/prepare.js";
import { quantile } from "../../src/stats/quantile.js";
import { batchGrid } from "../../src/profiler/machine.js";
import { pinProcess } from "../../src/worker/pin.js";
import { loadRepository } from "../../src/repository/repository.js";
import { DATATYPES } from "../../src/repository/datatypes.js";
import { timeAllPolicies } from "./decisions.js";
import { freePort } from "./net.js";
import { emit } from "../../src/terminal/report.js";

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    models: { type: "string", default: DEFAULT_MODELS_DIR },
    task: { type: "string", default: "vision" },
    variant: { type: "string", default: "resnet18" },
    seconds: { type: "string", default: "8" },
    decisions: { type: "string", default: "100000" },
    "hot-ms": { type: "string", default: "0" },
    "cpu-rate": { type: "string", default: "1000" },
    "cpu-seconds": { type: "string", default: "10" },
  },
});
const log = (m: string) => process.stderr.write(`${m}\n`);
const seconds = Number(values.seconds);
await prepareZoo(values.models!, log);
const repo = await loadRepository(values.models!, { tasks: [values.task!] });
const task = repo.tasks.get(values.task!)!;
const variant = task.variants.get(values.variant!);
if (!variant) throw new Error(`task '${task.name}' has no variant '${values.variant}'`);
const decl = task.config.inputs[0]!;
const rowBytes = decl.shape.reduce((a, b) => a * b, 1) * DATATYPES[decl.datatype].bytes;
const instanceCore = [0];
const clientCores = os.availableParallelism() > 1 ? [1] : [0];
await pinProcess(process.pid, clientCores); // load generator and gateway share the other core

// ---- raw onnxruntime in a pinned worker, no sloserve around it
log(`raw onnxruntime: ${task.name}/${variant.name} on core ${instanceCore.join(",")}`);
const raw = await spawnWorker({ modelPath: variant.modelPath, threads: 1, cpus: instanceCore });
const rawPoints: { batch: number; p50: number; p99: number; rowsPerS: number }[] = [];
for (const b of batchGrid(variant.config.max_batch)) {
  const { header } = await raw.client.call("bench", { batch: b, warmup: 3, minSamples: 10, budgetMs: 1500 });
  const s = header.samples;
  rawPoints.push({
    batch: b,
    p50: quantile(s, 0.5),
    p99: quantile(s, 0.99),
    rowsPerS: (b * s.length) / (s.reduce((a, x) => a + x, 0) / 1000),
  });
}
// low load: one request at a time, as far apart as the client below sends them
const LOW_LOAD_GAP_MS = 2;
const lowSamples = (
  await raw.client.call("bench", { batch: 1, warmup: 3, minSamples: 300, budgetMs: 0, gapMs: LOW_LOAD_GAP_MS })
).header.samples;
await raw.stop();
const rawLow = { p50: quantile(lowSamples, 0.5), p99: quantile(lowSamples, 0.99) };
const rawBest = rawPoints.reduce((a, b) => (b.rowsPerS > a.rowsPerS ? b : a));
const rawB1 = rawPoints.find((p) => p.batch === 1)!;

// ---- the floor: a bare fastify server answering the same body over the same undici client
const echoPort = await freePort();
const echo = spawn(
  "taskset",
  [
    "-c",
    clientCores.join(","),
    process.execPath,
    "--input-type=module",
    "-e",
    `
    import Fastify from "fastify";
    const app = Fastify();
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", { parseAs: "buffer" }, (_r, b, d) => d(null, b));
    app.post("/echo", async (_req, reply) => reply.type("application/json").send('{"ok":true}'));
    await app.listen({ host: "127.0.0.1", port: ${echoPort} });
    console.log("listening");
  `,
  ],
  { stdio: ["ignore", "pipe", "inherit"], cwd: path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..") },
);
await new Promise<void>((resolve) => echo.stdout.once("data", () => resolve()));

// ---- sloserve: a server process (gateway on the client's core, one instance on the instance core)
const [httpPort, grpcPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
const server = spawn(
  "taskset",
  [
    "-c",
    clientCores.join(","),
    process.execPath,
    "bin/sloserve.js",
    "serve",
    "--models",
    values.models!,
    "--port",
    String(httpPort),
    "--grpc-port",
    String(grpcPort),
    "--metrics-port",
    String(metricsPort),
    "--cores",
    "1",
    "--deploy",
    `${task.name}=${variant.name}:1`,
    "--hot-ms",
    values["hot-ms"]!,
    "--autoscaler",
    "none",
    "--log-level",
    "warn",
  ],
  { stdio: ["ignore", "ignore", "pipe"], cwd: path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..") },
);
// a failed measurement must not leave the server (and its worker) running
process.on("exit", () => server.kill("SIGTERM"));
let serverErr = "";
server.stderr.on("data", (d) => (serverErr += d));
for (let i = 0; i < 600 && !serverErr.includes("sloserve is serving"); i++) await sleep(100);
if (!serverErr.includes("sloserve is serving")) throw new Error(`server did not start: ${serverErr}`);
const base = `http://127.0.0.1:${httpPort}`;
const body = restBody(rowBytes, decl.name, decl.datatype, [1, ...decl.shape]);
const agent = new Agent({ connections: 64, pipelining: 1 });
const restOnce = async () => {
  const res = await request(`${base}/v2/models/${task.name}/versions/${variant.name}/infer`, {
    method: "POST",
    dispatcher: agent,
    headers: { "content-type": "application/octet-stream", "inference-header-content-length": String(body.header) },
    body: body.bytes,
  });
  const buf = await res.body.arrayBuffer();
  if (res.statusCode !== 200) throw new Error(`REST ${res.statusCode}: ${Buffer.from(buf).toString().slice(0, 200)}`);
};
const pkg = grpc.loadPackageDefinition(
  protoLoader.loadSync(path.join(GRPC_PROTO_DIR, "grpc_service.proto"), {
    keepCase: true,
    longs: String,
    defaults: true,
  }),
) as any;
const grpcClient = new pkg.inference.GRPCInferenceService(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure(), {
  "grpc.max_send_message_length": 64 << 20,
  "grpc.max_receive_message_length": 64 << 20,
});
const grpcReq = {
  model_name: task.name,
  model_version: variant.name,
  inputs: [{ name: decl.name, datatype: decl.datatype, shape: [1, ...decl.shape] }],
  parameters: { slo_ms: { double_param: 60_000 } },
  raw_input_contents: [Buffer.alloc(rowBytes)],
};
const grpcOnce = () =>
  new Promise<void>((resolve, reject) =>
    grpcClient.ModelInfer(grpcReq, (err: Error | null) => (err ? reject(err) : resolve())),
  );

const echoAgent = new Agent({ connections: 1 });
const echoOnce = (dispatcher: Agent) => async () => {
  const res = await request(`http://127.0.0.1:${echoPort}/echo`, {
    method: "POST",
    dispatcher,
    headers: { "content-type": "application/octet-stream" },
    body: body.bytes,
  });
  await res.body.arrayBuffer();
};
const echoLat: number[] = [];
for (let i = 0; i < 300; i++) {
  const t0 = performance.now();
  await echoOnce(echoAgent)();
  echoLat.push(performance.now() - t0);
  await sleep(2);
}
// CPU of a front end per one-row request, at a fixed rate: read from /proc, so it holds on a noisy machine
// (at most half of what the model itself carries: a slow model would queue, and queued requests cost nothing)
const cpuRate = Math.min(Number(values["cpu-rate"]), Math.max(1, Math.floor(rawBest.rowsPerS / 2)));
const cpuMs = Number(values["cpu-seconds"]) * 1000;
log(`front-end CPU per request at ${cpuRate} req/s: the bare fastify floor`);
const echoPool = new Agent({ connections: 64 }); // as many connections as sloserve's client below
const echoCpuUs = await cpuPerRequest(echo.pid!, echoOnce(echoPool), cpuRate, cpuMs);
echo.kill();
await Promise.all([echoAgent.close(), echoPool.close()]);
const httpFloor = { p50: quantile(echoLat.slice(20), 0.5), p99: quantile(echoLat.slice(20), 0.99) };

const rows: Record<
  string,
  {
    gateway_cpu_us_per_request: number;
    saturated_rows_per_s: number;
    ratio_to_raw: number;
    concurrency: number;
    lowload_p50_ms: number;
    lowload_p99_ms: number;
    added_p50_ms: number;
    added_p99_ms: number;
  }
> = {};
for (const [name, once] of [
  ["rest_binary", restOnce],
  ["grpc", grpcOnce],
] as const) {
  log(`sloserve over ${name}: low-load latency, then saturation`);
  for (let i = 0; i < 20; i++) await once();
  const lat: number[] = [];
  const lowEnd = performance.now() + Math.min(seconds, 5) * 1000;
  while (performance.now() < lowEnd && lat.length < 2000) {
    const t0 = performance.now();
    await once();
    lat.push(performance.now() - t0);
    await sleep(LOW_LOAD_GAP_MS);
  }
  const concurrency = Math.max(4, Math.min(2 * variant.config.max_batch, 64));
  const sat = await closedLoop(once, concurrency, seconds * 1000);
  log(`sloserve over ${name}: gateway CPU per request at ${cpuRate} req/s`);
  await sleep(500);
  const gatewayCpuUs = await cpuPerRequest(server.pid!, once, cpuRate, cpuMs);
  rows[name] = {
    gateway_cpu_us_per_request: gatewayCpuUs,
    saturated_rows_per_s: sat,
    ratio_to_raw: sat / rawBest.rowsPerS,
    concurrency,
    lowload_p50_ms: quantile(lat, 0.5),
    lowload_p99_ms: quantile(lat, 0.99),
    added_p50_ms: quantile(lat, 0.5) - rawLow.p50,
    added_p99_ms: quantile(lat, 0.99) - rawLow.p99,
  };
}
grpcClient.close();
await agent.close();
server.kill("SIGTERM");
await new Promise((r) => server.once("exit", r));

log(`policy decision time: ${values.decisions} decisions per policy, 50 variants`);
const decisions = timeAllPolicies(Number(values.decisions));

const figures = {
  variant: `${task.name}/${variant.name}`,
  cores: 1,
  raw_best_batch: rawBest.batch,
  cpu_rate_rps: cpuRate,
  raw_best_rows_per_s: rawBest.rowsPerS,
  raw_b1_p50_ms: rawB1.p50,
  raw_b1_p99_ms: rawB1.p99,
  http_echo_p50_ms: httpFloor.p50,
  http_echo_p99_ms: httpFloor.p99,
  raw_lowload_p50_ms: rawLow.p50,
  raw_lowload_p99_ms: rawLow.p99,
  rest_binary: rows.rest_binary,
  grpc: rows.grpc,
  throughput_ratio_rest_binary: rows.rest_binary!.ratio_to_raw,
  throughput_ratio_grpc: rows.grpc!.ratio_to_raw,
  added_p50_ms_rest_binary: rows.rest_binary!.added_p50_ms,
  added_p50_ms_grpc: rows.grpc!.added_p50_ms,
  gateway_cpu_us_rest_binary: rows.rest_binary!.gateway_cpu_us_per_request,
  gateway_cpu_us_grpc: rows.grpc!.gateway_cpu_us_per_request,
  echo_cpu_us_per_request: echoCpuUs,
  decision_time: decisions,
};
emit(
  {
    title: `bench:serve — ${task.name}/${variant.name}, instance on 1 core (${os.cpus()[0]?.model.trim()}); gateway + load generator on the other; gateway --hot-ms ${values["hot-ms"]}`,
    tables: [
      {
        head: ["raw onnxruntime batch", "p50 ms", "p99 ms", "rows/s"],
        rows: rawPoints.map((p) => [String(p.batch), fmt(p.p50, 3), fmt(p.p99, 3), fmt(p.rowsPerS, 0)]),
      },
      {
        head: [
          "protocol",
          "saturated rows/s",
          "÷ raw best (goal ≥ 0.85)",
          "low-load p50 ms",
          "p99 ms",
          "added p50 ms (goal ≤ 0.5)",
          "added p99 ms",
          "gateway CPU µs/request (goal ≤ 40 REST, ≤ 60 gRPC)",
        ],
        rows: Object.entries(rows).map(([k, r]) => [
          k,
          fmt(r.saturated_rows_per_s, 0),
          fmt(r.ratio_to_raw, 3),
          fmt(r.lowload_p50_ms, 3),
          fmt(r.lowload_p99_ms, 3),
          fmt(r.added_p50_ms, 3),
          fmt(r.added_p99_ms, 3),
          fmt(r.gateway_cpu_us_per_request, 0),
        ]),
      },
      {
        head: ["policy", "decisions", "per batch p50 µs", "p99 µs (goal ≤ 20)", "on arrival p50 µs", "p99 µs"],
        rows: decisions.map((d) => [
          d.policy,
          String(d.decisions),
          fmt(d.p50_us, 2),
          fmt(d.p99_us, 2),
          d.arrival_p50_us === undefined ? "-" : fmt(d.arrival_p50_us, 2),
          d.arrival_p99_us === undefined ? "-" : fmt(d.arrival_p99_us, 2),
        ]),
      },
    ],
    figures,
    notes: [
      `raw onnxruntime at low load (batch 1, ${LOW_LOAD_GAP_MS} ms apart like the client): p50 ${fmt(rawLow.p50, 3)} ms, p99 ${fmt(rawLow.p99, 3)} ms — the "added" columns subtract these.`,
      `floor of the transport: a bare fastify server answering the same body to the same client, same pacing: p50 ${fmt(httpFloor.p50, 3)} ms, p99 ${fmt(httpFloor.p99, 3)} ms.`,
      `INFaaS reports 2.2–3.5 ms of decision overhead per query; raw best batch is ${rawBest.batch}.`,
      `front-end CPU per one-row request at ${cpuRate} req/s for ${cpuMs / 1000} s (user + system of the process, from /proc; workers excluded): the bare fastify server answering the same body costs ${fmt(echoCpuUs, 0)} µs.`,
    ],
  },
  values.json!,
);
process.exit(0);

/** User + system CPU of a process (ms), from /proc. */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in clock ticks of 1/100 s
}

/** CPU µs per request that a process spends while `once` is sent at `rate` per second for `ms`. */
async function cpuPerRequest(pid: number, once: () => Promise<void>, rate: number, ms: number): Promise<number> {
  const before = processCpuMs(pid);
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; ; i++) {
    const at = start + (i * 1000) / rate;
    if (at > start + ms) break;
    const wait = at - performance.now();
    if (wait > 1) await sleep(wait);
    pending.push(once());
  }
  await Promise.all(pending);
  return ((processCpuMs(pid) - before) * 1000) / pending.length;
}

async function closedLoop(once: () => Promise<void>, concurrency: number, ms: number): Promise<number> {
  const warmEnd = performance.now() + 1000;
  let count = 0;
  let measuring = false;
  let stop = false;
  const loop = async () => {
    while (!stop) {
      await once();
      if (measuring) count++;
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  await sleep(warmEnd - performance.now());
  measuring = true;
  const t0 = performance.now();
  await sleep(ms);
  measuring = false;
  const elapsed = performance.now() - t0;
  stop = true;
  await Promise.all(loops);
  return (count * 1000) / elapsed;
}

function restBody(bytes: number, name: string, datatype: string, shape: number[]): { bytes: Buffer; header: number } {
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name, datatype, shape, parameters: { binary_data_size: bytes } }],
      parameters: { slo_ms: 60_000, binary_data_output: true },
    }),
  );
  return { bytes: Buffer.concat([header, Buffer.alloc(bytes)]), header: header.byteLength };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}
