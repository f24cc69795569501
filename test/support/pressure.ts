// Serving under pressure on the real server: the scenarios that test/e2e/pressure.test.ts checks against the
// issue's goals and `npm run bench:pressure` prints. Each starts what it needs (the local backend, a server in
// this process, or one in a process of its own when it is loaded hard), drives it over real sockets, and
// returns what it measured.
import http from "node:http";
import path from "node:path";
import { LocalCluster } from "../../src/cluster/local/local-cluster.js";
import { openSession, type LoadOptions } from "../../src/loadgen/run.js";
import { loadRepository } from "../../src/repository/repository.js";
import { subnetTableOf } from "../../src/repository/subnets.js";
import type { RunningServer } from "../../src/server/server.js";
import { quantile } from "../../src/stats/quantile.js";
import { BURN_ROW, BURN_TASK, burnRepository } from "./burn-model.js";
import { startServerProcess } from "./server-process.js";
import { startTestServer } from "./server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => quantile(xs, 0.5);

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Sum of a Prometheus sample family's values whose labels include `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_:]+)(?:\{(.*)\})? ([0-9.eE+-]+|NaN)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

async function metrics(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

// ---------------------------------------------------------------------------------------------------------
// The warm pool: cold start with and without it, variant by variant

export interface ColdStartRow {
  task: string;
  variant: string;
  /** Spawn → ready of a new worker process, per round. */
  coldMs: number[];
  /** Model load → ready in a warm-pool worker, per round. */
  warmMs: number[];
  /** Median cold ÷ median warm. */
  ratio: number;
}

/**
 * Starts each variant `rounds` times on one core both ways, alternating (the machine's other work then weighs
 * on both alike): a LocalCluster without a pool spawns a worker; one with a pool of 1 hands it a waiting worker.
 */
export async function measureColdStarts(
  variants: { task: string; variant: string }[],
  rounds = 3,
  modelsDir = path.resolve("models"),
  onRow?: (row: ColdStartRow) => void,
): Promise<ColdStartRow[]> {
  const modelPath = (t: string, v: string) => path.join(modelsDir, t, v, "model.onnx");
  const repo = await loadRepository(modelsDir);
  const subnets = (t: string, v: string) => {
    const c = repo.tasks.get(t)?.variants.get(v)?.config;
    return c ? subnetTableOf(c) : null;
  };
  const cold = new LocalCluster({ coreBudget: 1, modelPath, subnets });
  const warm = new LocalCluster({ coreBudget: 1, modelPath, subnets, warmPool: 1 });
  const rows: ColdStartRow[] = [];
  try {
    for (const { task, variant } of variants) {
      const row: ColdStartRow = { task, variant, coldMs: [], warmMs: [], ratio: NaN };
      for (let round = 0; round < rounds; round++) {
        row.coldMs.push(await startOnce(cold, task, variant));
        await until("a warm-pool worker", () => warm.pooled >= 1);
        row.warmMs.push(await startOnce(warm, task, variant));
      }
      row.ratio = median(row.coldMs) / median(row.warmMs);
      rows.push(row);
      onRow?.(row);
    }
  } finally {
    await Promise.all([cold.shutdown(), warm.shutdown()]);
  }
  return rows;
}

async function startOnce(cluster: LocalCluster, task: string, variant: string): Promise<number> {
  const r = await cluster.start(task, variant, 1);
  if (!r.ok) throw new Error(`start of ${task}/${variant}: ${r.message}`);
  await cluster.stop(r.instance!);
  return r.ms;
}

// ---------------------------------------------------------------------------------------------------------
// Scale to zero and back

const DIGIT_BODY = JSON.stringify({
  inputs: [{ name: "image", datatype: "FP32", shape: [1, 1, 28, 28], data: Array(784).fill(0) }],
});

function digitsRequest(sloMs: number, priority?: number): RequestInit {
  const body = JSON.parse(DIGIT_BODY);
  body.parameters = { slo_ms: sloMs, ...(priority ? { priority } : {}) };
  return { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}

export interface WakeResult {
  /** Client latency of the request that found the task at zero. */
  latencyMs: number;
  status: number;
  sloMet: boolean | undefined;
  /** Retry-After (s) and retry_after_ms of a refused one. */
  retryAfter: string | null;
  retryAfterMs?: number;
  error?: string;
  /** The instance it started came from the warm pool. */
  warmStart: boolean;
}

/**
 * A digits server whose task scales to zero after `afterS` seconds; once it has, one request with `sloMs`
 * (the cold start fits, or not). `warmPool`: workers kept (0: every start spawns a process).
 */
export async function wakeFromZero(o: { warmPool: number; sloMs: number; afterS?: number }): Promise<WakeResult> {
  const server = await startTestServer({
    cores: 1,
    deploy: [{ task: "digits", variant: "cnn-small", cores: 1 }],
    warmPool: o.warmPool,
    warmPoolMin: o.warmPool,
    scaleToZeroAfterS: o.afterS ?? 1,
  });
  try {
    await atZero(server, "digits");
    if (o.warmPool > 0) await until("a warm-pool worker", () => (server.local?.pooled ?? 0) >= 1);
    return await wake(server, o.sloMs);
  } finally {
    await server.close(1000);
  }
}

async function atZero(server: RunningServer, task: string): Promise<void> {
  await until(`'${task}' at zero`, () => !server.cluster.instances().some((i) => i.task === task), 20_000);
}

async function wake(server: RunningServer, sloMs: number): Promise<WakeResult> {
  let warmStart = false;
  server.cluster.onChange(() => {
    for (const i of server.cluster.instances()) if (i.task === "digits" && i.warmStart) warmStart = true;
  });
  const t0 = performance.now();
  const res = await fetch(`${server.httpUrl}/v2/models/digits/infer`, digitsRequest(sloMs));
  const json = (await res.json()) as { parameters?: { slo_met?: boolean }; error?: string; retry_after_ms?: number };
  return {
    latencyMs: performance.now() - t0,
    status: res.status,
    sloMet: json.parameters?.slo_met,
    retryAfter: res.headers.get("retry-after"),
    retryAfterMs: json.retry_after_ms,
    error: json.error,
    warmStart,
  };
}

export interface HerdResult {
  burst: number;
  /** Instances of the task started from the burst's arrival until it was answered. */
  starts: number;
  /** What the scaling policy planned at wake-up (instances), when one runs; else the on-demand start's 1. */
  planned: number;
  byStatus: Record<string, number>;
  /** Latency of the answers that refused (the herd beyond what the start can carry): how soon they knew. */
  refusedP99Ms: number;
  servedP99Ms: number;
}

/**
 * A digits task at zero gets `burst` requests at once (each on its own connection). `autoscaler`: a policy
 * that sizes the wake-up (kpa) or none (the on-demand start alone).
 */
export async function herdAtWake(o: { burst: number; sloMs: number; autoscaler?: string }): Promise<HerdResult> {
  const server = await startTestServer({
    cores: 2,
    deploy: [{ task: "digits", variant: "cnn-small", cores: 1 }],
    warmPool: 1,
    scaleToZeroAfterS: 1,
    autoscaler: o.autoscaler ?? "none",
  });
  try {
    await atZero(server, "digits");
    await until("a warm-pool worker", () => (server.local?.pooled ?? 0) >= 1);
    const seen = new Set<string>();
    server.cluster.onChange(() => {
      for (const i of server.cluster.instances()) if (i.task === "digits") seen.add(i.id);
    });
    const decisionsBefore = server.core.controller?.decisions.length ?? 0;
    const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
    const answers = await Promise.all(
      Array.from({ length: o.burst }, async () => {
        const t0 = performance.now();
        const status = await rawPost(agent, `${server.httpUrl}/v2/models/digits/infer`, digitsBody(o.sloMs));
        return { status, ms: performance.now() - t0 };
      }),
    );
    agent.destroy();
    const first = server.core.controller?.decisions[decisionsBefore];
    const byStatus: Record<string, number> = {};
    for (const a of answers) byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
    const refused = answers.filter((a) => a.status !== 200).map((a) => a.ms);
    const served = answers.filter((a) => a.status === 200).map((a) => a.ms);
    return {
      burst: o.burst,
      starts: seen.size,
      planned: first ? first.plan.instances.length : 1,
      byStatus,
      refusedP99Ms: refused.length ? quantile(refused, 0.99) : NaN,
      servedP99Ms: served.length ? quantile(served, 0.99) : NaN,
    };
  } finally {
    await server.close(1000);
  }
}

function digitsBody(sloMs: number): Buffer {
  return Buffer.from((digitsRequest(sloMs).body as string) ?? "");
}

function rawPost(agent: http.Agent, url: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: "POST", agent, headers: { "content-type": "application/json", "content-length": body.byteLength } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Overload with two classes

export interface ClassResult {
  priority: number;
  offeredPerS: number;
  sent: number;
  /** Answered 200 within the SLO on the client's clock, over every request sent. */
  attainmentPct: number;
  /** Client latency of the served requests. */
  p50Ms: number;
  p99Ms: number;
  /** Refused at once (429/503) over every request sent. */
  shedPct: number;
  /**
   * The server's own account: answered with slo_met over every request sent, and the p99 of the latency it
   * reports for the served ones. A load generator sharing a small, busy machine adds its own delays to the
   * client's figures; these leave them out.
   */
  serverAttainmentPct: number;
  serverP99Ms: number;
  byStatus: Record<string, number>;
}

export interface OverloadResult {
  /** Rows per second one core carries at full batches, by the profile the server plans with. */
  capacityPerS: number;
  factor: number;
  sloMs: number;
  seconds: number;
  high: ClassResult;
  low: ClassResult;
}

/** The burn task's repository and its measured full-batch capacity on one core (rows/s). */
export async function burnTask(o: { sloMs: number; maxQueue?: number; layers?: number }) {
  const root = await burnRepository({ layers: o.layers ?? 16, sloMs: o.sloMs, maxQueue: o.maxQueue ?? 1024 });
  const repo = await loadRepository(root);
  const v = repo.tasks.get(BURN_TASK)!.variants.get("conv")!;
  const full = v.profile!.points.find((p) => p.cores === 1 && p.batch === v.config.max_batch)!;
  return { root, capacityPerS: (1000 * full.batch) / full.p50_ms };
}

/**
 * One core serving the burn task in a server process of its own; two open-loop Poisson streams from this one:
 * the high class (priority 1) at `highShare` of capacity, the low class (priority 2) making up `factor` ×
 * capacity in all, both with the same SLO, for `seconds`.
 */
export async function overloadClasses(o: {
  seconds: number;
  factor: number;
  sloMs: number;
  highShare: number;
}): Promise<OverloadResult> {
  const { root, capacityPerS } = await burnTask({ sloMs: o.sloMs });
  const server = await startServerProcess({
    modelsDir: root,
    cores: 1,
    deploy: [{ task: BURN_TASK, variant: "conv", cores: 1 }],
  });
  try {
    const highRate = o.highShare * capacityPerS;
    const lowRate = o.factor * capacityPerS - highRate;
    const base = (priority: number, rate: number, seed: number): LoadOptions => ({
      source: { kind: "synthetic", rate, durationS: o.seconds, arrival: "poisson", seed },
      model: BURN_TASK,
      protocol: "rest",
      url: server.httpUrl,
      grpcUrl: server.grpcTarget,
      sloMs: o.sloMs,
      priority,
      connections: 512,
      timeoutMs: 10 * o.sloMs,
    });
    const [high, low] = await Promise.all([openSession(base(1, highRate, 1)), openSession(base(2, lowRate, 2))]);
    try {
      const [h, l] = await Promise.all([high.run(), low.run()]);
      const cls = (priority: number, rate: number, run: typeof h): ClassResult => {
        const s = run.summary;
        const rec = run.recorder;
        const lat: number[] = [];
        const serverLat: number[] = [];
        const byStatus: Record<string, number> = {};
        let shed = 0;
        let serverMet = 0;
        for (let i = 0; i < rec.sent; i++) {
          const st = rec.statuses[rec.status[i]!] ?? "no answer";
          byStatus[st] = (byStatus[st] ?? 0) + 1;
          if (st === "200") {
            lat.push(rec.clientLatencyMs(i));
            if (!Number.isNaN(rec.serverLatencyUs[i]!)) serverLat.push(rec.serverLatencyUs[i]! / 1000);
            if (rec.serverSloMet[i] === 1) serverMet++;
          } else if (st === "HTTP 429" || st === "HTTP 503") shed++;
        }
        return {
          priority,
          offeredPerS: rate,
          sent: rec.sent,
          attainmentPct: 100 * (s.attainment ?? NaN),
          p50Ms: lat.length ? quantile(lat, 0.5) : NaN,
          p99Ms: lat.length ? quantile(lat, 0.99) : NaN,
          shedPct: (100 * shed) / Math.max(1, rec.sent),
          serverAttainmentPct: (100 * serverMet) / Math.max(1, rec.sent),
          serverP99Ms: serverLat.length ? quantile(serverLat, 0.99) : NaN,
          byStatus,
        };
      };
      return {
        capacityPerS,
        factor: o.factor,
        sloMs: o.sloMs,
        seconds: o.seconds,
        high: cls(1, highRate, h),
        low: cls(2, lowRate, l),
      };
    } finally {
      await Promise.all([high.close(), low.close()]);
    }
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Clients that go away

export interface DisconnectResult {
  clients: number;
  /** Requests queued when the clients went away, by the server's pending gauge. */
  queuedBefore: number;
  /** …and once they had gone. */
  queuedAfter: number;
  /** Batches executed from just before the clients went away until the server was quiet again. */
  batchesAfter: number;
  /** Requests counted cancelled, by where they were. */
  cancelledQueued: number;
  cancelledDispatched: number;
  /** Batches sent to the instance and skipped unrun. */
  skippedBatches: number;
  /** From the first disconnect until the pending gauge read 0. */
  clearedMs: number;
}

/**
 * `clients` requests to the burn task (long SLO, so they all queue on one core), each on a connection of its
 * own; once they are queued, every client disconnects.
 */
export async function disconnects(o: { clients: number }): Promise<DisconnectResult> {
  // an SLO long enough for predictive admission to take them all: they queue, and wait
  const sloMs = 3_600_000;
  const { root } = await burnTask({ sloMs, maxQueue: 4 * o.clients });
  const server = await startServerProcess({
    modelsDir: root,
    cores: 1,
    deploy: [{ task: BURN_TASK, variant: "conv", cores: 1 }],
  });
  const url = server.httpUrl;
  try {
    const rows = BURN_ROW.reduce((a, b) => a * b, 1);
    const header = Buffer.from(
      JSON.stringify({
        parameters: { slo_ms: sloMs },
        inputs: [{ name: "x", datatype: "FP32", shape: [1, ...BURN_ROW], parameters: { binary_data_size: 4 * rows } }],
      }),
    );
    const body = Buffer.concat([header, Buffer.from(new Float32Array(rows).fill(0.5).buffer)]);
    const sockets: http.ClientRequest[] = [];
    let sent = 0;
    for (let i = 0; i < o.clients; i++) {
      const req = http.request(`${url}/v2/models/${BURN_TASK}/infer`, {
        method: "POST",
        agent: false,
        headers: {
          "content-type": "application/octet-stream",
          "content-length": body.byteLength,
          "inference-header-content-length": header.byteLength,
        },
      });
      req.on("error", () => undefined); // we are the ones hanging up
      req.on("finish", () => sent++);
      req.end(body);
      sockets.push(req);
    }
    const pending = async () => metricSum(await metrics(url), "sloserve_pending_requests", { model: BURN_TASK });
    // every body written, and the server's queue no longer growing: all that will queue has
    await until("every body sent", () => sent === o.clients, 60_000);
    let last = -1;
    await until(
      "the queue to stop growing",
      async () => {
        const now = await pending();
        const settled = now <= last;
        last = now;
        if (!settled) await sleep(200);
        return settled;
      },
      60_000,
    );
    const before = await metrics(url);
    const queuedBefore = metricSum(before, "sloserve_pending_requests", { model: BURN_TASK });
    const execBefore = metricSum(before, "sloserve_executions_total", { model: BURN_TASK });
    const t0 = performance.now();
    for (const s of sockets) s.destroy();
    await until("the queue emptied", async () => (await pending()) === 0, 30_000);
    const clearedMs = performance.now() - t0;
    await sleep(1000); // any batch still out comes back
    const after = await metrics(url);
    return {
      clients: o.clients,
      queuedBefore,
      queuedAfter: metricSum(after, "sloserve_pending_requests", { model: BURN_TASK }),
      batchesAfter: metricSum(after, "sloserve_executions_total", { model: BURN_TASK }) - execBefore,
      cancelledQueued: metricSum(after, "sloserve_cancelled_requests_total", { model: BURN_TASK, where: "queued" }),
      cancelledDispatched: metricSum(after, "sloserve_cancelled_requests_total", {
        model: BURN_TASK,
        where: "dispatched",
      }),
      skippedBatches: metricSum(after, "sloserve_skipped_batches_total", { model: BURN_TASK }),
      clearedMs,
    };
  } finally {
    await server.stop();
  }
}
