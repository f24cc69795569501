// npm run bench:supernet [-- --json] [--task vision-supernet|digits-supernet] [--rounds n]
//
// SubNetAct's two claims, measured on this machine:
//  - memory: resident memory (RSS) of a process holding the one supernet session, against a process
//    holding the same served subnets as separate sessions, each exported on its own with only its
//    weights (and, as deployed alone, one worker process per subnet); every process runs one warm
//    batch-1 of every subnet it serves before it is measured;
//  - switch time: batch-1 latency of the smallest subnet right after a batch of another subnet,
//    minus its latency right after a batch of itself (paired, median over rounds), against the
//    smallest subnet's batch-1 latency.
// The headline figures are the vision supernet's (ResNet-50 scale); the digits supernet's follow.
import { readSubnetTable } from "../../src/repository/subnets.js";
import { spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { spawnWorker } from "../../src/cluster/local/worker-process.js";
import { DEFAULT_MODELS_DIR, prepareZoo } from "../../src/bundled-zoo/prepare.js";
import { fmt } from "../../src/terminal/table.js";
import { Engine } from "../../src/engine/engine.js";
import { controlFeeds } from "../../src/engine/subnet-feeds.js";
import { median, quantileSorted } from "../../src/stats/quantile.js";
import { loadRepository, type Variant } from "../../src/repository/repository.js";
import { defaultSubnetOf } from "../../src/repository/schema.js";
import { buildSubnetModel, readWeightStore, type SupernetArch } from "../../src/zoo/supernet/build.js";
import { DIGITS_SUPERNET_ARCH } from "../../src/zoo/supernet/digits-arch.js";
import { VISION_SUPERNET_ARCH } from "../../src/zoo/supernet/vision-arch.js";
import { emit } from "../../src/terminal/report.js";

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    models: { type: "string", default: DEFAULT_MODELS_DIR },
    task: { type: "string", multiple: true },
    rounds: { type: "string", default: "100" },
    /** Internal: run as the measured child process (a JSON description of what to hold). */
    child: { type: "string" },
  },
});

const ARCHS: Record<string, SupernetArch> = {
  [VISION_SUPERNET_ARCH.task]: VISION_SUPERNET_ARCH,
  [DIGITS_SUPERNET_ARCH.task]: DIGITS_SUPERNET_ARCH,
};
const log = (m: string) => process.stderr.write(`${m}\n`);

interface ChildPlan {
  /** Model files to hold, each with the control sets to warm it with ([] = an ordinary model). */
  models: { file: string; controls: Record<string, number[]>[] }[];
}

/** The measured child: holds the sessions as a worker does (model bytes kept), warms every subnet, reports RSS. */
async function runChild(plan: ChildPlan): Promise<void> {
  const engines: Engine[] = [];
  for (const m of plan.models) {
    const bytes = await readFile(m.file); // a Buffer is a Uint8Array: no second copy of the weights
    const engine = await Engine.create(bytes, {
      threads: 1,
      controls: m.controls[0] ? controlFeeds(m.controls[0]) : undefined,
    });
    engines.push(engine);
    const feeds = engine.zeroFeeds(1);
    if (m.controls.length === 0) await engine.run(feeds);
    for (const c of m.controls) await engine.run({ ...feeds, ...controlFeeds(c) });
  }
  process.stdout.write(JSON.stringify({ rssMb: process.memoryUsage().rss / 2 ** 20, sessions: engines.length }) + "\n");
}

function childRss(plan: ChildPlan): Promise<number> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...process.execArgv, process.argv[1]!, "--child", JSON.stringify(plan)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    proc.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`measuring child exited with ${code}`));
      resolve((JSON.parse(out.trim().split("\n").pop()!) as { rssMb: number }).rssMb);
    });
  });
}

