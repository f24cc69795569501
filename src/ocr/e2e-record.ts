// The `ocr` pipeline's measured end-to-end accuracy for every combination of its stages' variants,
// kept in models/ocr-e2e.yaml: a pipeline's accuracy floor (`min_accuracy`) applies to this figure,
// and a serving pipeline walk picks stage variants from this table. (Issue 16's DAG pipelines will
// give it a home in the pipeline's own folder; until then the repository loader skips plain files.)
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { Engine } from "../engine/engine.js";
import { writeAtomic } from "../repository/write-atomic.js";
import { oneMinusCer, type CerTally } from "./cer.js";
import { ctcCharset } from "./ctc.js";
import type { DetectedBox } from "./db-postprocess.js";
import { describeEvalSet, ocrEvalSet } from "./eval-set.js";
import { scorePage } from "./evaluate.js";
import { readDictionary } from "./models.js";
import { classify, detect, recognise, type OcrLine } from "./pipeline.js";

export const E2E_FILE = "ocr-e2e.yaml";

export const E2eCombination = z
  .object({
    det: z.string(),
    cls: z.string(),
    rec: z.string(),
    value: z.number().min(0).max(1),
    correct: z.number().int().nonnegative(),
    total: z.number().int().positive(),
  })
  .strict();
export type E2eCombination = z.infer<typeof E2eCombination>;

export const E2eRecord = z
  .object({
    pipeline: z.literal("ocr"),
    stages: z.tuple([z.literal("ocr-det"), z.literal("ocr-cls"), z.literal("ocr-rec")]),
    metric: z.string(),
    evaluated_on: z.string(),
    combinations: z.array(E2eCombination).min(1),
  })
  .strict();
export type E2eRecord = z.infer<typeof E2eRecord>;

export async function readE2eRecord(modelsDir: string): Promise<E2eRecord | undefined> {
  const file = path.join(modelsDir, E2E_FILE);
  if (!existsSync(file)) return undefined;
  const parsed = E2eRecord.safeParse(YAML.parse(await readFile(file, "utf8")));
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  return parsed.data;
}

const open = async (modelsDir: string, task: string, variant: string) =>
  Engine.create(new Uint8Array(await readFile(path.join(modelsDir, task, variant, "model.onnx"))), { threads: 2 });

/**
 * Measures every det × rec combination (the classifier variant fixed) on the first `images` of the
 * labelled set. Detection runs once per detector variant and image; classification and recognition
 * once per combination's boxes — the same numbers `ocr()` gives, computed without repeating work.
 */
export async function measureCombinations(
  modelsDir: string,
  variants: { det: string[]; cls: string; rec: string[] },
  images?: number,
  log?: (msg: string) => void,
): Promise<E2eRecord> {
  const set = ocrEvalSet(images);
  const charset = ctcCharset(await readDictionary());
  const cls = await open(modelsDir, "ocr-cls", variants.cls);
  const combinations: E2eCombination[] = [];
  try {
    for (const detName of variants.det) {
      const det = await open(modelsDir, "ocr-det", detName);
      const boxes: DetectedBox[][] = [];
      const flips: boolean[][] = [];
      try {
        for (const s of set) {
          const b = await detect(det, s.image);
          boxes.push(b);
          flips.push(
            await classify(
              cls,
              s.image,
              b.map((x) => x.quad),
            ),
          );
        }
      } finally {
        await det.close();
      }
      for (const recName of variants.rec) {
        log?.(`ocr e2e: ${detName} + ${variants.cls} + ${recName}`);
        const rec = await open(modelsDir, "ocr-rec", recName);
        const tally: CerTally = { edits: 0, chars: 0 };
        try {
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
        } finally {
          await rec.close();
        }
        const correct = Math.max(0, tally.chars - tally.edits);
        combinations.push({
          det: detName,
          cls: variants.cls,
          rec: recName,
          value: Number(oneMinusCer(tally).toFixed(6)),
          correct,
          total: tally.chars,
        });
      }
    }
  } finally {
    await cls.close();
  }
  return {
    pipeline: "ocr",
    stages: ["ocr-det", "ocr-cls", "ocr-rec"],
    metric: "1 - CER end to end (detected lines assigned to ground-truth lines; unassigned text counts as insertions)",
    evaluated_on: describeEvalSet(set.length),
    combinations,
  };
}

/** Re-measures the table for every variant the repository now has of each stage. */
export async function refreshE2eRecord(modelsDir: string, log?: (msg: string) => void): Promise<E2eRecord> {
  const { loadRepository } = await import("../repository/repository.js");
  const repo = await loadRepository(modelsDir, { tasks: ["ocr-det", "ocr-cls", "ocr-rec"] });
  const names = (t: string) => [...repo.tasks.get(t)!.variants.keys()];
  const cls = names("ocr-cls").find((n) => !repo.tasks.get("ocr-cls")!.variants.get(n)!.config.derived_from)!;
  const record = await measureCombinations(
    modelsDir,
    { det: names("ocr-det"), cls, rec: names("ocr-rec") },
    undefined,
    log,
  );
  await writeE2eRecord(modelsDir, record);
  return record;
}

export async function writeE2eRecord(modelsDir: string, record: E2eRecord): Promise<void> {
  await writeAtomic(path.join(modelsDir, E2E_FILE), YAML.stringify(record, { lineWidth: 0 }));
}
