// The local backend: instances are worker processes on this machine, each pinned to its own cores
// from a core budget. Horizontal = spawn (a real cold start); vertical = in-place resize inside the
// worker. A worker that dies fails its batches at once and is replaced.
import { EventEmitter } from "node:events";
import { sendBatch, type WorkerInput } from "../worker-batch.js";
import type { ActuationResult, BatchResult, BatchWork, Cluster, Instance, InstanceState } from "../types.js";
import { CoreAllocator } from "./core-allocator.js";
import { spawnWorker, type WorkerHandle } from "./worker-process.js";

/** What a request carries to a local instance: one flat typed array per model input. */
export type LocalInput = WorkerInput;

export interface LocalClusterOptions {
  coreBudget: number;
  modelPath(task: string, variant: string): string;
  host?: string;
  /** Start a replacement when a worker dies unexpectedly (default true). */
  replaceDead?: boolean;
  log?: (event: Record<string, unknown>) => void;
}

class LocalInstance implements Instance {
  state: InstanceState = "starting";
  inFlight = 0;
  handle?: WorkerHandle;
  cpus: number[] = [];

  constructor(
    readonly id: string,
    readonly task: string,
    readonly variant: string,
    public cores: number,
  ) {}

  run(work: BatchWork, done: (r: BatchResult) => void): void {
    const client = this.handle?.client;
    if (!client || this.state === "stopped") {
      done({ ok: false, gone: true, message: `instance ${this.id} is not running` });
      return;
    }
    this.inFlight += 1;
    sendBatch(client, work, (r) => {
      this.inFlight -= 1;
      done(r);
    });
  }
}

export class LocalCluster implements Cluster {
  private readonly allocator: CoreAllocator;
  private readonly list = new Map<string, LocalInstance>();
  private readonly events = new EventEmitter();
  private nextId = 1;
  private closing = false;

  constructor(private readonly opts: LocalClusterOptions) {
    this.allocator = new CoreAllocator(opts.coreBudget);
  }

  get coreBudget(): number {
    return this.allocator.budget;
  }

  coresInUse(): number {
    return this.allocator.used;
  }

  instances(): readonly Instance[] {
    return [...this.list.values()];
  }

  onChange(listener: () => void): void {
    this.events.on("change", listener);
  }

  private changed(): void {
    this.events.emit("change");
  }

  async start(task: string, variant: string, cores: number): Promise<ActuationResult> {
    if (this.closing) return { ok: false, ms: 0, message: "cluster is shutting down" };
    const id = `${task}/${variant}#${this.nextId++}`;
    const cpus = this.allocator.allocate(id, cores);
    if (!cpus) {
      return {
        ok: false,
        ms: 0,
        message: `not enough cores: ${cores} wanted, ${this.allocator.free} of ${this.allocator.budget} free`,
      };
    }
    const inst = new LocalInstance(id, task, variant, cores);
    inst.cpus = cpus;
    this.list.set(id, inst);
    this.changed();
    try {
      const handle = await spawnWorker({
        modelPath: this.opts.modelPath(task, variant),
        threads: cores,
        cpus,
        host: this.opts.host,
      });
      inst.handle = handle;
      inst.state = "ready";
      void handle.exited.then((code) => this.exited(inst, code));
      this.opts.log?.({ event: "instance_started", instance: id, cores, cpus, cold_start_ms: handle.coldStartMs });
      this.changed();
      return { ok: true, ms: handle.coldStartMs, message: `started ${id} on cores ${cpus.join(",")}`, instance: id };
    } catch (err) {
      this.allocator.release(id);
      this.list.delete(id);
      this.changed();
      return { ok: false, ms: 0, message: (err as Error).message };
    }
  }

  async stop(id: string): Promise<ActuationResult> {
    const inst = this.list.get(id);
    if (!inst) return { ok: false, ms: 0, message: `no instance ${id}` };
    const t0 = performance.now();
    inst.state = "draining";
    this.changed();
    while (inst.inFlight > 0) await new Promise((r) => setTimeout(r, 2));
    inst.state = "stopped";
    await inst.handle?.stop();
    this.forget(inst);
    return { ok: true, ms: performance.now() - t0, message: `stopped ${id}` };
  }

  async resize(id: string, cores: number): Promise<ActuationResult> {
    const inst = this.list.get(id);
    if (!inst || inst.state !== "ready" || !inst.handle)
      return { ok: false, ms: 0, message: `instance ${id} is not ready` };
    if (cores === inst.cores) return { ok: true, ms: 0, message: "no change", instance: id };
    const before = inst.cpus;
    const cpus = this.allocator.resize(id, cores);
    if (!cpus)
      return { ok: false, ms: 0, message: `not enough cores to grow ${id} to ${cores}: ${this.allocator.free} free` };
    try {
      const { header } = await inst.handle.client.call("resize", { threads: cores, cpus });
      inst.cores = cores;
      inst.cpus = cpus;
      this.opts.log?.({ event: "instance_resized", instance: id, cores, cpus, resize_ms: header.ms });
      this.changed();
      return { ok: true, ms: header.ms as number, message: `resized ${id} to ${cores} cores in place`, instance: id };
    } catch (err) {
      this.allocator.resize(id, before.length);
      return { ok: false, ms: 0, message: `resize of ${id} failed: ${(err as Error).message}` };
    }
  }

  private exited(inst: LocalInstance, code: number | null): void {
    if (inst.state === "stopped") return;
    inst.state = "stopped";
    this.forget(inst);
    this.opts.log?.({ event: "instance_died", instance: inst.id, exit_code: code });
    if (!this.closing && this.opts.replaceDead !== false) void this.start(inst.task, inst.variant, inst.cores);
  }

  private forget(inst: LocalInstance): void {
    this.allocator.release(inst.id);
    this.list.delete(inst.id);
    this.changed();
  }

  /** Pid of an instance's worker process (for operators and failure tests). */
  pidOf(id: string): number | undefined {
    return this.list.get(id)?.handle?.pid;
  }

  async shutdown(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.list.keys()].map((id) => this.stop(id)));
  }
}
