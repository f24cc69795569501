// The LSTM forecaster under virtual time. onnxruntime settles its promises from its own thread pool,
// so a live LSTM inside the simulator would answer at an arbitrary virtual moment. Arrivals are
// exogenous, though: every 60-s history the control loop can see is known before the run. So the
// LSTM is run once, batched, over every history of the arrival counts, and the simulator's forecaster
// answers from that table at once — the same numbers, deterministically.
import ort from "onnxruntime-node";
import { DEFAULT_MODEL_PATH } from "../../src/autoscaler/forecast/lstm.js";
import { MaxTrendForecaster } from "../../src/autoscaler/forecast/max-trend.js";
import { HISTORY_SECONDS, type Forecaster } from "../../src/autoscaler/forecast/types.js";
import { Engine } from "../../src/engine/engine.js";
import { readFile } from "node:fs/promises";

export interface TableForecaster extends Forecaster {
  /** Histories that were not in the table (answered by max/trend). */
  misses: number;
}

/** Forecasts for the histories ending at each second 1..counts.length of a per-second count series. */
export async function lstmTable(counts: ArrayLike<number>, file = DEFAULT_MODEL_PATH): Promise<Map<string, number>> {
  const n = counts.length;
  const x = new Float32Array(n * HISTORY_SECONDS);
  const keys: string[] = [];
  for (let end = 1; end <= n; end++) {
    const h: number[] = [];
    for (let i = end - HISTORY_SECONDS; i < end; i++) h.push(i >= 0 ? counts[i]! : 0);
    keys.push(h.join(","));
    // The live forecaster pads a short history with its mean; the controller hands it 60 s, zeros before start.
    x.set(h, (end - 1) * HISTORY_SECONDS);
  }
  const engine = await Engine.create(await readFile(file), { threads: 1 });
  try {
    const out = await engine.run({ history: new ort.Tensor("float32", x, [n, HISTORY_SECONDS]) });
    const y = out.forecast!.data as Float32Array;
    const table = new Map<string, number>();
    keys.forEach((k, i) => table.set(k, Math.max(0, y[i]!)));
    return table;
  } finally {
    await engine.close();
  }
}

export function tableForecaster(table: Map<string, number>): TableForecaster {
  const fallback = new MaxTrendForecaster();
  const f: TableForecaster = {
    name: "lstm",
    misses: 0,
    predict(history) {
      const v = table.get(history.join(","));
      if (v !== undefined) return Promise.resolve(v);
      f.misses++;
      return fallback.predict(history);
    },
  };
  return f;
}
