// Trains the autoscaler's LSTM load forecaster on the Twitter trace and exports it to ONNX:
//
//   npx tsx tools/train/lstm.ts --trace <twitter_2021-08_tweets_per_second.txt>
//       [--out src/autoscaler/forecast/twitter-lstm.onnx] [--epochs N]
//
// Task (Themis' forecaster): from the per-second arrival counts of the last 60 s predict the max
// per-second rate of the next 10 s. Training data: days 1–14 of the trace (seconds [0, 14·86400)),
// one window every LSTM_SPEC.stride seconds, skipping every window whose 70 s (history + horizon)
// touch one of the daily missing-data gaps. Days 15–21 are held out for evaluation (the tests).
//
// Model (the same computation in tfjs for training and in the exported ONNX graph):
//   scale  = max(mean(history), 1e-3)                 — the forecast is scale-free: a trace divided
//   x      = history / scale                             by k gives the forecast divided by k
//   steps  = 12 buckets of 5 s, features (mean(x) − 1, max(x) − 1) per bucket
//   h      = LSTM(hidden 24) over the 12 steps, last hidden state
//   ratio  = dense(h) → 1 value;  forecast = max(0, ratio · scale)
// Loss: mean squared error of `ratio` against max(next 10 s)/scale. Adam with cosine decay.
//
// The ONNX graph (opset 13) contains the preprocessing, so its input is the raw history
// `history` [batch, 60] (float32 counts per second, oldest first) and its output `forecast`
// [batch, 1]; the recurrence is ONNX's LSTM operator (gate order i,o,f,c; tfjs/Keras order is
// i,f,c,o — exportLstmOnnx permutes). Constants live in the model's metadata_props.
//
// Determinism: weights from seededRandom, the epoch order from the same PRNG, tfjs' wasm backend is
// single-threaded and batches are fed by hand, so a rerun reproduces the weights.
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type * as TF from "@tensorflow/tfjs";
import ort from "onnxruntime-node";
import { Engine } from "../../src/engine/engine.js";
import { loadTwitterTrace } from "../../src/traces/twitter.js";
import { loadTf, makeOps } from "./digits.js";
import { DType, GraphBuilder } from "../../src/zoo/onnx-builder.js";
import { seededRandom } from "../../src/stats/random.js";
import { dayPoints, historiesAt, targetsAt } from "./forecast-evaluate.js";
import { DEFAULT_MODEL_PATH } from "../../src/autoscaler/forecast/lstm.js";
import { HISTORY_SECONDS, HORIZON_SECONDS } from "../../src/autoscaler/forecast/types.js";

type Tf = typeof TF;

export interface LstmSpec {
  hidden: number;
  /** Seconds per LSTM step; each step sees (mean, max) of its bucket. HISTORY_SECONDS / bucket steps. */
  bucket: number;
  epochs: number;
  batchSize: number;
  /** Adam learning rate at epoch 0, cosine-decayed to lr·0.05 at the last epoch. */
  lr: number;
  /** Seconds between consecutive training windows. */
  stride: number;
  /** Training days, 1-based inclusive. */
  trainDays: [number, number];
  seed: number;
  /**
   * Floor of the scale (mean of the history): below one event/s the model works in absolute units,
   * so an all-zero history gives a small forecast instead of dividing by ~0.
   */
  minScale: number;
  /**
   * Training targets max(next 10 s)/scale are clipped here: a handful of windows that follow short
   * outages (zeros outside the daily gaps) have ratios up to 50 and would dominate the squared loss.
   */
  maxRatio: number;
}

export const LSTM_SPEC: LstmSpec = {
  hidden: 24,
  bucket: 5,
  epochs: 8,
  batchSize: 256,
  lr: 0.004,
  stride: 5,
  trainDays: [1, 14],
  seed: 2021,
  minScale: 1,
  maxRatio: 6,
};

/** Held-out evaluation days (1-based, inclusive). */
export const EVAL_DAYS: [number, number] = [15, 21];

export function stepsOf(spec: Pick<LstmSpec, "bucket">): number {
  if (HISTORY_SECONDS % spec.bucket !== 0) throw new Error(`bucket ${spec.bucket} does not divide ${HISTORY_SECONDS}`);
  return HISTORY_SECONDS / spec.bucket;
}

export function architectureOf(spec: LstmSpec): string {
  return `scale=mean(60 s); ${stepsOf(spec)} steps × (mean, max) of ${spec.bucket} s buckets → LSTM(${spec.hidden}) → dense(1) × scale`;
}

