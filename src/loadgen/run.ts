// One load run, programmatically: resolve the model's inputs, build the request once, replay the
// arrival schedule open-loop, wait for the stragglers, summarise. A session keeps its client and
// request across runs so that a sweep measures the server, not connection setup.
import { performance } from "node:perf_hooks";
import type { ArrivalTrace } from "../traces/index.js";
import { BenchError, type InferClient, type Protocol, type Send } from "./client.js";
import { GrpcClient } from "./grpc-client.js";
import { runOpenLoop, type PacerOptions } from "./pacer.js";
import { Recorder, summarize, type RunSummary } from "./recorder.js";
import { RestClient } from "./rest-client.js";
import { buildSchedule, type ArrivalSource } from "./schedule.js";
import { inputsFromFile, randomInputs, type ParamValue, type RequestTemplate } from "./tensors.js";

export interface LoadOptions {
  source: ArrivalSource;
  /** task or model, optionally /variant (= version) */
  model: string;
  protocol: Protocol;
  /** REST base URL, e.g. http://127.0.0.1:8000 */
  url: string;
  /** gRPC host:port */
  grpcUrl: string;
  /** Sent as parameters.slo_ms; attainment is judged against it. */
  sloMs?: number;
  minAccuracy?: number;
  /** Sent as parameters.priority (1 = highest) and, over REST, as the sloserve-priority header. */
  priority?: number;
  /** A JSON inference request body to send instead of random inputs. */
  inputFile?: string;
  /** Rows per request when inputs are generated from metadata (default 1). */
  batch?: number;
  seed?: number;
  /** Most concurrent HTTP connections (default 256). */
  connections?: number;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
  /** How long to wait for answers after the last request was sent (default: timeoutMs). */
  drainMs?: number;
  pacer?: PacerOptions;
  /** Called every ~250 ms during a run. */
  onProgress?: (p: LoadProgress) => void;
}

export interface LoadProgress {
  total: number;
  sent: number;
  answered: number;
  ok: number;
}

export interface LoadRun {
  summary: RunSummary;
  recorder: Recorder;
  schedule: ArrivalTrace;
  /** The rate asked for (a sweep's step), when one was. */
  rate?: number;
}

export function splitModel(spec: string): { model: string; version?: string } {
  const [model, version, ...rest] = spec.split("/");
  if (!model || rest.length > 0 || version === "")
    throw new BenchError(`--model '${spec}' is not task[/variant], e.g. digits or digits/linear`);
  return version ? { model, version } : { model };
}

export function makeClient(
  o: Pick<LoadOptions, "protocol" | "url" | "grpcUrl" | "connections" | "timeoutMs">,
): InferClient {
  if (o.protocol === "grpc") return new GrpcClient({ target: o.grpcUrl, timeoutMs: o.timeoutMs });
  return new RestClient({
    url: o.url,
    binary: o.protocol === "rest",
    connections: o.connections,
    timeoutMs: o.timeoutMs,
  });
}

export interface LoadSession {
  template: RequestTemplate;
  run(rate?: number, onProgress?: (p: LoadProgress) => void): Promise<LoadRun>;
  close(): Promise<void>;
}

export async function openSession(o: LoadOptions): Promise<LoadSession> {
  const client = makeClient(o);
  try {
    const template = await requestTemplate(client, o);
    const send = client.sender(template);
    // One request before any schedule starts: connection, lazy code paths and the server's first
    // run of the model are paid here instead of as lag and latency on the first arrivals.
    const first = await send();
    // A refused request would be refused thousands of times: say why once, before any load.
    if (
      /^(HTTP 4\d\d|gRPC (INVALID_ARGUMENT|NOT_FOUND|UNIMPLEMENTED|UNAUTHENTICATED|PERMISSION_DENIED))$/.test(
        first.status,
      )
    ) {
      throw new BenchError(
        `the server refused the request (${first.status}${first.message ? `: ${first.message}` : ""}); check --model, --input-file, --min-accuracy and --batch`,
      );
    }
    return {
      template,
      run: (rate, onProgress) => runOnce(send, o, rate, onProgress ?? o.onProgress),
      close: () => client.close(),
    };
  } catch (err) {
    await client.close();
    throw err;
  }
}

/** One run at the source's rate (or `rate`), from a fresh client. */
export async function runLoad(o: LoadOptions, rate?: number): Promise<LoadRun> {
  const s = await openSession(o);
  try {
    return await s.run(rate);
  } finally {
    await s.close();
  }
}

async function requestTemplate(client: InferClient, o: LoadOptions): Promise<RequestTemplate> {
  const { model, version } = splitModel(o.model);
  // Ask for the metadata even with an input file: an unknown model should fail here, clearly, not as 100% errors.
  const specs = await client.inputs(model, version);
  const fromFile = o.inputFile ? inputsFromFile(o.inputFile) : undefined;
  const parameters: Record<string, ParamValue> = { ...(fromFile?.parameters ?? {}) };
  if (o.sloMs !== undefined) parameters.slo_ms = o.sloMs;
  if (o.minAccuracy !== undefined) parameters.min_accuracy = o.minAccuracy;
  if (o.priority !== undefined) parameters.priority = o.priority;
  const inputs = fromFile?.inputs ?? randomInputs(specs, o.batch ?? 1, o.seed ?? 1);
  return { model, version, inputs, parameters };
}

async function runOnce(
  send: Send,
  o: LoadOptions,
  rate: number | undefined,
  onProgress: ((p: LoadProgress) => void) | undefined,
): Promise<LoadRun> {
  const schedule = buildSchedule(o.source, rate);
  const n = schedule.times.length;
  if (n === 0)
    throw new BenchError("the arrival schedule is empty: raise --rate or --duration, or pick a busier trace window");
  const rec = new Recorder(n);
  let ok = 0;
  let allAnswered: () => void = () => {};
  const drained = new Promise<void>((resolve) => (allAnswered = resolve));
  let pacingDone = false;
  const progress = onProgress
    ? setInterval(() => onProgress({ total: n, sent: rec.sent, answered: rec.answered, ok }), 250)
    : undefined;
  try {
    const paced = await runOpenLoop(
      schedule.times,
      (i, scheduledMs, sentMs) => {
        rec.fired(i, scheduledMs, sentMs);
        void send().then((reply) => {
          rec.answer(i, performance.now(), reply);
          if (reply.ok) ok++;
          if (pacingDone && rec.answered === rec.sent) allAnswered();
        });
      },
      o.pacer,
    );
    pacingDone = true;
    if (rec.answered === rec.sent) allAnswered();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      drained,
      new Promise<void>((r) => (timer = setTimeout(r, o.drainMs ?? o.timeoutMs ?? 30_000))),
    ]);
    clearTimeout(timer);
    rec.giveUp();
    onProgress?.({ total: n, sent: rec.sent, answered: rec.answered, ok });
    const summary = summarize(rec, {
      startMs: paced.startMs,
      durationMs: schedule.durationMs,
      sloMs: o.sloMs,
      lagMs: paced.lagMs,
    });
    return { summary, recorder: rec, schedule, rate };
  } finally {
    clearInterval(progress);
  }
}
