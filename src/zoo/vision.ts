// The `vision` task of the model zoo: ResNet-18/34/50 and MobileNetV2 at 224x224, written as ONNX
// graphs by code with the real torchvision layer/channel structure and seeded weights. BatchNorm is
// folded into each conv's weights and bias, as deployed inference graphs do, so every conv carries
// a bias and no BatchNormalization node appears. Their outputs are meaningless by design: they
// exist so that latency and model size are real; their accuracy is the published top-1, `declared`.
import { writeAtomic } from "../repository/write-atomic.js";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import onnxPkg from "onnx-proto";
import { DType, GraphBuilder, ZOO_OPSET, heNormal } from "./onnx-builder.js";
import { seededRandom } from "../stats/random.js";

const { onnx } = onnxPkg;

export type VisionVariantName = "resnet18" | "resnet34" | "resnet50" | "mobilenetv2";

export interface VisionVariant {
  name: VisionVariantName;
  description: string;
  architecture: string;
  /** Published ImageNet-1k top-1 of the architecture (torchvision reference weights). */
  declaredTop1: number;
}

export const VISION_REFERENCE = "torchvision published ImageNet-1k top-1";
const ACCURACY_REFERENCE = `${VISION_REFERENCE}; this build has seeded weights, its outputs are meaningless`;

export const VISION_VARIANTS: readonly VisionVariant[] = [
  {
    name: "resnet18",
    description: "ResNet-18 at 224x224 with seeded weights: real latency, meaningless outputs",
    architecture: "ResNet-18 (basic blocks [2,2,2,2]), BatchNorm folded, seeded weights",
    declaredTop1: 0.6976,
  },
  {
    name: "resnet34",
    description: "ResNet-34 at 224x224 with seeded weights: real latency, meaningless outputs",
    architecture: "ResNet-34 (basic blocks [3,4,6,3]), BatchNorm folded, seeded weights",
    declaredTop1: 0.7331,
  },
  {
    name: "resnet50",
    description: "ResNet-50 at 224x224 with seeded weights: real latency, meaningless outputs",
    architecture: "ResNet-50 (bottleneck [3,4,6,3]), BatchNorm folded, seeded weights",
    declaredTop1: 0.7613,
  },
  {
    name: "mobilenetv2",
    description: "MobileNetV2 (width 1.0) at 224x224 with seeded weights: real latency, meaningless outputs",
    architecture:
      "MobileNetV2 (inverted residuals, width 1.0, ReLU6, last conv 1280), BatchNorm folded, seeded weights",
    declaredTop1: 0.7188,
  },
];

export const VISION_INPUT = "image";
export const VISION_OUTPUT = "probabilities";
export const VISION_IMAGE_SIZE = 224;
export const VISION_CLASSES = 1000;

/**
 * Gain on the last conv of every residual branch. He init keeps a branch's output variance near its
 * input's, so `x + branch(x)` would double the variance per block (2^16 over ResNet-50); a damped
 * branch keeps activations O(1) through the whole net, as a trained, BatchNorm-folded net has them.
 */
const RESIDUAL_GAIN = 0.3;

/** Writes one network into a GraphBuilder: every layer gets its own seed derived from the model's. */
class VisionNet {
  readonly b: GraphBuilder;
  private layer = 0;
  private zero: string | undefined;
  private six: string | undefined;

  constructor(
    name: string,
    private readonly seed: number,
  ) {
    this.b = new GraphBuilder(name);
  }

  /** The next layer's PRNG: a hash of (model seed, layer index). */
  private nextRand(): () => number {
    this.layer += 1;
    return seededRandom(mixSeed(this.seed, this.layer));
  }

  /** Conv with a folded BatchNorm: He-normal weights (times `gain`) and a small bias. */
  conv(x: string, cin: number, cout: number, k: number, stride = 1, group = 1, gain = 1): string {
    const rand = this.nextRand();
    const fanIn = (cin / group) * k * k;
    const w = heNormal(rand, cout * (cin / group) * k * k, fanIn);
    if (gain !== 1) for (let i = 0; i < w.length; i++) w[i] = w[i]! * gain;
    const bias = smallBias(rand, cout);
    const pad = (k - 1) >> 1;
    const W = this.b.weight("conv_w", w, [cout, cin / group, k, k]);
    const B = this.b.weight("conv_b", bias, [cout]);
    return this.b.op("Conv", [x, W, B], {
      kernel_shape: [k, k],
      strides: [stride, stride],
      pads: [pad, pad, pad, pad],
      dilations: [1, 1],
      group,
    });
  }

  relu(x: string): string {
    return this.b.op("Relu", [x]);
  }

  /** ReLU6 = Clip(x, 0, 6), the min/max scalars shared by every Clip. */
  relu6(x: string): string {
    this.zero ??= this.b.floats("clip_min", [0], []);
    this.six ??= this.b.floats("clip_max", [6], []);
    return this.b.op("Clip", [x, this.zero, this.six]);
  }

