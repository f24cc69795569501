// onnxruntime's own graph optimiser, run once and saved (`optimizedModelFilePath`): the graph a
// session would build at start-up, written out so that later sessions start from it.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import ort from "onnxruntime-node";

/**
 * `basic` (constant folding, BatchNorm folded into Conv, redundant nodes removed) and `extended`
 * (plus fusions such as Conv+Activation, Gelu, attention) give graphs that run anywhere; `all` adds
 * NCHWc layouts specific to this CPU, which onnxruntime warns must not leave the machine, so the
 * generator never saves that level.
 */
export type SavedOptimizationLevel = "basic" | "extended";

export async function optimizeWithOrt(bytes: Uint8Array, level: SavedOptimizationLevel): Promise<Uint8Array> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "sloserve-opt-"));
  const file = path.join(dir, "optimized.onnx");
  try {
    const session = await ort.InferenceSession.create(bytes, {
      graphOptimizationLevel: level,
      optimizedModelFilePath: file,
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      logSeverityLevel: 3,
    });
    await session.release();
    return new Uint8Array(await readFile(file));
  } catch (err) {
    throw new Error(`onnxruntime cannot load the model to optimise it: ${(err as Error).message.split("\n")[0]}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
