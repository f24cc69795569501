// Builds models/vision-supernet: the ResNet-50 supernet with seeded weights (generated on first
// start, ~100 MB, never committed, like the vision zoo) and its variant.yaml, whose served subnets
// are the Pareto front of declared accuracy against measured latency.
import { median } from "../../stats/quantile.js";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { Engine } from "../../engine/engine.js";
import { controlFeeds } from "../../engine/subnet-feeds.js";
import { heNormal } from "../onnx-builder.js";
import { seededRandom } from "../../stats/random.js";
import { VISION_TASK_YAML } from "../vision.js";
import { writeAtomic } from "../../repository/write-atomic.js";
import { buildSupernetModel, costOf } from "./build.js";
import { paretoFront } from "./pareto.js";
import { controlsOf, type WeightStore } from "./subnetact.js";
import { supernetVariantYaml, type SubnetRecord } from "./variant-yaml.js";
import {
  declaredTop1,
  describeVisionCandidate,
  VISION_SUPERNET_ACCURACY_REFERENCE,
  VISION_SUPERNET_ARCH,
  VISION_SUPERNET_TASK,
  VISION_SUPERNET_VARIANT,
  visionSupernetConvs,
} from "./vision-arch.js";

export const VISION_SUPERNET_SEED = 7;
export const VISION_SUPERNET_MAX_BATCH = 16;

export const VISION_SUPERNET_TASK_YAML = VISION_TASK_YAML.replace(/^name: vision$/m, `name: ${VISION_SUPERNET_TASK}`)
  .replace(
    /^description: .*$/m,
    "description: Image classification at 224x224 by one weight-shared ResNet-50 supernet with seeded weights (outputs are meaningless; latency and memory are real).",
  )
  .replace(/^scheduling: .*$/m, "scheduling: slackfit");

/** Gain on the last conv of a residual branch, as in vision.ts: keeps activations O(1) through 16 blocks. */
const RESIDUAL_GAIN = 0.3;

function layerRandom(seed: number, layer: number): () => number {
  return seededRandom((Math.imul(seed, 0x9e3779b1) ^ Math.imul(layer + 1, 0x85ebca6b)) >>> 0);
}

/**
 * Seeded supernet weights. Each candidate's SubnetNorm scale makes up for the fan-in it drops
 * (√(cin_max / cin)), as a trained net's per-subnet statistics would, so that every subnet's
 * activations stay O(1) — no denormals, no infinities, real latency.
 */
export function visionSupernetWeights(seed = VISION_SUPERNET_SEED): WeightStore {
  const space = VISION_SUPERNET_ARCH.space;
  const store: WeightStore = new Map();
  const convs = visionSupernetConvs();
  convs.forEach((c, li) => {
    const rand = layerRandom(seed, li);
    const cout = space.widthGroups[c.outGroup]!.max;
    store.set(`${c.layer}.w`, {
      data: heNormal(rand, cout * c.cin * c.kernel * c.kernel, c.cin * c.kernel * c.kernel),
      dims: [cout, c.cin, c.kernel, c.kernel],
    });
    const scale = new Float32Array(space.candidates.length * cout);
    const shift = new Float32Array(space.candidates.length * cout);
    space.candidates.forEach((cand, i) => {
      // Input channels this candidate feeds the layer: the image's 3, or the width of the group before it.
      const cinUsed = c.cin === 3 ? 3 : Math.round(c.cin * (cand.widths[0]! / space.widthGroups[0]!.max));
      const gain = (c.residualEnd ? RESIDUAL_GAIN : 1) * Math.sqrt(c.cin / cinUsed);
      for (let o = 0; o < cout; o++) {
        scale[i * cout + o] = gain * (1 + 0.05 * (rand() - 0.5));
        shift[i * cout + o] = (rand() - 0.5) * 0.02;
      }
    });
    store.set(`${c.layer}.norm_scale`, { data: scale, dims: [space.candidates.length, cout] });
    store.set(`${c.layer}.norm_shift`, { data: shift, dims: [space.candidates.length, cout] });
  });
  const features = space.widthGroups[space.widthGroups.length - 1]!.max;
  const rand = layerRandom(seed, convs.length);
  // Small classifier weights keep the logits O(1), so the softmax is not one-hot (as vision.ts).
  store.set("fc.w", { data: heNormal(rand, features * 1000, features * 8), dims: [features, 1000] });
  const bias = new Float32Array(1000);
  for (let i = 0; i < bias.length; i++) bias[i] = (rand() - 0.5) * 0.02;
  store.set("fc.b", { data: bias, dims: [1000] });
  return store;
}

export function buildVisionSupernet(seed = VISION_SUPERNET_SEED): Uint8Array {
  return buildSupernetModel(VISION_SUPERNET_ARCH, visionSupernetWeights(seed));
}

export function visionSubnetName(index: number): string {
  const { width, depths } = describeVisionCandidate(index);
  return `r50-w${width.toFixed(2)}-d${depths.join("")}`;
}

