// What one instance of a variant carries, read off its profile, as an operator sizing Knative's
// containerConcurrency or Ray Serve's target_ongoing_requests would measure it: the batch b* with the most
// throughput whose batch still meets the SLO when it waits behind one running batch (2·l(b,c) ≤ SLO), and
// the requests such an instance holds at that throughput — one batch running, one full batch queued.
import type { VariantModel } from "../../router/scheduling/types.js";

export interface InstanceCapacity {
  /** Batch of the highest throughput within the SLO. */
  batch: number;
  /** Requests per second at that batch. */
  throughput: number;
  /** Requests in flight (queued + running) at that throughput: 2·b*. */
  concurrency: number;
}

export function instanceCapacity(v: VariantModel, sloMs: number, cores = 1): InstanceCapacity {
  let best: InstanceCapacity = { batch: 1, throughput: 1000 / v.latency(1, cores), concurrency: 2 };
  for (let b = 1; b <= v.maxBatch; b++) {
    const l = v.latency(b, cores);
    if (2 * l > sloMs) break;
    const h = (1000 * b) / l;
    if (h > best.throughput) best = { batch: b, throughput: h, concurrency: 2 * b };
  }
  return best;
}
