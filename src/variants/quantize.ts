// Static int8 quantisation by the project's own graph transform, in the QDQ form onnxruntime fuses
// into integer kernels (QLinearConv, MatMulIntegerToFloat, QGemm):
// - weights of Conv / MatMul / Gemm: int8, symmetric, one scale per output channel;
// - activations entering those ops, and Conv outputs: uint8, asymmetric, one scale per tensor, from
//   the min/max each tensor reaches on the calibration inputs (run through onnxruntime);
// - Conv bias: int32 at scale = input scale × weight scale, as the integer kernels expect;
// - a Relu (or Clip from 0) right after a Conv is absorbed: its output range starts at 0, so the
//   quantiser's own clamp does what it did.
// The model is first run through onnxruntime's basic optimiser (constants folded into initializers,
// BatchNorm folded into Conv weights) so that the weights the transform sees are the final ones.
// Opsets below 13 have no per-channel QuantizeLinear, so there the com.microsoft Q/DQ ops are used,
// which onnxruntime fuses the same way.
import ort from "onnxruntime-node";
import {
  ELEM,
  consumersOf,
  decodeModel,
  dimsOf,
  encodeModel,
  ensureOpsetImport,
  floatsOf,
  freshNamer,
  intAttr,
  node,
  onnxOpset,
  attrOf,
  tensor,
  ModelError,
  type NodeProto,
  type TensorProto,
} from "../engine/onnx-model.js";
import { optimizeWithOrt } from "./ort-optimize.js";

export type Feeds = Record<string, ort.Tensor>;

export interface QuantizeOptions {
  /** Op types whose weights are quantised (default Conv, MatMul, Gemm). */
  ops?: string[];
  /** Node names left in float (e.g. the first conv, whose input carries fine detail). */
  exclude?: string[];
  /** Share of the extreme activation values clipped away on each side (0 = plain min/max). */
  percentile?: number;
  /**
   * Leave the ops that read a graph input in float: the first layer sees the raw image, whose fine
   * detail (small, faint text) an 8-bit requantisation of the normalised input loses.
   */
  firstLayerFloat?: boolean;
}

export interface QuantizeReport {
  quantizedNodes: Record<string, number>;
  skippedNodes: number;
  activations: number;
  calibrationBatches: number;
}

interface Target {
  node: NodeProto;
  /** Absent for ops that only move data (Resize, Concat): they run on uint8 between quantised ops. */
  weight?: string;
  /** Axis of the weight that indexes output channels. */
  axis: number;
  bias?: string;
  /** Activation inputs. */
  inputs: string[];
  /** Quantise the output (Conv: the fused integer conv writes uint8; data-movement ops likewise). */
  output?: { tensor: string; visible: string; absorbed?: NodeProto };
}

/** Ops that move data without arithmetic on it: quantised in and out when asked, so they run on uint8. */
const DATA_OPS = new Set(["Resize", "Concat", "MaxPool"]);

interface QParams {
  scale: number;
  zeroPoint: number;
}

const DEFAULT_OPS = ["Conv", "MatMul", "Gemm"];
/** Every op type the transform knows how to quantise. */
export const QUANTIZABLE_OPS = ["Conv", "ConvTranspose", "MatMul", "Gemm", ...DATA_OPS];

function initializerMap(graph: NonNullable<ReturnType<typeof decodeModel>["graph"]>): Map<string, TensorProto> {
  return new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
}

/** Relu, or Clip whose lower bound is 0: what a uint8 range starting at 0 reproduces. */
function isZeroClamp(n: NodeProto, inits: Map<string, TensorProto>): boolean {
  if (n.domain && n.domain !== "ai.onnx") return false;
  if (n.opType === "Relu") return true;
  if (n.opType !== "Clip") return false;
  const minName = n.input?.[1];
  if (minName) {
    const t = inits.get(minName);
    return !!t && t.dataType === ELEM.FLOAT && floatsOf(t)[0] === 0;
  }
  const a = attrOf(n, "min");
  return a?.f === 0;
}

