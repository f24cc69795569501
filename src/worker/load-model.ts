// Loading a model into a worker: the session with its thread count (and a supernet's default subnet),
// warmed by one batch. What a cold start spends after the process is up; a pooled worker does only this.
import fs from "node:fs/promises";
import { Engine } from "../engine/engine.js";
import { controlFeeds } from "../engine/subnet-feeds.js";
import type { SubnetTable } from "../engine/subnets.js";

export interface LoadedModel {
  engine: Engine;
  subnets: SubnetTable | null;
  sessionMs: number;
  warmupMs: number;
}

export async function loadModel(modelPath: string, threads: number, subnets: SubnetTable | null): Promise<LoadedModel> {
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a positive integer, got ${threads}`);
  const t0 = performance.now();
  const bytes = await fs.readFile(modelPath);
  // A supernet variant: its default subnet's control values go with every batch that names no subnet.
  const controls = subnets ? controlFeeds(subnets.controls[subnets.defaultName]!) : undefined;
  const engine = await Engine.create(bytes, { threads, controls });
  const sessionMs = performance.now() - t0;
  await engine.run(engine.zeroFeeds(1));
  return { engine, subnets, sessionMs, warmupMs: performance.now() - t0 - sessionMs };
}
