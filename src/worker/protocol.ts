// Gateway ↔ worker wire format: length-prefixed frames over a stream socket (TCP, so a remote
// worker speaks it too). A frame is [u32 LE total][u32 LE header length][JSON header][binary payload];
// tensors travel as raw little-endian bytes in the payload, never as JSON numbers.
import type { SubnetTable } from "../engine/subnets.js";

export interface FrameHeader {
  id: number;
  op: string;
  [key: string]: unknown;
}

export interface Frame<H = FrameHeader> {
  header: H;
  payload: Buffer;
}

/** Largest frame either side accepts; a batch of 64 ResNet inputs is ~38 MB. */
export const MAX_FRAME_BYTES = 512 * 1024 * 1024;

export function encodeFrame(header: object, payload: Uint8Array[] = []): Buffer[] {
  // Pad the header with spaces so the payload starts 8-byte aligned: the receiver can view
  // tensors in place instead of copying them to aligned memory.
  let text = JSON.stringify(header);
  const rem = (8 + Buffer.byteLength(text, "utf8")) % 8;
  if (rem !== 0) text += " ".repeat(8 - rem);
  const json = Buffer.from(text, "utf8");
  const payloadBytes = payload.reduce((n, p) => n + p.byteLength, 0);
  const prefix = Buffer.allocUnsafe(8);
  prefix.writeUInt32LE(4 + json.byteLength + payloadBytes, 0);
  prefix.writeUInt32LE(json.byteLength, 4);
  return [prefix, json, ...payload.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))];
}

/** Incremental decoder: feed socket chunks, get whole frames out. */
export class FrameDecoder<H = FrameHeader> {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): Frame<H>[] {
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    const frames: Frame<H>[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peek(8);
      const total = head.readUInt32LE(0);
      if (total > MAX_FRAME_BYTES || total < 4) throw new Error(`bad frame length ${total}`);
      if (this.buffered < 4 + total) break;
      const frame = this.take(4 + total);
      const headerLen = frame.readUInt32LE(4);
      if (headerLen > total - 4) throw new Error(`bad header length ${headerLen}`);
      const header = JSON.parse(frame.toString("utf8", 8, 8 + headerLen)) as H;
      frames.push({ header, payload: frame.subarray(8 + headerLen) });
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.byteLength >= n) return this.chunks[0]!;
    return Buffer.concat(this.chunks).subarray(0, Math.min(n, this.buffered));
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.byteLength > 0 ? [rest] : [];
    this.buffered = rest.byteLength;
    return out;
  }
}

/** Describes one tensor's slice of a frame payload. */
export interface WireTensor {
  name: string;
  type: string;
  dims: number[];
  bytes: number;
}

/** One request's share of an `infer` frame. */
export interface WirePart {
  rows: number;
  tensors: WireTensor[];
}

/** Every operation of the worker channel: what the gateway sends and what the worker answers. */
export interface WorkerOps {
  /**
   * The first frame on every connection: the instance's secret, which only the process that started it
   * knows. A connection that opens with anything else, or a wrong secret, is closed.
   */
  hello: { request: { token: string }; reply: Record<never, never> };
  /** A pooled worker (started without a model, onnxruntime loaded) takes its model: the rest of a cold start. */
  load: {
    request: { modelPath: string; threads: number; cpus: number[]; subnets?: SubnetTable | null };
    reply: { sessionMs: number; warmupMs: number };
  };
  /** Liveness: answered at once by a worker whose event loop runs, however busy its session is. */
  ping: { request: Record<never, never>; reply: Record<never, never> };
  /** A whole batch: each part one request's rows; tensors in the payload, in part and tensor order. */
  infer: {
    request: { parts: WirePart[]; subnet?: string };
    /** `cancelled`: skipped unrun at the gateway's request (see cancel); then no parts. */
    reply: { computeUs: number; threads: number; parts: WirePart[]; cancelled?: boolean };
  };
  /**
   * The gateway no longer wants the `infer` call `target` (its requests were all cancelled): if it is still
   * waiting behind the running batch it is skipped (answered `cancelled`); a running one finishes.
   */
  cancel: { request: { target: number }; reply: { dropped: boolean } };
  /** In-place vertical scaling: a new session with `threads` threads, pinned to `cpus`. */
  resize: {
    request: { threads: number; cpus?: number[] };
    reply: { ms: number; fromThreads: number; toThreads: number; pinned: boolean };
  };
  /** The profiler's in-worker timing loop. */
  bench: {
    request: { batch: number; warmup: number; minSamples: number; budgetMs: number; gapMs?: number; subnet?: string };
    reply: { samples: number[] };
  };
  stats: { request: Record<never, never>; reply: WorkerStats };
  shutdown: { request: Record<never, never>; reply: Record<never, never> };
}

export type WorkerOp = keyof WorkerOps;

export interface WorkerStats {
  pid: number;
  threads: number;
  cpus: number[];
  inFlight: number;
  served: number;
  sessions: number;
  rssMb: number;
  peakRssMb: number;
}

/** A request frame's header: the op's fields plus its id. */
export type RequestHeader = { [K in WorkerOp]: { id: number; op: K } & WorkerOps[K]["request"] }[WorkerOp];

/** A reply frame's header: the op's reply, or an error. */
export type ReplyHeader<K extends WorkerOp> =
  ({ id: number; ok: true } & WorkerOps[K]["reply"]) | { id: number; ok: false; error: string };

/** Environment variable through which a worker receives its channel secret (argv is world-readable in ps). */
export const WORKER_TOKEN_ENV = "SLOSERVE_WORKER_TOKEN";