export function parameterCount(spec: LstmSpec): number {
  return 4 * spec.hidden * (2 + spec.hidden + 1) + spec.hidden + 1;
}

/** Scale of one 60-s history: max(mean, minScale), in float32 like onnxruntime. */
export function scaleOf(h: ArrayLike<number>, offset: number, minScale: number): number {
  let s = 0;
  for (let j = 0; j < HISTORY_SECONDS; j++) s += h[offset + j]!;
  return Math.max(Math.fround(s / HISTORY_SECONDS), minScale);
}

/**
 * Features of `rows` histories ([rows, 60] row-major) as [steps, rows, 2] (time-major, like
 * ONNX's LSTM input), plus the scale of each row.
 */
export function featuresOf(
  spec: LstmSpec,
  histories: Float32Array,
  rows: number,
): { x: Float32Array; scale: Float32Array } {
  const steps = stepsOf(spec);
  const x = new Float32Array(steps * rows * 2);
  const scale = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const off = r * HISTORY_SECONDS;
    const s = scaleOf(histories, off, spec.minScale);
    scale[r] = s;
    for (let k = 0; k < steps; k++) {
      let sum = 0;
      let max = -Infinity;
      for (let j = 0; j < spec.bucket; j++) {
        const v = Math.fround(histories[off + k * spec.bucket + j]! / s);
        sum += v;
        if (v > max) max = v;
      }
      const at = (k * rows + r) * 2;
      x[at] = sum / spec.bucket - 1;
      x[at + 1] = max - 1;
    }
  }
  return { x, scale };
}

// ---------------------------------------------------------------------------------------------
// Training (tfjs, wasm backend)

export interface LstmWeights {
  /** [2 + hidden, 4·hidden]: input rows then recurrent rows; gate columns in tfjs order i,f,c,o. */
  kernel: Float32Array;
  /** [4·hidden], gate order i,f,c,o. */
  bias: Float32Array;
  /** [hidden, 1]. */
  denseW: Float32Array;
  /** [1]. */
  denseB: Float32Array;
}

interface Vars {
  kernel: TF.Variable;
  bias: TF.Variable;
  denseW: TF.Variable;
  denseB: TF.Variable;
}

type Ops = ReturnType<typeof makeOps>;

function weightsOf(v: Vars): LstmWeights {
  return {
    kernel: Float32Array.from(v.kernel.dataSync() as Float32Array),
    bias: Float32Array.from(v.bias.dataSync() as Float32Array),
    denseW: Float32Array.from(v.denseW.dataSync() as Float32Array),
    denseB: Float32Array.from(v.denseB.dataSync() as Float32Array),
  };
}

/** Ratio predictions [rows, 1] for time-major features `xs` (one [rows, 2] tensor per step). */
function forwardTf(tf: Tf, ops: Ops, v: Vars, hidden: number, xs: TF.Tensor2D[]): TF.Tensor2D {
  const rows = xs[0]!.shape[0];
  let h = tf.zeros([rows, hidden]) as TF.Tensor2D;
  let c = tf.zeros([rows, hidden]) as TF.Tensor2D;
  for (const x of xs) {
    const z = tf.add(ops.matmul(tf.concat([x, h], 1) as TF.Tensor2D, v.kernel), v.bias) as TF.Tensor2D;
    const i = tf.sigmoid(tf.slice(z, [0, 0], [rows, hidden]));
    const f = tf.sigmoid(tf.slice(z, [0, hidden], [rows, hidden]));
    const g = tf.tanh(tf.slice(z, [0, 2 * hidden], [rows, hidden]));
    const o = tf.sigmoid(tf.slice(z, [0, 3 * hidden], [rows, hidden]));
    c = tf.add(tf.mul(f, c), tf.mul(i, g)) as TF.Tensor2D;
    h = tf.mul(o, tf.tanh(c)) as TF.Tensor2D;
  }
  return tf.add(ops.matmul(h, v.denseW), v.denseB) as TF.Tensor2D;
}

