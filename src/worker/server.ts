// The worker side of an instance: one Engine (one variant, `c` threads) behind a framed socket.
// Ops: infer (a whole batch of request parts), resize (in place), bench (in-worker timing loop
// for the profiler), stats, shutdown.
import { timingSafeEqual } from "node:crypto";
import net from "node:net";
import type ort from "onnxruntime-node";
import { Engine, sessionsOpened, type BatchPart } from "../engine/engine.js";
import { controlFeeds } from "../engine/subnet-feeds.js";
import {
  encodeFrame,
  FrameDecoder,
  type ReplyHeader,
  type RequestHeader,
  type WirePart,
  type WireTensor,
  type WorkerOp,
  type WorkerOps,
  type WorkerStats,
} from "./protocol.js";
import { bytesOf, viewAs } from "./tensors.js";
import { HotLoop } from "./hot-loop.js";
import type { LoadedModel } from "./load-model.js";
import { loadModel } from "./load-model.js";
import { pinProcess } from "./pin.js";

export interface WorkerOptions {
  /** The model it serves; null for a pooled worker, which waits for a `load`. */
  model: LoadedModel | null;
  host: string;
  port: number;
  cpus: number[];
  /** Busy-poll this long after each batch (ms): an idle core takes a while to wake for the next one. */
  hotMs?: number;
  /** The channel secret every connection must open with (WorkerOps.hello). */
  token: string;
}

export class WorkerServer {
  private server: net.Server;
  private inFlight = 0;
  private served = 0;
  private cpus: number[];
  private closing = false;
  private sockets = new Set<net.Socket>();
  /** Batches run one at a time, in arrival order: a prefetched batch waits here, not in onnxruntime. */
  private chain: Promise<unknown> = Promise.resolve();
  private readonly hot: HotLoop;
  /** Control feeds per subnet, built once: switching subnets between batches only swaps feeds. */
  private readonly subnetFeeds = new Map<string, Record<string, ort.Tensor>>();
  private model: LoadedModel | null = null;
  /**
   * `infer` calls waiting behind the running batch, each with how to answer it skipped; and those the gateway
   * cancelled (answered at once: the gateway may queue their requests elsewhere).
   */
  private readonly waiting = new Map<number, () => void>();
  private readonly skip = new Set<number>();

  constructor(private readonly opts: WorkerOptions) {
    this.cpus = opts.cpus;
    if (opts.model) this.serve(opts.model);
    this.hot = new HotLoop(opts.hotMs ?? 0);
    this.server = net.createServer((socket) => this.accept(socket));
  }

  private serve(model: LoadedModel): void {
    this.model = model;
    for (const [name, controls] of Object.entries(model.subnets?.controls ?? {}))
      this.subnetFeeds.set(name, controlFeeds(controls));
  }

  private get engine(): Engine {
    if (!this.model) throw new Error("this worker has no model loaded yet (a pooled worker): send load first");
    return this.model.engine;
  }

