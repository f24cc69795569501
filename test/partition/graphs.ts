// Small graphs built in the tests, each with the shape a partitioner must get right.
import { DType, GraphBuilder } from "../../src/zoo/onnx-builder.js";
import { seededRandom } from "../../src/stats/random.js";

/** Seeded weights: the same graph however many times it is built. */
function weightsFrom(seed: number): (n: number) => Float32Array {
  const rand = seededRandom(seed);
  return (n) => Float32Array.from({ length: n }, () => rand() - 0.5);
}

/**
 * x → MatMul → Relu = a → ×k → MatMul → Relu = b → MatMul → Relu = c → (c + a) ×k → MatMul → Softmax,
 * and `a` again as a second output `early`. `a` is read by the last stage whatever the cuts, so it
 * crosses every cut after it; `k` comes from a Constant node that stages 1 and 3 both read.
 * The order is 0 MatMul, 1 Relu(a), 2 Mul, 3 MatMul, 4 Relu(b), 5 MatMul, 6 Relu(c), 7 Add, 8 Mul,
 * 9 MatMul, 10 Softmax, 11 Identity(early).
 */
export function skipModel(): Uint8Array {
  const weights = weightsFrom(11);
  const g = new GraphBuilder("skip");
  const x = g.input("x", DType.FLOAT, ["batch", 8]);
  const [k] = g.node("Constant", [], { value_float: { float: 0.5 } }, ["k"]);
  const a = g.node("Relu", [g.op("MatMul", [x, g.weight("w1", weights(64), [8, 8])])], {}, ["a"])[0]!;
  const am = g.op("Mul", [a, k!]);
  const b = g.node("Relu", [g.op("MatMul", [am, g.weight("w2", weights(64), [8, 8])])], {}, ["b"])[0]!;
  const c = g.node("Relu", [g.op("MatMul", [b, g.weight("w3", weights(64), [8, 8])])], {}, ["c"])[0]!;
  const d = g.op("Mul", [g.op("Add", [c, a]), k!]);
  g.node("Softmax", [g.op("MatMul", [d, g.weight("w4", weights(40), [8, 5])])], { axis: 1 }, ["probabilities"]);
  g.node("Identity", [a], {}, ["early"]);
  g.output("probabilities", DType.FLOAT, ["batch", 5]);
  g.output("early", DType.FLOAT, ["batch", 8]);
  return g.toModel();
}

export const SKIP_TASK_YAML = `name: skip
description: a small graph with a long skip connection and an early second output
inputs:
  - name: x
    datatype: FP32
    shape: [8]
outputs:
  - name: probabilities
    datatype: FP32
    shape: [5]
  - name: early
    datatype: FP32
    shape: [8]
slo_ms: 1000
scheduling: edf
scaling: none
`;

/**
 * x [batch, 4] → Reshape to [-1] → Relu → Reshape to [-1, 4] → MatMul: between the two Reshapes the
 * batch is folded into one dimension, so no cut can sit there.
 */
export function foldedBatchModel(): Uint8Array {
  const weights = weightsFrom(12);
  const g = new GraphBuilder("folded");
  const x = g.input("x", DType.FLOAT, ["batch", 4]);
  const flat = g.op("Reshape", [x, g.ints("flat", [-1])]);
  const r = g.op("Relu", [flat]);
  const back = g.op("Reshape", [r, g.ints("rows", [-1, 4])]);
  const y = g.op("Relu", [g.op("MatMul", [back, g.weight("w", weights(12), [4, 3])])]);
  g.rename(g.op("MatMul", [y, g.weight("v", weights(6), [3, 2])]), "y");
  g.output("y", DType.FLOAT, ["batch", 2]);
  return g.toModel();
}

/** An input with a dynamic dimension besides the batch: its tensors have no fixed row shape. */
export function dynamicRowModel(): Uint8Array {
  const g = new GraphBuilder("dynamic");
  const x = g.input("x", DType.FLOAT, ["batch", "length"]);
  g.rename(g.op("Relu", [g.op("Relu", [x])]), "y");
  g.output("y", DType.FLOAT, ["batch", "length"]);
  return g.toModel();
}

/** A batch dimension fixed at 1: a partition could not serve batches. */
export function fixedBatchModel(): Uint8Array {
  const g = new GraphBuilder("fixed");
  const x = g.input("x", DType.FLOAT, [1, 4]);
  g.rename(g.op("Relu", [g.op("Relu", [x])]), "y");
  g.output("y", DType.FLOAT, [1, 4]);
  return g.toModel();
}
