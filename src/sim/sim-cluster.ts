// The simulated cluster backend: the `Cluster` the router and the control loop already drive, on
// virtual time. Semantics follow the local backend: an instance is `starting` for its cold start,
// then `ready`; it runs its batches one at a time in arrival order (a prefetched batch waits, as
// in the worker); an in-place resize reserves the cores at once and takes effect when its
// measured time has passed (the old size serves meanwhile); stop drains the batches it holds.
// Cores come from nodes, each with its own budget; an instance lives on one node.
import type { ActuationResult, BatchResult, BatchWork, Cluster, Instance, InstanceState } from "../cluster/types.js";
import type { Timer } from "../cluster/clock.js";
import { Xoshiro128 } from "../stats/random.js";
import { sampleDuration, type Duration, type ServiceModel } from "./service-model.js";
import type { VirtualClock } from "./virtual-clock.js";

/** How a variant behaves when simulated. */
export interface SimRuntime {
  service: ServiceModel;
  /** Cold start: spawn + load + warm-up until the instance can serve. */
  coldStart: Duration;
  /** Cold start from a warm-pool worker (load + warm-up, no spawn); absent: a start of it takes no pooled worker. */
  warmStart?: Duration;
  /** In-place resize. */
  resize: Duration;
  /** A supernet's subnets by name: a batch naming one takes its time (others take `service`'s). */
  subnets?: ReadonlyMap<string, ServiceModel>;
}

/**
 * Where a new instance goes: `spread` = the node with the most free cores (Kubernetes' default
 * LeastAllocated scoring; it leaves room to grow in place), `pack` = the first node with room.
 */
export type Placement = "spread" | "pack";

export interface SimClusterOptions {
  /** Cores of each node. */
  nodes: readonly number[];
  /** Default spread. */
  placement?: Placement;
  seed?: number;
  runtime(task: string, variant: string): SimRuntime;
  /**
   * Warm-pool workers to keep (default 0): started processes with no model and no core; a start that takes
   * one pays its variant's `warmStart` instead of `coldStart`, and the pool refills in `poolSpawn`.
   */
  warmPool?: number;
  /** How long a pool worker takes to start (process + onnxruntime, no model); needed once the pool is used. */
  poolSpawn?: Duration;
}

const NO_OUTPUTS: null[] = [];

interface SimNode {
  index: number;
  cores: number;
  used: number;
  /** Fault injection: batches here take this many times as long (a noisy neighbour, thermal limits). */
  slowdown: number;
}

class SimInstance implements Instance {
  state: InstanceState = "starting";
  inFlight = 0;
  /** Cores reserved on the node (ahead of `cores` while a resize is under way). */
  allocated: number;
  resizing = false;
  /** Batches waiting (a ring buffer: the router holds only a few per instance); the running one is not in here. */
  private works: (BatchWork | undefined)[] = new Array(4);
  private dones: (((r: BatchResult) => void) | undefined)[] = new Array(4);
  private head = 0;
  private waiting = 0;
  private runningDone: ((r: BatchResult) => void) | null = null;
  private runningMs = 0;
  private runningTimer: Timer | null = null;
  /** The timer of the last batch's end, scheduled again for the next one. */
  private finishTimer: Timer | null = null;
  /** Fault injection: the process is wedged (SIGSTOP); nothing it holds finishes until it is killed. */
  hung = false;
  /** Fault injection: its batches take this many times as long (on top of its node's slowdown). */
  slowdown = 1;
  startTimer: Timer | null = null;
  /** It took a warm-pool worker. */
  warmStart = false;
  settleStart: ((r: ActuationResult) => void) | null = null;
  settleStop: (() => void) | null = null;
  private readonly finishBound = () => this.finish();

  constructor(
    readonly id: string,
    readonly task: string,
    readonly variant: string,
    public cores: number,
    readonly node: SimNode,
    readonly runtime: SimRuntime,
    private readonly cluster: SimCluster,
  ) {
    this.allocated = cores;
  }