  /** A pooled worker becomes an instance: its model, its threads, its cores. */
  private async load(req: WorkerOps["load"]["request"]): Promise<WorkerOps["load"]["reply"]> {
    if (this.model) throw new Error("this worker already serves a model");
    const model = await loadModel(req.modelPath, req.threads, req.subnets ?? null);
    this.serve(model);
    this.cpus = req.cpus;
    await pinProcess(process.pid, req.cpus);
    return { sessionMs: model.sessionMs, warmupMs: model.warmupMs };
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.port, this.opts.host, () =>
        resolve((this.server.address() as net.AddressInfo).port),
      );
    });
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    const decoder = new FrameDecoder<RequestHeader>();
    let authenticated = false;
    socket.on("data", (chunk) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        socket.destroy(err as Error);
        return;
      }
      for (const f of frames) {
        if (authenticated) {
          void this.handle(socket, f.header, f.payload);
          continue;
        }
        if (f.header.op !== "hello" || !sameSecret(f.header.token, this.opts.token)) {
          // say why once, then hang up: nothing but the instance's owner may drive it
          this.reply(socket, { id: f.header.id, ok: false, error: "unauthenticated worker connection" });
          socket.end();
          socket.destroy();
          return;
        }
        authenticated = true;
        this.reply<"hello">(socket, { id: f.header.id, ok: true });
      }
    });
    socket.on("error", () => undefined);
  }

  private reply<K extends WorkerOp>(socket: net.Socket, header: ReplyHeader<K>, payload: Uint8Array[] = []): void {
    if (socket.destroyed) return;
    socket.cork();
    for (const b of encodeFrame(header, payload)) socket.write(b);
    socket.uncork();
  }

  private async handle(socket: net.Socket, h: RequestHeader, payload: Buffer): Promise<void> {
    try {
      switch (h.op) {
        case "infer":
          return await this.infer(socket, h, payload);
        case "resize":
          return this.reply<"resize">(socket, {
            id: h.id,
            ok: true,
            ...(await this.resize(h.threads, h.cpus ?? this.cpus)),
          });
        case "bench":
          return this.reply<"bench">(socket, { id: h.id, ok: true, samples: await this.bench(h) });
        case "stats":
          return this.reply<"stats">(socket, { id: h.id, ok: true, ...this.stats() });
        case "hello":
          return this.reply<"hello">(socket, { id: h.id, ok: true });
        case "load":
          return this.reply<"load">(socket, { id: h.id, ok: true, ...(await this.load(h)) });
        case "ping":
          return this.reply<"ping">(socket, { id: h.id, ok: true });
        case "cancel": {
          const skipped = this.waiting.get(h.target);
          if (skipped) {
            this.waiting.delete(h.target);
            this.skip.add(h.target);
            skipped();
          }
          return this.reply<"cancel">(socket, { id: h.id, ok: true, dropped: skipped !== undefined });
        }
        case "shutdown":
          this.reply<"shutdown">(socket, { id: h.id, ok: true });
          return await this.shutdown();
        default:
          return this.reply(socket, {
            id: (h as { id: number }).id,
            ok: false,
            error: `unknown op '${(h as { op: string }).op}'`,
          });
      }
    } catch (err) {
      this.reply(socket, { id: h.id, ok: false, error: (err as Error).message });
    }
  }

  /** Control feeds of a named subnet (none named: the engine's default subnet). */
  private controlsFor(subnet: string | undefined): Record<string, ort.Tensor> {
    if (subnet === undefined || subnet === null) return {};
    const feeds = this.subnetFeeds.get(subnet);
    if (feeds) return feeds;
    if (this.subnetFeeds.size === 0)
      throw new Error(`this variant is not a supernet; it has no subnet '${String(subnet)}'`);
    throw new Error(
      `unknown subnet '${String(subnet)}' (this supernet serves: ${[...this.subnetFeeds.keys()].join(", ")})`,
    );
  }

  private async infer(
    socket: net.Socket,
    h: { id: number } & WorkerOps["infer"]["request"],
    payload: Buffer,
  ): Promise<void> {
    const parts = h.parts;
    const controls = this.controlsFor(h.subnet);
    let offset = 0;
    const batch: BatchPart[] = parts.map((p) => {
      const inputs: BatchPart["inputs"] = {};
      for (const t of p.tensors) {
        inputs[t.name] = viewAs(t.type, payload.subarray(offset, offset + t.bytes));
        offset += t.bytes;
      }
      return { rows: p.rows, inputs };
    });
    this.inFlight += 1;
    this.waiting.set(h.id, () =>
      this.reply<"infer">(socket, {
        id: h.id,
        ok: true,
        computeUs: 0,
        threads: this.engine.threads,
        parts: [],
        cancelled: true,
      }),
    );
    let t0 = 0;
    const run = this.chain.then(() => {
      this.waiting.delete(h.id);
      if (this.skip.delete(h.id)) return null;
      t0 = performance.now();
      return this.engine.runBatch(batch, controls);
    });
    this.chain = run.catch(() => undefined);
    let results;
    try {
      results = await run;
    } finally {
      this.inFlight -= 1;
      this.waiting.delete(h.id);
    }
    if (results === null) return; // skipped: answered when it was cancelled
    const computeUs = Math.round((performance.now() - t0) * 1000);
    this.served += 1;
    const out: WirePart[] = [];
    const buffers: Uint8Array[] = [];
    for (const [i, r] of results.entries()) {
      const tensors: WireTensor[] = [];
      for (const [name, t] of Object.entries(r)) {
        const bytes = bytesOf(t.data);
        tensors.push({ name, type: typeOfArray(t.data), dims: t.dims, bytes: bytes.byteLength });
        buffers.push(bytes);
      }
      out.push({ rows: parts[i]!.rows, tensors });
    }
    this.reply<"infer">(socket, { id: h.id, ok: true, computeUs, threads: this.engine.threads, parts: out }, buffers);
    this.hot.poke();
  }

  /** Grow: widen affinity first so the new threads may use the new cores. Shrink: narrow after the swap. */
  async resize(threads: number, cpus: number[]): Promise<WorkerOps["resize"]["reply"]> {
    const growing = threads > this.engine.threads;
    let pinned = false;
    if (growing) pinned = await pinProcess(process.pid, cpus);
    const r = await this.engine.resize(threads, () => this.engine.zeroFeeds(1));
    if (!growing) pinned = await pinProcess(process.pid, cpus);
    this.cpus = cpus;
    return { ...r, pinned };
  }

  /** Times runs back to back, or `gapMs` apart to see latency at low load (an idle core wakes up slower). */
  async bench({
    batch,
    warmup,
    minSamples,
    budgetMs,
    gapMs = 0,
    subnet,
  }: WorkerOps["bench"]["request"]): Promise<number[]> {
    const feeds = { ...this.engine.zeroFeeds(batch), ...this.controlsFor(subnet) };
    for (let i = 0; i < warmup; i++) await this.engine.run(feeds);
    const samples: number[] = [];
    const start = performance.now();
    while (samples.length < minSamples || (performance.now() - start < budgetMs && samples.length < 10_000)) {
      if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      const t0 = performance.now();
      await this.engine.run(feeds as Record<string, ort.Tensor>);
      samples.push(performance.now() - t0);
    }
    return samples;
  }

  stats(): WorkerStats {
    const mem = process.memoryUsage();
    return {
      pid: process.pid,
      threads: this.engine.threads,
      cpus: this.cpus,
      inFlight: this.inFlight,
      served: this.served,
      sessions: sessionsOpened(),
      rssMb: mem.rss / 2 ** 20,
      peakRssMb: process.resourceUsage().maxRSS / 1024,
    };
  }

  async shutdown(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.hot.stop();
    this.server.close();
    while (this.inFlight > 0) await new Promise((r) => setTimeout(r, 5));
    await this.engine.close();
    for (const s of this.sockets) s.end();
    setTimeout(() => process.exit(0), 20).unref();
  }
}

function sameSecret(given: unknown, expected: string): boolean {
  if (typeof given !== "string") return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function typeOfArray(a: ArrayBufferView): string {
  switch (a.constructor) {
    case Float32Array:
      return "float32";
    case Float64Array:
      return "float64";
    case Int32Array:
      return "int32";
    case BigInt64Array:
      return "int64";
    case Uint8Array:
      return "uint8";
    case Int8Array:
      return "int8";
    case Int16Array:
      return "int16";
    case Uint16Array:
      return "uint16";
    case Uint32Array:
      return "uint32";
    case BigUint64Array:
      return "uint64";
    default:
      throw new Error(`unsupported output array ${a.constructor.name}`);
  }
}
