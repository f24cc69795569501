// What a profile was measured on, so that a profile from another machine is recognisable.
import os from "node:os";
import { createRequire } from "node:module";
import type { Machine } from "../repository/schema.js";

const require = createRequire(import.meta.url);

export function describeMachine(): Machine {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? "unknown",
    cores: os.availableParallelism(),
    memory_gb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    onnxruntime: (require("onnxruntime-node/package.json") as { version: string }).version,
  };
}

/** Core counts to profile: Themis' grid {1,2,4,6,8} (and the machine's total) up to what exists. */
export function coreGrid(available = os.availableParallelism()): number[] {
  const grid = new Set([1, 2, 4, 6, 8].filter((c) => c <= available));
  if (available <= 8) grid.add(available);
  return [...grid].sort((a, b) => a - b);
}

export function batchGrid(maxBatch: number): number[] {
  const out: number[] = [];
  for (let b = 1; b <= Math.min(maxBatch, 64); b *= 2) out.push(b);
  return out;
}
