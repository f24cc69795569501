// The `ocr` pipeline's measured record (models/ocr/accuracy.yaml, the pipeline's own folder): its
// end-to-end accuracy for every combination of stage variants — the classifier's variants and skipping
// it — which the pipeline's accuracy floor (`min_accuracy`) applies to and the serving walk picks stage
// variants from; and the fan-out it measured: text boxes per image, per detector variant, which the
// simulator draws from and the planner starts from.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import { Engine } from "../engine/engine.js";
import { PipelineRecord, SKIPPED } from "../repository/schema.js";
import { writeAtomic } from "../repository/write-atomic.js";
import { oneMinusCer, type CerTally } from "./cer.js";
import { ctcCharset } from "./ctc.js";
import type { DetectedBox } from "./db-postprocess.js";
import { describeEvalSet, ocrEvalSet } from "./eval-set.js";
import { scorePage } from "./evaluate.js";
import { readDictionary } from "./models.js";
import { classify, detect, recognise, type OcrLine } from "./pipeline.js";

/** The ocr pipeline's folder and its record, relative to the model repository. */
export const OCR_PIPELINE = "ocr";
export const E2E_FILE = path.join(OCR_PIPELINE, "accuracy.yaml");

export const OCR_STAGE_TASKS = { det: "ocr-det", cls: "ocr-cls", rec: "ocr-rec" } as const;

/** One combination of stage variants (cls: a variant or "skip"). */
export interface OcrCombination {
  det: string;
  cls: string;
  rec: string;
}

export async function readE2eRecord(modelsDir: string): Promise<PipelineRecord | undefined> {
  const file = path.join(modelsDir, E2E_FILE);
  if (!existsSync(file)) return undefined;
  const parsed = PipelineRecord.safeParse(YAML.parse(await readFile(file, "utf8")));
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  return parsed.data;
}

/** The recorded figure of one combination, or undefined when it was not measured. */
export function findCombination(record: PipelineRecord, c: OcrCombination) {
  const T = OCR_STAGE_TASKS;
  return record.combinations.find(
    (x) => x.stages[T.det] === c.det && x.stages[T.cls] === c.cls && x.stages[T.rec] === c.rec,
  );
}

const open = async (modelsDir: string, task: string, variant: string) =>
  Engine.create(new Uint8Array(await readFile(path.join(modelsDir, task, variant, "model.onnx"))), { threads: 2 });

/**
 * Measures every det × (cls or skip) × rec combination on the first `images` of the labelled set, and the
 * boxes each detector finds per image. Detection and classification run once per detector variant and
 * image; recognition once per combination's boxes — the same numbers `ocr()` gives, without repeating work.
 */
export async function measureCombinations(
  modelsDir: string,
  variants: { det: string[]; cls: string[]; rec: string[] },
  images?: number,
  log?: (msg: string) => void,
): Promise<PipelineRecord> {
  const set = ocrEvalSet(images);
  const charset = ctcCharset(await readDictionary());
  const T = OCR_STAGE_TASKS;
  const combinations: PipelineRecord["combinations"] = [];
  const fanOut: Record<string, number[]> = {};
  const recs = new Map<string, Engine>();
  try {
    for (const r of variants.rec) recs.set(r, await open(modelsDir, T.rec, r));
    for (const detName of variants.det) {
      const det = await open(modelsDir, T.det, detName);
      const boxes: DetectedBox[][] = [];
      try {
        for (const s of set) boxes.push(await detect(det, s.image));
      } finally {
        await det.close();
      }
      fanOut[detName] = boxes.map((b) => b.length);
      for (const clsName of [...variants.cls, SKIPPED]) {
        const flips: boolean[][] = [];
        if (clsName === SKIPPED) for (const b of boxes) flips.push(b.map(() => false));
        else {
          const cls = await open(modelsDir, T.cls, clsName);
          try {
            for (let i = 0; i < set.length; i++)
              flips.push(
                await classify(
                  cls,
                  set[i]!.image,
                  boxes[i]!.map((x) => x.quad),
                ),
              );
          } finally {
            await cls.close();
          }
        }
        for (const recName of variants.rec) {
          log?.(`ocr e2e: ${detName} + ${clsName} + ${recName}`);
          const rec = recs.get(recName)!;
          const tally: CerTally = { edits: 0, chars: 0 };
          for (let i = 0; i < set.length; i++) {
            const quads = boxes[i]!.map((b) => b.quad);
            const read = await recognise(rec, charset, set[i]!.image, quads, flips[i]);
            const lines: OcrLine[] = boxes[i]!.map((b, k) => ({
              text: read[k]!.text,
              confidence: read[k]!.confidence,
              quad: b.quad,
              boxScore: b.score,
              flipped: flips[i]![k]!,
            })).filter((l) => l.text.length > 0 && l.confidence >= 0.5);
            scorePage(tally, set[i]!.lines, lines);
          }
          combinations.push({
            stages: { [T.det]: detName, [T.cls]: clsName, [T.rec]: recName },
            value: Number(oneMinusCer(tally).toFixed(6)),
            correct: Math.max(0, tally.chars - tally.edits),
            total: tally.chars,
          });
        }
      }
    }
  } finally {
    for (const r of recs.values()) await r.close();
  }
  return {
    metric:
      "1 - CER end to end (detected lines assigned to ground-truth lines; unassigned text counts as insertions); fan_out: text boxes the detector finds per image",
    evaluated_on: describeEvalSet(set.length),
    combinations,
    fan_out: { [T.det]: fanOut },
  };
}

/** Re-measures the record for every variant the repository now has of each stage. */
export async function refreshE2eRecord(modelsDir: string, log?: (msg: string) => void): Promise<PipelineRecord> {
  const { loadRepository } = await import("../repository/repository.js");
  const T = OCR_STAGE_TASKS;
  const repo = await loadRepository(modelsDir, { tasks: [T.det, T.cls, T.rec] });
  const names = (t: string) => [...repo.tasks.get(t)!.variants.keys()];
  const record = await measureCombinations(
    modelsDir,
    { det: names(T.det), cls: names(T.cls), rec: names(T.rec) },
    undefined,
    log,
  );
  await writeE2eRecord(modelsDir, record);
  return record;
}

export async function writeE2eRecord(modelsDir: string, record: PipelineRecord): Promise<void> {
  await writeAtomic(
    path.join(modelsDir, E2E_FILE),
    YAML.stringify(record, { lineWidth: 0, flowCollectionPadding: false }),
  );
}
