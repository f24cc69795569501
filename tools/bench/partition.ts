// npm run bench:partition [-- --json] [--model vision/resnet50] [--parts 2,3] [--requests 30] [--concurrency 4] [--rounds 3]
//
// NetNN's partitioning, measured on this machine: the variant is cut by `sloserve partition`'s own code
// into 2 and 3 stages, written into a scratch repository beside the whole model, and each configuration
// is served by the real server in turn (the whole model on one 1-core instance, on two, and each
// pipeline with one 1-core instance per stage; a stage beyond the cores shares one). Per configuration:
// outputs against the whole model's on the same image, client latency one request at a time (batch 1),
// throughput with `concurrency` requests in flight, what each stage computed, the resident memory of every
// worker process (RSS now and its peak) next to the partitioner's estimate, and the bytes crossing each cut.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { partitionModel } from "../../src/partition/partition.js";
import { readModelGraph } from "../../src/partition/graph.js";
import { randomFeeds } from "../../src/partition/probe.js";
import { compareWithWhole, diff, tensorsOf, type Equality } from "../../src/partition/verify.js";
import { writePartition } from "../../src/partition/write.js";
import { describeMachine } from "../../src/profiler/machine.js";
import { profileVariant, writeProfile } from "../../src/profiler/profiler.js";
import { loadRepository } from "../../src/repository/repository.js";
import { startServer, type DeploySpec, type RunningServer } from "../../src/server/server.js";
import { quantile } from "../../src/stats/quantile.js";
import { seededRandom } from "../../src/stats/random.js";
import { emit } from "../../src/terminal/report.js";
import { sampleProcess } from "../../src/cluster/local/process-progress.js";
import { execFileSync } from "node:child_process";
import { fmt } from "../../src/terminal/table.js";
import { DEFAULT_MODELS_DIR, prepareZoo } from "../../src/bundled-zoo/prepare.js";
import type { StageCost } from "../../src/partition/analysis.js";

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    models: { type: "string", default: DEFAULT_MODELS_DIR },
    model: { type: "string", default: "vision/resnet50" },
    parts: { type: "string", default: "2,3" },
    requests: { type: "string", default: "30" },
    concurrency: { type: "string", default: "4" },
    rounds: { type: "string", default: "3" },
  },
});
const log = (m: string) => process.stderr.write(`${m}\n`);
const [taskName, variantName] = values.model!.split("/") as [string, string];
const partsList = values.parts!.split(",").map(Number);
const REQUESTS = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = Number(values.rounds);
const SLO_MS = 60_000; // latency is measured, not judged: no request may be refused for its deadline
const CORES = Math.min(2, os.availableParallelism());
/** Kernel clock ticks per second (/proc/<pid>/stat counts CPU time in them). */
const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

await prepareZoo(values.models!, log);
const source = (await loadRepository(values.models!, { tasks: [taskName] })).tasks.get(taskName)!;
const sourceVariant = source.variants.get(variantName);
if (!sourceVariant) throw new Error(`task '${taskName}' has no variant '${variantName}'`);
const decl = source.config.inputs[0]!;
if (source.config.inputs.length !== 1 || decl.datatype !== "FP32")
  throw new Error(`the benchmark feeds one FP32 input; ${values.model} takes ${source.config.inputs.length}`);

