// The local backend: instances are worker processes on this machine, each pinned to its own cores
// from a core budget. Horizontal = spawn (a real cold start); vertical = in-place resize inside the
// worker. A worker that dies fails its batches at once and is replaced.
import { EventEmitter } from "node:events";
import type { SubnetTable } from "../../engine/subnets.js";
import { cancelBatch, sendBatch } from "../worker-batch.js";
import type { ActuationResult, BatchResult, BatchWork, Cluster, Instance, InstanceState } from "../types.js";
import { CoreAllocator } from "./core-allocator.js";
import { progressed, sampleProcess } from "./process-progress.js";
import { loadInto, spawnWorker, type WorkerHandle } from "./worker-process.js";

export interface LocalClusterOptions {
  coreBudget: number;
  modelPath(task: string, variant: string): string;
  /** A supernet variant's subnets (null for an ordinary variant). */
  subnets?(task: string, variant: string): SubnetTable | null;
  host?: string;
  /**
   * When every core is taken, start a 1-core instance on a core shared with other such instances instead of
   * refusing it (default false): a small machine then serves every task, each a little slower.
   */
  shareCores?: boolean;
  /**
   * Worker processes kept started, onnxruntime loaded and no model (default 0): a start takes one and only
   * loads its model, instead of paying for a new process. They hold no core until they get a model.
   */
  warmPool?: number;
  /** Start a replacement when a worker dies unexpectedly (default true). */
  replaceDead?: boolean;
  log?: (event: Record<string, unknown>) => void;
}

class LocalInstance implements Instance {
  state: InstanceState = "starting";
  inFlight = 0;
  handle?: WorkerHandle;
  /** A liveness probe is under way. */
  probing = false;
  /** It took a warm-pool worker: its start is the model load only. */
  warmStart = false;
  /** The worker call of each batch out, by which a batch is cancelled. */
  private readonly calls = new Map<BatchWork, number>();
  /** Cancels the start while the worker is still coming up. */
  readonly starting = new AbortController();
  cpus: number[] = [];

  constructor(
    readonly id: string,
    readonly task: string,
    readonly variant: string,
    public cores: number,
    /** The worker is gone (its channel closed or its process exited). */
    private readonly lost: (why: string) => void,
  ) {}

  run(work: BatchWork, done: (r: BatchResult) => void): void {
    const client = this.handle?.client;
    if (!client || this.state === "stopped") {
      done({ ok: false, gone: true, message: `instance ${this.id} is not running` });
      return;
    }
    this.inFlight += 1;
    const id = sendBatch(
      client,
      work,
      (r) => {
        this.inFlight -= 1;
        this.calls.delete(work);
        done(r);
      },
      this.lost,
    );
    if (id !== null) this.calls.set(work, id);
  }

  cancel(work: BatchWork): void {
    const id = this.calls.get(work);
    if (id !== undefined && this.handle) cancelBatch(this.handle.client, id);
  }
}

export class LocalCluster implements Cluster {
  private readonly allocator: CoreAllocator;
  private readonly list = new Map<string, LocalInstance>();
  private readonly events = new EventEmitter();
  private nextId = 1;
  private closing = false;
  /** Warm-pool workers ready to take a model, and how many are on their way. */
  private readonly pool: WorkerHandle[] = [];
  private poolStarting = 0;

  /** How many warm-pool workers to keep. */
  private poolTarget: number;

  constructor(private readonly opts: LocalClusterOptions) {
    this.allocator = new CoreAllocator(opts.coreBudget);
    this.poolTarget = opts.warmPool ?? 0;
    this.refillPool();
  }

  /** Warm-pool workers ready now. */
  get pooled(): number {
    return this.pool.length;
  }

  get warmPoolSize(): number {
    return this.poolTarget;
  }

  /** Keeps `size` warm-pool workers from now on: starts the missing ones, stops the ones beyond it. */
  setWarmPool(size: number): void {
    this.poolTarget = Math.max(0, Math.floor(size));
    while (this.pool.length > this.poolTarget) void this.pool.pop()!.stop();
    this.refillPool();
  }

