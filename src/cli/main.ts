// The `sloserve` command line.
import os from "node:os";
import { Command, InvalidArgumentError } from "commander";
import { defaultDeployment, startServer, type DeploySpec } from "../server/server.js";
import { GRPC_MAX_STREAMS } from "../api/grpc.js";
import { variantModel } from "../core/variant-model.js";
import { makeScalingPolicy, SCALING_POLICY_NAMES } from "../autoscaler/scaling/index.js";
import { loadRepository, RepositoryError, type Variant } from "../repository/repository.js";
import { profileSteps, profileVariant, writeProfile } from "../profiler/profiler.js";
import { registerBenchCommand } from "../loadgen/command.js";
import { registerSimulateCommand } from "./simulate.js";
import { registerPartitionCommand } from "./partition.js";
import { loadServeFile, mergeServeFile } from "./config-file.js";
import { progress } from "../terminal/progress.js";
import { fmt, printTable } from "../terminal/table.js";
import { DEFAULT_MODELS_DIR as DEFAULT_MODELS, prepareZoo } from "../bundled-zoo/prepare.js";

const log = (msg: string) => process.stderr.write(`${msg}\n`);

export function intList(value: string): number[] {
  const out = value.split(",").map((s) => Number(s.trim()));
  if (out.some((n) => !Number.isInteger(n) || n < 1))
    throw new InvalidArgumentError(`'${value}' is not a comma-separated list of positive integers, e.g. 1,2,4`);
  return out;
}

const program = new Command()
  .name("sloserve")
  .description(
    "SLO-aware, model-less inference server: meets each request's latency objective and accuracy floor with the fewest CPU cores.",
  )
  .version("0.1.0")
  .showHelpAfterError("(run with --help for usage)");