/** Splits time-major features [steps, rows, 2] of rows [from, from+n) into per-step tensors. */
function stepTensors(
  tf: Tf,
  x: Float32Array,
  steps: number,
  rows: number,
  pick: (k: number) => number,
  n: number,
): TF.Tensor2D[] {
  const out: TF.Tensor2D[] = [];
  for (let s = 0; s < steps; s++) {
    const buf = new Float32Array(n * 2);
    for (let k = 0; k < n; k++) {
      const at = (s * rows + pick(k)) * 2;
      buf[2 * k] = x[at]!;
      buf[2 * k + 1] = x[at + 1]!;
    }
    out.push(tf.tensor2d(buf, [n, 2]));
  }
  return out;
}

/** Glorot-uniform-like init from the seeded PRNG. */
function uniform(rand: () => number, count: number, limit: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (2 * rand() - 1) * limit;
  return out;
}

export interface TrainResult {
  weights: LstmWeights;
  seconds: number;
  trainWindows: number;
  /** Training-set loss (MSE of the ratio) of the last epoch. */
  finalLoss: number;
}

export async function trainLstm(
  counts: Int32Array,
  gaps: ReadonlyArray<readonly [number, number]>,
  spec: LstmSpec = LSTM_SPEC,
  progress: (msg: string) => void = () => undefined,
  onEpoch?: (epoch: number, weights: LstmWeights) => void | Promise<void>,
): Promise<TrainResult> {
  const tf = await loadTf();
  const ops = makeOps(tf);
  const steps = stepsOf(spec);
  const H = spec.hidden;
  const points = dayPoints(counts, gaps, spec.trainDays, spec.stride);
  const n = points.length;
  const hist = historiesAt(counts, points);
  const { x, scale } = featuresOf(spec, hist, n);
  const target = targetsAt(counts, points);
  const ratio = new Float32Array(n);
  let meanRatio = 0;
  for (let i = 0; i < n; i++) {
    ratio[i] = Math.min(spec.maxRatio, target[i]! / scale[i]!);
    meanRatio += ratio[i]!;
  }
  meanRatio /= n;
  progress(
    `lstm: ${n} training windows (days ${spec.trainDays[0]}–${spec.trainDays[1]}, stride ${spec.stride} s); mean target/scale ${meanRatio.toFixed(3)}`,
  );

  const rand = seededRandom(spec.seed);
  const biasInit = new Float32Array(4 * H);
  for (let j = H; j < 2 * H; j++) biasInit[j] = 1; // forget-gate bias 1 (Jozefowicz et al.)
  const v: Vars = {
    kernel: tf.variable(tf.tensor2d(uniform(rand, (2 + H) * 4 * H, Math.sqrt(6 / (2 + H + 4 * H))), [2 + H, 4 * H])),
    bias: tf.variable(tf.tensor1d(biasInit)),
    denseW: tf.variable(tf.tensor2d(uniform(rand, H, Math.sqrt(6 / (H + 1))), [H, 1])),
    denseB: tf.variable(tf.tensor1d([meanRatio])),
  };
  const optimizer = tf.train.adam(spec.lr);
  const bs = spec.batchSize;
  const batches = Math.floor(n / bs);
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  const t0 = performance.now();
  let finalLoss = NaN;
  for (let epoch = 0; epoch < spec.epochs; epoch++) {
    const frac = spec.epochs > 1 ? epoch / (spec.epochs - 1) : 0;
    (optimizer as unknown as { learningRate: number }).learningRate =
      spec.lr * (0.05 + 0.95 * 0.5 * (1 + Math.cos(Math.PI * frac)));
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    const te = performance.now();
    let lossSum = 0;
    for (let b = 0; b < batches; b++) {
      const pick = (k: number) => order[b * bs + k]!;
      const yb = new Float32Array(bs);
      for (let k = 0; k < bs; k++) yb[k] = ratio[pick(k)]!;
      const loss = tf.tidy((): TF.Scalar => {
        const xs = stepTensors(tf, x, steps, n, pick, bs);
        const y = tf.tensor2d(yb, [bs, 1]);
        const l = optimizer.minimize(
          () => tf.losses.meanSquaredError(y, forwardTf(tf, ops, v, H, xs)) as TF.Scalar,
          true,
        );
        if (!l) throw new Error("optimizer returned no loss");
        return l;
      });
      lossSum += loss.dataSync()[0]!;
      loss.dispose();
    }
    finalLoss = lossSum / batches;
    progress(
      `lstm: epoch ${epoch + 1}/${spec.epochs} loss ${finalLoss.toFixed(5)} (${((performance.now() - te) / 1000).toFixed(1)} s)`,
    );
    await onEpoch?.(epoch, weightsOf(v));
  }
  optimizer.dispose();
  const weights = weightsOf(v);
  for (const t of Object.values(v)) t.dispose();
  return { weights, seconds: (performance.now() - t0) / 1000, trainWindows: n, finalLoss };
}

