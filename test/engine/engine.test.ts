import { describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { seededRandom } from "../../src/stats/random.js";
import { tinyDigitsModel } from "../support/tiny-model.js";

const rand = seededRandom(11);
const image = (rows: number) => Float32Array.from({ length: rows * 784 }, () => rand());

describe("Engine", () => {
  it("runs a stacked batch and splits outputs per request, equal to running each alone", async () => {
    const engine = await Engine.create(tinyDigitsModel(), { threads: 1 });
    expect(engine.inputs).toEqual([{ name: "image", type: "float32", rowShape: [1, 28, 28] }]);
    const parts = [1, 3, 2].map((rows) => ({ rows, inputs: { image: image(rows) } }));
    const batched = await engine.runBatch(parts);
    expect(batched.map((o) => o.probabilities!.dims)).toEqual([
      [1, 10],
      [3, 10],
      [2, 10],
    ]);
    for (const [i, part] of parts.entries()) {
      const [alone] = await engine.runBatch([part]);
      const a = Array.from(alone!.probabilities!.data as Float32Array);
      const b = Array.from(batched[i]!.probabilities!.data as Float32Array);
      a.forEach((x, k) => expect(b[k]).toBeCloseTo(x, 6));
    }
    await engine.close();
  });

  it("rejects a part whose data does not fill its rows, with the counts", async () => {
    const engine = await Engine.create(tinyDigitsModel(), { threads: 1 });
    await expect(engine.runBatch([{ rows: 2, inputs: { image: image(1) } }])).rejects.toThrow(
      /needs 1568 values for 2 row\(s\), got 784/,
    );
    await engine.close();
  });

  it("resizes in place under continuous load without failing a request", async () => {
    const engine = await Engine.create(tinyDigitsModel(), { threads: 1 });
    let stop = false;
    let ok = 0;
    const failures: unknown[] = [];
    const seenThreads = new Set<number>();
    const loop = async () => {
      while (!stop) {
        try {
          const [out] = await engine.runBatch([{ rows: 4, inputs: { image: image(4) } }]);
          expect(out!.probabilities!.dims).toEqual([4, 10]);
          seenThreads.add(engine.threads);
          ok += 1;
        } catch (err) {
          failures.push(err);
        }
      }
    };
    const loops = [loop(), loop(), loop()];
    const resizes = [];
    for (const t of [2, 1, 2, 1, 2, 1]) {
      await new Promise((r) => setTimeout(r, 20));
      resizes.push(await engine.resize(t, () => engine.zeroFeeds(1)));
    }
    stop = true;
    await Promise.all(loops);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(50);
    expect(seenThreads).toEqual(new Set([1, 2]));
    for (const r of resizes) expect(r.ms).toBeGreaterThan(0);
    expect(resizes.map((r) => r.toThreads)).toEqual([2, 1, 2, 1, 2, 1]);
    await engine.close();
  });

  it("serialises concurrent resizes and ends at the last one asked", async () => {
    const engine = await Engine.create(tinyDigitsModel(), { threads: 1 });
    await Promise.all([engine.resize(2), engine.resize(3), engine.resize(2)]);
    expect(engine.threads).toBe(2);
    await engine.close();
  });
});
