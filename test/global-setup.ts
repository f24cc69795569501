// The vision zoo's ONNX files are generated, not committed: build whatever is missing once, before
// any test file that serves or profiles `vision` runs.
import path from "node:path";
import { ensureVisionSupernet } from "../src/zoo/supernet/vision-zoo.js";
import { ensureVisionZoo } from "../src/zoo/vision.js";

export default async function setup(): Promise<void> {
  await ensureVisionZoo(path.resolve("models"));
  await ensureVisionSupernet(path.resolve("models"));
}