interface SupernetFigures {
  task: string;
  subnets: number;
  supernet_rss_mb: number;
  separate_rss_mb: number;
  memory_ratio: number;
  supernet_worker_rss_mb: number;
  separate_workers_rss_mb: number;
  worker_memory_ratio: number;
  supernet_file_mb: number;
  separate_files_mb: number;
  switch_us: number;
  switch_us_p90: number;
  /** Median |difference| of two back-to-back batches of the same subnet: the resolution of switch_us here. */
  noise_us: number;
  smallest_b1_ms: number;
  switch_fraction: number;
}

/** Paired switch cost: the smallest subnet after another subnet minus after itself, median over rounds. */
async function switchCost(
  v: Variant,
  rounds: number,
): Promise<{ switchUs: number[]; noiseUs: number[]; smallestMs: number[] }> {
  const subnets = v.config.subnets!;
  const smallest = controlFeeds(subnets[0]!.controls);
  const other = controlFeeds(subnets[1]!.controls);
  const engine = await Engine.create(await readFile(v.modelPath), { threads: 1, controls: smallest });
  try {
    const feeds = engine.zeroFeeds(1);
    const time = async (c: typeof smallest) => {
      const t = performance.now();
      await engine.run({ ...feeds, ...c });
      return performance.now() - t;
    };
    for (let i = 0; i < 5; i++) (await time(smallest), await time(other));
    const switchUs: number[] = [];
    const noiseUs: number[] = [];
    const smallestMs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      await time(smallest);
      const first = await time(smallest);
      const same = await time(smallest); // after a batch of itself: no switch
      await time(other);
      const switched = await time(smallest); // right after a switch
      switchUs.push((switched - same) * 1000);
      noiseUs.push((same - first) * 1000); // the same difference with no switch: what the machine's noise alone gives
      smallestMs.push(same);
    }
    return { switchUs, noiseUs, smallestMs };
  } finally {
    await engine.close();
  }
}

async function measure(v: Variant, rounds: number, scratch: string): Promise<SupernetFigures> {
  const arch = ARCHS[v.task]!;
  const subnets = v.config.subnets!;
  const bytes = new Uint8Array(await readFile(v.modelPath));
  const store = readWeightStore(bytes);
  const dir = path.join(scratch, v.task);
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  let separateBytes = 0;
  for (const s of subnets) {
    const lone = buildSubnetModel(arch, store, s.controls.subnet_index![0]!);
    const file = path.join(dir, `${s.name}.onnx`);
    await writeFile(file, lone);
    files.push(file);
    separateBytes += lone.byteLength;
  }
  log(`${v.task}: measuring resident memory (supernet vs ${subnets.length} separate sessions)`);
  const controls = [defaultSubnetOf(v.config)!, ...subnets].map((s) => s.controls);
  const supernetRss = median([
    await childRss({ models: [{ file: v.modelPath, controls }] }),
    await childRss({ models: [{ file: v.modelPath, controls }] }),
  ]);
  const separatePlan = { models: files.map((file) => ({ file, controls: [] })) };
  const separateRss = median([await childRss(separatePlan), await childRss(separatePlan)]);

  log(`${v.task}: measuring worker processes (one supernet worker vs one worker per subnet)`);
  const workerRss = async (modelPath: string, subnetNames: string[]): Promise<number> => {
    const w = await spawnWorker({ modelPath, threads: 1, cpus: [], subnets: await readSubnetTable(modelPath) });
    try {
      for (const subnet of subnetNames)
        await w.client.call("bench", { batch: 1, warmup: 0, minSamples: 1, budgetMs: 0, subnet });
      return (await w.client.call("stats")).header.rssMb;
    } finally {
      await w.stop();
    }
  };
  const supernetWorker = await workerRss(
    v.modelPath,
    subnets.map((s) => s.name),
  );
  let separateWorkers = 0;
  for (const f of files) separateWorkers += await workerRss(f, []);

  log(`${v.task}: measuring the subnet switch (${rounds} paired rounds)`);
  const { switchUs, noiseUs, smallestMs } = await switchCost(v, rounds);
  const sw = median(switchUs);
  const smallest = median(smallestMs);
  const sorted = [...switchUs].sort((a, b) => a - b);
  return {
    task: v.task,
    subnets: subnets.length,
    supernet_rss_mb: supernetRss,
    separate_rss_mb: separateRss,
    memory_ratio: separateRss / supernetRss,
    supernet_worker_rss_mb: supernetWorker,
    separate_workers_rss_mb: separateWorkers,
    worker_memory_ratio: separateWorkers / supernetWorker,
    supernet_file_mb: bytes.byteLength / 2 ** 20,
    separate_files_mb: separateBytes / 2 ** 20,
    switch_us: sw,
    switch_us_p90: quantileSorted(sorted, 0.9),
    noise_us: median(noiseUs.map(Math.abs)),
    smallest_b1_ms: smallest,
    switch_fraction: sw / 1000 / smallest,
  };
}

