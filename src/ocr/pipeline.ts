// The whole `ocr` pipeline in one process over Engine sessions: detect → classify direction →
// recognise. Each stage is also exported on its own (tensor in, tensor out, and the pure pre/post-
// processing around it), which is what a serving pipeline walk calls between stages: detection emits
// a variable number of boxes, and the classifier and recogniser then run on that many rows.
import ort from "onnxruntime-node";
import type { Engine } from "../engine/engine.js";
import { CLS_HEIGHT, CLS_WIDTH, DET_SIZE, REC_HEIGHT, REC_STEPS, REC_WIDTH } from "./models.js";
import { ctcGreedyDecode, isUpsideDown, type DecodedLine } from "./ctc.js";
import { dbBoxes, type DbOptions, type DetectedBox } from "./db-postprocess.js";
import { clsInput, detInput, recInput, type RgbaImage } from "./image.js";
import type { Quad } from "./geometry.js";

export interface OcrEngines {
  det: Engine;
  /** Absent: every line is read as it stands (no direction flip). */
  cls?: Engine;
  rec: Engine;
  /** ctcCharset(dictionary). */
  charset: string[];
}

export interface OcrLine {
  text: string;
  /** Mean per-character probability of the recogniser. */
  confidence: number;
  /** Corners in image pixels, clockwise from the top-left of the box as found. */
  quad: Quad;
  /** Mean text probability of the detector inside the box. */
  boxScore: number;
  /** The classifier judged the line upside down, and it was read rotated by 180 degrees. */
  flipped: boolean;
}

export interface OcrOptions {
  db?: Partial<DbOptions>;
  /** Rows per classifier / recogniser run (default: 8). */
  batch?: number;
  /** Lines read with a lower mean character probability are dropped, as PaddleOCR does (default 0.5). */
  minConfidence?: number;
}

async function runOne(engine: Engine, data: Float32Array, rows: number, rowShape: number[]): Promise<Float32Array> {
  const spec = engine.inputs[0];
  if (!spec) throw new Error("model has no input");
  const out = await engine.run({ [spec.name]: new ort.Tensor("float32", data, [rows, ...rowShape]) });
  const first = Object.values(out)[0];
  if (!first) throw new Error("model returned no output");
  return first.data as Float32Array;
}

/** Detector stage: boxes in the image's pixels. */
export async function detect(det: Engine, image: RgbaImage, db?: Partial<DbOptions>): Promise<DetectedBox[]> {
  const { data, letterbox } = detInput(image);
  const prob = await runOne(det, data, 1, [3, DET_SIZE, DET_SIZE]);
  return dbBoxes(prob, DET_SIZE, letterbox, db);
}

/** Stacks `rows` row tensors of `rowSize` values. */
function stack(rows: Float32Array[], rowSize: number): Float32Array {
  const out = new Float32Array(rows.length * rowSize);
  rows.forEach((r, i) => out.set(r, i * rowSize));
  return out;
}

/** Classifier stage: which of the quads are upside down. */
export async function classify(cls: Engine, image: RgbaImage, quads: Quad[], batch = 8): Promise<boolean[]> {
  const out: boolean[] = [];
  const rowSize = 3 * CLS_HEIGHT * CLS_WIDTH;
  for (let i = 0; i < quads.length; i += batch) {
    const chunk = quads.slice(i, i + batch);
    const probs = await runOne(
      cls,
      stack(
        chunk.map((q) => clsInput(image, q)),
        rowSize,
      ),
      chunk.length,
      [3, CLS_HEIGHT, CLS_WIDTH],
    );
    chunk.forEach((_, k) => out.push(isUpsideDown(probs, k * 2)));
  }
  return out;
}

/** Recogniser stage: the text of each quad (read rotated by 180 degrees where `flips` says so). */
export async function recognise(
  rec: Engine,
  charset: string[],
  image: RgbaImage,
  quads: Quad[],
  flips: boolean[] = [],
  batch = 8,
): Promise<DecodedLine[]> {
  const out: DecodedLine[] = [];
  const rowSize = 3 * REC_HEIGHT * REC_WIDTH;
  const stepSize = REC_STEPS * charset.length;
  for (let i = 0; i < quads.length; i += batch) {
    const chunk = quads.slice(i, i + batch);
    const probs = await runOne(
      rec,
      stack(
        chunk.map((q, k) => recInput(image, q, flips[i + k] ?? false)),
        rowSize,
      ),
      chunk.length,
      [3, REC_HEIGHT, REC_WIDTH],
    );
    if (probs.length !== chunk.length * stepSize)
      throw new Error(
        `recogniser returned ${probs.length} values for ${chunk.length} line(s); expected ${REC_STEPS} steps × ${charset.length} classes each`,
      );
    chunk.forEach((_, k) =>
      out.push(ctcGreedyDecode(probs.subarray(k * stepSize, (k + 1) * stepSize), REC_STEPS, charset)),
    );
  }
  return out;
}

/** Text lines of `image` with their boxes and confidences, in reading order. */
export async function ocr(image: RgbaImage, engines: OcrEngines, options: OcrOptions = {}): Promise<OcrLine[]> {
  const boxes = await detect(engines.det, image, options.db);
  if (boxes.length === 0) return [];
  const quads = boxes.map((b) => b.quad);
  const flips = engines.cls ? await classify(engines.cls, image, quads, options.batch) : quads.map(() => false);
  const lines = await recognise(engines.rec, engines.charset, image, quads, flips, options.batch);
  const minConfidence = options.minConfidence ?? 0.5;
  return boxes
    .map((b, i) => ({
      text: lines[i]!.text,
      confidence: lines[i]!.confidence,
      quad: b.quad,
      boxScore: b.score,
      flipped: flips[i]!,
    }))
    .filter((l) => l.text.length > 0 && l.confidence >= minConfidence);
}
