// SubNetAct (SuperServe, NSDI'25) in plain ONNX: one graph over one shared copy of a supernet's
// weights, whose control inputs pick the subnet per batch, so that switching subnets is a matter
// of feeding other control values — no second session, no reload.
//
//   WeightSlice  — a layer uses the first k output (and input) channels of its shared weight:
//                  Slice on the initializer, k read from the `subnet_width` control input.
//   LayerSelect  — blocks beyond the chosen depth of a stage are not computed: each optional block
//                  sits in an ONNX `If` on `subnet_depth[stage] > j`, whose else-branch is Identity.
//   SubnetNorm   — every subnet has its own normalisation statistics (folded with the shared affine
//                  into a per-subnet scale and shift); a Gather on `subnet_index` picks the row.
//
// An architecture is written once against `NetWriter`; `SupernetWriter` emits the dynamic graph
// above, `SubnetWriter` the same network for one fixed subnet with only its weights (sliced, norm
// folded into the conv), i.e. what one would deploy for that subnet alone. Tests compare the two.
import { DType, GraphBuilder } from "../onnx-builder.js";

export const CONTROL = { width: "subnet_width", depth: "subnet_depth", index: "subnet_index" } as const;
export type ControlName = (typeof CONTROL)[keyof typeof CONTROL];
export const CONTROL_NAMES: readonly ControlName[] = [CONTROL.width, CONTROL.depth, CONTROL.index];

/** The design space of a supernet. */
export interface SupernetSpace {
  /** Channel groups that WeightSlice cuts (e.g. "stage2.out"), with their full widths. */
  widthGroups: { name: string; max: number }[];
  /** Stages whose blocks beyond the chosen depth LayerSelect skips. */
  stages: { name: string; minDepth: number; maxDepth: number }[];
  /** Every subnet with SubnetNorm statistics; its position in this list is its `subnet_index`. */
  candidates: SubnetChoice[];
}

/** One subnet: channels per width group, blocks per stage. */
export interface SubnetChoice {
  widths: number[];
  depths: number[];
}

/** The values fed to the control inputs for one subnet (all int64 vectors). */
export type SubnetControls = Record<ControlName, number[]>;

export function controlsOf(space: SupernetSpace, index: number): SubnetControls {
  const c = space.candidates[index];
  if (!c) throw new Error(`supernet has no candidate subnet ${index} (it has ${space.candidates.length})`);
  return { [CONTROL.width]: [...c.widths], [CONTROL.depth]: [...c.depths], [CONTROL.index]: [index] } as SubnetControls;
}

/** A short readable name, e.g. "w16-32.d2" (widths per group, depth per stage). */
export function subnetName(c: SubnetChoice): string {
  return `w${c.widths.join("-")}.d${c.depths.join("-")}`;
}

export interface WeightTensor {
  data: Float32Array;
  dims: number[];
}

/**
 * Full-size weights by layer: `<layer>.w` (conv [cout,cin,k,k] or dense [nin,nout]), `<layer>.b`
 * (dense bias), `<layer>.norm_scale` / `<layer>.norm_shift` ([candidates, cout], SubnetNorm rows).
 */
export type WeightStore = Map<string, WeightTensor>;

export function weightOf(store: WeightStore, name: string): WeightTensor {
  const w = store.get(name);
  if (!w) throw new Error(`supernet weight '${name}' is missing`);
  return w;
}

export interface ConvSpec {
  /** Width group of the input channels, or a fixed channel count (the image's). */
  input: { group: number } | { channels: number };
  outGroup: number;
  kernel: number;
  stride?: number;
}