  add(a: string, c: string): string {
    return this.b.op("Add", [a, c]);
  }

  maxPool(x: string): string {
    return this.b.op("MaxPool", [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  }

  /** GlobalAveragePool -> Flatten -> Gemm(classes) -> Softmax, named `probabilities`. */
  head(x: string, features: number): string {
    const rand = this.nextRand();
    // Small classifier weights keep the logits O(1), so the softmax is not one-hot.
    const w = heNormal(rand, VISION_CLASSES * features, features * 8);
    const bias = smallBias(rand, VISION_CLASSES);
    const pooled = this.b.op("GlobalAveragePool", [x]);
    const flat = this.b.op("Flatten", [pooled], { axis: 1 });
    const W = this.b.weight("fc_w", w, [VISION_CLASSES, features]);
    const B = this.b.weight("fc_b", bias, [VISION_CLASSES]);
    const logits = this.b.op("Gemm", [flat, W, B], { transB: 1 });
    this.b.node("Softmax", [logits], { axis: -1 }, [VISION_OUTPUT]);
    return this.b.output(VISION_OUTPUT, DType.FLOAT, ["batch", VISION_CLASSES]);
  }
}

/** splitmix32-style mix of the model seed and a layer index into a 32-bit layer seed. */
function mixSeed(seed: number, layer: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(layer, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

function smallBias(rand: () => number, n: number): Float32Array {
  const b = new Float32Array(n);
  for (let i = 0; i < n; i++) b[i] = (rand() - 0.5) * 0.02;
  return b;
}

function stem(net: VisionNet, x: string): string {
  // conv1 7x7/2 (64) + BN + ReLU, maxpool 3x3/2
  return net.maxPool(net.relu(net.conv(x, 3, 64, 7, 2)));
}

/** torchvision BasicBlock: 3x3/s -> 3x3, 1x1/s conv shortcut when the shape changes. */
function basicBlock(net: VisionNet, x: string, cin: number, planes: number, stride: number): string {
  let y = net.relu(net.conv(x, cin, planes, 3, stride));
  y = net.conv(y, planes, planes, 3, 1, 1, RESIDUAL_GAIN);
  const shortcut = stride !== 1 || cin !== planes ? net.conv(x, cin, planes, 1, stride) : x;
  return net.relu(net.add(y, shortcut));
}

/** torchvision Bottleneck (v1.5: stride on the 3x3): 1x1 -> 3x3/s -> 1x1 (x4), conv shortcut when needed. */
function bottleneck(net: VisionNet, x: string, cin: number, planes: number, stride: number): string {
  const out = planes * 4;
  let y = net.relu(net.conv(x, cin, planes, 1));
  y = net.relu(net.conv(y, planes, planes, 3, stride));
  y = net.conv(y, planes, out, 1, 1, 1, RESIDUAL_GAIN);
  const shortcut = stride !== 1 || cin !== out ? net.conv(x, cin, out, 1, stride) : x;
  return net.relu(net.add(y, shortcut));
}

function resnet(name: string, seed: number, blocks: number[], kind: "basic" | "bottleneck"): Uint8Array {
  const net = new VisionNet(name, seed);
  let x = net.b.input(VISION_INPUT, DType.FLOAT, ["batch", 3, VISION_IMAGE_SIZE, VISION_IMAGE_SIZE]);
  x = stem(net, x);
  const expansion = kind === "basic" ? 1 : 4;
  let cin = 64;
  blocks.forEach((n, stage) => {
    const planes = 64 << stage;
    for (let i = 0; i < n; i++) {
      const stride = stage > 0 && i === 0 ? 2 : 1;
      x = kind === "basic" ? basicBlock(net, x, cin, planes, stride) : bottleneck(net, x, cin, planes, stride);
      cin = planes * expansion;
    }
  });
  net.head(x, cin);
  return finish(net, name, seed);
}

/** torchvision MobileNetV2 inverted-residual settings (t, c, n, s). */
const MOBILENETV2_SETTINGS: readonly [number, number, number, number][] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

function mobilenetV2(seed: number): Uint8Array {
  const net = new VisionNet("mobilenetv2", seed);
  let x = net.b.input(VISION_INPUT, DType.FLOAT, ["batch", 3, VISION_IMAGE_SIZE, VISION_IMAGE_SIZE]);
  let cin = 32;
  x = net.relu6(net.conv(x, 3, cin, 3, 2));
  for (const [t, c, n, s] of MOBILENETV2_SETTINGS) {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      const hidden = cin * t;
      let y = x;
      if (t !== 1) y = net.relu6(net.conv(y, cin, hidden, 1)); // expand 1x1
      y = net.relu6(net.conv(y, hidden, hidden, 3, stride, hidden)); // depthwise 3x3
      const residual = stride === 1 && cin === c;
      y = net.conv(y, hidden, c, 1, 1, 1, residual ? RESIDUAL_GAIN : 1); // linear projection 1x1
      x = residual ? net.add(x, y) : y;
      cin = c;
    }
  }
  x = net.relu6(net.conv(x, cin, 1280, 1));
  net.head(x, 1280);
  return finish(net, "mobilenetv2", seed);
}

function finish(net: VisionNet, name: string, seed: number): Uint8Array {
  const variant = VISION_VARIANTS.find((v) => v.name === name)!;
  return net.b.toModel({
    docString: `${variant.architecture}. Seeded weights: outputs are meaningless, latency is real.`,
    metadata: { task: "vision", variant: name, seed: String(seed), bn_folded: "true" },
    opset: ZOO_OPSET,
  });
}

/** The ONNX bytes of one vision variant: input `image` [batch,3,224,224], output `probabilities` [batch,1000]. */
export function buildVisionModel(name: VisionVariantName, seed = 1): Uint8Array {
  switch (name) {
    case "resnet18":
      return resnet(name, seed, [2, 2, 2, 2], "basic");
    case "resnet34":
      return resnet(name, seed, [3, 4, 6, 3], "basic");
    case "resnet50":
      return resnet(name, seed, [3, 4, 6, 3], "bottleneck");
    case "mobilenetv2":
      return mobilenetV2(seed);
    default:
      throw new Error(`unknown vision variant '${String(name)}'`);
  }
}

/** Learned parameters of an ONNX model: the elements of its float initializers of rank >= 1 (not scalar constants). */
export function countParameters(bytes: Uint8Array): number {
  const model = onnx.ModelProto.decode(bytes);
  let total = 0;
  for (const t of model.graph?.initializer ?? []) {
    const dims = (t.dims ?? []).map(Number);
    if (t.dataType !== DType.FLOAT || dims.length === 0) continue;
    total += dims.reduce((a, b) => a * b, 1);
  }
  return total;
}

export const VISION_TASK_YAML = `name: vision
description: Image classification at 224x224 with real architectures and seeded weights (outputs are meaningless; latency is real).
inputs:
  - name: image
    datatype: FP32
    shape: [3, 224, 224]
outputs:
  - name: probabilities
    datatype: FP32
    shape: [1000]
slo_ms: 500
min_accuracy: 0
scheduling: edf
scaling: themis
`;

export function variantYaml(v: VisionVariant, parameters: number): string {
  return [
    `name: ${v.name}`,
    `description: ${JSON.stringify(v.description)}`,
    `architecture: ${JSON.stringify(v.architecture)}`,
    `parameters: ${parameters}`,
    `max_batch: 16`,
    `accuracy:`,
    `  value: ${v.declaredTop1}`,
    `  source: declared`,
    `  reference: ${JSON.stringify(ACCURACY_REFERENCE)}`,
    ``,
  ].join("\n");
}

export interface EnsureVisionResult {
  built: string[];
  present: string[];
  /** Wall milliseconds spent building (generating + serialising + writing) each built variant. */
  buildMs: Record<string, number>;
}

/**
 * Builds every missing `<modelsDir>/vision/<name>/model.onnx`, (re)writes `vision/task.yaml`, and
 * writes each `variant.yaml` that is missing.
 */
export async function ensureVisionZoo(
  modelsDir: string,
  onProgress?: (msg: string) => void,
): Promise<EnsureVisionResult> {
  const taskDir = path.join(modelsDir, "vision");
  await mkdir(taskDir, { recursive: true });
  await writeAtomic(path.join(taskDir, "task.yaml"), VISION_TASK_YAML);
  const result: EnsureVisionResult = { built: [], present: [], buildMs: {} };
  for (const v of VISION_VARIANTS) {
    const dir = path.join(taskDir, v.name);
    await mkdir(dir, { recursive: true });
    const modelFile = path.join(dir, "model.onnx");
    const variantFile = path.join(dir, "variant.yaml");
    let bytes: Uint8Array | undefined;
    if (existsSync(modelFile)) {
      result.present.push(v.name);
    } else {
      onProgress?.(`vision: building ${v.name}`);
      await new Promise((r) => setImmediate(r)); // let a progress line render before the CPU-bound build
      const t0 = performance.now();
      bytes = buildVisionModel(v.name);
      await writeAtomic(modelFile, bytes);
      const ms = performance.now() - t0;
      result.built.push(v.name);
      result.buildMs[v.name] = ms;
      onProgress?.(
        `vision: built ${v.name} (${(bytes.byteLength / 1e6).toFixed(1)} MB in ${(ms / 1000).toFixed(1)} s)`,
      );
    }
    if (!existsSync(variantFile)) {
      bytes ??= new Uint8Array(await readFile(modelFile));
      await writeAtomic(variantFile, variantYaml(v, countParameters(bytes)));
    }
  }
  return result;
}
