// Profiles a variant as it will be deployed: in a worker process with `c` threads pinned to `c`
// cores, over a grid of batch sizes and core counts; plus cold start, in-place resize time and
// peak memory; then fits the latency models and returns a profile.json document.
import { subnetTableOf } from "../repository/subnets.js";
import fs from "node:fs/promises";
import path from "node:path";
import { loadInto, spawnWorker, type WorkerHandle } from "../cluster/local/worker-process.js";
import { defaultSubnetOf, type Profile, type ProfilePoint, type Stat } from "../repository/schema.js";
import type { Variant } from "../repository/repository.js";
import { batchGrid, coreGrid, describeMachine } from "./machine.js";
import { fitInfaas, fitLatency } from "../stats/latency-model.js";
import { quantile } from "../stats/quantile.js";
import { median } from "../stats/quantile.js";

export interface ProfileOptions {
  batches?: number[];
  cores?: number[];
  warmup?: number;
  /** Samples per grid point at least, and time budget per point (more samples while time allows). */
  minSamples?: number;
  budgetMs?: number;
  /** Cold starts to measure (one per core count comes free; extra spawns if fewer). */
  loadSamples?: number;
  /** Round trips of in-place resize (1 → max cores → 1) to time. */
  resizeRounds?: number;
  /** Starts from a warm-pool worker (model load only) to time (default 3). */
  warmLoadSamples?: number;
  onStep?: (done: number, total: number, label: string) => void;
}

export function profileSteps(variant: Variant, opts: ProfileOptions = {}): number {
  const batches = opts.batches ?? batchGrid(variant.config.max_batch);
  const cores = opts.cores ?? coreGrid();
  const subnets = Math.max(1, variant.config.subnets?.length ?? 0);
  return (
    batches.length * cores.length * subnets +
    (opts.resizeRounds ?? 3) +
    Math.max(0, (opts.loadSamples ?? 3) - cores.length) +
    (opts.warmLoadSamples ?? 3)
  );
}

