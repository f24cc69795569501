// The router's unit tests on virtual time: task "t" with one variant "v" that takes 100 ms per batch of up
// to 4 rows whatever the cores (the simulator's timing and the policy's prediction agree), a 500-ms cold start
// (`warmLoadMs` from the warm pool); and its requests: one row, due 1 s after now unless `over` says otherwise.
import type { Request } from "../../src/router/request.js";
import type { Router } from "../../src/router/router.js";
import type { Clock } from "../../src/cluster/clock.js";
import { fittedModel } from "../../src/core/variant-model.js";
import type { LatencyParams } from "../../src/stats/latency-model.js";
import type { TaskModel } from "../../src/router/scheduling/types.js";

export function request(router: Router, clock: Clock, done: Request["done"], over: Partial<Request> = {}): Request {
  const seq = router.nextSeq();
  return {
    seq,
    id: String(seq),
    task: "t",
    arrival: clock.now(),
    deadline: clock.now() + 1000,
    priority: 1,
    rows: 1,
    minAccuracy: 0,
    lateOk: false,
    input: null,
    done,
    ...over,
  };
}

/** `fit` replaces the 100-ms-per-batch latency fit (e.g. a per-row cost that depends on the cores). */
export function oneVariantTask(
  warmLoadMs?: number,
  fit: LatencyParams = { alpha: 0, beta: 0, gamma: 0, zeta: 100 },
): TaskModel {
  return {
    name: "t",
    sloMs: 1000,
    variants: [
      fittedModel({
        name: "v",
        accuracy: 0.9,
        maxBatch: 4,
        fit,
        loadMs: 500,
        warmLoadMs,
      }),
    ],
  };
}