/** Forecasts of the tfjs model for [rows, 60] histories (events/s, before the max(0, ·) clip). */
export async function tfjsForecast(
  spec: LstmSpec,
  w: LstmWeights,
  histories: Float32Array,
  rows: number,
): Promise<Float32Array> {
  const tf = await loadTf();
  const ops = makeOps(tf);
  const H = spec.hidden;
  const { x, scale } = featuresOf(spec, histories, rows);
  const v: Vars = {
    kernel: tf.variable(tf.tensor2d(w.kernel, [2 + H, 4 * H])),
    bias: tf.variable(tf.tensor1d(w.bias)),
    denseW: tf.variable(tf.tensor2d(w.denseW, [H, 1])),
    denseB: tf.variable(tf.tensor1d(w.denseB)),
  };
  const out = tf.tidy(() =>
    forwardTf(
      tf,
      ops,
      v,
      H,
      stepTensors(tf, x, stepsOf(spec), rows, (k) => k, rows),
    ),
  );
  const r = out.dataSync() as Float32Array;
  out.dispose();
  for (const t of Object.values(v)) t.dispose();
  const f = new Float32Array(rows);
  for (let i = 0; i < rows; i++) f[i] = r[i]! * scale[i]!;
  return f;
}

// ---------------------------------------------------------------------------------------------
// ONNX export

/** tfjs gate index of each ONNX gate (ONNX order i,o,f,c; tfjs/Keras order i,f,c,o). */
const ONNX_TO_TF_GATE = [0, 3, 1, 2] as const;

export function exportLstmOnnx(spec: LstmSpec, w: LstmWeights, meta: Record<string, string> = {}): Uint8Array {
  const H = spec.hidden;
  const steps = stepsOf(spec);
  // W [1, 4H, 2], R [1, 4H, H], B [1, 8H] (Wb then Rb; Rb = 0), rows in ONNX gate order.
  const W = new Float32Array(4 * H * 2);
  const R = new Float32Array(4 * H * H);
  const B = new Float32Array(8 * H);
  for (let g = 0; g < 4; g++) {
    const tg = ONNX_TO_TF_GATE[g]!;
    for (let j = 0; j < H; j++) {
      const row = g * H + j;
      const col = tg * H + j;
      for (let f = 0; f < 2; f++) W[row * 2 + f] = w.kernel[f * 4 * H + col]!;
      for (let k = 0; k < H; k++) R[row * H + k] = w.kernel[(2 + k) * 4 * H + col]!;
      B[row] = w.bias[col]!;
    }
  }
  const g = new GraphBuilder("twitter_lstm_forecaster");
  const history = g.input("history", DType.FLOAT, ["batch", HISTORY_SECONDS]);
  const mean = g.op("ReduceMean", [history], { axes: [1], keepdims: 1 });
  const scale = g.op("Max", [mean, g.floats("min_scale", [spec.minScale], [])]);
  const xn = g.op("Div", [history, scale]);
  const buckets = g.op("Reshape", [xn, g.ints("bucket_shape", [-1, steps, spec.bucket])]);
  const one = g.floats("one", [1], []);
  const bMean = g.op("Sub", [g.op("ReduceMean", [buckets], { axes: [2], keepdims: 1 }), one]);
  const bMax = g.op("Sub", [g.op("ReduceMax", [buckets], { axes: [2], keepdims: 1 }), one]);
  const feats = g.op("Concat", [bMean, bMax], { axis: 2 }); // [batch, steps, 2]
  const seq = g.op("Transpose", [feats], { perm: [1, 0, 2] }); // [steps, batch, 2]
  const [, yH] = g.node(
    "LSTM",
    [
      seq,
      g.weight("lstm_W", W, [1, 4 * H, 2]),
      g.weight("lstm_R", R, [1, 4 * H, H]),
      g.weight("lstm_B", B, [1, 8 * H]),
    ],
    { hidden_size: H },
    2,
  );
  const last = g.op("Squeeze", [yH!, g.ints("axis0", [0])]); // [batch, H]
  const ratio = g.op("Gemm", [last, g.weight("dense_w", w.denseW, [H, 1]), g.weight("dense_b", w.denseB, [1])]);
  g.node("Relu", [g.op("Mul", [ratio, scale])], {}, ["forecast"]);
  g.output("forecast", DType.FLOAT, ["batch", 1]);
  return g.toModel({
    docString: `sloserve Themis forecaster: max per-second rate of the next ${HORIZON_SECONDS} s from the last ${HISTORY_SECONDS} s; ${architectureOf(spec)}`,
    metadata: {
      task: "forecast-max-rate",
      architecture: architectureOf(spec),
      history_seconds: String(HISTORY_SECONDS),
      horizon_seconds: String(HORIZON_SECONDS),
      bucket_seconds: String(spec.bucket),
      hidden: String(H),
      min_scale: String(spec.minScale),
      normalisation:
        "x = history / max(mean(history), min_scale); per bucket (mean(x) - 1, max(x) - 1); forecast = max(0, dense(h_last) * scale)",
      spec: JSON.stringify(spec),
      ...meta,
    },
  });
}