/** variant.yaml with the Pareto front of declared accuracy vs `latencyMs(index)`. */
export function visionSupernetYaml(latencyMs: (index: number) => number): { yaml: string; served: number[] } {
  const arch = VISION_SUPERNET_ARCH;
  const points = arch.space.candidates.map((_, index) => {
    const cost = costOf(arch, index);
    return { index, ...cost, accuracy: declaredTop1(cost.macs), latencyMs: latencyMs(index) };
  });
  const front = paretoFront(points);
  const subnets: SubnetRecord[] = front.map((p) => ({
    name: visionSubnetName(p.index),
    controls: controlsOf(arch.space, p.index),
    parameters: p.parameters,
    macs: p.macs,
    accuracy: { value: p.accuracy, source: "declared", reference: VISION_SUPERNET_ACCURACY_REFERENCE },
  }));
  const yaml = supernetVariantYaml({
    name: VISION_SUPERNET_VARIANT,
    description:
      "ResNet-50 supernet (SubNetAct) at 224x224 with seeded weights: real latency and memory, meaningless outputs",
    architecture: arch.description,
    parameters: costOf(arch, arch.space.candidates.length - 1).parameters,
    maxBatch: VISION_SUPERNET_MAX_BATCH,
    defaultSubnet: subnets[subnets.length - 1]!.name,
    subnets,
  });
  return { yaml, served: front.map((p) => p.index) };
}

/** Median batch-1 latency (1 thread) of every candidate through the supernet session. */
export async function measureVisionCandidates(bytes: Uint8Array, runs = 3): Promise<number[]> {
  const arch = VISION_SUPERNET_ARCH;
  const engine = await Engine.create(bytes, { threads: 1, controls: controlFeeds(controlsOf(arch.space, 0)) });
  try {
    const image = new Float32Array(3 * 224 * 224).fill(0.5);
    const out: number[] = [];
    for (let i = 0; i < arch.space.candidates.length; i++) {
      const feeds = controlFeeds(controlsOf(arch.space, i));
      const times: number[] = [];
      for (let r = 0; r <= runs; r++) {
        const t = performance.now();
        await engine.runBatch([{ rows: 1, inputs: { image } }], feeds);
        if (r > 0) times.push(performance.now() - t);
      }
      out.push(median(times));
    }
    return out;
  } finally {
    await engine.close();
  }
}

/**
 * Builds `<modelsDir>/vision-supernet/supernet/model.onnx` if missing, (re)writes task.yaml, and
 * writes variant.yaml if missing (its front then cut on MACs as the latency proxy; `sloserve zoo
 * supernet` recuts it on measured latency). Returns whether the model was built.
 */
export async function ensureVisionSupernet(
  modelsDir: string,
  onProgress?: (msg: string) => void,
): Promise<{ built: boolean; ms: number }> {
  const taskDir = path.join(modelsDir, VISION_SUPERNET_TASK);
  const dir = path.join(taskDir, VISION_SUPERNET_VARIANT);
  await mkdir(dir, { recursive: true });
  await writeAtomic(path.join(taskDir, "task.yaml"), VISION_SUPERNET_TASK_YAML);
  const modelFile = path.join(dir, "model.onnx");
  let built = false;
  const t0 = performance.now();
  if (!existsSync(modelFile)) {
    onProgress?.(`${VISION_SUPERNET_TASK}: building the ResNet-50 supernet (seeded weights)`);
    await new Promise((r) => setImmediate(r));
    const bytes = buildVisionSupernet();
    await writeAtomic(modelFile, bytes);
    built = true;
    onProgress?.(
      `${VISION_SUPERNET_TASK}: built (${(bytes.byteLength / 1e6).toFixed(1)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
  }
  const variantFile = path.join(dir, "variant.yaml");
  if (!existsSync(variantFile))
    await writeAtomic(variantFile, visionSupernetYaml((i) => costOf(VISION_SUPERNET_ARCH, i).macs).yaml);
  return { built, ms: performance.now() - t0 };
}

/** Recuts the served front on latency measured on this machine (what `sloserve zoo supernet` does). */
export async function recutVisionSupernet(
  modelsDir: string,
  onProgress?: (msg: string) => void,
): Promise<{ latencyMs: number[]; served: number[] }> {
  const dir = path.join(modelsDir, VISION_SUPERNET_TASK, VISION_SUPERNET_VARIANT);
  const bytes = new Uint8Array(await readFile(path.join(dir, "model.onnx")));
  onProgress?.(
    `${VISION_SUPERNET_TASK}: timing the ${VISION_SUPERNET_ARCH.space.candidates.length} candidates (batch 1, 1 thread)`,
  );
  const latencyMs = await measureVisionCandidates(bytes);
  const { yaml, served } = visionSupernetYaml((i) => latencyMs[i]!);
  await writeAtomic(path.join(dir, "variant.yaml"), yaml);
  return { latencyMs, served };
}
