// The vision zoo's ONNX files are generated, not committed: build whatever is missing once, before
// any test file that serves or profiles `vision` runs; likewise the ocr models and their generated variants.
import path from "node:path";
import { ensureVisionSupernet } from "../src/zoo/supernet/vision-zoo.js";
import { ensureVisionZoo } from "../src/zoo/vision.js";
import { prepareOcrZoo } from "../src/bundled-zoo/ocr.js";

export default async function setup(): Promise<void> {
  await ensureVisionZoo(path.resolve("models"));
  await ensureVisionSupernet(path.resolve("models"));
  await prepareOcrZoo(path.resolve("models"));
}
