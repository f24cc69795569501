// `sloserve bench`: the command-line face of the load generator (flags → LoadOptions → runs →
// report). The modules that do the work are imported when the command runs, so that other
// commands do not pay for the gRPC and HTTP clients.
import { InvalidArgumentError, type Command } from "commander";
import { progress } from "../terminal/progress.js";
import { PROTOCOLS, type Protocol } from "./client.js";
import { TRACE_FORMATS, type ArrivalSource, type TraceFormat } from "./schedule.js";

interface BenchFlags {
  model: string;
  protocol: Protocol;
  url: string;
  grpcUrl: string;
  rate?: number;
  arrival: "poisson" | "gamma" | "uniform";
  cv2: number;
  duration?: number;
  trace?: string;
  format?: TraceFormat;
  start?: number;
  divideBy?: number;
  minRate?: number;
  seed: number;
  sloMs?: number;
  priority?: number;
  minAccuracy?: number;
  inputFile?: string;
  batch: number;
  sweep?: string;
  targetP99Ms?: number;
  targetAttainment?: number;
  csv?: string;
  csvRows: "rate" | "request";
  json?: boolean;
  connections: number;
  timeoutMs: number;
  spinMs: number;
  progress: boolean;
}

const positive = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${flag} needs a positive number, got '${v}'`);
  return n;
};
const positiveInt = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} needs a positive integer, got '${v}'`);
  return n;
};
const nonNegative = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${flag} needs a number >= 0, got '${v}'`);
  return n;
};
const oneOf =
  <T extends string>(flag: string, allowed: readonly T[]) =>
  (v: string): T => {
    if (!(allowed as readonly string[]).includes(v))
      throw new InvalidArgumentError(`${flag} must be one of ${allowed.join(", ")}, got '${v}'`);
    return v as T;
  };
/** 0.99 or 99 or 99% all mean ninety-nine percent. */
const fraction = (flag: string) => (v: string) => {
  const n = Number(v.replace(/%$/, ""));
  const f = v.endsWith("%") || n > 1 ? n / 100 : n;
  if (!(f > 0 && f <= 1)) throw new InvalidArgumentError(`${flag} needs a fraction like 0.99 (or 99%), got '${v}'`);
  return f;
};

export function registerBenchCommand(program: Command): void {
  program
    .command("bench")
    .description(
      "open-loop load generator for any Open Inference Protocol server: replay a trace or Poisson/gamma arrivals, report latency percentiles, throughput, SLO attainment and its own schedule lag",
    )
    .requiredOption(
      "-m, --model <task[/variant]>",
      "model (sloserve: task) to load, optionally pinned to a variant (= version), e.g. digits or digits/linear",
    )
    .option(
      "--protocol <p>",
      `wire protocol: ${PROTOCOLS.join(", ")} (rest = binary tensor extension)`,
      oneOf("--protocol", PROTOCOLS),
      "rest",
    )
    .option("--url <url>", "REST base URL", "http://127.0.0.1:8000")
    .option("--grpc-url <host:port>", "gRPC address", "127.0.0.1:8001")
    .option(
      "-r, --rate <req/s>",
      "arrival rate; with --trace: rescale the window to this mean rate",
      positive("--rate"),
    )
    .option(
      "--arrival <process>",
      "arrival process without --trace: poisson, gamma (with --cv2) or uniform (evenly spaced)",
      oneOf("--arrival", ["poisson", "gamma", "uniform"] as const),
      "poisson",
    )
    .option(
      "--cv2 <x>",
      "squared coefficient of variation of inter-arrival times for --arrival gamma (1 = Poisson, >1 burstier)",
      positive("--cv2"),
      1,
    )
    .option(
      "-d, --duration <s>",
      "seconds of load (default 10; with --trace: the window length, default to the end)",
      positive("--duration"),
    )
    .option("--trace <file>", "replay this trace file (needs --format)")
    .option("--format <f>", `trace format: ${TRACE_FORMATS.join(", ")}`, oneOf("--format", TRACE_FORMATS))
    .option("--start <s>", "trace window start, in seconds of the trace", nonNegative("--start"))
    .option(
      "--divide-by <k>",
      "divide each second's (minute's) count by k, as the papers damp the Twitter trace",
      positive("--divide-by"),
    )
    .option(
      "--min-rate <req/s>",
      "after --divide-by/--rate, at least this rate in every bin (Themis: 1)",
      nonNegative("--min-rate"),
    )
    .option("--seed <n>", "seed of arrivals and random inputs", (v) => Number(v), 1)
    .option(
      "--slo-ms <ms>",
      "per-request latency objective: sent as parameters.slo_ms, and attainment is judged against it on the client's clock",
      positive("--slo-ms"),
    )
    .option(
      "--min-accuracy <x>",
      "accuracy floor sent as parameters.min_accuracy (0..1)",
      nonNegative("--min-accuracy"),
    )
    .option(
      "--priority <n>",
      "priority class sent as parameters.priority (Triton's: 1 = highest) and, over REST, as the sloserve-priority header",
      positiveInt("--priority"),
    )
    .option(
      "--input-file <json>",
      "send this JSON inference request body's inputs (default: seeded random inputs shaped by the model's metadata)",
    )
    .option("--batch <n>", "rows per request for generated inputs", positiveInt("--batch"), 1)
    .option(
      "--sweep <from:to:step>",
      "run each rate in turn and report the highest that meets --target-p99-ms / --target-attainment",
    )
    .option("--target-p99-ms <ms>", "sweep target: client p99 latency at most this", positive("--target-p99-ms"))
    .option(
      "--target-attainment <x>",
      "sweep target: SLO attainment at least this (0.99 or 99%; needs --slo-ms)",
      fraction("--target-attainment"),
    )
    .option("--csv <file>", "also write a CSV")
    .option(
      "--csv-rows <kind>",
      "CSV rows: rate (one per run) or request (one per request)",
      oneOf("--csv-rows", ["rate", "request"] as const),
      "rate",
    )
    .option("--json", "print one JSON object instead of tables")
    .option("--connections <n>", "most concurrent HTTP connections", positiveInt("--connections"), 256)
    .option(
      "--timeout-ms <ms>",
      "give up on a request after this long (counted as an error)",
      positive("--timeout-ms"),
      30_000,
    )
    .option(
      "--spin-ms <ms>",
      "pacer: stop sleeping this long before each arrival and poll instead (more CPU, less lag)",
      nonNegative("--spin-ms"),
      1.5,
    )
    .option("--no-progress", "no progress bar")
    .addHelpText(
      "after",
      `