function findTargets(
  graph: NonNullable<ReturnType<typeof decodeModel>["graph"]>,
  ops: string[],
  exclude: Set<string>,
): { targets: Target[]; skipped: number } {
  const inits = initializerMap(graph);
  const consumers = consumersOf(graph);
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name!));
  const isFloatInit = (name: string | undefined, rank: number) => {
    const t = name ? inits.get(name) : undefined;
    return !!t && t.dataType === ELEM.FLOAT && dimsOf(t).length === rank;
  };
  const targets: Target[] = [];
  let skipped = 0;
  for (const n of graph.node ?? []) {
    if ((n.domain && n.domain !== "ai.onnx") || !ops.includes(n.opType!)) continue;
    const [x, w, b] = n.input ?? [];
    if (exclude.has(n.name ?? "") || !x || inits.has(x)) {
      skipped++;
      continue;
    }
    const y = n.output![0]!;
    const quantizedOutput = () => {
      const users = consumers.get(y) ?? [];
      const absorbed =
        users.length === 1 && !graphOutputs.has(y) && isZeroClamp(users[0]!, inits) ? users[0] : undefined;
      return { tensor: y, visible: absorbed ? absorbed.output![0]! : y, absorbed };
    };
    if ((n.opType === "Conv" || n.opType === "ConvTranspose") && isFloatInit(w, 4)) {
      targets.push({
        node: n,
        weight: w!,
        axis: n.opType === "Conv" ? 0 : 1,
        bias: b && isFloatInit(b, 1) ? b : undefined,
        inputs: [x],
        output: quantizedOutput(),
      });
    } else if (DATA_OPS.has(n.opType!)) {
      const inputs = n.opType === "Concat" ? (n.input ?? []) : [x];
      if (inputs.some((i) => inits.has(i)) || n.output!.length !== 1) {
        skipped++;
        continue;
      }
      targets.push({ node: n, axis: 0, inputs, output: { tensor: y, visible: y } });
    } else if (n.opType === "MatMul" && isFloatInit(w, 2)) {
      targets.push({ node: n, weight: w!, axis: 1, inputs: [x] });
    } else if (
      n.opType === "Gemm" &&
      isFloatInit(w, 2) &&
      intAttr(n, "transA", 0) === 0 &&
      (attrOf(n, "alpha")?.f ?? 1) === 1 &&
      (attrOf(n, "beta")?.f ?? 1) === 1
    ) {
      targets.push({
        node: n,
        weight: w!,
        axis: intAttr(n, "transB", 0) === 1 ? 0 : 1,
        bias: b && isFloatInit(b, 1) ? b : undefined,
        inputs: [x],
      });
    } else skipped++;
  }
  return { targets, skipped };
}

/** Per-tensor min/max over the calibration batches, read as extra outputs of the float model. */
async function calibrate(
  modelBytes: Uint8Array,
  tensors: string[],
  batches: Feeds[],
  percentile: number,
): Promise<Map<string, [number, number]>> {
  const model = decodeModel(modelBytes);
  const graph = model.graph!;
  const present = new Set((graph.output ?? []).map((o) => o.name));
  for (const t of tensors)
    if (!present.has(t)) graph.output!.push({ name: t, type: { tensorType: { elemType: ELEM.FLOAT } } });
  const session = await ort.InferenceSession.create(encodeModel(model), {
    graphOptimizationLevel: "disabled",
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
  });
  const ranges = new Map<string, [number, number]>();
  try {
    for (const feeds of batches) {
      const out = await session.run(feeds, tensors);
      for (const t of tensors) {
        const data = out[t]!.data as Float32Array;
        const [lo, hi] = percentile > 0 ? percentileRange(data, percentile) : minMax(data);
        const r = ranges.get(t);
        ranges.set(t, r ? [Math.min(r[0], lo), Math.max(r[1], hi)] : [lo, hi]);
      }
    }
  } finally {
    await session.release();
  }
  return ranges;
}

