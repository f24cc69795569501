// Capacity on demand, for tasks that have no instance able to serve a request: start one if cores
// are free, otherwise make room by stopping the least recently used idle instance of other work.
// This is what lets a 2-core machine serve a whole zoo; the autoscaler sizes things once traffic flows.
import type { Cluster } from "../cluster/types.js";
import type { TaskModel, VariantModel } from "../router/scheduling/types.js";
import { eligible } from "../router/scheduling/types.js";
import type { Clock } from "../cluster/clock.js";
import type { Request } from "../router/request.js";

export interface IdleProbe {
  queueLength(task: string): number;
  lastUsed(instanceId: string): number;
}

/** How long an instance must have been unused before the autoscaler may take its cores. */
export const RECLAIM_IDLE_MS = 30_000;

export class OnDemandScaler {
  private readonly pending = new Set<string>();

  constructor(
    private readonly cluster: Cluster,
    private readonly tasks: ReadonlyMap<string, TaskModel>,
    private readonly probe: IdleProbe,
    private readonly clock: Clock,
    private readonly log: (e: Record<string, unknown>) => void = () => undefined,
    /** An instance counts as idle after this long without a batch. */
    private readonly idleMs = 1000,
  ) {}

  /** Chooses the variant for `r` and makes sure an instance of it is ready or coming. */
  demand(task: string, r: Request): boolean {
    const model = this.tasks.get(task);
    if (!model) return false;
    const variant = this.pick(model, r);
    if (!variant) return false;
    const key = `${task}/${variant.name}`;
    if (this.pending.has(key)) return true;
    if (this.cluster.coreBudget - this.cluster.coresInUse() >= 1) {
      this.launch(key, task, variant.name, null);
      return true;
    }
    const victim = this.idle()[0];
    if (victim) {
      this.launch(key, task, variant.name, victim.id);
      return true;
    }
    // every core busy and nobody idle: share a core (slower for both) rather than refuse the request
    if (!this.cluster.sharesCores) return false;
    this.launch(key, task, variant.name, null);
    return true;
  }

  /** Ready instances nobody has used for `minIdleMs`, least recently used first. */
  private idle(exceptTask?: string, minIdleMs = this.idleMs) {
    return this.cluster
      .instances()
      .filter(
        (i) =>
          i.task !== exceptTask &&
          i.state === "ready" &&
          i.inFlight === 0 &&
          this.probe.queueLength(i.task) === 0 &&
          this.clock.now() - this.probe.lastUsed(i.id) >= minIdleMs,
      )
      .sort((a, b) => this.probe.lastUsed(a.id) - this.probe.lastUsed(b.id));
  }

  /**
   * Frees up to `cores` cores for `task`'s autoscaler by stopping instances of other tasks that have
   * been idle for RECLAIM_IDLE_MS, least recently used first (they come back on demand). Longer than the
   * demand path's second: a pipeline's other stage or a task between bursts must not pay cold starts
   * for a neighbour's growth. Returns the cores freed.
   */
  async reclaim(cores: number, task: string): Promise<number> {
    let freed = 0;
    for (const victim of this.idle(task, RECLAIM_IDLE_MS)) {
      if (freed >= cores) break;
      const stopped = await this.cluster.stop(victim.id);
      if (!stopped.ok) continue;
      freed += victim.cores;
      this.log({ event: "evicted", instance: victim.id, for: `${task} (autoscaler)`, ms: stopped.ms });
    }
    return freed;
  }

  private launch(key: string, task: string, variant: string, evict: string | null): void {
    this.pending.add(key);
    const run = async () => {
      if (evict) {
        const stopped = await this.cluster.stop(evict);
        this.log({ event: "evicted", instance: evict, for: key, ms: stopped.ms });
      }
      const started = await this.cluster.start(task, variant, 1);
      this.log({ event: "started_on_demand", task, variant, ok: started.ok, ms: started.ms, message: started.message });
    };
    void run().finally(() => this.pending.delete(key));
  }

  /** The cheapest variant that may serve `r` and fits its budget on one core; else the fastest. */
  private pick(model: TaskModel, r: Request): VariantModel | undefined {
    const budget = r.deadline - this.clock.now();
    // a start takes a warm-pool worker when one is ready: it then loads its model only
    const warm = (this.cluster.pooled ?? 0) > 0;
    let fits: VariantModel | undefined;
    let fastest: VariantModel | undefined;
    for (const v of model.variants) {
      if (!eligible(r, v)) continue;
      const lat = v.latency(r.rows, 1);
      const load = warm ? (v.warmLoadMs ?? v.loadMs) : v.loadMs;
      if (!fastest || lat < fastest.latency(r.rows, 1)) fastest = v;
      if (lat + load <= budget && (!fits || lat < fits.latency(r.rows, 1))) fits = v;
    }
    return fits ?? fastest;
  }
}
