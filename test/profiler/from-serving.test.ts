// The online latency model's measurements reach profile.json only through `sloserve profile
// --update-from-serving`: the merge itself, and the command against a real server that has served.
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { mergeServedPoints, type ServedPointRecord } from "../../src/profiler/from-serving.js";
import { Profile } from "../../src/repository/schema.js";
import { startServer } from "../../src/server/server.js";
import { infer } from "../support/oip-client.js";

const profile = Profile.parse(JSON.parse(await readFile(path.resolve("models/digits/cnn-small/profile.json"), "utf8")));
const served = (batch: number, cores: number, p50: number, samples = 50): ServedPointRecord => ({
  task: "digits",
  variant: "cnn-small",
  batch,
  cores,
  samples,
  p50_ms: p50,
  p99_ms: p50 * 1.3,
  mean_ms: p50 * 1.05,
});

describe("profile points from serving", () => {
  it("replaces the point at the same batch and cores, adds new ones, refits, and records what it did", () => {
    const p1 = profile.points.find((p) => p.batch === 1 && p.cores === 1)!;
    const u = mergeServedPoints(profile, [served(1, 1, p1.p50_ms * 2), served(3, 1, 0.9), served(2, 1, 1, 5)], {
      minSamples: 20,
      source: "http://x",
      now: new Date("2027-01-01T00:00:00Z"),
    })!;
    const at = (b: number) => u.profile.points.find((p) => p.batch === b && p.cores === 1)!;
    expect(at(1).p50_ms).toBeCloseTo(p1.p50_ms * 2, 9);
    expect(at(1).samples).toBe(50);
    expect(at(3).p50_ms).toBe(0.9); // a batch size profiling never measured
    expect(at(2)).toEqual(profile.points.find((p) => p.batch === 2 && p.cores === 1)); // 5 samples: too few
    expect(u.changes.map((c) => [c.batch, c.from === undefined])).toEqual([
      [1, false],
      [3, true],
    ]);
    expect(u.profile.updated_from_serving).toEqual({
      at: "2027-01-01T00:00:00.000Z",
      source: "http://x",
      points: [
        { batch: 1, cores: 1 },
        { batch: 3, cores: 1 },
      ],
    });
    expect(u.profile.fit.p50).not.toEqual(profile.fit.p50);
    expect(() => Profile.parse(u.profile)).not.toThrow();
    expect(profile.points).toHaveLength(u.profile.points.length - 1); // the original is not touched
    expect(mergeServedPoints(profile, [served(1, 1, 1, 3)], { minSamples: 20, source: "x" })).toBeNull();
  });

  it("sloserve profile --update-from-serving writes what a running server measured, and only then", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "sloserve-served-"));
    await cp(path.resolve("models/digits"), path.join(dir, "digits"), { recursive: true });
    const server = await startServer({
      modelsDir: dir,
      httpPort: 0,
      grpcPort: 0,
      metricsPort: 0,
      cores: 1,
      deploy: [{ task: "digits", variant: "cnn-small", cores: 1 }],
      autoscaler: "none",
      logLevel: "warn",
      warmPool: 0,
    });
    const file = path.join(dir, "digits/cnn-small/profile.json");
    const before = await readFile(file, "utf8");
    try {
      for (let i = 0; i < 60; i++) {
        const r = await infer(
          server.httpUrl,
          "/v2/models/digits/versions/cnn-small/infer",
          [{ name: "image", datatype: "FP32", shape: [1, 1, 28, 28], data: Array(784).fill(0.5) }],
          { parameters: { slo_ms: 1000 } },
        );
        expect(r.status).toBe(200);
      }
      const model = (await (await fetch(`${server.httpUrl}/sloserve/latency-model`)).json()) as {
        enabled: boolean;
        instances: { variant: string; batches: number; factor: number }[];
        points: ServedPointRecord[];
      };
      expect(model.enabled).toBe(true);
      expect(model.instances[0]).toMatchObject({ variant: "cnn-small", batches: 60 });
      expect(model.points.find((p) => p.batch === 1 && p.cores === 1)?.samples).toBe(60);
      expect(await readFile(file, "utf8")).toBe(before); // serving alone writes nothing
      const run = (extra: string[]) =>
        promisify(execFile)(
          process.execPath,
          ["bin/sloserve.js", "profile", "--update-from-serving", "--url", server.httpUrl, "--models", dir, ...extra],
          { timeout: 60_000 },
        );
      const dry = await run(["--dry-run"]);
      expect(dry.stdout).toMatch(/digits\/cnn-small\s+1\s+1\s/);
      expect(await readFile(file, "utf8")).toBe(before);
      await run([]);
      const after = Profile.parse(JSON.parse(await readFile(file, "utf8")));
      expect(after.updated_from_serving?.source).toBe(server.httpUrl);
      const p = after.points.find((x) => x.batch === 1 && x.cores === 1)!;
      expect(p.samples).toBe(60);
      expect(p.p50_ms).toBeCloseTo(model.points.find((x) => x.batch === 1 && x.cores === 1)!.p50_ms, 9);
    } finally {
      await server.close(1000);
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