  private refillPool(): void {
    while (!this.closing && this.pool.length + this.poolStarting < this.poolTarget) {
      this.poolStarting += 1;
      spawnWorker({ modelPath: null, threads: 1, cpus: [], host: this.opts.host }).then(
        (h) => {
          this.poolStarting -= 1;
          if (this.closing || this.pool.length >= this.poolTarget) return void h.stop();
          this.pool.push(h);
          // a pool worker that dies is just dropped; the pool is refilled at the next start
          void h.exited.then(() => {
            const i = this.pool.indexOf(h);
            if (i >= 0) this.pool.splice(i, 1);
          });
        },
        (err: Error) => {
          this.poolStarting -= 1;
          this.opts.log?.({ event: "warm_pool_failed", error: err.message });
        },
      );
    }
  }

  /** A started worker for the variant: the warm-pool worker `warm` given its model, or a new process. */
  private async worker(
    task: string,
    variant: string,
    cores: number,
    cpus: number[],
    signal: AbortSignal,
    warm: WorkerHandle | undefined,
  ) {
    const modelPath = this.opts.modelPath(task, variant);
    const subnets = this.opts.subnets?.(task, variant);
    if (warm) {
      this.refillPool();
      const abort = () => warm.proc.kill("SIGKILL");
      signal.addEventListener("abort", abort, { once: true });
      try {
        return await loadInto(warm, { modelPath, threads: cores, cpus, subnets });
      } catch (err) {
        warm.proc.kill("SIGKILL");
        throw signal.aborted ? new Error(`the start of ${task}/${variant} was cancelled`) : err;
      } finally {
        signal.removeEventListener("abort", abort);
      }
    }
    this.refillPool();
    return spawnWorker({ modelPath, subnets, signal, threads: cores, cpus, host: this.opts.host });
  }

  get coreBudget(): number {
    return this.allocator.budget;
  }

  get sharesCores(): boolean {
    return this.opts.shareCores ?? false;
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
    const cpus =
      this.allocator.allocate(id, cores) ?? (this.sharesCores && cores === 1 ? this.allocator.share(id) : null);
    if (!cpus) {
      return {
        ok: false,
        ms: 0,
        message: `not enough cores: ${cores} wanted, ${this.allocator.free} of ${this.allocator.budget} free`,
      };
    }
    const inst = new LocalInstance(id, task, variant, cores, (why) => this.died(inst, why));
    inst.cpus = cpus;
    // taken before anyone hears of the instance, so the router times its start as a warm one
    const warm = this.pool.shift();
    inst.warmStart = warm !== undefined;
    this.list.set(id, inst);
    this.changed();
    try {
      const handle = await this.worker(task, variant, cores, cpus, inst.starting.signal, warm);
      inst.handle = handle;
      if (inst.state !== "starting") {
        // stopped while it came up: the worker is ours to end, not to serve
        await handle.stop();
        return { ok: false, ms: handle.coldStartMs, message: `instance ${id} was stopped while starting` };
      }
      inst.state = "ready";
      void handle.exited.then((code) => this.died(inst, `its process exited with code ${code}`));
      this.opts.log?.({
        event: "instance_started",
        instance: id,
        cores,
        cpus,
        shared: this.allocator.isShared(id),
        warm: handle.warm,
        cold_start_ms: handle.coldStartMs,
      });
      this.changed();
      return { ok: true, ms: handle.coldStartMs, message: `started ${id} on cores ${cpus.join(",")}`, instance: id };
    } catch (err) {
      if (this.list.get(id) === inst) this.forget(inst);
      return { ok: false, ms: 0, message: (err as Error).message };
    }
  }