/** Forecasts of an ONNX forecaster for [rows, 60] histories, through Engine (1 thread). */
export async function onnxForecast(bytes: Uint8Array, histories: Float32Array, rows: number): Promise<Float32Array> {
  const engine = await Engine.create(bytes, { threads: 1 });
  try {
    const out = await engine.run({ history: new ort.Tensor("float32", histories, [rows, HISTORY_SECONDS]) });
    return Float32Array.from(out.forecast!.data as Float32Array);
  } finally {
    await engine.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Entry point

function argValue(argv: string[], name: string): string | undefined {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  const v = argv[i]!.includes("=") ? argv[i]!.slice(name.length + 1) : argv[i + 1];
  if (!v) throw new Error(`${name} needs a value`);
  return v;
}

async function main(argv: string[]): Promise<void> {
  const trace = argValue(argv, "--trace");
  if (!trace)
    throw new Error(
      "usage: lstm-train.ts --trace <twitter_2021-08_tweets_per_second.txt> [--out file.onnx] [--epochs N]",
    );
  const out = path.resolve(argValue(argv, "--out") ?? DEFAULT_MODEL_PATH);
  const epochs = argValue(argv, "--epochs");
  const spec: LstmSpec = { ...LSTM_SPEC, ...(epochs ? { epochs: Number(epochs) } : {}) };
  const log = (m: string) => console.log(m);

  const { counts, gaps } = loadTwitterTrace(trace);
  log(`trace: ${counts.length} s, ${gaps.length} gaps; ${architectureOf(spec)}, ${parameterCount(spec)} parameters`);
  const r = await trainLstm(counts, gaps, spec, log);
  log(`lstm: trained in ${r.seconds.toFixed(1)} s`);

  const bytes = exportLstmOnnx(spec, r.weights, {
    trained_on: `twitter-2021-08 days ${spec.trainDays[0]}-${spec.trainDays[1]}, ${r.trainWindows} windows, stride ${spec.stride} s`,
    train_seconds: r.seconds.toFixed(1),
  });

  // The ONNX graph must compute what tfjs computed (a sample of held-out windows + hand-made ones).
  const pts = dayPoints(counts, gaps, EVAL_DAYS, 997).subarray(0, 400);
  const hand = [
    new Array(60).fill(50),
    Array.from({ length: 60 }, (_, i) => i * 3),
    new Array(60).fill(0),
    Array.from({ length: 60 }, (_, i) => (i % 7 === 0 ? 200 : 5)),
  ];
  const hist = new Float32Array((pts.length + hand.length) * HISTORY_SECONDS);
  hist.set(historiesAt(counts, pts));
  hand.forEach((h, i) => hist.set(h, (pts.length + i) * HISTORY_SECONDS));
  const rows = pts.length + hand.length;
  const expected = await tfjsForecast(spec, r.weights, hist, rows);
  const got = await onnxForecast(bytes, hist, rows);
  let maxRel = 0;
  for (let i = 0; i < rows; i++)
    maxRel = Math.max(maxRel, Math.abs(Math.max(0, expected[i]!) - got[i]!) / Math.max(1, Math.abs(expected[i]!)));
  log(`onnx vs tfjs: max relative difference ${maxRel.toExponential(2)} over ${rows} windows`);
  if (!(maxRel < 1e-4)) throw new Error(`ONNX export differs from tfjs by ${maxRel}`);

  await writeFile(out, bytes);
  log(`wrote ${out} (${(bytes.byteLength / 1024).toFixed(1)} KiB)`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  });
}