program
  .command("serve")
  .description("serve the model repository over the Open Inference Protocol v2 (REST and gRPC)")
  .option("-m, --models <dir>", "model repository folder", DEFAULT_MODELS)
  .option("--host <addr>", "address to listen on", "127.0.0.1")
  .option("-p, --port <port>", "REST port (metrics at /metrics)", (v) => port(v), 8000)
  .option("--grpc-port <port>", "gRPC port", (v) => port(v), 8001)
  .option(
    "--metrics-port <port>",
    "Triton-compatible metrics (nv_inference_*) at /metrics on this port",
    (v) => port(v),
    8002,
  )
  .option(
    "-c, --cores <n>",
    "core budget for instances (default: every core of this machine)",
    (v) => positiveInt(v, "--cores"),
    os.availableParallelism(),
  )
  .option(
    "--deploy <specs>",
    "instances to start first, e.g. digits=cnn-small:1,vision=resnet18:1 (task=variant:cores)",
    parseDeploy,
  )
  .option("--max-body-mb <mb>", "largest request body accepted", (v) => positiveInt(v, "--max-body-mb"), 64)
  .option(
    "--drain-ms <ms>",
    "on SIGTERM, how long queued requests may still run",
    (v) => positiveInt(v, "--drain-ms"),
    10_000,
  )
  .option(
    "--hot-ms <ms>",
    "busy-poll the gateway this long around each request: lower latency at low load for CPU (worth it when the gateway has a core of its own)",
    (v) => Number(v),
    0,
  )
  .option(
    "-a, --autoscaler <policy>",
    `scaling policy for every task: ${SCALING_POLICY_NAMES.join(", ")} or none (default: each task's 'scaling' in task.yaml)`,
    scalingName,
  )
  .option(
    "--forecaster <name>",
    "load forecaster of the control loop: max-trend or lstm (trained on the Twitter trace)",
    forecasterName,
    "max-trend",
  )
  .option("--decision-interval-ms <ms>", "control-loop period", (v) => positiveInt(v, "--decision-interval-ms"), 1000)
  .option(
    "--admission <rule>",
    "predictive: refuse at once (429 + Retry-After) a request the queue ahead would make late; queue: refuse only beyond max_queue",
    admissionName,
    "predictive",
  )
  .option(
    "--body-timeout-ms <ms>",
    "a request body that stalls this long is answered 408 and its connection closed",
    (v) => positiveInt(v, "--body-timeout-ms"),
    10_000,
  )
  .option(
    "--max-connections <n>",
    "client connections held at once (more are closed as they arrive)",
    (v) => positiveInt(v, "--max-connections"),
    4096,
  )
  .option(
    "--grpc-max-streams <n>",
    "gRPC calls one client connection may have open at once (HTTP/2 MAX_CONCURRENT_STREAMS; more wait in the client)",
    (v) => positiveInt(v, "--grpc-max-streams"),
    GRPC_MAX_STREAMS,
  )
  .option(
    "--online-latency <on|off>",
    "correct the profiles from every batch's measured time (policies read the corrected model); off: trust the profiles",
    onOff("--online-latency"),
    true,
  )
  .option(
    "--core-sharing <mode>",
    "when the plans want more cores than --cores: fair (least weighted expected SLO violations; task.yaml sharing) or arrival (first come)",
    sharingMode,
    "fair",
  )
  .option("--log-level <level>", "pino log level", "info")
  .option(
    "--warm-pool <n>",
    "most warm-pool workers (started, onnxruntime loaded, no model: a start then only loads its model); sized by recent starts",
    (v) => nonNegativeInt(v, "--warm-pool"),
    1,
  )
  .option("--warm-pool-min <n>", "fewest warm-pool workers kept (default: 1 when --warm-pool ≥ 1)", (v) =>
    nonNegativeInt(v, "--warm-pool-min"),
  )
  .option(
    "--scale-to-zero-after <s>",
    "stop every task's last instances after this many seconds without a request (default: each task.yaml's scale_to_zero_after)",
    (v) => positiveNumber(v, "--scale-to-zero-after"),
  )
  .option(
    "--cluster <backend>",
    "where instances run: local (worker processes) or kubernetes (pods)",
    clusterName,
    "local",
  )
  .option(
    "--kubeconfig <file>",
    "kubeconfig for --cluster kubernetes (default: in-cluster inside a pod, else ~/.kube/config)",
  )
  .option("--namespace <ns>", "namespace of the worker pods for --cluster kubernetes (default: the pod's own)")
  .option("--pod-memory <quantity>", "memory of each worker pod for --cluster kubernetes, e.g. 1Gi", "512Mi")
  .option("--config <file>", "YAML file with any of these options under their flag names (flags given here win)")
  .action(async (flags: ServeFlags, cmd: Command) => {
    const opts = flags.config
      ? mergeServeFile(flags, loadServeFile(flags.config), (k) => cmd.getOptionValueSource(k) === "cli", parseDeploy)
      : flags;
    await prepareZoo(opts.models, log);
    await profileMissing(opts.models);
    const server = await startServer({
      modelsDir: opts.models,
      host: opts.host,
      httpPort: opts.port,
      grpcPort: opts.grpcPort,
      metricsPort: opts.metricsPort,
      cores: opts.cores,
      deploy: opts.deploy,
      maxBodyBytes: opts.maxBodyMb * 2 ** 20,
      adminToken: process.env.SLOSERVE_ADMIN_TOKEN || undefined,
      hotMs: opts.hotMs,
      admission: opts.admission,
      bodyTimeoutMs: opts.bodyTimeoutMs,
      maxConnections: opts.maxConnections,
      grpcMaxStreams: opts.grpcMaxStreams,
      autoscaler: opts.autoscaler,
      forecaster: opts.forecaster,
      decisionIntervalMs: opts.decisionIntervalMs,
      logLevel: opts.logLevel,
      warmPool: opts.warmPool,
      warmPoolMin: opts.warmPoolMin,
      scaleToZeroAfterS: opts.scaleToZeroAfter,
      cluster: opts.cluster,
      kubernetes: { kubeconfig: opts.kubeconfig, namespace: opts.namespace, podMemory: opts.podMemory },
      onlineLatency: opts.onlineLatency,
      coreSharing: opts.coreSharing,
    });
    log(
      `sloserve is serving ${[...server.repo.tasks.keys(), ...server.repo.pipelines.keys()].join(", ")} at ${server.httpUrl} (REST) and ${opts.host}:${server.grpcPort} (gRPC)`,
    );
    log(`try: curl ${server.httpUrl}/v2/models/digits`);
    const stop = (signal: string) => {
      log(`${signal}: draining (up to ${opts.drainMs} ms)…`);
      void server.close(opts.drainMs).then(() => process.exit(0));
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });

interface ServeFlags {
  models: string;
  host: string;
  port: number;
  grpcPort: number;
  metricsPort: number;
  cores: number;
  deploy?: DeploySpec[];
  maxBodyMb: number;
  drainMs: number;
  hotMs: number;
  admission: "predictive" | "queue";
  bodyTimeoutMs: number;
  maxConnections: number;
  grpcMaxStreams: number;
  autoscaler?: string;
  forecaster: "max-trend" | "lstm";
  decisionIntervalMs: number;
  logLevel: string;
  warmPool: number;
  warmPoolMin?: number;
  scaleToZeroAfter?: number;
  cluster: "local" | "kubernetes";
  kubeconfig?: string;
  namespace?: string;
  podMemory: string;
  config?: string;
  onlineLatency: boolean;
  coreSharing: "fair" | "arrival";
}

function onOff(flag: string) {
  return (v: string | boolean): boolean => {
    if (v === true || v === "on" || v === "true") return true;
    if (v === false || v === "off" || v === "false") return false;
    throw new InvalidArgumentError(`${flag} takes on or off, got '${String(v)}'`);
  };
}

function sharingMode(v: string): "fair" | "arrival" {
  if (v !== "fair" && v !== "arrival")
    throw new InvalidArgumentError(`--core-sharing takes fair or arrival, got '${v}'`);
  return v;
}

function nonNegativeInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${flag} needs a whole number ≥ 0, got '${v}'`);
  return n;
}

function admissionName(v: string): "predictive" | "queue" {
  if (v !== "predictive" && v !== "queue")
    throw new InvalidArgumentError(`--admission takes predictive or queue, got '${v}'`);
  return v;
}

function clusterName(v: string): "local" | "kubernetes" {
  if (v !== "local" && v !== "kubernetes")
    throw new InvalidArgumentError(`--cluster takes local or kubernetes, got '${v}'`);
  return v;
}

/** Variants without a profile.json are measured before serving (a short grid): policies need l(b,c). */
async function profileMissing(models: string): Promise<void> {
  const repo = await loadRepository(models);
  const missing = [...repo.tasks.values()].flatMap((t) => [...t.variants.values()].filter((v) => !v.profile));
  if (missing.length === 0) return;
  log(
    `profiling ${missing.length} variant(s) that have no profile.json yet: ${missing.map((v) => `${v.task}/${v.name}`).join(", ")}`,
  );
  const settings = { batches: [1, 2, 4, 8], budgetMs: 300, resizeRounds: 1, loadSamples: 2 };
  const bar = progress("profiling");
  const total = missing.reduce((n, v) => n + profileSteps(v, settings), 0);
  let offset = 0;
  try {
    for (const v of missing) {
      await writeProfile(
        v,
        await profileVariant(v, { ...settings, onStep: (d, _t, label) => bar.step(offset + d, total, label) }),
      );
      offset += profileSteps(v, settings);
    }
  } finally {
    bar.stop();
  }
}

function scalingName(v: string): string {
  if (v !== "none" && !(SCALING_POLICY_NAMES as readonly string[]).includes(v))
    throw new InvalidArgumentError(`'${v}' is not a scaling policy; use ${SCALING_POLICY_NAMES.join(", ")} or none`);
  return v;
}

function forecasterName(v: string): string {
  if (v !== "max-trend" && v !== "lstm")
    throw new InvalidArgumentError(`'${v}' is not a forecaster; use max-trend or lstm`);
  return v;
}

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError(`'${v}' is not a port number (0-65535; 0 picks a free one)`);
  return n;
}

function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} needs a positive integer, got '${v}'`);
  return n;
}

