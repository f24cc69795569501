// Trains the digits supernet (digits-arch.ts) with the sandwich rule on the training split of
// loadDigits(): every step trains the largest subnet, the smallest and two random candidates on the
// same batch, summing their losses, so that every subnet of the shared weights learns the task.
// Normalisation uses batch statistics while training; afterwards every candidate's own statistics
// are measured on 2,000 training digits (SubnetNorm's per-subnet rows, as OFA/slimmable nets
// recalibrate). Same determinism as the digits zoo: seeded init, seeded order and shifts, tfjs on
// its single-threaded wasm backend.
import type * as TF from "@tensorflow/tfjs";
import { DIGIT_PIXELS, loadDigits, type DigitSet } from "../../src/zoo/digits-data.js";
import { loadTf, makeOps, shiftInto } from "./digits.js";
import { heNormal } from "../../src/zoo/onnx-builder.js";
import { seededRandom } from "../../src/stats/random.js";
import { DIGITS_SUPERNET_CONVS, DIGITS_SUPERNET_SPACE, FINAL_SIDE } from "../../src/zoo/supernet/digits-arch.js";
import type { SubnetChoice, WeightStore } from "../../src/zoo/supernet/subnetact.js";

type Tf = typeof TF;
type Ops = ReturnType<typeof makeOps>;

export const DIGITS_SUPERNET_TRAINING = {
  seed: 4242,
  epochs: 16,
  batchSize: 128,
  lr: 0.004,
  shift: 2,
  /** Subnets per step besides the largest and the smallest (the sandwich's filling). */
  randomPerStep: 2,
  calibrationImages: 1000,
  normEps: 1e-5,
} as const;

interface ConvParams {
  w: TF.Variable; // [3,3,cinMax,coutMax], tfjs layout
  gamma: TF.Variable;
  beta: TF.Variable;
  cinMax: number;
  coutMax: number;
}

export interface TfSupernet {
  convs: Map<string, ConvParams>;
  fcW: TF.Variable; // [c2max·49, 10], rows channel-major
  fcB: TF.Variable;
}

/** Per-layer normalisation statistics of one subnet. */
type NormStats = Map<string, { mean: Float32Array; variance: Float32Array }>;

type NormMode = { kind: "batch" } | { kind: "record"; into: NormStats } | { kind: "fixed"; stats: NormStats };

function initSupernet(tf: Tf, rand: () => number): TfSupernet {
  const groups = DIGITS_SUPERNET_SPACE.widthGroups;
  const convs = new Map<string, ConvParams>();
  for (const c of DIGITS_SUPERNET_CONVS) {
    const cinMax = c.inGroup < 0 ? 1 : groups[c.inGroup]!.max;
    const coutMax = groups[c.outGroup]!.max;
    convs.set(c.layer, {
      w: tf.variable(tf.tensor4d(heNormal(rand, 9 * cinMax * coutMax, 9 * cinMax), [3, 3, cinMax, coutMax])),
      gamma: tf.variable(tf.ones([coutMax])),
      beta: tf.variable(tf.zeros([coutMax])),
      cinMax,
      coutMax,
    });
  }
  const nin = groups[1]!.max * FINAL_SIDE * FINAL_SIDE;
  return {
    convs,
    fcW: tf.variable(tf.tensor2d(heNormal(rand, nin * 10, nin), [nin, 10])),
    fcB: tf.variable(tf.zeros([10])),
  };
}