// ---- a scratch repository: the whole model (hard-linked, not copied) and its partitions
const root = await fs.mkdtemp(path.join(os.tmpdir(), "sloserve-bench-partition-"));
try {
  await fs.mkdir(path.join(root, taskName, variantName), { recursive: true });
  await fs.copyFile(path.join(source.dir, "task.yaml"), path.join(root, taskName, "task.yaml"));
  for (const f of ["variant.yaml", "profile.json"])
    await fs.copyFile(path.join(sourceVariant.dir, f), path.join(root, taskName, variantName, f));
  await fs
    .link(sourceVariant.modelPath, path.join(root, taskName, variantName, "model.onnx"))
    .catch(() => fs.copyFile(sourceVariant.modelPath, path.join(root, taskName, variantName, "model.onnx")));
  const scratch = await loadRepository(root);
  const task = scratch.tasks.get(taskName)!;
  const variant = task.variants.get(variantName)!;
  /**
   * What the measurements need of each partition. The models and the graph analysis are dropped once the
   * stages are written: a heap holding a few hundred MB of them would make this process's (the gateway's)
   * garbage collection, and so its CPU per request, dearer than a server's.
   */
  interface PartSummary {
    name: string;
    planMs: number;
    verified: Equality;
    stages: { index: number; cost: StageCost }[];
    cuts: { between: string[]; tensors: { name: string; shape: number[] | null }[]; bytes_per_row: number }[];
  }
  const partitions = new Map<number, PartSummary>();
  let totalMacs = 0;
  for (const k of partsList) {
    const bytes = await fs.readFile(variant.modelPath);
    log(`partitioning ${values.model} into ${k} stages`);
    const t0 = performance.now();
    const p = await partitionModel(bytes, { parts: k, batch: variant.config.max_batch });
    const planMs = performance.now() - t0;
    const inputs = tensorsOf(randomFeeds(readModelGraph(bytes), 2, 2024));
    const verified = await compareWithWhole(
      bytes,
      p.stages.map((s) => s.bytes),
      inputs,
    );
    const name = `${taskName}-${variantName}-p${k}`;
    await writePartition(p, { root, name, task, variant, verified });
    totalMacs = p.analysis.macs.reduce((a, m) => a + m, 0);
    partitions.set(k, {
      name,
      planMs,
      verified,
      stages: p.stages.map((s) => ({ index: s.index, cost: s.cost })),
      cuts: p.plan.cuts.map((cut, i) => ({
        between: [`${name}-s${i + 1}`, `${name}-s${i + 2}`],
        tensors: cut.tensors.map((t) => ({ name: t.name, shape: p.analysis.facts.get(t.name)!.rowShape })),
        bytes_per_row: cut.bytesPerRow,
      })),
    });
  }
  // the stages must be profiled to be served (the router predicts batch latency from the profile)
  const written = await loadRepository(root);
  for (const t of written.tasks.values())
    for (const v of t.variants.values())
      if (!v.profile) {
        log(`profiling ${t.name}/${v.name} (short grid)`);
        await writeProfile(v, await profileVariant(v, { batches: [1, 2, 4], cores: [1, CORES], budgetMs: 300 }));
      }

  const rand = seededRandom(7);
  const image = Float32Array.from({ length: decl.shape.reduce((a, b) => a * b, 1) }, rand);

  interface Config {
    name: string;
    target: string;
    deploy: DeploySpec[];
    parts?: number;
  }
  const stagesOf = (k: number): DeploySpec[] =>
    Array.from({ length: k }, (_, i) => ({
      task: `${partitions.get(k)!.name}-s${i + 1}`,
      variant: variantName,
      cores: 1,
    }));
  const wholeConfig: Config = {
    name: "whole",
    target: taskName,
    deploy: [{ task: taskName, variant: variantName, cores: 1 }],
  };
  const partConfigs: Config[] = partsList.map((k) => ({
    name: `${k} stages`,
    target: partitions.get(k)!.name,
    parts: k,
    deploy: stagesOf(k),
  }));
  const configs = [wholeConfig, ...partConfigs];
  const serve = (deploy: DeploySpec[]) =>
    startServer({
      modelsDir: root,
      httpPort: 0,
      grpcPort: 0,
      metricsPort: 0,
      cores: CORES,
      deploy,
      autoscaler: "none",
      warmPool: 0,
      logLevel: "warn",
    });

  // ---- latency, outputs and memory: every configuration deployed at once and requests interleaved
  // (whole, 2 stages, 3 stages, whole, …), so the machine's other load falls on all of them alike;
  // one request at a time, so instances sharing a core never run together
  log(`latency: ${configs.map((c) => c.name).join(", ")} interleaved, ${REQUESTS} requests each`);
  const latency = new Map<string, number[]>();
  const outputs = new Map<string, Float32Array>();
  const compute = new Map<string, number[]>();
  const memory = new Map<string, Awaited<ReturnType<typeof instanceMemory>>>();
  /** CPU ms per request: of each instance's worker process (by task), and of this process (gateway + client). */
  const workerCpu = new Map<string, number>();
  const gatewayCpu = new Map<string, number[]>();
  {
    const server = await serve(configs.flatMap((c) => c.deploy));
    const pool = new Pool(server.httpUrl, { connections: 1 });
    try {
      server.core.router.on("finished", (r, o) => {
        if (o.ok) (compute.get(r.task) ?? compute.set(r.task, []).get(r.task)!).push(o.computeMs);
      });
      for (const c of configs) for (let i = 0; i < 3; i++) await infer(pool, c.target, image, decl.shape);
      compute.clear();
      const instances = server.cluster.instances();
      const ticks = async () =>
        new Map(
          await Promise.all(
            instances.map(
              async (i) => [i.task, (await sampleProcess(server.local!.pidOf(i.id)!))?.cpuTicks ?? NaN] as const,
            ),
          ),
        );
      const before = await ticks();
      for (let i = 0; i < REQUESTS; i++)
        for (const c of configs) {
          // requests go one at a time: this process's CPU time meanwhile is the gateway's and client's for it
          const cpu0 = process.cpuUsage();
          const r = await infer(pool, c.target, image, decl.shape);
          const cpu = process.cpuUsage(cpu0);
          (gatewayCpu.get(c.name) ?? gatewayCpu.set(c.name, []).get(c.name)!).push((cpu.user + cpu.system) / 1000);
          (latency.get(c.name) ?? latency.set(c.name, []).get(c.name)!).push(r.ms);
          if (!outputs.has(c.name)) outputs.set(c.name, r.output);
        }
      const after = await ticks();
      for (const [task, t] of after) workerCpu.set(task, ((t - before.get(task)!) * 1000) / CLOCK_TICKS / REQUESTS);
      for (const c of configs) memory.set(c.name, await instanceMemory(server, c));
    } finally {
      await pool.close();
      await server.close(2000);
    }
  }

  // ---- throughput: each configuration alone on the machine (its own server, one 1-core instance per
  // stage), `concurrency` requests in flight; the rounds alternate the order to spread drift, the median is kept
  const loaded: Config[] = [
    wholeConfig,
    { name: "whole ×2", target: taskName, deploy: [0, 1].map(() => ({ ...wholeConfig.deploy[0]! })) },
    ...partConfigs,
  ];
  const throughput = new Map<string, number[]>();
  const loadedBatch = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of round % 2 === 0 ? loaded : [...loaded].reverse()) {
      log(`throughput: ${c.name} (round ${round + 1}/${ROUNDS})`);
      const server = await serve(c.deploy);
      const pool = new Pool(server.httpUrl, { connections: CONCURRENCY });
      try {
        for (let i = 0; i < 3; i++) await infer(pool, c.target, image, decl.shape);
        const rows: number[] = [];
        server.core.router.on("finished", (_r, o) => {
          if (o.ok) rows.push(o.batchSize);
        });
        let sent = 0;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (sent < REQUESTS) {
              sent += 1;
              await infer(pool, c.target, image, decl.shape);
            }
          }),
        );
        (throughput.get(c.name) ?? throughput.set(c.name, []).get(c.name)!).push(
          REQUESTS / ((performance.now() - t0) / 1000),
        );
        (loadedBatch.get(c.name) ?? loadedBatch.set(c.name, []).get(c.name)!).push(mean(rows));
      } finally {
        await pool.close();
        await server.close(2000);
      }
    }
  }

  const wholeOutput = outputs.get("whole")!;
  const results = loaded.map((c) => {
    const base = c.name === "whole ×2" ? wholeConfig : c;
    const part = c.parts ? partitions.get(c.parts)! : undefined;
    const lat = latency.get(base.name)!;
    const eq = diff("output", wholeOutput, outputs.get(base.name)!);
    const instances = c.name === "whole ×2" ? [...memory.get("whole")!, ...memory.get("whole")!] : memory.get(c.name)!;
    return {
      name: c.name,
      target: c.target,
      stages: c.parts ?? 1,
      instances: c.deploy.length,
      latency_ms: c.name === "whole ×2" ? null : { p50: round(quantile(lat, 0.5)), p99: round(quantile(lat, 0.99)) },
      worker_cpu_ms_per_request: c.name === "whole ×2" ? null : c.deploy.map((d) => round(workerCpu.get(d.task)!)),
      // the median: a garbage collection lands on whichever request happens to run, whatever its configuration
      gateway_client_cpu_ms_per_request:
        c.name === "whole ×2" ? null : round(quantile(gatewayCpu.get(base.name)!, 0.5), 2),
      stage_compute_ms_p50:
        c.name === "whole ×2" ? null : c.deploy.map((d) => round(quantile(compute.get(d.task) ?? [0], 0.5))),
      throughput_rps: round(quantile(throughput.get(c.name)!, 0.5)),
      throughput_rounds_rps: throughput.get(c.name)!.map((x) => round(x)),
      mean_rows_per_batch_loaded: round(mean(loadedBatch.get(c.name)!), 2),
      max_abs_diff_vs_whole: eq.maxAbsDiff,
      identical_to_whole: eq.identical,
      rss_total_mb: round(instances.reduce((s, i) => s + i.rss_mb, 0)),
      rss_largest_instance_mb: round(Math.max(...instances.map((i) => i.rss_mb))),
      instance_memory: c.name === "whole ×2" ? [] : instances,
      cuts: part ? part.cuts : [],
      plan_ms: part ? round(part.planMs) : null,
      verified_in_process: part
        ? { rows: part.verified.rows, identical: part.verified.identical, max_abs_diff: part.verified.maxAbsDiff }
        : null,
    };
  });

  async function instanceMemory(server: RunningServer, c: Config) {
    const part = c.parts ? partitions.get(c.parts)! : undefined;
    const tasks = new Set(c.deploy.map((d) => d.task));
    return Promise.all(
      server.cluster
        .instances()
        .filter((inst) => tasks.has(inst.task))
        .map(async (inst) => {
          const mem = await procMemory(server.local!.pidOf(inst.id)!);
          const stage = part?.stages.find((s) => `${part.name}-s${s.index}` === inst.task);
          const weights = stage ? stage.cost.weightBytes : variant.signature.initializerBytes;
          return {
            task: inst.task,
            rss_mb: mem.rssMb,
            peak_rss_mb: mem.peakMb,
            weights_mb: round(weights / 2 ** 20),
            estimate_b1_mb: stage ? round((weights + stage.cost.peakBytesPerRow) / 2 ** 20) : null,
            estimate_max_batch_mb: stage ? round(stage.cost.memoryBytes / 2 ** 20) : null,
            gmacs_per_row: stage ? round(stage.cost.macs / 1e9, 3) : null,
          };
        }),
    );
  }

  // what a worker's resident memory is made of, across every instance measured: RSS ≈ base + factor × weights
  // (the runtime holds the weights more than once: the model bytes, its tensors, pre-packed kernels)
  const points = [...memory.values()].flat().map((i) => [i.weights_mb, i.rss_mb] as const);
  const rssFit = linearFit(points);
  const whole = results[0]!;
  const figures = {
    model: values.model,
    machine: describeMachine(),
    requests: REQUESTS,
    concurrency: CONCURRENCY,
    cores: CORES,
    total_gmacs_per_row: round(totalMacs / 1e9, 3),
    configs: results,
    rss_vs_weights_fit: { base_mb: round(rssFit.intercept), per_weight_mb: round(rssFit.slope, 2) },
    vs_whole: Object.fromEntries(
      results.slice(1).map((r) => [
        r.name,
        {
          latency_p50: r.latency_ms ? round(r.latency_ms.p50 / whole.latency_ms!.p50, 3) : null,
          worker_cpu: r.worker_cpu_ms_per_request
            ? round(sum(r.worker_cpu_ms_per_request) / sum(whole.worker_cpu_ms_per_request!), 3)
            : null,
          gateway_client_cpu: r.gateway_client_cpu_ms_per_request
            ? round(r.gateway_client_cpu_ms_per_request / whole.gateway_client_cpu_ms_per_request!, 3)
            : null,
          throughput: round(r.throughput_rps / whole.throughput_rps, 3),
          largest_instance_rss: round(r.rss_largest_instance_mb / whole.rss_largest_instance_mb, 3),
          total_rss: round(r.rss_total_mb / whole.rss_total_mb, 3),
        },
      ]),
    ),
  };
  emit(
    {
      title: `${values.model} whole and partitioned, served by sloserve on ${CORES} cores (batch-1 requests: ${REQUESTS} one at a time per configuration, interleaved; then ${REQUESTS} with ${CONCURRENCY} in flight, each configuration alone, ${ROUNDS} round(s))`,
      tables: [
        {
          head: [
            "configuration",
            "p50 ms",
            "p99 ms",
            "stage compute p50 ms",
            "worker CPU ms/req",
            "gateway+client CPU ms/req p50",
            "max |Δ| vs whole",
          ],
          rows: results
            .filter((r) => r.latency_ms)
            .map((r) => [
              r.name,
              fmt(r.latency_ms!.p50),
              fmt(r.latency_ms!.p99),
              r.stage_compute_ms_p50!.map(fmt).join(" + "),
              r.worker_cpu_ms_per_request!.map(fmt).join(" + "),
              fmt(r.gateway_client_cpu_ms_per_request!),
              r.identical_to_whole ? "0 (identical)" : r.max_abs_diff_vs_whole.toExponential(2),
            ]),
        },
        {
          head: [
            "configuration",
            "instances",
            "req/s loaded: median (rounds)",
            "rows/batch loaded",
            "largest RSS MB",
            "total RSS MB",
          ],
          rows: results.map((r) => [
            r.name,
            String(r.instances),
            `${fmt(r.throughput_rps)} (${r.throughput_rounds_rps.map(fmt).join(", ")})`,
            fmt(r.mean_rows_per_batch_loaded),
            fmt(r.rss_largest_instance_mb),
            fmt(r.rss_total_mb),
          ]),
        },
        {
          head: [
            "configuration",
            "instance",
            "RSS MB",
            "peak RSS MB",
            "weights MB",
            "est. b=1 MB",
            "est. max batch MB",
            "GMACs/row",
          ],
          rows: results.flatMap((r) =>
            r.instance_memory.map((i) => [
              r.name,
              i.task,
              fmt(i.rss_mb),
              fmt(i.peak_rss_mb),
              fmt(i.weights_mb),
              i.estimate_b1_mb === null ? "" : fmt(i.estimate_b1_mb),
              i.estimate_max_batch_mb === null ? "" : fmt(i.estimate_max_batch_mb),
              i.gmacs_per_row === null ? "" : fmt(i.gmacs_per_row),
            ]),
          ),
        },
        {
          head: ["configuration", "cut", "tensors crossing", "KB per request (batch 1)"],
          rows: results.flatMap((r) =>
            r.cuts.map((c) => [
              r.name,
              c.between.join(" -> "),
              c.tensors.map((t) => `${t.name} [${t.shape?.join("x")}]`).join(", "),
              fmt(c.bytes_per_row / 1024),
            ]),
          ),
        },
      ],
      figures,
      notes: [
        `whole model: ${figures.total_gmacs_per_row} GMACs per row. RSS is each worker process's resident memory after the latency run (peak: VmHWM); the estimate is the partitioner's (weights + activations), without the runtime itself. The gateway and this client share the ${CORES} cores with the instances and with whatever else runs on this machine: wall-clock figures (latency, req/s) move with that load; CPU time per request does not.`,
        `worker RSS over the ${points.length} instances measured ≈ ${figures.rss_vs_weights_fit.base_mb} MB + ${figures.rss_vs_weights_fit.per_weight_mb} × weights: the runtime holds a stage's weights several times over, so a cut saves an instance memory in proportion to the weights it moves away.`,
        ...results.slice(1).map((r) => {
          const v = figures.vs_whole[r.name]!;
          const cpu =
            v.worker_cpu !== null
              ? `worker CPU per request ×${v.worker_cpu}, gateway+client CPU ×${v.gateway_client_cpu}, `
              : "";
          return `${r.name} vs whole: ${cpu}${v.latency_p50 !== null ? `p50 latency ×${v.latency_p50}, ` : ""}loaded throughput ×${v.throughput}, largest instance ×${v.largest_instance_rss} RSS, all instances ×${v.total_rss}`;
        }),
      ],
    },
    values.json!,
  );
} finally {
  await fs.rm(root, { recursive: true, force: true });
}

