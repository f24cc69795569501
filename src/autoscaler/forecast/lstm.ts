// The LSTM load forecaster: the ONNX graph that `npm run forecaster:train` trains on days 1–14 of the
// Twitter trace (lstm-train.ts), run in-process by the same engine that serves models. The graph holds
// its own normalisation, so its input is the raw per-second history [1, 60] and its output the forecast
// max rate of the next 10 s [1, 1].
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import ort from "onnxruntime-node";
import { Engine } from "../../engine/engine.js";
import { HISTORY_SECONDS, type Forecaster } from "./types.js";

export const DEFAULT_MODEL_PATH = fileURLToPath(new URL("./twitter-lstm.onnx", import.meta.url));

export class LstmForecaster implements Forecaster {
  readonly name = "lstm";
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly engine: Engine) {}

  /** Histories shorter than 60 s are left-padded with their own mean (zeros for an empty one). */
  predict(history: readonly number[]): Promise<number> {
    if (history.length === 0) return Promise.resolve(0);
    const h = history.slice(-HISTORY_SECONDS).map((v) => (Number.isFinite(v) && v > 0 ? v : 0));
    const mean = h.reduce((a, b) => a + b, 0) / h.length;
    const x = new Float32Array(HISTORY_SECONDS).fill(mean);
    x.set(h, HISTORY_SECONDS - h.length);
    // One session, one run at a time: the control loop never overlaps decisions, but a caller might.
    const run = this.chain.then(() => this.engine.run({ history: new ort.Tensor("float32", x, [1, HISTORY_SECONDS]) }));
    this.chain = run.catch(() => undefined);
    return run.then((out) => {
      const v = (out.forecast!.data as Float32Array)[0]!;
      return Number.isFinite(v) && v > 0 ? v : 0;
    });
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}

export async function loadLstmForecaster(file = DEFAULT_MODEL_PATH): Promise<LstmForecaster> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new Error(
      `LSTM forecaster ${file} is missing (${(e as Error).message}); run \`npm run forecaster:train\` or use --forecaster max-trend`,
    );
  }
  return new LstmForecaster(await Engine.create(bytes, { threads: 1 }));
}
