// The `ocr` pipeline's glue (src/ocr's pre- and post-processing, the same code `ocr()` runs in process):
// an image → letterboxed detector input (one row) → the detector's map → DB boxes → one crop per box for
// the direction classifier (fan-out: as many rows as boxes, none for a blank page) → the same boxes
// rectified for the recogniser, turned where the classifier (when it ran) says a line is upside down
// (fan-in: the recogniser waits for both) → greedy CTC → the lines, their boxes and confidences.
import type { StageInput, StageResult } from "../core/pipeline.js";
import type { RowTensor } from "../engine/engine.js";
import { ctcCharset, ctcGreedyDecode, isUpsideDown } from "../ocr/ctc.js";
import { dbBoxes, type DetectedBox } from "../ocr/db-postprocess.js";
import { clsInput, detInput, recInput, type Letterbox, type RgbaImage } from "../ocr/image.js";
import {
  CLS_HEIGHT,
  CLS_WIDTH,
  DET_SIZE,
  readDictionary,
  REC_CLASSES,
  REC_HEIGHT,
  REC_STEPS,
  REC_WIDTH,
} from "../ocr/models.js";
import { GlueInputError, type Glue, type GlueDef, type GlueRun, type GlueSignature, type GlueTensor } from "./glue.js";
import { decodeImageFile, imageFromPixels } from "./image-input.js";

export const OCR_STAGES = { det: "ocr-det", cls: "ocr-cls", rec: "ocr-rec" } as const;

/** Lines read with a lower mean character probability are dropped, as PaddleOCR (and `ocr()`) do. */
export const MIN_LINE_CONFIDENCE = 0.5;

function stack(rows: Float32Array[], rowSize: number): Float32Array {
  const out = new Float32Array(rows.length * rowSize);
  rows.forEach((r, i) => out.set(r, i * rowSize));
  return out;
}

function floats(r: StageResult | undefined, name: string): Float32Array | null {
  const t = r && !r.skipped ? r.output?.[name] : undefined;
  return t ? (t.data as Float32Array) : null;
}

class OcrRun implements GlueRun {
  private boxes: DetectedBox[] | null = null;
  private flips: boolean[] = [];

  constructor(
    private readonly image: RgbaImage,
    private readonly letterbox: Letterbox,
    private readonly detData: Float32Array,
    private readonly charset: string[],
  ) {}

  stageInput(task: string, upstream: ReadonlyMap<string, StageResult>): StageInput | null {
    if (task === OCR_STAGES.det) return { rows: 1, input: { image: tensor(this.detData, [1, 3, DET_SIZE, DET_SIZE]) } };
    const boxes = this.boxesFrom(upstream.get(OCR_STAGES.det));
    if (boxes.length === 0) return null;
    const quads = boxes.map((b) => b.quad);
    if (task === OCR_STAGES.cls) {
      const size = 3 * CLS_HEIGHT * CLS_WIDTH;
      return {
        rows: quads.length,
        input: {
          crop: tensor(
            stack(
              quads.map((q) => clsInput(this.image, q)),
              size,
            ),
            [quads.length, 3, CLS_HEIGHT, CLS_WIDTH],
          ),
        },
      };
    }
    if (task === OCR_STAGES.rec) {
      const orientation = floats(upstream.get(OCR_STAGES.cls), "orientation");
      if (orientation && orientation.length !== 2 * quads.length)
        throw new Error(`the classifier answered ${orientation.length / 2} rows for ${quads.length} boxes`);
      this.flips = quads.map((_, k) => (orientation ? isUpsideDown(orientation, 2 * k) : false));
      const size = 3 * REC_HEIGHT * REC_WIDTH;
      return {
        rows: quads.length,
        input: {
          line: tensor(
            stack(
              quads.map((q, k) => recInput(this.image, q, this.flips[k]!)),
              size,
            ),
            [quads.length, 3, REC_HEIGHT, REC_WIDTH],
          ),
        },
      };
    }
    throw new Error(`the ocr glue feeds ${Object.values(OCR_STAGES).join(", ")}, not '${task}'`);
  }

