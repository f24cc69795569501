// INFaaS' model-less selection on arrival (EXPERIMENTS.md): keep variants that meet the accuracy
// floor and whose predicted latency fits the request's budget; among loaded ones that are not
// overloaded, take the one with the smallest positive slack (the cheapest that still makes it);
// if none is loaded, the cheapest loadable one counting its load time. Batches then follow EDF
// within each variant.
import type { RequestQueue } from "../queue.js";
import type { Request } from "../request.js";
import { takeByDeadline } from "./edf.js";
import {
  onInstance,
  type InstanceView,
  type NextBatch,
  type PolicyContext,
  type SchedulingPolicy,
  type VariantModel,
} from "./types.js";

/** CPU defaults of INFaaS' overloaded/interfered flag. */
export const INFAAS_THRESHOLDS = {
  latencyFactor: 2.5,
  qpsFactor: 0.5,
  backlogFactor: 0.8,
  clearLatencyFactor: 1.5,
} as const;

interface VariantLoad {
  completedRows: number;
  latencySumMs: number;
  batches: number;
  overloaded: boolean;
}

export class InfaasPolicy implements SchedulingPolicy {
  readonly name = "infaas";
  readonly order = "deadline" as const;
  private readonly load = new Map<string, VariantLoad>();
  private lastTick = Number.NaN;

  isOverloaded(variant: string): boolean {
    return this.load.get(variant)?.overloaded ?? false;
  }

  onArrival(r: Request, ctx: PolicyContext): void {
    if (r.pinned) return;
    const budget = r.deadline - ctx.now;
    let best: VariantModel | undefined;
    let bestSlack = Infinity;
    let loadable: VariantModel | undefined;
    let loadableCost = Infinity;
    let fallback: VariantModel | undefined;
    let fallbackLat = Infinity;
    for (const v of ctx.task.variants) {
      if (v.accuracy < r.minAccuracy || (r.allowed && !r.allowed.has(v.name))) continue;
      const cores = coresOf(v.name, ctx.instances);
      const lat = v.latency(r.rows, cores || 1);
      if (cores > 0 && lat < fallbackLat) {
        fallback = v;
        fallbackLat = lat;
      }
      const slack = budget - lat;
      if (slack <= 0) continue;
      if (cores > 0 && !this.isOverloaded(v.name)) {
        if (slack < bestSlack) {
          best = v;
          bestSlack = slack;
        }
      } else if (cores === 0 && slack - v.loadMs > 0 && lat + v.loadMs < loadableCost) {
        loadable = v;
        loadableCost = lat + v.loadMs;
      }
    }
    const chosen = best ?? loadable ?? fallback;
    if (!chosen) return; // no variant meets the floor: left unassigned; the router answers it
    // an assignment to a variant nothing runs is started by the router's demand hook (the on-demand scaler)
    r.assigned = chosen.name;
  }

  nextBatch(inst: InstanceView, queue: RequestQueue, ctx: PolicyContext): NextBatch {
    const v = ctx.variant(inst.variant);
    if (!v) return { kind: "idle" };
    return takeByDeadline(inst, onInstance(v, inst), queue, ctx.startAt(inst));
  }

  onBatchDone(variant: string, rows: number, computeMs: number): void {
    const s = this.stateOf(variant);
    s.completedRows += rows;
    s.latencySumMs += computeMs;
    s.batches += 1;
  }

  /** The once-a-second overload check; `queue` gives each variant's backlog. */
  tick(ctx: PolicyContext, queue?: RequestQueue): void {
    const elapsedS = Number.isNaN(this.lastTick) ? 1 : Math.max((ctx.now - this.lastTick) / 1000, 1e-3);
    this.lastTick = ctx.now;
    const backlog = new Map<string, number>();
    for (const r of queue ?? []) if (r.assigned) backlog.set(r.assigned, (backlog.get(r.assigned) ?? 0) + 1);
    for (const v of ctx.task.variants) {
      const s = this.stateOf(v.name);
      const instances = ctx.instances.filter((i) => i.variant === v.name);
      const predicted = v.latency(1, Math.max(1, ...instances.map((i) => i.cores)));
      const avg = s.batches > 0 ? s.latencySumMs / s.batches : 0;
      const qps = s.completedRows / elapsedS;
      const perInstance = 1000 / predicted;
      const waiting = backlog.get(v.name) ?? 0;
      const T = INFAAS_THRESHOLDS;
      const slowUnderLoad = avg > T.latencyFactor * predicted && qps > T.qpsFactor * perInstance;
      const backedUp = waiting > T.backlogFactor * Math.max(1, instances.length) * perInstance;
      if (!s.overloaded && (slowUnderLoad || backedUp)) s.overloaded = true;
      else if (s.overloaded && !backedUp && avg < T.clearLatencyFactor * predicted) s.overloaded = false;
      s.completedRows = 0;
      s.latencySumMs = 0;
      s.batches = 0;
    }
  }

  private stateOf(variant: string): VariantLoad {
    let s = this.load.get(variant);
    if (!s) {
      s = { completedRows: 0, latencySumMs: 0, batches: 0, overloaded: false };
      this.load.set(variant, s);
    }
    return s;
  }
}

function coresOf(variant: string, instances: readonly InstanceView[]): number {
  let c = 0;
  for (const i of instances) if (i.variant === variant && i.cores > c) c = i.cores;
  return c;
}
