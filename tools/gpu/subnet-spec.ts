// A supernet's served subnets as plain layer lists, for the PyTorch measurement tool
// (profile_subnets.py) on machines without Node.js. The lists come from the architecture's own
// `write` (src/zoo/supernet/*-arch.ts), walked for one subnet with a NetWriter that records each op
// and its shapes, so the tool runs exactly the widths, depths and shapes the ONNX supernet computes
// for that subnet (normalisation folded into the conv, as SubnetWriter exports a subnet alone).
import type { SupernetArch } from "../../src/zoo/supernet/build.js";
import type { NetWriter } from "../../src/zoo/supernet/subnetact.js";

/** One op over numbered values; value 0 is the input batch. */
export type SpecOp =
  | { op: "conv"; x: number; out: number; cin: number; cout: number; kernel: number; stride: number; pad: number }
  | { op: "relu"; x: number; out: number }
  | { op: "add"; a: number; b: number; out: number }
  | { op: "maxpool"; x: number; out: number; kernel: number; stride: number; pad: number }
  | { op: "gap"; x: number; out: number }
  | { op: "flatten"; x: number; out: number }
  | { op: "dense"; x: number; out: number; in_features: number; out_features: number }
  | { op: "softmax"; x: number; out: number };

export interface SubnetSpec {
  name: string;
  /** Its position among the supernet's candidates (its `subnet_index`). */
  index: number;
  /** Multiply-accumulates per input row, from the walk. */
  macs: number;
  ops: SpecOp[];
  /** Shape of one row of the output. */
  output: number[];
}

/** The ops of candidate `index` of `arch`, with every intermediate shape checked as it is written. */
export function subnetSpec(arch: SupernetArch, index: number, name: string): SubnetSpec {
  const choice = arch.space.candidates[index];
  if (!choice) throw new Error(`${arch.task}: no candidate subnet ${index}`);
  const shapes: number[][] = [[...arch.input.dims]];
  const ops: SpecOp[] = [];
  let macs = 0;
  const id = (x: string) => {
    const n = Number(x);
    if (!Number.isInteger(n) || !shapes[n]) throw new Error(`unknown value ${x}`);
    return n;
  };
  const put = (shape: number[]) => {
    shapes.push(shape);
    return String(shapes.length - 1);
  };
  const writer: NetWriter = {
    convNorm(x, _layer, spec) {
      const [c, h, w] = shapes[id(x)] as [number, number, number];
      const cin = "channels" in spec.input ? spec.input.channels : choice.widths[spec.input.group]!;
      if (cin !== c) throw new Error(`${arch.task} ${name}: conv expects ${cin} channels, gets ${c}`);
      const cout = choice.widths[spec.outGroup]!;
      const stride = spec.stride ?? 1;
      const pad = (spec.kernel - 1) >> 1;
      const ho = Math.floor((h + 2 * pad - spec.kernel) / stride) + 1;
      const wo = Math.floor((w + 2 * pad - spec.kernel) / stride) + 1;
      macs += ho * wo * cout * cin * spec.kernel * spec.kernel;
      const out = put([cout, ho, wo]);
      ops.push({ op: "conv", x: id(x), out: id(out), cin, cout, kernel: spec.kernel, stride, pad });
      return out;
    },
    relu(x) {
      const out = put(shapes[id(x)]!);
      ops.push({ op: "relu", x: id(x), out: id(out) });
      return out;
    },
    add(a, b) {
      if (shapes[id(a)]!.join() !== shapes[id(b)]!.join())
        throw new Error(`${arch.task} ${name}: add of ${shapes[id(a)]} and ${shapes[id(b)]}`);
      const out = put(shapes[id(a)]!);
      ops.push({ op: "add", a: id(a), b: id(b), out: id(out) });
      return out;
    },
    maxPool(x, kernel, stride, pad = 0) {
      const [c, h, w] = shapes[id(x)] as [number, number, number];
      const out = put([
        c,
        Math.floor((h + 2 * pad - kernel) / stride) + 1,
        Math.floor((w + 2 * pad - kernel) / stride) + 1,
      ]);
      ops.push({ op: "maxpool", x: id(x), out: id(out), kernel, stride, pad });
      return out;
    },
    globalAvgPool(x) {
      const out = put([shapes[id(x)]![0]!, 1, 1]);
      ops.push({ op: "gap", x: id(x), out: id(out) });
      return out;
    },
    flatten(x) {
      const out = put([shapes[id(x)]!.reduce((a, b) => a * b, 1)]);
      ops.push({ op: "flatten", x: id(x), out: id(out) });
      return out;
    },
    dense(x, _layer, inGroup, rowsPerChannel) {
      const rows = choice.widths[inGroup]! * rowsPerChannel;
      if (shapes[id(x)]![0] !== rows) throw new Error(`${arch.task} ${name}: dense expects ${rows} features`);
      macs += rows * arch.output.classes;
      const out = put([arch.output.classes]);
      ops.push({ op: "dense", x: id(x), out: id(out), in_features: rows, out_features: arch.output.classes });
      return out;
    },
    blocks(x, stage, block) {
      for (let j = 0; j < choice.depths[stage]!; j++) x = block(writer, x, j);
      return x;
    },
  };
  const logits = arch.write(writer, "0");
  const probs = put(shapes[id(logits)]!);
  ops.push({ op: "softmax", x: id(logits), out: id(probs) });
  return { name, index, macs, ops, output: shapes[id(probs)]! };
}
