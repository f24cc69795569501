// Times scheduling decisions the way the router makes them: one nextBatch (plus, for INFaaS, the
// on-arrival selection of the requests it batches) against a realistic queue and 50 variants.
import { fittedModel } from "../../src/core/variant-model.js";
import { EdfPolicy } from "../../src/router/scheduling/edf.js";
import { FifoPolicy } from "../../src/router/scheduling/fifo.js";
import { InfaasPolicy } from "../../src/router/scheduling/infaas.js";
import type {
  InstanceView,
  PolicyContext,
  SchedulingPolicy,
  TaskModel,
  VariantModel,
} from "../../src/router/scheduling/types.js";
import { quantile } from "../../src/stats/quantile.js";
import { RequestQueue } from "../../src/router/queue.js";
import type { Request } from "../../src/router/request.js";
import { seededRandom } from "../../src/stats/random.js";

export interface DecisionTiming {
  policy: string;
  decisions: number;
  /** Per batch: nextBatch plus taking the batch off the queue. */
  p50_us: number;
  p99_us: number;
  mean_us: number;
  /** Per request, for policies that choose on arrival (INFaaS). */
  arrival_p50_us?: number;
  arrival_p99_us?: number;
}

/** 50 variants spanning a 20× latency range and 0.70–0.99 accuracy, l(b,c) in the Amdahl form. */
export function syntheticTask(variants = 50): TaskModel {
  const list: VariantModel[] = Array.from({ length: variants }, (_, i) => {
    const per = 0.2 + (i * 4) / variants;
    return fittedModel({
      name: `v${i}`,
      accuracy: 0.7 + (0.29 * i) / (variants - 1),
      maxBatch: 32,
      fit: { alpha: per, beta: 0.1, gamma: 0.5, zeta: 0.2 },
      loadMs: 300,
    });
  });
  return { name: "synthetic", sloMs: 100, variants: list };
}

export function timeDecisions(policy: SchedulingPolicy, count: number, queueLength = 64, seed = 1): DecisionTiming {
  const task = syntheticTask();
  const rand = seededRandom(seed);
  const byName = new Map(task.variants.map((v) => [v.name, v]));
  const instances: InstanceView[] = task.variants.map((v, i) => ({
    id: `i${i}`,
    variant: v.name,
    cores: 1 + (i % 4),
    inFlight: 0,
  }));
  let seq = 0;
  const mkRequest = (now: number): Request => ({
    seq: ++seq,
    id: String(seq),
    task: task.name,
    arrival: now,
    deadline: now + 20 + rand() * 200,
    priority: 1,
    rows: 1,
    minAccuracy: rand() < 0.5 ? 0 : 0.7 + rand() * 0.28,
    lateOk: false,
    input: null,
    done: () => undefined,
  });
  const queue = new RequestQueue(policy.order);
  let now = 0;
  const ctx = (): PolicyContext => ({
    now,
    task,
    variant: (n) => byName.get(n),
    instances,
    startAt: () => now,
    expectedStartAt: () => now,
  });
  for (let i = 0; i < queueLength; i++) {
    const r = mkRequest(now);
    policy.onArrival?.(r, ctx());
    queue.push(r);
  }
  const samples = new Float64Array(count);
  const arrivals: number[] = [];
  for (let k = 0; k < count; k++) {
    now += 0.05;
    const inst = instances[k % instances.length]!;
    const c = ctx();
    const t0 = process.hrtime.bigint();
    const next = policy.nextBatch(inst, queue, c);
    if (next.kind === "batch") {
      queue.remove(next.choice.take);
      queue.remove(next.choice.drop);
    }
    samples[k] = Number(process.hrtime.bigint() - t0) / 1000;
    while (queue.length < queueLength) {
      const r = mkRequest(now);
      if (policy.onArrival) {
        const t1 = process.hrtime.bigint();
        policy.onArrival(r, c);
        arrivals.push(Number(process.hrtime.bigint() - t1) / 1000);
      }
      queue.push(r);
    }
  }
  const arr = Array.from(samples);
  const out: DecisionTiming = {
    policy: policy.name,
    decisions: count,
    p50_us: quantile(arr, 0.5),
    p99_us: quantile(arr, 0.99),
    mean_us: arr.reduce((a, b) => a + b, 0) / count,
  };
  if (arrivals.length) {
    out.arrival_p50_us = quantile(arrivals, 0.5);
    out.arrival_p99_us = quantile(arrivals, 0.99);
  }
  return out;
}

export function timeAllPolicies(count: number): DecisionTiming[] {
  return [new EdfPolicy(), new FifoPolicy({ maxQueueDelayMs: 0 }), new InfaasPolicy()].map((p) => {
    timeDecisions(p, Math.min(count, 20_000), 64, 99); // warm the JIT
    return timeDecisions(p, count);
  });
}
