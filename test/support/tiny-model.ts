// A tiny digits-shaped ONNX model built in the test itself, for repositories the tests break on purpose.
import { readFileSync } from "node:fs";
import path from "node:path";
import { DType, GraphBuilder } from "../../src/zoo/onnx-builder.js";
import { seededRandom } from "../../src/stats/random.js";

export interface TinyOptions {
  inputName?: string;
  outputName?: string;
  rowShape?: number[];
  inputType?: number;
  classes?: number;
}

export function tinyDigitsModel(opts: TinyOptions = {}): Uint8Array {
  const rowShape = opts.rowShape ?? [1, 28, 28];
  const features = rowShape.reduce((a, b) => a * b, 1);
  const classes = opts.classes ?? 10;
  const g = new GraphBuilder("tiny");
  const rand = seededRandom(7);
  const x = g.input(opts.inputName ?? "image", (opts.inputType ?? DType.FLOAT) as 1, ["batch", ...rowShape]);
  const flat = g.op("Flatten", [x], { axis: 1 });
  const w = g.weight(
    "w",
    Float32Array.from({ length: features * classes }, () => rand() - 0.5),
    [features, classes],
  );
  const logits = g.op("MatMul", [flat, w]);
  g.rename(g.op("Softmax", [logits], { axis: 1 }), opts.outputName ?? "probabilities");
  g.output(opts.outputName ?? "probabilities", DType.FLOAT, ["batch", classes]);
  return g.toModel();
}

/** The real digits task signature, so broken-repository tests break exactly what users would. */
export const DIGITS_TASK_YAML = readFileSync(path.resolve("models/digits/task.yaml"), "utf8");

export function variantYaml(name: string, accuracy = 0.9): string {
  return `name: ${name}
max_batch: 16
accuracy:
  value: ${accuracy}
  source: declared
  reference: test fixture
`;
}