  run(work: BatchWork, done: (r: BatchResult) => void): void {
    if (this.state === "stopped" || this.state === "starting") {
      done({ ok: false, gone: this.state === "stopped", message: `instance ${this.id} is ${this.state}` });
      return;
    }
    this.inFlight++;
    if (this.waiting === this.works.length) this.growQueue();
    const tail = (this.head + this.waiting) & (this.works.length - 1);
    this.works[tail] = work;
    this.dones[tail] = done;
    this.waiting++;
    if (this.runningDone === null) this.startNext();
  }

  private startNext(): void {
    const work = this.works[this.head]!;
    this.runningDone = this.dones[this.head]!;
    this.works[this.head] = undefined;
    this.dones[this.head] = undefined;
    this.head = (this.head + 1) & (this.works.length - 1);
    this.waiting--;
    let rows = 0;
    const rs = work.items;
    for (let i = 0; i < rs.length; i++) rows += rs[i]!.rows;
    const service = (work.subnet !== undefined && this.runtime.subnets?.get(work.subnet)) || this.runtime.service;
    this.runningMs = service.sample(rows, this.cores, this.cluster.serviceRng) * this.node.slowdown * this.slowdown;
    if (!this.hung) {
      const clock = this.cluster.clock;
      this.runningTimer = this.finishTimer = clock.rearm(
        this.finishTimer,
        clock.now() + this.runningMs,
        this.finishBound,
      );
    }
  }

  /** A batch waiting behind the running one is skipped (answered cancelled); a running one finishes. */
  cancel(work: BatchWork): void {
    const n = this.works.length;
    for (let k = 0; k < this.waiting; k++) {
      const at = (this.head + k) & (n - 1);
      if (this.works[at] !== work) continue;
      const done = this.dones[at]!;
      // close the gap: the later batches move up one place, in order
      for (let j = k; j < this.waiting - 1; j++) {
        const from = (this.head + j + 1) & (n - 1);
        const to = (this.head + j) & (n - 1);
        this.works[to] = this.works[from];
        this.dones[to] = this.dones[from];
      }
      const last = (this.head + this.waiting - 1) & (n - 1);
      this.works[last] = undefined;
      this.dones[last] = undefined;
      this.waiting--;
      this.inFlight--;
      done({ ok: false, gone: false, cancelled: true, message: "skipped unrun: every request in it was cancelled" });
      if (this.inFlight === 0 && this.settleStop) this.settleStop();
      return;
    }
  }

  /** Fault injection: wedge the process; the batch it runs and those it holds never finish. */
  hang(): void {
    this.hung = true;
    if (this.runningTimer) this.cluster.clock.clearTimer(this.runningTimer);
    this.runningTimer = null;
  }

  /** The process died: the running batch and every waiting one fail at once, as the worker's socket would. */
  failAll(message: string): void {
    if (this.runningTimer) this.cluster.clock.clearTimer(this.runningTimer);
    this.runningTimer = null;
    const dones: ((r: BatchResult) => void)[] = [];
    if (this.runningDone) dones.push(this.runningDone);
    this.runningDone = null;
    for (let k = 0; k < this.waiting; k++) {
      const at = (this.head + k) & (this.works.length - 1);
      dones.push(this.dones[at]!);
      this.works[at] = undefined;
      this.dones[at] = undefined;
    }
    this.waiting = 0;
    this.inFlight = 0;
    for (const done of dones) done({ ok: false, gone: true, message });
    this.settleStop?.();
  }

  private growQueue(): void {
    const n = this.works.length;
    const works: (BatchWork | undefined)[] = new Array(2 * n);
    const dones: (((r: BatchResult) => void) | undefined)[] = new Array(2 * n);
    for (let k = 0; k < this.waiting; k++) {
      works[k] = this.works[(this.head + k) & (n - 1)];
      dones[k] = this.dones[(this.head + k) & (n - 1)];
    }
    this.works = works;
    this.dones = dones;
    this.head = 0;
  }

  private finish(): void {
    const done = this.runningDone!;
    const ms = this.runningMs;
    this.runningDone = null;
    this.runningTimer = null;
    this.inFlight--;
    // the next batch starts the moment this one ends, before the router hears of it (as in the worker)
    if (this.waiting > 0) this.startNext();
    done({ ok: true, outputs: NO_OUTPUTS, computeMs: ms });
    if (this.inFlight === 0 && this.settleStop) this.settleStop();
  }
}

