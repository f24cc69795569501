// Writes a supernet architecture as the one dynamic ONNX graph (SubNetAct) or as one subnet on its
// own, and reads a supernet's shared weights back out of its ONNX file.
import onnxPkg from "onnx-proto";
import { DType, GraphBuilder } from "../onnx-builder.js";
import {
  SubnetWriter,
  SupernetWriter,
  checkSpace,
  subnetName,
  type NetWriter,
  type SupernetSpace,
  type WeightStore,
} from "./subnetact.js";

const { onnx } = onnxPkg;

/** An architecture over a design space: `write` turns the input into logits. */
export interface SupernetArch {
  task: string;
  variant: string;
  description: string;
  space: SupernetSpace;
  input: { name: string; dims: number[] };
  output: { name: string; classes: number };
  write(w: NetWriter, input: string): string;
}

function begin(arch: SupernetArch, graphName: string): { g: GraphBuilder; x: string } {
  const g = new GraphBuilder(graphName);
  const x = g.input(arch.input.name, DType.FLOAT, ["batch", ...arch.input.dims]);
  return { g, x };
}

function end(g: GraphBuilder, arch: SupernetArch, logits: string): void {
  g.node("Softmax", [logits], { axis: 1 }, [arch.output.name]);
  g.output(arch.output.name, DType.FLOAT, ["batch", arch.output.classes]);
}

/** The supernet: control inputs subnet_width / subnet_depth / subnet_index select the subnet. */
export function buildSupernetModel(arch: SupernetArch, store: WeightStore): Uint8Array {
  checkSpace(arch.space);
  const { g, x } = begin(arch, `${arch.task}_${arch.variant}`.replace(/[^a-zA-Z0-9_]/g, "_"));
  end(g, arch, arch.write(SupernetWriter.over(g, arch.space, store), x));
  return g.toModel({
    docString: `sloserve ${arch.task}/${arch.variant}: ${arch.description}. SubNetAct supernet with ${arch.space.candidates.length} candidate subnets.`,
    metadata: {
      task: arch.task,
      variant: arch.variant,
      supernet: "subnetact",
      candidates: String(arch.space.candidates.length),
    },
  });
}

/** Candidate `index` alone: its weights only, sliced, with its normalisation folded into the convs. */
export function buildSubnetModel(arch: SupernetArch, store: WeightStore, index: number): Uint8Array {
  checkSpace(arch.space);
  const name = subnetName(arch.space.candidates[index]!);
  const { g, x } = begin(arch, `${arch.task}_${arch.variant}_${name}`.replace(/[^a-zA-Z0-9_]/g, "_"));
  end(g, arch, arch.write(new SubnetWriter(g, arch.space, store, index), x));
  return g.toModel({
    docString: `sloserve ${arch.task}/${arch.variant}, subnet ${name} exported on its own`,
    metadata: { task: arch.task, variant: arch.variant, subnet: name },
  });
}

/** The named float initializers of a supernet ONNX file (its shared weights and SubnetNorm tables). */
export function readWeightStore(bytes: Uint8Array): WeightStore {
  const model = onnx.ModelProto.decode(bytes);
  const store: WeightStore = new Map();
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataType !== DType.FLOAT || !t.name || !t.name.includes(".")) continue;
    const raw = t.rawData!;
    const copy = new Uint8Array(raw.byteLength);
    copy.set(raw);
    store.set(t.name, { data: new Float32Array(copy.buffer), dims: (t.dims ?? []).map(Number) });
  }
  return store;
}

/**
 * Walks an architecture for one candidate without building anything, counting multiply-accumulates
 * per input row and learned parameters (conv and dense weights and biases; a norm counts as its
 * affine pair), so that every figure comes from the same `write` that builds the graphs.
 */
export function costOf(arch: SupernetArch, index: number): { macs: number; parameters: number } {
  const choice = arch.space.candidates[index]!;
  const shapes = new Map<string, number[]>(); // value → [channels, height, width] (or [features])
  let macs = 0;
  let parameters = 0;
  let n = 0;
  const put = (shape: number[]) => {
    const name = `v${++n}`;
    shapes.set(name, shape);
    return name;
  };
  const shape = (x: string) => shapes.get(x)!;
  const writer: NetWriter = {
    convNorm(x, _layer, spec) {
      const [, h, w] = shape(x) as [number, number, number];
      const cin = "channels" in spec.input ? spec.input.channels : choice.widths[spec.input.group]!;
      const cout = choice.widths[spec.outGroup]!;
      const s = spec.stride ?? 1;
      const pad = (spec.kernel - 1) >> 1;
      const ho = Math.floor((h + 2 * pad - spec.kernel) / s) + 1;
      const wo = Math.floor((w + 2 * pad - spec.kernel) / s) + 1;
      macs += ho * wo * cout * cin * spec.kernel * spec.kernel;
      parameters += cout * cin * spec.kernel * spec.kernel + 2 * cout;
      return put([cout, ho, wo]);
    },
    relu: (x) => x,
    add: (a) => a,
    maxPool(x, kernel, stride, pad = 0) {
      const [c, h, w] = shape(x) as [number, number, number];
      return put([c, Math.floor((h + 2 * pad - kernel) / stride) + 1, Math.floor((w + 2 * pad - kernel) / stride) + 1]);
    },
    globalAvgPool: (x) => put([shape(x)[0]!, 1, 1]),
    flatten: (x) => put([shape(x).reduce((a, b) => a * b, 1)]),
    dense(x, _layer, inGroup, rowsPerChannel) {
      const rows = choice.widths[inGroup]! * rowsPerChannel;
      if (shape(x)[0] !== rows) throw new Error(`dense expects ${rows} features, gets ${shape(x)[0]}`);
      macs += rows * arch.output.classes;
      parameters += rows * arch.output.classes + arch.output.classes;
      return put([arch.output.classes]);
    },
    blocks(x, stage, block) {
      for (let j = 0; j < choice.depths[stage]!; j++) x = block(writer, x, j);
      return x;
    },
  };
  arch.write(writer, put([...arch.input.dims]));
  return { macs, parameters };
}

/** Every weight the supernet holds, with its full dims (the widest, deepest walk of `write`). */
export function weightShapes(arch: SupernetArch): Map<string, number[]> {
  const space = arch.space;
  const full = { widths: space.widthGroups.map((g) => g.max), depths: space.stages.map((s) => s.maxDepth) };
  const shapes = new Map<string, number[]>();
  const S = space.candidates.length;
  const writer: NetWriter = {
    convNorm(x, layer, spec) {
      const cin = "channels" in spec.input ? spec.input.channels : full.widths[spec.input.group]!;
      const cout = full.widths[spec.outGroup]!;
      shapes.set(`${layer}.w`, [cout, cin, spec.kernel, spec.kernel]);
      shapes.set(`${layer}.norm_scale`, [S, cout]);
      shapes.set(`${layer}.norm_shift`, [S, cout]);
      return x;
    },
    relu: (x) => x,
    add: (a) => a,
    maxPool: (x) => x,
    globalAvgPool: (x) => x,
    flatten: (x) => x,
    dense(x, layer, inGroup, rowsPerChannel) {
      shapes.set(`${layer}.w`, [full.widths[inGroup]! * rowsPerChannel, arch.output.classes]);
      shapes.set(`${layer}.b`, [arch.output.classes]);
      return x;
    },
    blocks(x, stage, block) {
      for (let j = 0; j < full.depths[stage]!; j++) x = block(writer, x, j);
      return x;
    },
  };
  arch.write(writer, "input");
  return shapes;
}