/** Logits of `choice` for an NHWC batch; mirrors DIGITS_SUPERNET_ARCH.write. */
function forward(tf: Tf, ops: Ops, net: TfSupernet, choice: SubnetChoice, x: TF.Tensor4D, mode: NormMode): TF.Tensor2D {
  const [c1, c2] = choice.widths as [number, number];
  const convNorm = (h: TF.Tensor4D, layer: string, kin: number, kout: number, first: boolean): TF.Tensor4D => {
    const p = net.convs.get(layer)!;
    const w = tf.slice(p.w, [0, 0, 0, 0], [3, 3, kin, kout]) as TF.Tensor4D;
    const y = ops.conv3x3(h, w as unknown as TF.Variable, first);
    let mean: TF.Tensor;
    let variance: TF.Tensor;
    if (mode.kind === "fixed") {
      const s = mode.stats.get(layer)!;
      mean = tf.tensor1d(s.mean);
      variance = tf.tensor1d(s.variance);
    } else {
      ({ mean, variance } = tf.moments(y, [0, 1, 2]));
      if (mode.kind === "record")
        mode.into.set(layer, { mean: mean.dataSync() as Float32Array, variance: variance.dataSync() as Float32Array });
    }
    const gamma = tf.slice(p.gamma, [0], [kout]);
    const beta = tf.slice(p.beta, [0], [kout]);
    const scale = tf.mul(gamma, tf.rsqrt(tf.add(variance, DIGITS_SUPERNET_TRAINING.normEps)));
    return tf.add(tf.mul(tf.sub(y, mean), scale), beta) as TF.Tensor4D;
  };
  let h = tf.maxPool(tf.relu(convNorm(x, "conv1", 1, c1, true)), 2, 2, "valid");
  h = tf.maxPool(tf.relu(convNorm(h, "conv2", c1, c2, false)), 2, 2, "valid");
  for (let j = 0; j < choice.depths[0]!; j++) {
    const y = tf.relu(convNorm(h, `res${j}.conv1`, c2, c2, false)) as TF.Tensor4D;
    h = tf.relu(tf.add(h, convNorm(y, `res${j}.conv2`, c2, c2, false))) as TF.Tensor4D;
  }
  // Channel-major flatten (NCHW order), so that the first c2 channels are the first 49·c2 dense rows.
  const flat = tf.reshape(tf.transpose(h, [0, 3, 1, 2]), [x.shape[0], c2 * FINAL_SIDE * FINAL_SIDE]) as TF.Tensor2D;
  const w = tf.slice(net.fcW, [0, 0], [c2 * FINAL_SIDE * FINAL_SIDE, 10]) as TF.Tensor2D;
  return tf.add(ops.matmul(flat, w as unknown as TF.Variable), net.fcB) as TF.Tensor2D;
}

export interface SupernetTrainResult {
  store: WeightStore;
  seconds: number;
  /** tfjs probabilities of a few candidates on the first test digits, to check the ONNX export against. */
  reference: { index: number; count: number; probabilities: Float32Array }[];
}

/** Trains, calibrates every candidate's statistics, and returns the ONNX-layout weight store. */
export async function trainDigitsSupernet(
  progress: (msg: string) => void,
  /** Overrides for a quick look (timing, tests); the zoo is trained with the defaults. */
  opts: { epochs?: number; batchesPerEpoch?: number } = {},
): Promise<SupernetTrainResult> {
  const epochs = opts.epochs ?? DIGITS_SUPERNET_TRAINING.epochs;
  const cfg = DIGITS_SUPERNET_TRAINING;
  const tf = await loadTf();
  const ops = makeOps(tf);
  const { train, test } = loadDigits();
  const rand = seededRandom(cfg.seed);
  const net = initSupernet(tf, rand);
  const space = DIGITS_SUPERNET_SPACE;
  const largest = space.candidates.length - 1;
  const smallest = 0;
  const optimizer = tf.train.adam(cfg.lr);
  const bs = cfg.batchSize;
  const batches = Math.min(opts.batchesPerEpoch ?? Infinity, Math.floor(train.count / bs));
  const buf = new Float32Array(bs * DIGIT_PIXELS);
  const labels = new Int32Array(bs);
  const order = Uint32Array.from({ length: train.count }, (_, i) => i);
  const t0 = performance.now();
  for (let epoch = 0; epoch < epochs; epoch++) {
    const frac = epochs > 1 ? epoch / (epochs - 1) : 0;
    (optimizer as unknown as { learningRate: number }).learningRate =
      cfg.lr * (0.05 + 0.95 * 0.5 * (1 + Math.cos(Math.PI * frac)));
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    let lossSum = 0;
    const te = performance.now();
    for (let b = 0; b < batches; b++) {
      for (let k = 0; k < bs; k++) {
        const src = order[b * bs + k]!;
        const dx = Math.floor(rand() * (2 * cfg.shift + 1)) - cfg.shift;
        const dy = Math.floor(rand() * (2 * cfg.shift + 1)) - cfg.shift;
        shiftInto(train.images, src, buf, k, dx, dy);
        labels[k] = train.labels[src]!;
      }
      // The sandwich: largest, smallest and random candidates, all on this batch.
      const picks = [largest, smallest];
      for (let r = 0; r < cfg.randomPerStep; r++) picks.push(Math.floor(rand() * space.candidates.length));
      const loss = tf.tidy((): TF.Scalar => {
        const x = tf.tensor4d(buf, [bs, 28, 28, 1]);
        const y = tf.oneHot(tf.tensor1d(labels, "int32"), 10);
        const l = optimizer.minimize(() => {
          const losses = picks.map((i) =>
            tf.losses.softmaxCrossEntropy(y, forward(tf, ops, net, space.candidates[i]!, x, { kind: "batch" })),
          );
          return tf.div(tf.addN(losses), picks.length) as TF.Scalar;
        }, true);
        if (!l) throw new Error("optimizer returned no loss");
        return l;
      });
      lossSum += loss.dataSync()[0]!;
      loss.dispose();
    }
    progress(
      `digits-supernet: epoch ${epoch + 1}/${epochs} sandwich loss ${(lossSum / batches).toFixed(4)} (${((performance.now() - te) / 1000).toFixed(1)} s)`,
    );
  }
  optimizer.dispose();
  const seconds = (performance.now() - t0) / 1000;

  progress(
    `digits-supernet: measuring each of the ${space.candidates.length} candidates' normalisation statistics on ${cfg.calibrationImages} training digits`,
  );
  const stats = calibrate(tf, ops, net, train);
  const reference = [largest, smallest, 13].map((index) => ({
    index,
    count: 100,
    probabilities: tfPredict(tf, ops, net, index, stats[index]!, test, 100),
  }));
  const store = toWeightStore(net, stats);
  for (const p of net.convs.values()) [p.w, p.gamma, p.beta].forEach((v) => v.dispose());
  net.fcW.dispose();
  net.fcB.dispose();
  return { store, seconds, reference };
}