  async stop(id: string): Promise<ActuationResult> {
    const inst = this.list.get(id);
    if (!inst) return { ok: false, ms: 0, message: `no instance ${id}` };
    const t0 = performance.now();
    if (inst.state === "starting") {
      // a cold start is cancelled, not waited for: its worker is killed wherever it got to
      inst.state = "stopped";
      inst.starting.abort();
      this.forget(inst);
      return { ok: true, ms: performance.now() - t0, message: `cancelled the start of ${id}` };
    }
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
    const wasShared = this.allocator.isShared(id);
    const cpus = this.allocator.resize(id, cores);
    if (!cpus)
      return { ok: false, ms: 0, message: `not enough cores to grow ${id} to ${cores}: ${this.allocator.free} free` };
    try {
      const { header } = await inst.handle.client.call("resize", { threads: cores, cpus });
      inst.cores = cores;
      inst.cpus = cpus;
      this.opts.log?.({ event: "instance_resized", instance: id, cores, cpus, resize_ms: header.ms });
      this.changed();
      return { ok: true, ms: header.ms, message: `resized ${id} to ${cores} cores in place`, instance: id };
    } catch (err) {
      if (wasShared) {
        this.allocator.release(id);
        this.allocator.share(id);
      } else this.allocator.resize(id, before.length);
      return { ok: false, ms: 0, message: `resize of ${id} failed: ${(err as Error).message}` };
    }
  }

  /** An instance died under us (not stopped by us): forgotten at once, and replaced. */
  private died(inst: LocalInstance, why: string): void {
    if (inst.state === "stopped") return;
    inst.state = "stopped";
    this.forget(inst);
    inst.handle?.proc.kill("SIGKILL"); // a closed channel with a live process: make sure it is gone
    this.opts.log?.({ event: "instance_died", instance: inst.id, reason: why });
    if (!this.closing && this.opts.replaceDead !== false) void this.start(inst.task, inst.variant, inst.cores);
  }

  private forget(inst: LocalInstance): void {
    this.allocator.release(inst.id);
    this.list.delete(inst.id);
    this.changed();
  }

  /**
   * How long the probe watches a suspect worker. It is hung when in that time it neither answers a ping nor
   * uses any CPU (or the kernel has it stopped): a worker busy with a long batch cannot answer (onnxruntime
   * runs on its main thread) but keeps burning CPU; a stopped or deadlocked one does neither.
   */
  static readonly PROBE_MS = 1000;

  suspect(id: string, why: string): void {
    const inst = this.list.get(id);
    if (!inst || inst.state !== "ready" || !inst.handle || inst.probing) return;
    inst.probing = true;
    const handle = inst.handle;
    void (async () => {
      const before = await sampleProcess(handle.pid);
      let timer: NodeJS.Timeout | undefined;
      const waited = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), LocalCluster.PROBE_MS);
      });
      const answered = handle.client.call("ping").then(
        () => true,
        () => false,
      );
      let alive = await Promise.race([answered, waited]);
      clearTimeout(timer);
      if (!alive) {
        const after = await sampleProcess(handle.pid);
        alive = before !== null && after !== null && progressed(before, after);
      }
      inst.probing = false;
      if (alive || inst.state !== "ready") return;
      this.opts.log?.({ event: "instance_hung", instance: id, reason: why });
      // the channel closes with the process: its batches fail over and died() replaces it
      handle.proc.kill("SIGKILL");
    })();
  }

  placeOf(id: string): string | undefined {
    const inst = this.list.get(id);
    return inst && inst.cpus.length > 0 ? `cpu ${inst.cpus.join(",")}` : undefined;
  }

  /** Port of an instance's worker channel (for operators and failure tests). */
  portOf(id: string): number | undefined {
    return this.list.get(id)?.handle?.port;
  }

  /** Pid of an instance's worker process (for operators and failure tests). */
  pidOf(id: string): number | undefined {
    return this.list.get(id)?.handle?.pid;
  }

  async shutdown(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.list.keys()].map((id) => this.stop(id)));
    await Promise.all(this.pool.splice(0).map((h) => h.stop()));
  }
}