/** One binary-extension request; outputs come back binary too. */
async function infer(pool: Pool, model: string, image: Float32Array, rowShape: number[]) {
  const header = Buffer.from(
    JSON.stringify({
      parameters: { slo_ms: SLO_MS, binary_data_output: true },
      inputs: [
        {
          name: decl.name,
          datatype: "FP32",
          shape: [1, ...rowShape],
          parameters: { binary_data_size: image.byteLength },
        },
      ],
    }),
  );
  const body = Buffer.concat([header, Buffer.from(image.buffer, image.byteOffset, image.byteLength)]);
  const t0 = performance.now();
  const res = await pool.request({
    path: `/v2/models/${model}/infer`,
    method: "POST",
    headers: {
      "content-type": "application/octet-stream",
      "inference-header-content-length": String(header.byteLength),
    },
    body,
  });
  const buf = Buffer.from(await res.body.arrayBuffer());
  const ms = performance.now() - t0;
  const jsonLength = Number(res.headers["inference-header-content-length"] ?? buf.byteLength);
  const json = JSON.parse(buf.subarray(0, jsonLength).toString("utf8"));
  if (res.statusCode !== 200) throw new Error(`${model} answered ${res.statusCode}: ${json.error}`);
  const raw = buf.subarray(jsonLength);
  const output = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  return { ms, output };
}

async function procMemory(pid: number): Promise<{ rssMb: number; peakMb: number }> {
  const status = await fs.readFile(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssMb: round(kb("VmRSS") / 1024), peakMb: round(kb("VmHWM") / 1024) };
}

function linearFit(xy: readonly (readonly [number, number])[]): { slope: number; intercept: number } {
  const n = xy.length;
  const mx = mean(xy.map((p) => p[0]));
  const my = mean(xy.map((p) => p[1]));
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of xy) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  const slope = n > 1 && sxx > 0 ? sxy / sxx : 0;
  return { slope, intercept: my - slope * mx };
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
