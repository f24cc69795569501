// Accuracy of a digits model as the zoo records it: top-1 on the held-out split of the mnist package's
// digits (src/zoo/digits-data.ts), run through onnxruntime, so that training, the variant generator and the
// tests measure the same thing the same way.
import { Engine } from "../engine/engine.js";
import { DIGIT_PIXELS, loadDigits } from "./digits-data.js";

/** Accuracy of an ONNX digits model on the held-out split, through onnxruntime (1 thread, batches of 100). */
export async function measureDigitsAccuracy(bytes: Uint8Array): Promise<{ correct: number; total: number }> {
  const { test } = loadDigits();
  const engine = await Engine.create(bytes, { threads: 1 });
  try {
    let correct = 0;
    const batch = 100;
    for (let start = 0; start < test.count; start += batch) {
      const rows = Math.min(batch, test.count - start);
      const [out] = await engine.runBatch([
        { rows, inputs: { image: test.images.slice(start * DIGIT_PIXELS, (start + rows) * DIGIT_PIXELS) } },
      ]);
      const probs = out?.probabilities?.data as Float32Array | undefined;
      if (!probs || probs.length !== rows * 10) throw new Error("model did not return probabilities [rows, 10]");
      for (let r = 0; r < rows; r++) if (argmax(probs, r * 10, 10) === test.labels[start + r]) correct++;
    }
    return { correct, total: test.count };
  } finally {
    await engine.close();
  }
}

export function argmax(a: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[offset + i]! > a[offset + best]!) best = i;
  return best;
}