export async function profileVariant(variant: Variant, opts: ProfileOptions = {}): Promise<Profile> {
  const batches = (opts.batches ?? batchGrid(variant.config.max_batch)).filter((b) => b <= variant.config.max_batch);
  const cores = opts.cores ?? coreGrid();
  const warmup = opts.warmup ?? 3;
  const minSamples = opts.minSamples ?? 7;
  const budgetMs = opts.budgetMs ?? 600;
  const loadSamples = opts.loadSamples ?? 3;
  const resizeRounds = opts.resizeRounds ?? 3;
  const total = profileSteps(variant, { ...opts, batches, cores });
  let done = 0;
  const step = (label: string) => opts.onStep?.(++done, total, `${variant.task}/${variant.name} ${label}`);

  // A supernet variant is measured subnet by subnet in the same worker; `undefined` = an ordinary variant.
  const subnets: (string | undefined)[] = variant.config.subnets?.map((s) => s.name) ?? [undefined];
  const defaultSubnet = defaultSubnetOf(variant.config)?.name;
  const pointsOf = new Map<string | undefined, ProfilePoint[]>(subnets.map((n) => [n, []]));
  const load: number[] = [];
  const resize: number[] = [];
  let peakRss = 0;
  const maxCores = Math.max(...cores);
  for (const c of cores) {
    const worker = await spawnWorker({
      modelPath: variant.modelPath,
      threads: c,
      cpus: range(c),
      subnets: subnetTableOf(variant.config),
    });
    try {
      load.push(worker.coldStartMs);
      for (const b of batches) {
        for (const subnet of subnets) {
          const { header } = await worker.client.call(
            "bench",
            subnet === undefined
              ? { batch: b, warmup, minSamples, budgetMs }
              : { batch: b, warmup, minSamples, budgetMs, subnet },
          );
          const s = header.samples;
          pointsOf.get(subnet)!.push({
            batch: b,
            cores: c,
            p50_ms: quantile(s, 0.5),
            p99_ms: quantile(s, 0.99),
            mean_ms: s.reduce((a, x) => a + x, 0) / s.length,
            samples: s.length,
          });
          step(subnet === undefined ? `b=${b} c=${c}` : `${subnet} b=${b} c=${c}`);
        }
      }
      if (c === 1 && maxCores > 1) resize.push(...(await timeResizes(worker, maxCores, resizeRounds, step)));
      peakRss = Math.max(peakRss, await peakRssOf(worker));
    } finally {
      await worker.stop();
    }
  }
  while (load.length < loadSamples) {
    const worker = await spawnWorker({
      modelPath: variant.modelPath,
      threads: 1,
      cpus: [0],
      subnets: subnetTableOf(variant.config),
    });
    load.push(worker.coldStartMs);
    await worker.stop();
    step("cold start");
  }
  const warmLoad = await timeWarmLoads(variant, opts.warmLoadSamples ?? 3, () => step("warm-pool start"));
  const points = pointsOf.get(defaultSubnet)!;
  const fitsOf = (pts: ProfilePoint[]) => ({
    fit: { p50: fitLatency(pts, "p50"), p99: fitLatency(pts, "p99"), mean: fitLatency(pts, "mean") },
    infaas: fitInfaas(pts, "p99"),
  });
  const subnetProfiles =
    defaultSubnet === undefined
      ? undefined
      : Object.fromEntries(subnets.map((n) => [n!, { points: pointsOf.get(n)!, ...fitsOf(pointsOf.get(n)!) }]));
  return {
    task: variant.task,
    variant: variant.name,
    measured_at: new Date().toISOString(),
    machine: describeMachine(),
    settings: { warmup, min_samples: minSamples, budget_ms: budgetMs },
    points,
    load_ms: stat(load),
    ...(warmLoad.length > 0 ? { warm_load_ms: stat(warmLoad) } : {}),
    resize_ms: stat(resize),
    peak_rss_mb: Math.round(peakRss * 10) / 10,
    ...fitsOf(points),
    ...(subnetProfiles ? { subnets: subnetProfiles } : {}),
  };
}

/**
 * The cold start of an instance that takes a warm-pool worker (started with onnxruntime loaded and no model):
 * the model's load and warm-up into it, as the local backend does it, `n` times on core 0.
 */
export async function timeWarmLoads(
  variant: Variant,
  n: number,
  step: () => void = () => undefined,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const pooled = await spawnWorker({ modelPath: null, threads: 1, cpus: [] });
    try {
      const loaded = await loadInto(pooled, {
        modelPath: variant.modelPath,
        threads: 1,
        cpus: [0],
        subnets: subnetTableOf(variant.config),
      });
      out.push(loaded.coldStartMs);
    } finally {
      await pooled.stop();
    }
    step();
  }
  return out;
}

/** Resize 1 → max → 1, `rounds` times, timing each direction as the worker sees it. */
async function timeResizes(
  worker: WorkerHandle,
  maxCores: number,
  rounds: number,
  step: (l: string) => void,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const up = await worker.client.call("resize", { threads: maxCores, cpus: range(maxCores) });
    const down = await worker.client.call("resize", { threads: 1, cpus: [0] });
    out.push(up.header.ms, down.header.ms);
    step(`resize ${i + 1}/${rounds}`);
  }
  return out;
}

async function peakRssOf(worker: WorkerHandle): Promise<number> {
  const { header } = await worker.client.call("stats");
  return header.peakRssMb;
}

function stat(xs: number[]): Stat {
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { p50: xs.length ? r(median(xs)) : 0, max: xs.length ? r(Math.max(...xs)) : 0, samples: xs.map(r) };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

export async function writeProfile(variant: Variant, profile: Profile): Promise<string> {
  const file = path.join(variant.dir, "profile.json");
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, JSON.stringify(profile, null, 2) + "\n");
  await fs.rename(tmp, file);
  return file;
}