/** What an architecture may write; both the supernet and a lone subnet implement it. */
export interface NetWriter {
  /** Conv (no bias) + SubnetNorm. */
  convNorm(x: string, layer: string, spec: ConvSpec): string;
  relu(x: string): string;
  add(a: string, b: string): string;
  maxPool(x: string, kernel: number, stride: number, pad?: number): string;
  globalAvgPool(x: string): string;
  flatten(x: string): string;
  /** Dense over the first k·rowsPerChannel rows of `<layer>.w` (k = the input group's width), plus `<layer>.b`. */
  dense(x: string, layer: string, inGroup: number, rowsPerChannel: number): string;
  /** Runs `block` for j = 0..maxDepth−1 of `stage`; blocks beyond the subnet's depth are not computed. */
  blocks(x: string, stage: number, block: (w: NetWriter, x: string, j: number) => string): string;
}

const FLOAT_OUT = DType.FLOAT;

function convAttrs(spec: ConvSpec) {
  const pad = (spec.kernel - 1) >> 1;
  const s = spec.stride ?? 1;
  return { kernel_shape: [spec.kernel, spec.kernel], strides: [s, s], pads: [pad, pad, pad, pad] };
}

/** Shared elementwise and pooling ops of both writers. */
abstract class BaseWriter implements NetWriter {
  constructor(protected g: GraphBuilder) {}
  abstract convNorm(x: string, layer: string, spec: ConvSpec): string;
  abstract dense(x: string, layer: string, inGroup: number, rowsPerChannel: number): string;
  abstract blocks(x: string, stage: number, block: (w: NetWriter, x: string, j: number) => string): string;

  relu(x: string): string {
    return this.g.op("Relu", [x]);
  }
  add(a: string, b: string): string {
    return this.g.op("Add", [a, b]);
  }
  maxPool(x: string, kernel: number, stride: number, pad = 0): string {
    return this.g.op("MaxPool", [x], {
      kernel_shape: [kernel, kernel],
      strides: [stride, stride],
      pads: [pad, pad, pad, pad],
    });
  }
  globalAvgPool(x: string): string {
    return this.g.op("GlobalAveragePool", [x]);
  }
  flatten(x: string): string {
    return this.g.op("Flatten", [x], { axis: 1 });
  }
}

/**
 * The dynamic supernet. Weights and control-derived constants live in the root graph (shared
 * outer scope); weight slices and norm gathers are emitted in the graph being written, so a block
 * that an `If` skips computes none of them.
 */
export class SupernetWriter extends BaseWriter {
  private readonly widthEnds = new Map<number, string>();
  private readonly stageDepths = new Map<number, string>();
  private readonly consts = new Map<string, string>();
  private readonly weightNames = new Map<string, string>();
  private ifCount = 0;

  private constructor(
    private readonly root: GraphBuilder,
    g: GraphBuilder,
    private readonly space: SupernetSpace,
    private readonly store: WeightStore,
    shared?: SupernetWriter,
  ) {
    super(g);
    if (shared) {
      this.widthEnds = shared.widthEnds;
      this.stageDepths = shared.stageDepths;
      this.consts = shared.consts;
      this.weightNames = shared.weightNames;
    }
  }

  /** A writer over `root`, whose control inputs it declares. */
  static over(root: GraphBuilder, space: SupernetSpace, store: WeightStore): SupernetWriter {
    root.input(CONTROL.width, DType.INT64, [space.widthGroups.length]);
    root.input(CONTROL.depth, DType.INT64, [space.stages.length]);
    root.input(CONTROL.index, DType.INT64, [1]);
    return new SupernetWriter(root, root, space, store);
  }

  private int(values: number[]): string {
    const key = values.join(",");
    let name = this.consts.get(key);
    if (!name) {
      name = this.root.ints("c", values);
      this.consts.set(key, name);
    }
    return name;
  }

  private weight(name: string): string {
    let n = this.weightNames.get(name);
    if (!n) {
      const w = weightOf(this.store, name);
      n = this.root.namedWeight(name, w.data, w.dims);
      this.weightNames.set(name, n);
    }
    return n;
  }