function minMax(data: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/**
 * The values below which (and above which) a share `p` of `data` lies, from a 4096-bin histogram
 * between min and max, read at bin edges: O(n), where a sort of a 960×960 feature map is not.
 */
export function percentileRange(data: Float32Array, p: number): [number, number] {
  const [lo, hi] = minMax(data);
  if (!(hi > lo)) return [lo, hi];
  const bins = 4096;
  const hist = new Float64Array(bins);
  const scale = bins / (hi - lo);
  for (let i = 0; i < data.length; i++) hist[Math.min(bins - 1, Math.floor((data[i]! - lo) * scale))]! += 1;
  const cut = p * data.length;
  let acc = 0;
  let b0 = 0;
  while (b0 < bins - 1 && acc + hist[b0]! <= cut) acc += hist[b0++]!;
  acc = 0;
  let b1 = bins - 1;
  while (b1 > 0 && acc + hist[b1]! <= cut) acc += hist[b1--]!;
  return [lo + b0 / scale, lo + (b1 + 1) / scale];
}

export function activationParams(lo: number, hi: number): QParams {
  const rmin = Math.min(lo, 0);
  const rmax = Math.max(hi, 0);
  const scale = rmax > rmin ? (rmax - rmin) / 255 : 1;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-rmin / scale)));
  return { scale, zeroPoint };
}

/** Symmetric int8 per output channel along `axis` of a rank-2 or rank-4 weight. */
export function quantizeWeight(w: Float32Array, dims: number[], axis: number): { q: Int8Array; scales: Float32Array } {
  const channels = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const maxAbs = new Float32Array(channels);
  const channelOf = (i: number) => Math.floor(i / inner) % channels;
  for (let i = 0; i < w.length; i++) {
    const c = channelOf(i);
    maxAbs[c] = Math.max(maxAbs[c]!, Math.abs(w[i]!));
  }
  const scales = maxAbs.map((m) => (m > 0 ? m / 127 : 1));
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(w[i]! / scales[channelOf(i)]!)));
  if (outer * channels * inner !== w.length) throw new ModelError("weight size does not match its dims");
  return { q, scales };
}

/** ai.onnx ops whose meaning changed between opsets 9 and 10 and that this upgrade cannot rewrite. */
const CHANGED_IN_10 = new Set(["Upsample", "TopK", "Dropout", "Mod", "IsInf"]);

/** Lifts an opset-9 graph to opset 10: Slice takes its bounds as inputs instead of attributes. */
export function upgradeOpset9To10(model: ReturnType<typeof decodeModel>): void {
  const graph = model.graph!;
  const fresh = freshNamer(graph);
  for (const n of graph.node ?? []) {
    if (n.domain && n.domain !== "ai.onnx") continue;
    if (CHANGED_IN_10.has(n.opType!))
      throw new ModelError(
        `cannot quantise: the model is at opset 9 and uses ${n.opType}, whose meaning changed in opset 10; re-export it at opset 13 or later`,
      );
    if (n.opType !== "Slice") continue;
    const ints = (name: string) => attrOf(n, name)?.ints?.map(Number);
    const starts = ints("starts");
    const ends = ints("ends");
    if (!starts || !ends) continue;
    const axes = ints("axes") ?? starts.map((_, i) => i);
    const names = [starts, ends, axes].map((values, k) => {
      const name = fresh(`${n.name ?? "slice"}_${["starts", "ends", "axes"][k]}`);
      graph.initializer!.push(
        tensor(name, ELEM.INT64, [values.length], BigInt64Array.from(values.map((v) => BigInt(v)))),
      );
      return name;
    });
    n.input = [n.input![0]!, ...names];
    n.attribute = (n.attribute ?? []).filter((a) => !["starts", "ends", "axes"].includes(a.name!));
  }
  for (const o of model.opsetImport ?? []) if (!o.domain || o.domain === "ai.onnx") o.version = 10;
}