export class SimCluster implements Cluster {
  readonly serviceRng: Xoshiro128;
  private readonly actuationRng: Xoshiro128;
  private readonly nodes: SimNode[];
  private readonly list = new Map<string, SimInstance>();
  private snapshot: SimInstance[] = [];
  /** Instances per "task/variant", kept as instances come and go (sampled every simulated second). */
  private readonly pairs = new Map<string, number>();
  private readonly listeners: (() => void)[] = [];
  private nextId = 1;
  private used = 0;
  /** Most cores held at any moment so far. */
  peakCoresInUse = 0;
  private readonly budget: number;
  /** ∫ cores in use dt, in core·ms, up to `integratedAt`. */
  private coreMs = 0;
  private integratedAt: number;
  /** Warm pool: workers ready, workers starting, how many to keep, and ∫ workers dt (worker·ms). */
  private poolReady = 0;
  private poolStarting = 0;
  private poolTarget: number;
  private poolMs = 0;
  private poolAt: number;

  constructor(
    readonly clock: VirtualClock,
    private readonly opts: SimClusterOptions,
  ) {
    if (opts.nodes.length === 0 || opts.nodes.some((c) => !Number.isInteger(c) || c < 1))
      throw new Error("every node needs a whole number of cores ≥ 1");
    const root = new Xoshiro128(opts.seed ?? 1);
    this.serviceRng = root.fork();
    this.actuationRng = root.fork();
    this.nodes = opts.nodes.map((cores, index) => ({ index, cores, used: 0, slowdown: 1 }));
    this.budget = opts.nodes.reduce((a, c) => a + c, 0);
    this.integratedAt = clock.now();
    this.poolAt = clock.now();
    this.poolTarget = opts.warmPool ?? 0;
    this.refillPool();
  }

  get pooled(): number {
    return this.poolReady;
  }

  get warmPoolSize(): number {
    return this.poolTarget;
  }

  setWarmPool(size: number): void {
    this.poolTarget = Math.max(0, Math.floor(size));
    if (this.poolReady > this.poolTarget) this.poolCount(this.poolTarget - this.poolReady, 0);
    this.refillPool();
  }

  /** Pool worker·ms from the clock's start until now (ready or starting: each is a process holding memory). */
  poolWorkerMsUntilNow(): number {
    return this.poolMs + (this.poolReady + this.poolStarting) * (this.clock.now() - this.poolAt);
  }

  private poolCount(ready: number, starting: number): void {
    const now = this.clock.now();
    this.poolMs += (this.poolReady + this.poolStarting) * (now - this.poolAt);
    this.poolAt = now;
    this.poolReady += ready;
    this.poolStarting += starting;
  }

  private refillPool(): void {
    while (this.poolReady + this.poolStarting < this.poolTarget) {
      if (this.opts.poolSpawn === undefined)
        throw new Error("a simulated warm pool needs poolSpawn: how long a pool worker takes to start");
      this.poolCount(0, 1);
      const ms = sampleDuration(this.opts.poolSpawn, this.actuationRng);
      this.clock.setTimer(this.clock.now() + ms, () => {
        // a worker beyond a target lowered meanwhile is stopped as it comes up
        this.poolCount(this.poolReady < this.poolTarget ? 1 : 0, -1);
      });
    }
  }

  get coreBudget(): number {
    return this.budget;
  }

  /** Cores of the largest node: the most one instance can have. */
  get maxCoresPerInstance(): number {
    return Math.max(...this.nodes.map((n) => n.cores));
  }

  coresInUse(): number {
    return this.used;
  }

  /** Core·ms spent from the clock's start until now (cores held by instances in any state). */
  coreMsUntilNow(): number {
    return this.coreMs + this.used * (this.clock.now() - this.integratedAt);
  }