function parseDeploy(value: string): DeploySpec[] {
  return value.split(",").map((item) => {
    const m = /^([a-z0-9][a-z0-9._-]*)=([a-z0-9][a-z0-9._-]*)(?::(\d+))?$/.exec(item.trim());
    if (!m) throw new InvalidArgumentError(`'${item}' is not task=variant[:cores], e.g. digits=cnn-small:1`);
    return { task: m[1]!, variant: m[2]!, cores: Number(m[3] ?? 1) };
  });
}

program
  .command("profile")
  .description("measure variants in pinned worker processes over a (batch, cores) grid and write profile.json")
  .option("-m, --models <dir>", "model repository folder", DEFAULT_MODELS)
  .option("-t, --task <name>", "only this task")
  .option("-v, --variant <name>", "only this variant (with --task)")
  .option(
    "--batches <list>",
    "batch sizes, e.g. 1,2,4,8 (default: powers of two up to the variant's max_batch, at most 64)",
    intList,
  )
  .option("--cores <list>", "core counts (default: 1,2,4,6,8 up to the cores present)", intList)
  .option("--budget-ms <ms>", "time spent per grid point", (v) => Number(v), 600)
  .option("--missing", "profile only variants that have no profile.json yet")
  .option("--dry-run", "measure and print, but do not write profile.json")
  .option(
    "--update-from-serving",
    "measure nothing: write the batch times a running server measured (its online latency model) into profile.json",
  )
  .option("--url <url>", "the running server, for --update-from-serving", "http://127.0.0.1:8000")
  .option(
    "--min-samples <n>",
    "with --update-from-serving: points measured fewer times are left as profiled",
    (v) => positiveInt(v, "--min-samples"),
    20,
  )
  .action(
    async (opts: {
      models: string;
      task?: string;
      variant?: string;
      batches?: number[];
      cores?: number[];
      budgetMs: number;
      missing?: boolean;
      dryRun?: boolean;
      updateFromServing?: boolean;
      url: string;
      minSamples: number;
    }) => {
      if (opts.variant && !opts.task) throw new InvalidArgumentError("--variant needs --task");
      if (opts.updateFromServing) return updateFromServing(opts);
      await prepareZoo(opts.models, log);
      const repo = await loadRepository(opts.models, { tasks: opts.task ? [opts.task] : undefined });
      const variants: Variant[] = [];
      for (const task of repo.tasks.values()) {
        for (const v of task.variants.values())
          if ((!opts.variant || v.name === opts.variant) && (!opts.missing || !v.profile)) variants.push(v);
      }
      if (opts.variant && variants.length === 0)
        throw new InvalidArgumentError(`task '${opts.task}' has no variant '${opts.variant}'`);
      const settings = { batches: opts.batches, cores: opts.cores, budgetMs: opts.budgetMs };
      const total = variants.reduce((n, v) => n + profileSteps(v, settings), 0);
      const bar = progress("profiling");
      let offset = 0;
      const rows: string[][] = [];
      try {
        for (const v of variants) {
          const p = await profileVariant(v, {
            ...settings,
            onStep: (done, _t, label) => bar.step(offset + done, total, label),
          });
          offset += profileSteps(v, settings);
          if (!opts.dryRun) await writeProfile(v, p);
          rows.push([
            `${v.task}/${v.name}`,
            fmt(p.fit.p50.median_rel_error * 100) + "%",
            fmt(p.fit.p50.max_rel_error * 100) + "%",
            fmt(p.load_ms.p50),
            fmt(p.resize_ms.p50),
            fmt(p.peak_rss_mb),
          ]);
        }
      } finally {
        bar.stop();
      }
      printTable(["variant", "fit median err", "fit max err", "cold start ms", "resize ms", "peak RSS MB"], rows);
      if (opts.dryRun) log("(dry run: no profile.json written)");
    },
  );