/** The int8 QDQ model of `bytes`, calibrated on `calibration` (each entry one run's feeds). */
export async function quantizeInt8(
  bytes: Uint8Array,
  calibration: Feeds[],
  options: QuantizeOptions = {},
): Promise<{ bytes: Uint8Array; report: QuantizeReport }> {
  if (calibration.length === 0) throw new Error("int8 quantisation needs at least one calibration batch");
  decodeModel(bytes); // a clear message for a file that is not ONNX, before onnxruntime's
  const pre = await optimizeWithOrt(bytes, "basic");
  const model = decodeModel(pre);
  const graph = model.graph!;
  // onnxruntime fuses QDQ into ai.onnx QLinearConv (opset 10+): an opset-9 model must be lifted first
  if (onnxOpset(model) < 10) upgradeOpset9To10(model);
  const exclude = new Set(options.exclude ?? []);
  if (options.firstLayerFloat) {
    const inputs = new Set((graph.input ?? []).map((i) => i.name));
    for (const n of graph.node ?? []) if ((n.input ?? []).some((x) => inputs.has(x))) exclude.add(n.name ?? "");
  }
  const { targets, skipped } = findTargets(graph, options.ops ?? DEFAULT_OPS, exclude);
  if (targets.length === 0)
    throw new ModelError(
      `nothing to quantise: the model has no ${(options.ops ?? DEFAULT_OPS).join("/")} node with constant float weights`,
    );

  const visible = new Set<string>();
  for (const t of targets) {
    for (const i of t.inputs) visible.add(i);
    if (t.output) visible.add(t.output.visible);
  }
  const ranges = await calibrate(pre, [...visible], calibration, options.percentile ?? 0);
  const params = new Map<string, QParams>();
  for (const [name, [lo, hi]] of ranges) params.set(name, activationParams(lo, hi));

  const msDomain = onnxOpset(model) < 13;
  const domain = msDomain ? "com.microsoft" : "";
  if (msDomain) ensureOpsetImport(model, "com.microsoft", 1);
  const fresh = freshNamer(graph);
  const inits = initializerMap(graph);
  const newInits: TensorProto[] = [];
  const scalar = (hint: string, value: number) => {
    const name = fresh(hint);
    newInits.push(tensor(name, ELEM.FLOAT, [], Float32Array.of(value)));
    return name;
  };
  const zp = (hint: string, value: number) => {
    const name = fresh(hint);
    newInits.push(tensor(name, ELEM.UINT8, [], Uint8Array.of(value)));
    return name;
  };

  // Q → DQ pairs for every visible activation; consumers are rewired to the DQ output.
  const dqOf = new Map<string, string>();
  const after = new Map<string, NodeProto[]>(); // nodes to emit right after the producer of a tensor
  const before: NodeProto[] = []; // for graph inputs
  const producerOutputs = new Set((graph.node ?? []).flatMap((n) => n.output ?? []));
  const absorbedNodes = new Set<NodeProto>();
  const absorbedBy = new Map<string, Target>();
  for (const t of targets) if (t.output?.absorbed) absorbedBy.set(t.output.visible, t);
  for (const name of visible) {
    const p = params.get(name)!;
    const s = scalar(`${name}_scale`, p.scale);
    const z = zp(`${name}_zero_point`, p.zeroPoint);
    const target = absorbedBy.get(name);
    const source = target ? target.output!.tensor : name;
    const q = fresh(`${name}_quantized`);
    const dq = target ? name : fresh(`${name}_dequantized`);
    const pair = [
      node("QuantizeLinear", [source, s, z], [q], fresh(`${name}_QuantizeLinear`), {}, domain),
      node("DequantizeLinear", [q, s, z], [dq], fresh(`${name}_DequantizeLinear`), {}, domain),
    ];
    if (target) absorbedNodes.add(target.output!.absorbed!);
    if (!target) dqOf.set(name, dq);
    if (producerOutputs.has(source)) after.set(source, [...(after.get(source) ?? []), ...pair]);
    else before.push(...pair);
  }

  // Weights and biases become integer initializers behind a DequantizeLinear.
  const weightNodes = new Map<NodeProto, NodeProto[]>();
  const counts: Record<string, number> = {};
  for (const t of targets) {
    if (!t.weight) continue;
    const w = inits.get(t.weight)!;
    const dims = dimsOf(w);
    const { q, scales } = quantizeWeight(floatsOf(w), dims, t.axis);
    const qName = fresh(`${t.weight}_int8`);
    const sName = fresh(`${t.weight}_scale`);
    const zName = fresh(`${t.weight}_zero_point`);
    newInits.push(
      tensor(qName, ELEM.INT8, dims, q),
      tensor(sName, ELEM.FLOAT, [scales.length], scales),
      tensor(zName, ELEM.INT8, [scales.length], new Int8Array(scales.length)),
    );
    const wdq = fresh(`${t.weight}_dequantized`);
    const extra = [
      node(
        "DequantizeLinear",
        [qName, sName, zName],
        [wdq],
        fresh(`${t.weight}_DequantizeLinear`),
        { axis: t.axis },
        domain,
      ),
    ];
    const inputs = [...t.node.input!];
    inputs[1] = wdq;
    if (t.bias) {
      const b = floatsOf(inits.get(t.bias)!);
      const sx = params.get(t.inputs[0]!)!.scale;
      if (b.length === scales.length) {
        const bScale = Float32Array.from(scales, (s) => s * sx);
        const bq = Int32Array.from(b, (v, i) => Math.round(v / bScale[i]!));
        const bqName = fresh(`${t.bias}_int32`);
        const bsName = fresh(`${t.bias}_scale`);
        const bzName = fresh(`${t.bias}_zero_point`);
        newInits.push(
          tensor(bqName, ELEM.INT32, [bq.length], bq),
          tensor(bsName, ELEM.FLOAT, [bScale.length], bScale),
          tensor(bzName, ELEM.INT32, [bq.length], new Int32Array(bq.length)),
        );
        const bdq = fresh(`${t.bias}_dequantized`);
        extra.push(
          node(
            "DequantizeLinear",
            [bqName, bsName, bzName],
            [bdq],
            fresh(`${t.bias}_DequantizeLinear`),
            { axis: 0 },
            domain,
          ),
        );
        inputs[2] = bdq;
      }
    }
    t.node.input = inputs;
    weightNodes.set(t.node, extra);
    counts[t.node.opType!] = (counts[t.node.opType!] ?? 0) + 1;
  }

  // Rewire activation consumers to the dequantised tensors (not the Q nodes themselves).
  for (const n of graph.node ?? []) {
    if (absorbedNodes.has(n)) continue;
    n.input = (n.input ?? []).map((x) => dqOf.get(x) ?? x);
  }
  const nodes: NodeProto[] = [...before];
  for (const n of graph.node ?? []) {
    if (absorbedNodes.has(n)) continue;
    nodes.push(...(weightNodes.get(n) ?? []), n);
    for (const o of n.output ?? []) nodes.push(...(after.get(o) ?? []));
  }
  graph.node = nodes;
  const usedWeights = new Set(targets.flatMap((t) => (t.weight ? [t.weight] : [])));
  const stillRead = new Set(nodes.flatMap((n) => n.input ?? []));
  graph.initializer = [
    ...(graph.initializer ?? []).filter((t) => !usedWeights.has(t.name!) || stillRead.has(t.name!)),
    ...newInits,
  ].filter((t) => stillRead.has(t.name!));
  model.producerName = "sloserve int8 (QDQ, static, per-channel weights)";
  return {
    bytes: encodeModel(model),
    report: {
      quantizedNodes: counts,
      skippedNodes: skipped,
      activations: visible.size,
      calibrationBatches: calibration.length,
    },
  };
}
