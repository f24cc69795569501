// Runs a partition's stage models one after the other through the serving engine, each stage's outputs
// fed to the next stage's inputs by name as the pipeline walk does, and compares the last stage's outputs
// with the whole model's on the same inputs.
import type ort from "onnxruntime-node";
import { Engine, type Tensors, type TypedArray } from "../engine/engine.js";

export interface OutputDiff {
  name: string;
  /** Largest |pipeline − whole| over all values. */
  maxAbsDiff: number;
  /** Largest |whole| (for scale). */
  maxAbs: number;
  /** Every value bit-for-bit the same. */
  identical: boolean;
}

export interface Equality {
  rows: number;
  outputs: OutputDiff[];
  maxAbsDiff: number;
  identical: boolean;
}

/** Runs one model on `inputs` (batched feeds: every tensor leads with the same rows). */
export async function runModel(bytes: Uint8Array, inputs: Tensors): Promise<Tensors> {
  const engine = await Engine.create(bytes, { threads: 1 });
  try {
    const rows = Object.values(inputs)[0]?.dims[0] ?? 1;
    const feeds: Record<string, TypedArray> = {};
    for (const spec of engine.inputs) {
      const t = inputs[spec.name];
      if (!t) throw new Error(`the model needs input '${spec.name}', which was not given`);
      feeds[spec.name] = t.data;
    }
    return (await engine.runBatch([{ rows, inputs: feeds }]))[0]!;
  } finally {
    await engine.close();
  }
}

/** Runs the stages in order, each on the tensors the stages before it made (and the request's inputs). */
export async function runChain(stages: Uint8Array[], inputs: Tensors): Promise<Tensors> {
  let current = inputs;
  for (const bytes of stages) current = await runModel(bytes, current);
  return current;
}

export async function compareWithWhole(whole: Uint8Array, stages: Uint8Array[], inputs: Tensors): Promise<Equality> {
  const expected = await runModel(whole, inputs);
  const actual = await runChain(stages, inputs);
  const outputs = Object.keys(expected).map((name) => {
    const got = actual[name];
    if (!got) throw new Error(`the last stage does not produce output '${name}'`);
    return diff(name, expected[name]!.data, got.data);
  });
  return {
    rows: Object.values(inputs)[0]?.dims[0] ?? 0,
    outputs,
    maxAbsDiff: Math.max(0, ...outputs.map((o) => o.maxAbsDiff)),
    identical: outputs.every((o) => o.identical),
  };
}

export function diff(name: string, want: TypedArray, got: TypedArray): OutputDiff {
  if (want.length !== got.length)
    throw new Error(`output '${name}' has ${got.length} values, the whole model's ${want.length}`);
  let maxAbsDiff = 0;
  let maxAbs = 0;
  let identical = true;
  for (let i = 0; i < want.length; i++) {
    const w = Number(want[i]);
    const g = Number(got[i]);
    if (!Object.is(w, g)) identical = false;
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(w - g));
    maxAbs = Math.max(maxAbs, Math.abs(w));
  }
  return { name, maxAbsDiff, maxAbs, identical };
}

/** Feeds (onnxruntime tensors) as the engine's per-request tensors. */
export function tensorsOf(feeds: Record<string, ort.Tensor>): Tensors {
  return Object.fromEntries(
    Object.entries(feeds).map(([name, t]) => [name, { type: t.type, dims: [...t.dims], data: t.data as TypedArray }]),
  );
}