/** `profile --update-from-serving`: the served points into profile.json, the only way they reach the disk. */
async function updateFromServing(opts: {
  models: string;
  task?: string;
  variant?: string;
  url: string;
  minSamples: number;
  dryRun?: boolean;
}): Promise<void> {
  const { fetchServedPoints, mergeServedPoints } = await import("../profiler/from-serving.js");
  const { defaultSubnetOf } = await import("../repository/schema.js");
  const served = await fetchServedPoints(opts.url);
  const repo = await loadRepository(opts.models, { tasks: opts.task ? [opts.task] : undefined, profilesOnly: true });
  const rows: string[][] = [];
  for (const task of repo.tasks.values())
    for (const v of task.variants.values()) {
      if ((opts.variant && v.name !== opts.variant) || !v.profile) continue;
      const u = mergeServedPoints(v.profile, served, {
        minSamples: opts.minSamples,
        source: opts.url,
        defaultSubnet: defaultSubnetOf(v.config)?.name,
      });
      if (!u) continue;
      if (!opts.dryRun) await writeProfile(v, u.profile);
      for (const c of u.changes)
        rows.push([
          `${v.task}/${v.name}${c.subnet ? `/${c.subnet}` : ""}`,
          String(c.batch),
          String(c.cores),
          c.from === undefined ? "(new)" : fmt(c.from),
          fmt(c.to),
          c.from === undefined ? "" : `${fmt(c.to / c.from, 2)}×`,
          String(c.samples),
        ]);
    }
  if (rows.length === 0) {
    log(
      `nothing to write: no point measured at least ${opts.minSamples} times on ${opts.url}${opts.task ? ` for ${opts.task}` : ""} (serve longer, or lower --min-samples)`,
    );
    return;
  }
  printTable(["variant", "batch", "cores", "profiled p50 ms", "served p50 ms", "ratio", "samples"], rows);
  log(opts.dryRun ? "(dry run: no profile.json written)" : `wrote ${rows.length} point(s) from ${opts.url}`);
}