  /** Element `i` of a control input as a [1] int64 tensor: Slice(control, [i], [i+1]). Computed once, in the root graph. */
  private controlAt(control: string, cache: Map<number, string>, i: number): string {
    let v = cache.get(i);
    if (!v) {
      v = this.root.op("Slice", [control, this.int([i]), this.int([i + 1]), this.int([0])]);
      cache.set(i, v);
    }
    return v;
  }

  /** k of a width group. */
  private width(group: number): string {
    return this.controlAt(CONTROL.width, this.widthEnds, group);
  }

  /** Depth of a stage. */
  private depth(stage: number): string {
    return this.controlAt(CONTROL.depth, this.stageDepths, stage);
  }

  /** WeightSlice: the first k_out filters over the first k_in input channels. */
  private slicedConvWeight(layer: string, spec: ConvSpec): string {
    const w = this.weight(`${layer}.w`);
    const kOut = this.width(spec.outGroup);
    if ("channels" in spec.input) return this.g.op("Slice", [w, this.int([0]), kOut, this.int([0])]);
    const ends = this.g.op("Concat", [kOut, this.width(spec.input.group)], { axis: 0 });
    return this.g.op("Slice", [w, this.int([0, 0]), ends, this.int([0, 1])]);
  }

  /** SubnetNorm: row `subnet_index` of the per-subnet scale/shift tables, first k channels, as [1,k,1,1]. */
  private subnetNorm(x: string, layer: string, group: number): string {
    const k = this.width(group);
    const row = (table: string) => {
      const picked = this.g.op("Gather", [this.weight(table), CONTROL.index], { axis: 0 }); // [1, Cmax]
      const cut = this.g.op("Slice", [picked, this.int([0]), k, this.int([1])]); // [1, k]
      return this.g.op("Reshape", [cut, this.int([1, -1, 1, 1])]);
    };
    return this.g.op("Add", [this.g.op("Mul", [x, row(`${layer}.norm_scale`)]), row(`${layer}.norm_shift`)]);
  }

  convNorm(x: string, layer: string, spec: ConvSpec): string {
    const y = this.g.op("Conv", [x, this.slicedConvWeight(layer, spec)], convAttrs(spec));
    return this.subnetNorm(y, layer, spec.outGroup);
  }

  dense(x: string, layer: string, inGroup: number, rowsPerChannel: number): string {
    let rows = this.width(inGroup);
    if (rowsPerChannel !== 1) rows = this.g.op("Mul", [rows, this.int([rowsPerChannel])]);
    const w = this.g.op("Slice", [this.weight(`${layer}.w`), this.int([0]), rows, this.int([0])]);
    return this.g.op("Gemm", [x, w, this.weight(`${layer}.b`)]);
  }

  /** LayerSelect: blocks below the stage's least depth always run; each later one sits in an `If`. */
  blocks(x: string, stage: number, block: (w: NetWriter, x: string, j: number) => string): string {
    const { minDepth, maxDepth } = this.space.stages[stage]!;
    for (let j = 0; j < maxDepth; j++) {
      if (j < minDepth) {
        x = block(this, x, j);
        continue;
      }
      const cond = this.g.op("Greater", [this.depth(stage), this.int([j])]);
      const id = ++this.ifCount;
      const thenG = new GraphBuilder(`select_${stage}_${j}_run`, `s${id}r_`);
      const out = block(new SupernetWriter(this.root, thenG, this.space, this.store, this), x, j);
      thenG.rename(out, `s${id}r_out`);
      thenG.output(`s${id}r_out`, FLOAT_OUT);
      const elseG = new GraphBuilder(`select_${stage}_${j}_skip`, `s${id}k_`);
      elseG.rename(x, `s${id}k_out`);
      elseG.output(`s${id}k_out`, FLOAT_OUT);
      x = this.g.node("If", [cond], { then_branch: thenG, else_branch: elseG })[0]!;
    }
    return x;
  }
}

