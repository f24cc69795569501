import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnWorker, type WorkerHandle } from "../../src/cluster/local/worker-process.js";
import { Engine } from "../../src/engine/engine.js";
import { WorkerGoneError } from "../../src/worker/client.js";
import { viewAs } from "../../src/worker/tensors.js";
import { seededRandom } from "../../src/stats/random.js";
import { tinyDigitsModel } from "../support/tiny-model.js";

let dir: string;
let modelPath: string;
const rand = seededRandom(3);
const image = (rows: number) => Float32Array.from({ length: rows * 784 }, () => rand());

function inferFrame(rowsList: number[]) {
  const inputs = rowsList.map((r) => image(r));
  const parts = rowsList.map((rows, i) => ({
    rows,
    tensors: [{ name: "image", type: "float32", dims: [rows, 1, 28, 28], bytes: inputs[i]!.byteLength }],
  }));
  return { inputs, parts, payload: inputs.map((a) => new Uint8Array(a.buffer)) };
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "sloserve-worker-"));
  modelPath = path.join(dir, "model.onnx");
  await fs.writeFile(modelPath, tinyDigitsModel());
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe("worker process", () => {
  let w: WorkerHandle;
  beforeAll(async () => {
    w = await spawnWorker({ modelPath, threads: 1, cpus: [0] });
  });
  afterAll(async () => {
    await w.stop();
  });

  it("announces itself with a measured cold start", () => {
    expect(w.coldStartMs).toBeGreaterThan(w.sessionMs);
    expect(w.port).toBeGreaterThan(0);
  });

  it("runs a batch over the socket and returns each part's outputs, equal to in-process onnxruntime", async () => {
    const { inputs, parts, payload } = inferFrame([2, 1]);
    const { header, payload: out } = await w.client.call("infer", { parts }, payload);
    const engine = await Engine.create(tinyDigitsModel(), { threads: 1 });
    const local = await engine.runBatch(inputs.map((d, i) => ({ rows: parts[i]!.rows, inputs: { image: d } })));
    let offset = 0;
    const wireParts = header.parts as {
      rows: number;
      tensors: { name: string; type: string; dims: number[]; bytes: number }[];
    }[];
    expect(wireParts.map((p) => p.tensors[0]!.dims)).toEqual([
      [2, 10],
      [1, 10],
    ]);
    for (const [i, p] of wireParts.entries()) {
      const t = p.tensors[0]!;
      const got = viewAs(t.type, out.subarray(offset, offset + t.bytes));
      offset += t.bytes;
      expect(Array.from(got as Float32Array)).toEqual(Array.from(local[i]!.probabilities!.data as Float32Array));
    }
    expect(header.computeUs).toBeGreaterThan(0);
    await engine.close();
  });

  it("answers a bad batch with an error and keeps serving", async () => {
    const bad = {
      parts: [{ rows: 3, tensors: [{ name: "image", type: "float32", dims: [3, 1, 28, 28], bytes: 784 * 4 }] }],
    };
    await expect(w.client.call("infer", bad, [new Uint8Array(784 * 4)])).rejects.toThrow(/needs 2352 values/);
    const { inputs, parts, payload } = inferFrame([1]);
    const ok = await w.client.call("infer", { parts }, payload);
    expect(ok.header.parts).toHaveLength(1);
    expect(inputs).toHaveLength(1);
  });

  it("resizes in place while batches keep flowing", async () => {
    let stop = false;
    let done = 0;
    const loop = async () => {
      while (!stop) {
        const { parts, payload } = inferFrame([4]);
        await w.client.call("infer", { parts }, payload);
        done += 1;
      }
    };
    const loops = [loop(), loop()];
    const up = await w.client.call("resize", { threads: 2, cpus: [0, 1] });
    const down = await w.client.call("resize", { threads: 1, cpus: [0] });
    stop = true;
    await Promise.all(loops);
    expect(up.header.toThreads).toBe(2);
    expect(down.header.toThreads).toBe(1);
    expect(up.header.ms).toBeGreaterThan(0);
    expect(done).toBeGreaterThan(0);
    const stats = await w.client.call("stats");
    expect(stats.header.threads).toBe(1);
    expect(stats.header.peakRssMb).toBeGreaterThan(10);
  });
});

describe("a worker that dies mid-batch", () => {
  it("fails every pending call at once instead of hanging", async () => {
    const w = await spawnWorker({ modelPath, threads: 1, cpus: [] });
    const { parts, payload } = inferFrame([1]);
    const pending = Array.from({ length: 5 }, () =>
      w.client.call("bench", { batch: 64, warmup: 0, minSamples: 1e9, budgetMs: 0 }),
    );
    await new Promise((r) => setTimeout(r, 50));
    w.proc.kill("SIGKILL");
    const results = await Promise.allSettled(pending);
    await expect(w.client.call("infer", { parts }, payload)).rejects.toBeInstanceOf(WorkerGoneError);
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(WorkerGoneError);
    }
    expect(await w.exited).toBeNull();
  });
});
