// Input-resolution variants of a dense-prediction model (the text detector): the graph is wrapped
// so that its task-level input and output keep their shapes — a Resize brings the input down (or up)
// to `size`×`size` before the network and another brings the map back afterwards — and the network
// in between does (size/original)² of the work. Post-processing and the task's signature are unchanged.
import {
  ELEM,
  ModelError,
  decodeModel,
  encodeModel,
  freshNamer,
  node,
  onnxOpset,
  tensor,
  type ValueInfoProto,
} from "../engine/onnx-model.js";

function spatialDims(v: ValueInfoProto): number[] {
  return (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimValue != null ? Number(d.dimValue) : -1));
}

export function resizeInputs(bytes: Uint8Array, size: number): Uint8Array {
  if (!Number.isInteger(size) || size < 32 || size % 32 !== 0)
    throw new ModelError(`resolution must be a multiple of 32 (the detector's stride), got ${size}`);
  const model = decodeModel(bytes);
  const graph = model.graph!;
  if (onnxOpset(model) < 11)
    throw new ModelError(
      `resolution variants need opset 11 or later (Resize with scales); the model has ${onnxOpset(model)}`,
    );
  const inits = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((i) => !inits.has(i.name));
  const outputs = graph.output ?? [];
  if (inputs.length !== 1 || outputs.length !== 1)
    throw new ModelError("resolution variants need a model with one image input and one map output");
  const [input, output] = [inputs[0]!, outputs[0]!];
  const inDims = spatialDims(input);
  const outDims = spatialDims(output);
  if (inDims.length !== 4 || outDims.length !== 4 || inDims[2]! < 1 || inDims[3]! < 1)
    throw new ModelError(
      `resolution variants need an NCHW input with fixed height and width; '${input.name}' is [${inDims.join(",")}]`,
    );
  if (outDims[2] !== inDims[2] || outDims[3] !== inDims[3])
    throw new ModelError(
      `resolution variants need an output map as large as the input; '${output.name}' is [${outDims.join(",")}]`,
    );
  const [h, w] = [inDims[2]!, inDims[3]!];
  const fresh = freshNamer(graph);
  const inner = fresh(`${input.name}_resized`);
  const innerOut = fresh(`${output.name}_at_${size}`);
  for (const n of graph.node ?? []) {
    n.input = (n.input ?? []).map((x) => (x === input.name ? inner : x));
    n.output = (n.output ?? []).map((x) => (x === output.name ? innerOut : x));
  }
  const roi = fresh("resize_roi");
  const down = fresh("resize_in_scales");
  const up = fresh("resize_out_scales");
  graph.initializer!.push(
    tensor(roi, ELEM.FLOAT, [0], new Float32Array(0)),
    tensor(down, ELEM.FLOAT, [4], Float32Array.of(1, 1, size / h, size / w)),
    tensor(up, ELEM.FLOAT, [4], Float32Array.of(1, 1, h / size, w / size)),
  );
  const attrs = { mode: "linear", coordinate_transformation_mode: "half_pixel" };
  graph.node = [
    node("Resize", [input.name!, roi, down], [inner], fresh("resize_input"), attrs),
    ...(graph.node ?? []),
    node("Resize", [innerOut, roi, up], [output.name!], fresh("resize_output"), attrs),
  ];
  return encodeModel(model);
}