program
  .command("plan")
  .description("print what each scaling policy would choose for a given load, before trusting it live")
  .requiredOption("-t, --task <name>", "task to plan for")
  .requiredOption("-r, --rate <req/s>", "arrival rate now", (v) => positiveNumber(v, "--rate"))
  .option("--forecast <req/s>", "forecast max rate of the next 10 s (default: the rate)", (v) =>
    positiveNumber(v, "--forecast"),
  )
  .option("-v, --variant <name>", "variant to scale (default: the task's first by accuracy that fits half the SLO)")
  .option("--instances <n>", "instances running now", (v) => positiveInt(v, "--instances"), 1)
  .option("--cores-each <n>", "cores of each running instance", (v) => positiveInt(v, "--cores-each"), 1)
  .option("--max-cores <n>", "largest instance (C_max)", (v) => positiveInt(v, "--max-cores"), 8)
  .option("--slo-ms <ms>", "SLO (default: the task's)", (v) => positiveNumber(v, "--slo-ms"))
  .option("-m, --models <dir>", "model repository folder", DEFAULT_MODELS)
  .action(
    async (opts: {
      task: string;
      rate: number;
      forecast?: number;
      variant?: string;
      instances: number;
      coresEach: number;
      maxCores: number;
      sloMs?: number;
      models: string;
    }) => {
      const { planTable } = await import("../autoscaler/plan-table.js");
      const repo = await loadRepository(opts.models, { tasks: [opts.task] });
      const task = repo.tasks.get(opts.task)!;
      const variants = [...task.variants.values()].map(variantModel);
      const variant = opts.variant ?? defaultDeploymentVariant(task.name, repo);
      if (!task.variants.has(variant))
        throw new InvalidArgumentError(`task '${task.name}' has no variant '${variant}'`);
      const rows = planTable({
        task: task.name,
        sloMs: opts.sloMs ?? task.config.slo_ms,
        rate: opts.rate,
        forecast: opts.forecast ?? opts.rate,
        variant,
        variants,
        instances: opts.instances,
        coresEach: opts.coresEach,
        maxCores: opts.maxCores,
        makePolicy: makeScalingPolicy,
        policies: [...SCALING_POLICY_NAMES],
      });
      process.stdout.write(
        `${task.name}/${variant}: ${opts.rate} req/s now, ${opts.forecast ?? opts.rate} forecast, ${opts.instances} × ${opts.coresEach} cores running, SLO ${opts.sloMs ?? task.config.slo_ms} ms\n\n`,
      );
      printTable(["policy", "instances × cores", "total cores", "batch", "mode", "reason"], rows);
    },
  );

function positiveNumber(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${flag} needs a positive number, got '${v}'`);
  return n;
}

function defaultDeploymentVariant(task: string, repo: Awaited<ReturnType<typeof loadRepository>>): string {
  return defaultDeployment(repo).find((d) => d.task === task)!.variant;
}

// Training the digits variants, the digits supernet and the forecaster is tooling, not serving:
// npm run zoo:train, zoo:supernet and forecaster:train (tools/train/).
const zoo = program.command("zoo").description("build the bundled model zoo");
zoo
  .command("prep")
  .description("write the mnist-prep task (raw uint8 digits -> floats) and the mnist-e2e pipeline")
  .option("-m, --models <dir>", "model repository folder", DEFAULT_MODELS)
  .action(async (opts: { models: string }) => {
    const { writePrepZoo } = await import("../zoo/prep.js");
    await writePrepZoo(opts.models);
  });
zoo
  .command("vision")
  .description("build the vision models (ResNet-18/34/50, MobileNetV2, seeded weights) if missing")
  .option("-m, --models <dir>", "model repository folder", DEFAULT_MODELS)
  .action(async (opts: { models: string }) => prepareZoo(opts.models, log));

program
  .command("validate")
  .description("check a model repository and list every problem with what to fix")
  .option("-m, --models <dir>", "model repository folder", DEFAULT_MODELS)
  .action(async (opts: { models: string }) => {
    const repo = await loadRepository(opts.models);
    for (const t of repo.tasks.values()) log(`ok: ${t.name} (${[...t.variants.keys()].join(", ")})`);
  });

registerBenchCommand(program);
registerSimulateCommand(program);
(await import("./variants.js")).registerVariantsCommand(program);
registerPartitionCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as NodeJS.ErrnoException & { port?: number };
  if (err instanceof RepositoryError) log(err.message);
  else if (e.code === "EADDRINUSE")
    log(
      `error: ${e.message}: another server holds that port; stop it or pick other ports (--port, --grpc-port, --metrics-port)`,
    );
  else log(`error: ${e.message}`);
  // exit now: a half-started server may hold handles (a worker's pipe, a timer) that keep the process alive
  process.exit(1);
});