  answer(results: ReadonlyMap<string, StageResult>): GlueTensor[] {
    const boxes = this.boxes ?? [];
    const probs = floats(results.get(OCR_STAGES.rec), "ctc_probabilities");
    const stepSize = REC_STEPS * REC_CLASSES;
    const lines: { text: string; confidence: number; box: DetectedBox; flipped: boolean }[] = [];
    if (probs && boxes.length > 0) {
      if (probs.length !== boxes.length * stepSize)
        throw new Error(`the recogniser answered ${probs.length / stepSize} rows for ${boxes.length} boxes`);
      boxes.forEach((box, k) => {
        const d = ctcGreedyDecode(probs.subarray(k * stepSize, (k + 1) * stepSize), REC_STEPS, this.charset);
        if (d.text.length > 0 && d.confidence >= MIN_LINE_CONFIDENCE)
          lines.push({ text: d.text, confidence: d.confidence, box, flipped: this.flips[k] ?? false });
      });
    }
    const n = lines.length;
    const enc = new TextEncoder();
    return [
      { name: "text", datatype: "BYTES", shape: [n], data: lines.map((l) => enc.encode(l.text)) },
      { name: "confidence", datatype: "FP32", shape: [n], data: Float32Array.from(lines.map((l) => l.confidence)) },
      {
        name: "boxes",
        datatype: "FP32",
        shape: [n, 4, 2],
        data: Float32Array.from(lines.flatMap((l) => l.box.quad.flatMap((p) => [p[0], p[1]]))),
      },
      { name: "box_score", datatype: "FP32", shape: [n], data: Float32Array.from(lines.map((l) => l.box.score)) },
      { name: "flipped", datatype: "BOOL", shape: [n], data: Uint8Array.from(lines.map((l) => (l.flipped ? 1 : 0))) },
    ];
  }

  private boxesFrom(det: StageResult | undefined): DetectedBox[] {
    if (this.boxes) return this.boxes;
    const map = floats(det, "text_probability");
    if (!map) throw new Error("the detector's output 'text_probability' is missing");
    this.boxes = dbBoxes(map, DET_SIZE, this.letterbox);
    return this.boxes;
  }
}

function tensor(data: Float32Array, dims: number[]): RowTensor {
  return { type: "float32", dims, data };
}

export const OCR_SIGNATURE: GlueSignature = {
  stages: Object.values(OCR_STAGES),
  inputs: [
    { name: "image", datatype: "BYTES", shape: [1] },
    { name: "pixels", datatype: "UINT8", shape: [1, -1, -1, -1], optional: true },
  ],
  outputs: [
    { name: "text", datatype: "BYTES", shape: [-1] },
    { name: "confidence", datatype: "FP32", shape: [-1] },
    { name: "boxes", datatype: "FP32", shape: [-1, 4, 2] },
    { name: "box_score", datatype: "FP32", shape: [-1] },
    { name: "flipped", datatype: "BOOL", shape: [-1] },
  ],
};

async function createOcrGlue(): Promise<Glue> {
  const charset = ctcCharset(await readDictionary());
  if (charset.length !== REC_CLASSES)
    throw new Error(`the ocr dictionary gives ${charset.length} classes; the recogniser has ${REC_CLASSES}`);
  return {
    async start(inputs): Promise<GlueRun> {
      const byName = new Map(inputs.map((t) => [t.name, t]));
      for (const t of inputs)
        if (t.name !== "image" && t.name !== "pixels")
          throw new GlueInputError(
            `unknown input '${t.name}'; the ocr pipeline takes 'image' (BYTES) or 'pixels' (UINT8)`,
          );
      const file = byName.get("image");
      const pixels = byName.get("pixels");
      if (file && pixels) throw new GlueInputError("send either 'image' or 'pixels', not both");
      let image: RgbaImage;
      if (file) {
        if (file.datatype !== "BYTES")
          throw new GlueInputError(`input 'image' is ${file.datatype}; send the PNG or JPEG file as BYTES`);
        const items = file.data as Uint8Array[];
        if (items.length !== 1)
          throw new GlueInputError(
            `input 'image' holds ${items.length} images; send one image per request (the server batches requests itself)`,
          );
        image = await decodeImageFile(items[0]!);
      } else if (pixels) {
        if (pixels.datatype !== "UINT8") throw new GlueInputError(`input 'pixels' is ${pixels.datatype}; send UINT8`);
        image = imageFromPixels(pixels);
      } else
        throw new GlueInputError(
          "missing input: send the image file as 'image' (BYTES [1], PNG or JPEG) or its pixels as 'pixels' (UINT8 [1, H, W, 3 or 4])",
        );
      const { data, letterbox } = detInput(image);
      return new OcrRun(image, letterbox, data, charset);
    },
  };
}

export const OCR_GLUE: GlueDef = { signature: OCR_SIGNATURE, create: createOcrGlue };
