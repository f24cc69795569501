// The gateway side of the worker socket: multiplexed request/response by id. When the socket
// drops (the worker died), every pending call fails at once with WorkerGoneError — nothing hangs.
import net from "node:net";
import { encodeFrame, FrameDecoder, type FrameHeader } from "./protocol.js";

export class WorkerGoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WorkerGoneError";
  }
}

export class WorkerCallError extends Error {}

interface Pending {
  resolve: (f: { header: FrameHeader & Record<string, unknown>; payload: Buffer }) => void;
  reject: (e: Error) => void;
}

export class WorkerClient {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private gone: Error | null = null;
  private markClosed!: () => void;
  /** Resolves when the connection is gone (the worker stopped, died or became unreachable). */
  readonly closed = new Promise<void>((resolve) => (this.markClosed = resolve));

  private constructor(private readonly socket: net.Socket) {
    const decoder = new FrameDecoder();
    socket.setNoDelay(true);
    socket.on("data", (chunk) => {
      for (const f of decoder.push(chunk)) {
        const p = this.pending.get(f.header.id);
        if (!p) continue;
        this.pending.delete(f.header.id);
        if (f.header.ok === false) p.reject(new WorkerCallError(String(f.header.error)));
        else p.resolve(f as never);
      }
    });
    const fail = (why: string) => {
      this.gone ??= new WorkerGoneError(why);
      for (const p of this.pending.values()) p.reject(this.gone);
      this.pending.clear();
      this.markClosed();
    };
    socket.on("error", (e) => fail(`worker connection failed: ${e.message}`));
    socket.on("close", () => fail("worker connection closed (the instance stopped or died)"));
  }

  static connect(host: string, port: number): Promise<WorkerClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => {
        socket.off("error", reject);
        resolve(new WorkerClient(socket));
      });
      socket.once("error", reject);
    });
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  call(
    op: string,
    fields: Record<string, unknown> = {},
    payload: Uint8Array[] = [],
  ): Promise<{ header: FrameHeader & Record<string, unknown>; payload: Buffer }> {
    if (this.gone) return Promise.reject(this.gone);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.cork();
      for (const b of encodeFrame({ id, op, ...fields }, payload)) this.socket.write(b);
      this.socket.uncork();
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
