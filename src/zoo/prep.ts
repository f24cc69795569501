// The first stage of the zoo's pipeline: raw 8-bit digits (what a camera or a client sends, 4×
// smaller than floats) scaled to the [0,1] floats the `digits` classifiers take. No learned
// weights, so its accuracy is exactly 1: the pipeline's accuracy is its classifier's.
import fs from "node:fs/promises";
import path from "node:path";
import { DType, GraphBuilder } from "./onnx-builder.js";

export const PREP_TASK_YAML = `name: mnist-prep
description: Scales raw 8-bit 28x28 digits to the [0,1] floats the digits classifiers take (first stage of the mnist-e2e pipeline).
inputs:
  - name: raw
    datatype: UINT8
    shape: [28, 28]
outputs:
  - name: image
    datatype: FP32
    shape: [1, 28, 28]
slo_ms: 20
scheduling: edf
scaling: themis
`;

export const PREP_VARIANT_YAML = `name: scale
description: x / 255 and a channel axis; no learned parameters
architecture: "Cast(uint8->float) / 255, Reshape to [N,1,28,28]"
parameters: 0
max_batch: 64
accuracy:
  value: 1
  source: declared
  reference: exact arithmetic transform with no learned parameters; end-to-end accuracy is the classifier's
`;

export const PIPELINE_YAML = `name: mnist-e2e
description: raw 8-bit digits -> mnist-prep (scale) -> digits (classify); one end-to-end SLO
stages: [mnist-prep, digits]
slo_ms: 80
`;

export function buildPrepModel(): Uint8Array {
  const g = new GraphBuilder("mnist_prep");
  const raw = g.input("raw", DType.UINT8, ["batch", 28, 28]);
  const f = g.op("Cast", [raw], { to: DType.FLOAT });
  const scaled = g.op("Div", [f, g.floats("scale", [255], [])]);
  g.rename(g.op("Reshape", [scaled, g.ints("shape", [-1, 1, 28, 28])]), "image");
  g.output("image", DType.FLOAT, ["batch", 1, 28, 28]);
  return g.toModel({ docString: "sloserve mnist-prep: raw uint8 digits to [0,1] floats" });
}

export async function writePrepZoo(modelsDir: string): Promise<void> {
  const task = path.join(modelsDir, "mnist-prep");
  await fs.mkdir(path.join(task, "scale"), { recursive: true });
  await fs.writeFile(path.join(task, "task.yaml"), PREP_TASK_YAML);
  await fs.writeFile(path.join(task, "scale", "variant.yaml"), PREP_VARIANT_YAML);
  await fs.writeFile(path.join(task, "scale", "model.onnx"), buildPrepModel());
  await fs.mkdir(path.join(modelsDir, "mnist-e2e"), { recursive: true });
  await fs.writeFile(path.join(modelsDir, "mnist-e2e", "pipeline.yaml"), PIPELINE_YAML);
}