Examples:
  sloserve bench -m digits --rate 500 --duration 30 --slo-ms 20
  sloserve bench -m digits/linear --protocol grpc --arrival gamma --cv2 4 --rate 1000 --slo-ms 10 --json
  sloserve bench -m digits --trace ../shared/traces/twitter-2021-08/twitter_2021-08_tweets_per_second.txt \\
      --format twitter --start 1301160 --duration 120 --divide-by 8 --slo-ms 50 --csv run.csv
  sloserve bench -m digits --sweep 200:2000:200 --duration 10 --slo-ms 20 --target-attainment 99%`,
    )
    .action(async (f: BenchFlags) => {
      const { benchCommand } = await import("./cli-run.js");
      await benchCommand(toOptions(f), {
        sweep: f.sweep,
        target: { p99Ms: f.targetP99Ms, attainment: f.targetAttainment },
        csv: f.csv,
        csvRows: f.csvRows,
        json: Boolean(f.json),
        progress: f.progress ? progress : undefined,
      });
    });
}

function toOptions(f: BenchFlags) {
  let source: ArrivalSource;
  if (f.trace) {
    if (!f.format) throw new InvalidArgumentError(`--trace needs --format (${TRACE_FORMATS.join(", ")})`);
    if (f.divideBy !== undefined && f.rate !== undefined)
      throw new InvalidArgumentError("give --divide-by or --rate for a trace, not both");
    source = {
      kind: "trace",
      file: f.trace,
      format: f.format,
      startS: f.start,
      durationS: f.duration,
      divideBy: f.divideBy,
      rate: f.rate,
      minRate: f.minRate,
      seed: f.seed,
    };
  } else {
    if (f.format || f.start !== undefined || f.divideBy !== undefined)
      throw new InvalidArgumentError("--format, --start and --divide-by apply to --trace only");
    if (f.rate === undefined && !f.sweep) throw new InvalidArgumentError("give --rate (or --sweep, or --trace)");
    source = {
      kind: "synthetic",
      rate: f.rate ?? 1,
      durationS: f.duration ?? 10,
      arrival: f.arrival,
      cv2: f.cv2,
      seed: f.seed,
    };
  }
  return {
    source,
    model: f.model,
    protocol: f.protocol,
    url: f.url,
    grpcUrl: f.grpcUrl,
    sloMs: f.sloMs,
    minAccuracy: f.minAccuracy,
    priority: f.priority,
    inputFile: f.inputFile,
    batch: f.batch,
    seed: f.seed,
    connections: f.connections,
    timeoutMs: f.timeoutMs,
    pacer: { spinMs: f.spinMs },
  };
}
