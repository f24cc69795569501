// Sponge's scheduler: earliest deadline first, and the largest batch that still meets the most
// urgent eligible request's deadline on this instance according to the profile.
import type { RequestQueue } from "../queue.js";
import type { Request } from "../request.js";
import {
  eligible,
  onInstance,
  type InstanceView,
  type NextBatch,
  type PolicyContext,
  type SchedulingPolicy,
  type VariantModel,
} from "./types.js";

/** No request to drop (shared: most batches drop nothing). */
const NOTHING: Request[] = [];

export class EdfPolicy implements SchedulingPolicy {
  readonly name = "edf";
  readonly order = "deadline" as const;

  nextBatch(inst: InstanceView, queue: RequestQueue, ctx: PolicyContext): NextBatch {
    const v = ctx.variant(inst.variant);
    if (!v) return { kind: "idle" };
    return takeByDeadline(inst, onInstance(v, inst), queue, ctx.startAt(inst));
  }
}

/**
 * Walks the queue in order, skipping requests this variant may not serve. The first eligible
 * request sets the budget: rows are added while l(rows, c) still ends before its deadline, the batch
 * starting at `start` (now on an idle instance, later in a prefetch slot behind a running batch). A
 * head request that cannot finish in time even alone is dropped here (unless it may be served late;
 * the router keeps it if another instance can still make it).
 */
export function takeByDeadline(inst: InstanceView, v: VariantModel, queue: RequestQueue, start: number): NextBatch {
  const take: Request[] = [];
  let drop: Request[] = NOTHING;
  let rows = 0;
  let budget = Infinity;
  for (let i = 0; i < queue.length; i++) {
    const r = queue.at(i)!;
    if (!eligible(r, v)) continue;
    if (take.length === 0) {
      const alone = v.latency(r.rows, inst.cores);
      if (start + alone > r.deadline && !r.lateOk) {
        if (drop === NOTHING) drop = [];
        drop.push(r);
        continue;
      }
      budget = r.deadline - start;
    }
    const next = rows + r.rows;
    if (next > v.maxBatch) break;
    if (take.length > 0 && v.latency(next, inst.cores) > budget) break;
    take.push(r);
    rows = next;
  }
  if (take.length === 0) return { kind: "idle", drop };
  return { kind: "batch", choice: { variant: v.name, take, drop, predictedMs: v.latency(rows, inst.cores) } };
}
