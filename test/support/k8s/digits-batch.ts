// Real batches of held-out MNIST digits through any Instance, checked against their labels.
import type { Instance, WorkItem } from "../../../src/cluster/types.js";
import { DIGIT_PIXELS, loadDigits } from "../../../src/zoo/digits-data.js";

const digits = loadDigits().test;

export interface DigitsAnswer {
  ok: boolean;
  message?: string;
  correct: number;
  rows: number;
}

/** Sends `rows` digits starting at `offset` as one batch; counts how many the model classified right. */
export function runDigits(inst: Instance, variant: string, rows = 8, offset = 0): Promise<DigitsAnswer> {
  const start = offset % (digits.count - rows);
  const image = digits.images.slice(start * DIGIT_PIXELS, (start + rows) * DIGIT_PIXELS);
  const item: WorkItem = { rows, input: { image: { type: "float32", dims: [rows, 1, 28, 28], data: image } } };
  return new Promise((resolve) =>
    inst.run({ task: "digits", variant, items: [item] }, (r) => {
      if (!r.ok) return resolve({ ok: false, message: r.message, correct: 0, rows });
      const probs = r.outputs[0]!.probabilities!.data as Float32Array;
      let correct = 0;
      for (let i = 0; i < rows; i++) {
        const row = probs.subarray(i * 10, i * 10 + 10);
        const guess = row.indexOf(Math.max(...row));
        if (guess === digits.labels[start + i]) correct++;
      }
      resolve({ ok: true, correct, rows });
    }),
  );
}

/** Resolves when `test` holds, polling; fails with `what` after `ms`. */
export async function eventually<T>(
  what: string,
  ms: number,
  test: () => T | undefined | false | Promise<T | undefined | false>,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await test();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