async function main(): Promise<void> {
  if (values.child) return runChild(JSON.parse(values.child) as ChildPlan);
  await prepareZoo(values.models!, log);
  const tasks = values.task ?? [VISION_SUPERNET_ARCH.task, DIGITS_SUPERNET_ARCH.task];
  const repo = await loadRepository(path.resolve(values.models!), { tasks });
  const scratch = path.resolve(".sloserve/bench-supernet");
  const results: SupernetFigures[] = [];
  for (const task of tasks) {
    const v = [...repo.tasks.get(task)!.variants.values()].find((x) => x.config.subnets);
    if (!v) throw new Error(`task '${task}' has no supernet variant`);
    results.push(await measure(v, Number(values.rounds), scratch));
  }
  const head = results[0]!;
  const figures: Record<string, unknown> = {
    memory_ratio: head.memory_ratio,
    supernet_rss_mb: head.supernet_rss_mb,
    separate_rss_mb: head.separate_rss_mb,
    switch_us: head.switch_us,
    smallest_b1_ms: head.smallest_b1_ms,
    switch_fraction: head.switch_fraction,
    noise_us: head.noise_us,
    headline_task: head.task,
    goals: { memory_ratio_at_least: 2.6, switch_fraction_at_most: 0.01 },
    by_task: results,
  };
  emit(
    {
      title: "bench:supernet — one SubNetAct supernet session vs the same subnets as separate sessions",
      tables: [
        {
          head: [
            "task",
            "subnets",
            "supernet RSS MB",
            "separate RSS MB",
            "memory ratio",
            "worker RSS MB (1 vs per-subnet)",
            "worker ratio",
            "files MB (1 vs sum)",
          ],
          rows: results.map((r) => [
            r.task,
            String(r.subnets),
            fmt(r.supernet_rss_mb),
            fmt(r.separate_rss_mb),
            `${r.memory_ratio.toFixed(2)}×`,
            `${fmt(r.supernet_worker_rss_mb)} vs ${fmt(r.separate_workers_rss_mb)}`,
            `${r.worker_memory_ratio.toFixed(2)}×`,
            `${fmt(r.supernet_file_mb)} vs ${fmt(r.separate_files_mb)}`,
          ]),
        },
        {
          head: [
            "task",
            "switch µs (median)",
            "switch µs (p90)",
            "noise µs (same subnet twice)",
            "smallest subnet b1 ms",
            "switch / b1",
          ],
          rows: results.map((r) => [
            r.task,
            fmt(r.switch_us),
            fmt(r.switch_us_p90),
            fmt(r.noise_us),
            fmt(r.smallest_b1_ms),
            `${(r.switch_fraction * 100).toFixed(3)} %`,
          ]),
        },
      ],
      figures,
      notes: [
        `memory_ratio = separate_rss_mb / supernet_rss_mb, each one process holding its session(s) with the model bytes (as a worker does), after a warm batch-1 of every subnet; goal ≥ 2.6×.`,
        `switch_us = median over rounds of (smallest subnet's batch-1 right after another subnet − right after itself); goal ≤ 1 % of smallest_b1_ms. A switch feeds other prebuilt control tensors: no session, no load. noise_us = median |difference| of two batches of the same subnet in a row: a switch_us within it is no measurable cost.`,
      ],
    },
    values.json!,
  );
}

await main();
