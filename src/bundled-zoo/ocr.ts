// Everything the `ocr` stages need on first start: the package's models copied into the repository,
// the base variants' variant.yaml measured if missing, and the generated variants built from their
// recipes.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ensureGeneratedVariants } from "../variants/generate.js";
import { taskSupport } from "../variants/tasks.js";
import { writeAtomic } from "../repository/write-atomic.js";
import { baseVariantYaml, ensureOcrZoo, OCR_STAGES } from "../ocr/models.js";

export const OCR_GENERATED_TASKS = ["ocr-det", "ocr-rec"];

export async function prepareOcrZoo(modelsDir: string, log?: (msg: string) => void): Promise<void> {
  await ensureOcrZoo(modelsDir, log);
  for (const stage of OCR_STAGES) {
    const taskYaml = path.join(modelsDir, stage.task, "task.yaml");
    if (!existsSync(taskYaml)) await writeAtomic(taskYaml, stage.taskYaml);
    const dir = path.join(modelsDir, stage.task, stage.variant);
    const file = path.join(dir, "variant.yaml");
    if (existsSync(file)) continue;
    log?.(`ocr: measuring ${stage.task}/${stage.variant} on the rendered set`);
    const a = await taskSupport(stage.task).measure(new Uint8Array(await readFile(path.join(dir, "model.onnx"))));
    const accuracy = [
      "accuracy:",
      `  value: ${a.value}`,
      "  source: measured",
      `  evaluated_on: ${JSON.stringify(a.evaluated_on)}`,
      `  correct: ${a.correct}`,
      `  total: ${a.total}`,
    ].join("\n");
    await writeAtomic(file, baseVariantYaml(stage, accuracy));
  }
  await ensureGeneratedVariants(modelsDir, OCR_GENERATED_TASKS, log);
}