/** One fixed subnet as an ordinary graph: only its weights, sliced; its norm folded into conv weight and bias. */
export class SubnetWriter extends BaseWriter {
  constructor(
    g: GraphBuilder,
    private readonly space: SupernetSpace,
    private readonly store: WeightStore,
    private readonly index: number,
  ) {
    super(g);
  }

  private get choice(): SubnetChoice {
    return this.space.candidates[this.index]!;
  }

  convNorm(x: string, layer: string, spec: ConvSpec): string {
    const full = weightOf(this.store, `${layer}.w`);
    const [coutMax, cinMax, kh, kw] = full.dims as [number, number, number, number];
    const kOut = this.choice.widths[spec.outGroup]!;
    const kIn = "channels" in spec.input ? spec.input.channels : this.choice.widths[spec.input.group]!;
    const scale = normRow(this.store, `${layer}.norm_scale`, this.index, kOut);
    const shift = normRow(this.store, `${layer}.norm_shift`, this.index, kOut);
    if (kOut > coutMax || kIn > cinMax)
      throw new Error(`${layer}: subnet wants ${kOut}x${kIn} channels of ${coutMax}x${cinMax}`);
    const w = new Float32Array(kOut * kIn * kh * kw);
    for (let o = 0; o < kOut; o++) {
      for (let i = 0; i < kIn; i++) {
        for (let p = 0; p < kh * kw; p++)
          w[(o * kIn + i) * kh * kw + p] = full.data[(o * cinMax + i) * kh * kw + p]! * scale[o]!;
      }
    }
    const W = this.g.weight(`${layer}_w`, w, [kOut, kIn, kh, kw]);
    const B = this.g.weight(`${layer}_b`, shift, [kOut]);
    return this.g.op("Conv", [x, W, B], convAttrs(spec));
  }

  dense(x: string, layer: string, inGroup: number, rowsPerChannel: number): string {
    const full = weightOf(this.store, `${layer}.w`);
    const nout = full.dims[1]!;
    const rows = this.choice.widths[inGroup]! * rowsPerChannel;
    const W = this.g.weight(`${layer}_w`, full.data.slice(0, rows * nout), [rows, nout]);
    const b = weightOf(this.store, `${layer}.b`);
    return this.g.op("Gemm", [x, W, this.g.weight(`${layer}_b`, b.data.slice(), b.dims)]);
  }

  blocks(x: string, stage: number, block: (w: NetWriter, x: string, j: number) => string): string {
    for (let j = 0; j < this.choice.depths[stage]!; j++) x = block(this, x, j);
    return x;
  }
}

function normRow(store: WeightStore, name: string, index: number, k: number): Float32Array {
  const t = weightOf(store, name);
  const cmax = t.dims[1]!;
  return t.data.slice(index * cmax, index * cmax + k);
}

/** Checks a design space against itself: widths within their groups, depths within their stages. */
export function checkSpace(space: SupernetSpace): void {
  space.candidates.forEach((c, i) => {
    if (c.widths.length !== space.widthGroups.length)
      throw new Error(`candidate ${i}: ${c.widths.length} widths for ${space.widthGroups.length} groups`);
    if (c.depths.length !== space.stages.length)
      throw new Error(`candidate ${i}: ${c.depths.length} depths for ${space.stages.length} stages`);
    c.widths.forEach((k, g) => {
      if (!Number.isInteger(k) || k < 1 || k > space.widthGroups[g]!.max)
        throw new Error(
          `candidate ${i}: width ${k} of group ${space.widthGroups[g]!.name} is outside 1..${space.widthGroups[g]!.max}`,
        );
    });
    c.depths.forEach((d, s) => {
      const st = space.stages[s]!;
      if (!Number.isInteger(d) || d < st.minDepth || d > st.maxDepth)
        throw new Error(`candidate ${i}: depth ${d} of stage ${st.name} is outside ${st.minDepth}..${st.maxDepth}`);
    });
  });
}
