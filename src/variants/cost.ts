// What a variant costs to run, measured so that other work on the machine does not distort it: CPU
// time per inference (user + system time of this process across a run) with one intra-op thread,
// median of many runs. Wall-clock latency on a shared machine moves with its neighbours; CPU time
// moves far less, and it is the figure the Pareto front is cut on (profile.json keeps wall times).
import ort from "onnxruntime-node";
import { Engine } from "../engine/engine.js";
import { quantile } from "../stats/quantile.js";

export interface CpuCost {
  /** Median CPU milliseconds per inference. */
  cpuMs: number;
  runs: number;
}

export async function cpuCostPerRun(
  bytes: Uint8Array,
  batch = 1,
  opts: { runs?: number; warmup?: number } = {},
): Promise<CpuCost> {
  const engine = await Engine.create(bytes, { threads: 1 });
  try {
    const feeds = engine.zeroFeeds(batch) as Record<string, ort.Tensor>;
    for (let i = 0; i < (opts.warmup ?? 2); i++) await engine.run(feeds);
    const samples: number[] = [];
    const runs = opts.runs ?? 15;
    for (let i = 0; i < runs; i++) {
      const before = process.cpuUsage();
      await engine.run(feeds);
      const d = process.cpuUsage(before);
      samples.push((d.user + d.system) / 1000);
    }
    return { cpuMs: quantile(samples, 0.5), runs };
  } finally {
    await engine.close();
  }
}