  instances(): readonly Instance[] {
    return this.snapshot;
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Instances (any state but stopped) per "task/variant". */
  variantsInUse(): ReadonlyMap<string, number> {
    return this.pairs;
  }

  /** The node an instance runs on. */
  nodeOf(id: string): number | undefined {
    return this.list.get(id)?.node.index;
  }

  placeOf(id: string): string | undefined {
    const node = this.list.get(id)?.node;
    return node === undefined ? undefined : `node ${node.index}`;
  }

  /** Places an instance that is ready at once (the deployment a run starts from). */
  place(task: string, variant: string, cores: number): ActuationResult {
    const inst = this.admit(task, variant, cores);
    if (typeof inst === "string") return { ok: false, ms: 0, message: inst };
    inst.state = "ready";
    this.changed();
    return { ok: true, ms: 0, message: `placed ${inst.id} on node ${inst.node.index}`, instance: inst.id };
  }

  start(task: string, variant: string, cores: number): Promise<ActuationResult> {
    const inst = this.admit(task, variant, cores);
    if (typeof inst === "string") return Promise.resolve({ ok: false, ms: 0, message: inst });
    inst.warmStart = this.poolReady > 0 && inst.runtime.warmStart !== undefined;
    if (inst.warmStart) {
      this.poolCount(-1, 0);
      this.refillPool();
    }
    this.changed();
    const ms = sampleDuration(inst.warmStart ? inst.runtime.warmStart! : inst.runtime.coldStart, this.actuationRng);
    return new Promise<ActuationResult>((resolve) => {
      inst.settleStart = resolve;
      inst.startTimer = this.clock.setTimer(this.clock.now() + ms, () => {
        inst.startTimer = null;
        inst.settleStart = null;
        inst.state = "ready";
        this.changed();
        resolve({ ok: true, ms, message: `started ${inst.id} on node ${inst.node.index}`, instance: inst.id });
      });
    });
  }

  stop(id: string): Promise<ActuationResult> {
    const inst = this.list.get(id);
    if (!inst || inst.state === "stopped") return Promise.resolve({ ok: false, ms: 0, message: `no instance ${id}` });
    const t0 = this.clock.now();
    if (inst.state === "starting") {
      this.clock.clearTimer(inst.startTimer!);
      inst.settleStart?.({ ok: false, ms: 0, message: `instance ${id} was stopped while starting` });
      this.forget(inst);
      return Promise.resolve({ ok: true, ms: 0, message: `stopped ${id} before it was ready` });
    }
    if (inst.state === "draining")
      return Promise.resolve({ ok: false, ms: 0, message: `instance ${id} is already stopping` });
    inst.state = "draining";
    this.changed();
    return new Promise<ActuationResult>((resolve) => {
      const finish = () => {
        inst.settleStop = null;
        this.forget(inst);
        resolve({ ok: true, ms: this.clock.now() - t0, message: `stopped ${id}` });
      };
      if (inst.inFlight === 0) finish();
      else inst.settleStop = finish;
    });
  }

  resize(id: string, cores: number): Promise<ActuationResult> {
    const inst = this.list.get(id);
    if (!inst || inst.state !== "ready")
      return Promise.resolve({ ok: false, ms: 0, message: `instance ${id} is not ready` });
    if (inst.resizing) return Promise.resolve({ ok: false, ms: 0, message: `instance ${id} is already resizing` });
    if (!Number.isInteger(cores) || cores < 1)
      return Promise.resolve({ ok: false, ms: 0, message: `cores must be a whole number ≥ 1, got ${cores}` });
    if (cores === inst.cores) return Promise.resolve({ ok: true, ms: 0, message: "no change", instance: id });
    const node = inst.node;
    const grow = cores - inst.allocated;
    if (grow > node.cores - node.used) {
      return Promise.resolve({
        ok: false,
        ms: 0,
        message: `not enough cores to grow ${id} to ${cores} in place: ${node.cores - node.used} free on its node (${node.cores} cores)`,
      });
    }
    this.allocate(node, grow);
    inst.allocated = cores;
    inst.resizing = true;
    const ms = sampleDuration(inst.runtime.resize, this.actuationRng);
    return new Promise<ActuationResult>((resolve) => {
      this.clock.setTimer(this.clock.now() + ms, () => {
        inst.resizing = false;
        if (inst.state === "stopped") {
          resolve({ ok: false, ms, message: `instance ${id} stopped while resizing` });
          return;
        }
        inst.cores = cores;
        this.changed();
        resolve({ ok: true, ms, message: `resized ${id} to ${cores} cores in place`, instance: id });
      });
    });
  }

  /**
   * Fault injection: the instance dies now. Its batches fail (the router retries what can still make its
   * deadline elsewhere), its cores are freed, and, as the local backend does, a replacement of the same
   * shape cold-starts unless `replace` is false.
   */
  crash(id: string, replace = true): Promise<ActuationResult> | null {
    const inst = this.list.get(id);
    if (!inst || inst.state === "stopped") return null;
    if (inst.startTimer) this.clock.clearTimer(inst.startTimer);
    inst.settleStart?.({ ok: false, ms: 0, message: `instance ${id} died while starting` });
    this.forget(inst);
    inst.failAll(`instance ${id} died`);
    return replace ? this.start(inst.task, inst.variant, inst.cores) : null;
  }

  /** Only an instance made to hang is found hung; a slow one answers its probe. */
  suspect(id: string): void {
    if (this.list.get(id)?.hung) void this.crash(id);
  }

  /**
   * Fault injection: from now on every batch that starts on this node takes `factor` times as long (1 restores
   * its speed); batches already running keep their time.
   */
  slowNode(node: number, factor: number): void {
    const n = this.nodes[node];
    if (!n) throw new Error(`no node ${node}: the cluster has nodes 0..${this.nodes.length - 1}`);
    if (!(factor > 0)) throw new Error(`a slowdown factor must be > 0, got ${factor}`);
    n.slowdown = factor;
  }

  /** Fault injection: the same for one instance (a worker whose threads were halved behind the planner's back). */
  slowInstance(id: string, factor: number): void {
    const inst = this.list.get(id);
    if (!inst) throw new Error(`no instance ${id}`);
    if (!(factor > 0)) throw new Error(`a slowdown factor must be > 0, got ${factor}`);
    inst.slowdown = factor;
  }

  /** Fault injection: the instance stops answering (as a worker under SIGSTOP) until something fails it. */
  hang(id: string): void {
    this.list.get(id)?.hang();
  }

  /** Reserves cores for a new instance on the first node with room; an error message when none has. */
  private admit(task: string, variant: string, cores: number): SimInstance | string {
    if (!Number.isInteger(cores) || cores < 1) return `cores must be a whole number ≥ 1, got ${cores}`;
    const node =
      this.opts.placement === "pack" ? this.nodes.find((n) => n.cores - n.used >= cores) : this.mostFree(cores);
    if (!node) {
      const free = this.budget - this.used;
      return `not enough cores: ${cores} wanted, ${free} of ${this.budget} free${free >= cores ? " but no single node has that many" : ""}`;
    }
    const runtime = this.opts.runtime(task, variant);
    const inst = new SimInstance(`${task}/${variant}#${this.nextId++}`, task, variant, cores, node, runtime, this);
    this.allocate(node, cores);
    this.list.set(inst.id, inst);
    const key = `${task}/${variant}`;
    this.pairs.set(key, (this.pairs.get(key) ?? 0) + 1);
    return inst;
  }

  private mostFree(cores: number): SimNode | undefined {
    let best: SimNode | undefined;
    let bestFree = cores - 1;
    for (const n of this.nodes) {
      const free = n.cores - n.used;
      if (free > bestFree) {
        best = n;
        bestFree = free;
      }
    }
    return best;
  }

  private allocate(node: SimNode, cores: number): void {
    const now = this.clock.now();
    this.coreMs += this.used * (now - this.integratedAt);
    this.integratedAt = now;
    node.used += cores;
    this.used += cores;
    if (this.used > this.peakCoresInUse) this.peakCoresInUse = this.used;
  }

  private forget(inst: SimInstance): void {
    inst.state = "stopped";
    this.allocate(inst.node, -inst.allocated);
    inst.allocated = 0;
    this.list.delete(inst.id);
    const key = `${inst.task}/${inst.variant}`;
    const left = this.pairs.get(key)! - 1;
    if (left === 0) this.pairs.delete(key);
    else this.pairs.set(key, left);
    this.changed();
  }

  private changed(): void {
    this.snapshot = [...this.list.values()];
    for (const l of this.listeners) l();
  }
}
