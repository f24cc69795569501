// Triton's dynamic batcher: arrival order, a preferred (max) batch size and a maximum queue delay
// counted from the oldest request. It knows nothing of deadlines, which is the gap sloserve closes;
// expired requests are still answered by the router's own deadline check.
import type { RequestQueue } from "../queue.js";
import type { Request } from "../request.js";
import { eligible, type InstanceView, type NextBatch, type PolicyContext, type SchedulingPolicy } from "./types.js";

export interface FifoOptions {
  /** Triton's max_queue_delay_microseconds, in ms. */
  maxQueueDelayMs: number;
  /** Cap below the variant's max_batch (Triton's preferred_batch_size); default: max_batch. */
  maxBatch?: number;
}

export class FifoPolicy implements SchedulingPolicy {
  readonly name = "fifo";
  readonly order = "arrival" as const;

  constructor(private readonly opts: FifoOptions = { maxQueueDelayMs: 1 }) {}

  nextBatch(inst: InstanceView, queue: RequestQueue, ctx: PolicyContext): NextBatch {
    const v = ctx.variant(inst.variant);
    if (!v) return { kind: "idle" };
    const cap = Math.min(v.maxBatch, this.opts.maxBatch ?? Infinity);
    const take: Request[] = [];
    let rows = 0;
    let oldest = Infinity;
    for (let i = 0; i < queue.length; i++) {
      const r = queue.at(i)!;
      if (!eligible(r, v)) continue;
      if (rows + r.rows > cap) {
        if (take.length === 0) take.push(r); // a request larger than the cap still runs, alone
        break;
      }
      take.push(r);
      rows += r.rows;
      oldest = Math.min(oldest, r.arrival);
    }
    if (take.length === 0) return { kind: "idle" };
    const full = rows >= cap || take.length < countEligible(queue, v, take.length + 1);
    if (full || ctx.now >= oldest + this.opts.maxQueueDelayMs)
      return { kind: "batch", choice: { variant: v.name, take, drop: [] } };
    return { kind: "wait", until: oldest + this.opts.maxQueueDelayMs };
  }
}

/** Counts eligible requests up to `limit` (to know whether the cap, not the queue, ended the batch). */
function countEligible(queue: RequestQueue, v: Parameters<typeof eligible>[1], limit: number): number {
  let n = 0;
  for (let i = 0; i < queue.length && n < limit; i++) if (eligible(queue.at(i)!, v)) n++;
  return n;
}