/** Each candidate's per-layer batch statistics over the first calibration digits of the training split. */
function calibrate(tf: Tf, ops: Ops, net: TfSupernet, train: DigitSet): NormStats[] {
  const n = Math.min(DIGITS_SUPERNET_TRAINING.calibrationImages, train.count);
  const images = train.images.subarray(0, n * DIGIT_PIXELS);
  return DIGITS_SUPERNET_SPACE.candidates.map((c) => {
    const into: NormStats = new Map();
    tf.tidy(() => {
      forward(tf, ops, net, c, tf.tensor4d(images, [n, 28, 28, 1]), { kind: "record", into });
    });
    return into;
  });
}

function tfPredict(
  tf: Tf,
  ops: Ops,
  net: TfSupernet,
  index: number,
  stats: NormStats,
  set: DigitSet,
  count: number,
): Float32Array {
  return tf.tidy(() => {
    const x = tf.tensor4d(set.images.subarray(0, count * DIGIT_PIXELS), [count, 28, 28, 1]);
    return tf
      .softmax(forward(tf, ops, net, DIGITS_SUPERNET_SPACE.candidates[index]!, x, { kind: "fixed", stats }))
      .dataSync() as Float32Array;
  });
}

/**
 * ONNX layout: conv filters [kh,kw,cin,cout] → [cout,cin,kh,kw]; SubnetNorm tables [candidates, cout]
 * with scale = γ/√(σ²+ε) and shift = β − μ·scale from each candidate's own μ, σ² (zeros past its width).
 */
function toWeightStore(net: TfSupernet, stats: NormStats[]): WeightStore {
  const store: WeightStore = new Map();
  const eps = DIGITS_SUPERNET_TRAINING.normEps;
  for (const [layer, p] of net.convs) {
    const w = p.w.dataSync() as Float32Array;
    const { cinMax: cin, coutMax: cout } = p;
    const wo = new Float32Array(w.length);
    for (let kh = 0; kh < 3; kh++)
      for (let kw = 0; kw < 3; kw++)
        for (let ci = 0; ci < cin; ci++)
          for (let co = 0; co < cout; co++)
            wo[((co * cin + ci) * 3 + kh) * 3 + kw] = w[((kh * 3 + kw) * cin + ci) * cout + co]!;
    store.set(`${layer}.w`, { data: wo, dims: [cout, cin, 3, 3] });
    const gamma = p.gamma.dataSync() as Float32Array;
    const beta = p.beta.dataSync() as Float32Array;
    const scale = new Float32Array(stats.length * cout);
    const shift = new Float32Array(stats.length * cout);
    stats.forEach((s, i) => {
      const layerStats = s.get(layer);
      if (!layerStats) return; // a block this candidate skips: its row stays unused
      layerStats.mean.forEach((mu, c) => {
        const k = gamma[c]! / Math.sqrt(layerStats.variance[c]! + eps);
        scale[i * cout + c] = k;
        shift[i * cout + c] = beta[c]! - mu * k;
      });
    });
    store.set(`${layer}.norm_scale`, { data: scale, dims: [stats.length, cout] });
    store.set(`${layer}.norm_shift`, { data: shift, dims: [stats.length, cout] });
  }
  store.set("fc.w", { data: net.fcW.dataSync() as Float32Array, dims: net.fcW.shape });
  store.set("fc.b", { data: net.fcB.dataSync() as Float32Array, dims: net.fcB.shape });
  return store;
}
