// A task made for pressure tests: a small input (16 KB a row) and a compute-bound body of 3×3 convolutions,
// so that one core serves a few dozen requests a second. Overload then means hundreds of requests a second,
// which a load generator and the gateway on this 2-core machine can offer, instead of tens of thousands of
// digits. Built by code with seeded weights, profiled like any variant (its l(b,c) is measured, not assumed),
// and cached in the OS's temp folder between test files and benchmark runs.
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { profileVariant, writeProfile } from "../../src/profiler/profiler.js";
import { loadRepository } from "../../src/repository/repository.js";
import { seededRandom } from "../../src/stats/random.js";
import { DType, GraphBuilder, heNormal } from "../../src/zoo/onnx-builder.js";

export const BURN_TASK = "burn";
export const BURN_VARIANT = "conv";
export const BURN_ROW = [16, 32, 32];

const WIDTH = 128;

/**
 * `layers` 128-channel 3×3 convolutions on 32×32 (~150 M multiply-adds per row each); every layer after the
 * first shares one weight tensor, so the file stays small whatever the depth.
 */
export function burnModel(layers: number): Uint8Array {
  const g = new GraphBuilder("burn");
  const rand = seededRandom(11);
  let x = g.input("x", DType.FLOAT, ["batch", ...BURN_ROW]);
  const first = g.weight("w", heNormal(rand, WIDTH * BURN_ROW[0]! * 9, BURN_ROW[0]! * 9), [WIDTH, BURN_ROW[0]!, 3, 3]);
  const shared = g.weight("w", heNormal(rand, WIDTH * WIDTH * 9, WIDTH * 9), [WIDTH, WIDTH, 3, 3]);
  for (let i = 0; i < layers; i++) {
    const conv = g.op("Conv", [x, i === 0 ? first : shared], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
    x = g.op("Relu", [conv]);
  }
  const pooled = g.op("Flatten", [g.op("GlobalAveragePool", [x])], { axis: 1 });
  const fc = g.weight("fc", heNormal(rand, WIDTH * 10, WIDTH), [WIDTH, 10]);
  g.rename(g.op("Softmax", [g.op("MatMul", [pooled, fc])], { axis: 1 }), "probabilities");
  g.output("probabilities", DType.FLOAT, ["batch", 10]);
  return g.toModel();
}

const TASK_YAML = (o: BurnOptions) => `name: ${BURN_TASK}
description: Pressure-test load (128-channel 3x3 convolutions on a 16x32x32 input, seeded weights; outputs meaningless).
inputs:
  - name: x
    datatype: FP32
    shape: [${BURN_ROW.join(", ")}]
outputs:
  - name: probabilities
    datatype: FP32
    shape: [10]
slo_ms: ${o.sloMs}
scheduling: edf
scaling: none
max_queue: ${o.maxQueue}
${o.scaleToZeroAfterS === undefined ? "" : `scale_to_zero_after: ${o.scaleToZeroAfterS}\n`}`;

const VARIANT_YAML = `name: ${BURN_VARIANT}
max_batch: 4
accuracy:
  value: 0.5
  source: declared
  reference: a load for pressure tests; its outputs mean nothing
`;

export interface BurnOptions {
  layers: number;
  sloMs: number;
  maxQueue: number;
  scaleToZeroAfterS?: number;
}

/**
 * A model repository holding the burn task (and nothing else), profiled on 1 core at batches 1-4. The model
 * and its profile are made once per layer count and reused; the task.yaml is written for each caller.
 */
export async function burnRepository(o: BurnOptions): Promise<string> {
  const cache = path.join(os.tmpdir(), `sloserve-burn-w${WIDTH}-${o.layers}`);
  const profiled = path.join(cache, "profile.json");
  const model = path.join(cache, "model.onnx");
  if (!existsSync(profiled)) {
    const scratch = await fs.mkdtemp(path.join(os.tmpdir(), "sloserve-burn-profile-"));
    try {
      const dir = path.join(scratch, BURN_TASK, BURN_VARIANT);
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(scratch, BURN_TASK, "task.yaml"), TASK_YAML(o));
      await fs.writeFile(path.join(dir, "variant.yaml"), VARIANT_YAML);
      await fs.writeFile(path.join(dir, "model.onnx"), burnModel(o.layers));
      const repo = await loadRepository(scratch);
      const v = repo.tasks.get(BURN_TASK)!.variants.get(BURN_VARIANT)!;
      await writeProfile(
        v,
        await profileVariant(v, { batches: [1, 2, 4], cores: [1, 2], budgetMs: 400, resizeRounds: 1 }),
      );
      await fs.mkdir(cache, { recursive: true });
      await fs.copyFile(path.join(dir, "model.onnx"), `${model}.tmp`);
      await fs.rename(`${model}.tmp`, model);
      await fs.copyFile(path.join(dir, "profile.json"), `${profiled}.tmp`);
      await fs.rename(`${profiled}.tmp`, profiled);
    } finally {
      await fs.rm(scratch, { recursive: true, force: true });
    }
  }
  const root = await fs.mkdtemp(path.join(os.tmpdir(), "sloserve-burn-repo-"));
  const dir = path.join(root, BURN_TASK, BURN_VARIANT);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(root, BURN_TASK, "task.yaml"), TASK_YAML(o));
  await fs.writeFile(path.join(dir, "variant.yaml"), VARIANT_YAML);
  await fs.copyFile(model, path.join(dir, "model.onnx"));
  await fs.copyFile(profiled, path.join(dir, "profile.json"));
  return root;
}
