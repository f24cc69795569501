// The gateway side of the worker socket: multiplexed request/response by id. When the socket
// drops (the worker died), every pending call fails at once with WorkerGoneError — nothing hangs.
import net from "node:net";
import { encodeFrame, FrameDecoder, type ReplyHeader, type WorkerOp, type WorkerOps } from "./protocol.js";

export class WorkerGoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WorkerGoneError";
  }
}

export class WorkerCallError extends Error {}

/** An op's fields (optional where it has none) and the binary payload that follows them. */
type CallArgs<K extends WorkerOp> =
  Record<string, never> extends WorkerOps[K]["request"]
    ? [fields?: WorkerOps[K]["request"], payload?: Uint8Array[]]
    : [fields: WorkerOps[K]["request"], payload?: Uint8Array[]];

/** A worker's answer to one call: the op's reply fields, and the binary payload after them. */
export interface Reply<K extends WorkerOp> {
  header: { id: number } & WorkerOps[K]["reply"];
  payload: Buffer;
}

interface Pending {
  resolve: (f: Reply<WorkerOp>) => void;
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
    const decoder = new FrameDecoder<ReplyHeader<WorkerOp>>();
    socket.setNoDelay(true);
    socket.on("data", (chunk) => {
      for (const f of decoder.push(chunk)) {
        const p = this.pending.get(f.header.id);
        if (!p) continue;
        this.pending.delete(f.header.id);
        if (f.header.ok === false) p.reject(new WorkerCallError(f.header.error));
        else p.resolve({ header: f.header, payload: f.payload });
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

  /** Connects and authenticates with the instance's secret. */
  static async connect(host: string, port: number, token: string): Promise<WorkerClient> {
    const client = await new Promise<WorkerClient>((resolve, reject) => {
      const socket = net.connect({ host, port }, () => {
        socket.off("error", reject);
        resolve(new WorkerClient(socket));
      });
      socket.once("error", reject);
    });
    try {
      await client.call("hello", { token });
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  call<K extends WorkerOp>(op: K, ...args: CallArgs<K>): Promise<Reply<K>> {
    return this.send(op, ...args).reply;
  }

  /** A call and its id, by which a later `cancel` names it. */
  send<K extends WorkerOp>(op: K, ...args: CallArgs<K>): { id: number; reply: Promise<Reply<K>> } {
    const [fields = {}, payload = []] = args as [WorkerOps[K]["request"]?, Uint8Array[]?];
    const id = this.nextId++;
    if (this.gone) return { id, reply: Promise.reject(this.gone) };
    const reply = new Promise<Reply<K>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (f: Reply<WorkerOp>) => void, reject });
      this.socket.cork();
      for (const b of encodeFrame({ id, op, ...fields }, payload)) this.socket.write(b);
      this.socket.uncork();
    });
    return { id, reply };
  }

  close(): void {
    this.socket.destroy();
  }
}
