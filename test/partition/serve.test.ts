// End to end: `sloserve partition` writes the stages into a repository, `sloserve validate` accepts it, the
// stages are profiled in pinned workers, and the real server serves the pipeline across instances (one
// worker process per stage): its outputs equal the whole model's, served by the same server.
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { partitionModel } from "../../src/partition/partition.js";
import { writePartition } from "../../src/partition/write.js";
import { profileVariant, writeProfile } from "../../src/profiler/profiler.js";
import { loadRepository } from "../../src/repository/repository.js";
import type { RunningServer } from "../../src/server/server.js";
import { loadDigits } from "../../src/zoo/digits-data.js";
import { infer } from "../support/oip-client.js";
import { startTestServer } from "../support/server.js";
import { variantYaml } from "../support/tiny-model.js";
import { skipModel, SKIP_TASK_YAML } from "./graphs.js";

const sloserve = (...args: string[]) =>
  promisify(execFile)(process.execPath, ["bin/sloserve.js", ...args], { timeout: 120_000 });

const failure = (p: Promise<unknown>) =>
  p.then(
    () => "exited 0",
    (e: { code?: number; stderr?: string }) => `exit ${e.code}: ${e.stderr ?? ""}`,
  );

let repo: string;
let server: RunningServer | undefined;

beforeAll(async () => {
  repo = await fs.mkdtemp(path.join(os.tmpdir(), "sloserve-partition-"));
  await fs.mkdir(path.join(repo, "digits"));
  await fs.copyFile(path.resolve("models/digits/task.yaml"), path.join(repo, "digits", "task.yaml"));
  await fs.cp(path.resolve("models/digits/cnn-large"), path.join(repo, "digits", "cnn-large"), { recursive: true });
  await fs.mkdir(path.join(repo, "skip", "skip"), { recursive: true });
  await fs.writeFile(path.join(repo, "skip", "task.yaml"), SKIP_TASK_YAML);
  await fs.writeFile(path.join(repo, "skip", "skip", "variant.yaml"), variantYaml("skip", 0.5));
  await fs.writeFile(path.join(repo, "skip", "skip", "model.onnx"), skipModel());
});

afterAll(async () => {
  await server?.close(2000);
  await fs.rm(repo, { recursive: true, force: true });
});

describe("sloserve partition", () => {
  it("writes a pipeline the repository loader accepts, and refuses bad requests with what to fix", async () => {
    const { stdout, stderr } = await sloserve("partition", "-m", repo, "--model", "digits/cnn-large", "--parts", "3");
    expect(stdout).toMatch(/digits-cnn-large-p3-s1/);
    expect(stderr).toMatch(/verified: the stages in a chain give exactly the whole model's outputs/);
    const pipeline = await fs.readFile(path.join(repo, "digits-cnn-large-p3", "pipeline.yaml"), "utf8");
    expect(pipeline).toMatch(/stages: \[ digits-cnn-large-p3-s1, digits-cnn-large-p3-s2, digits-cnn-large-p3-s3 \]/);
    const variant = await fs.readFile(path.join(repo, "digits-cnn-large-p3-s2", "cnn-large", "variant.yaml"), "utf8");
    expect(variant).toMatch(/value: 0\.988\n  source: declared\n  reference: "?inherited from digits\/cnn-large/);
    const record = JSON.parse(await fs.readFile(path.join(repo, "digits-cnn-large-p3", "partition.json"), "utf8"));
    expect(record.cuts).toHaveLength(2);
    expect(record.verified.identical).toBe(true);

    const validated = await sloserve("validate", "-m", repo);
    for (let i = 1; i <= 3; i++)
      expect(validated.stderr).toMatch(new RegExp(`ok: digits-cnn-large-p3-s${i} \\(cnn-large\\)`));

    expect(await failure(sloserve("partition", "-m", repo, "--model", "digits/cnn-large", "--parts", "3"))).toMatch(
      /exit 1: .*already exist\(s\); pass --force/s,
    );
    expect(
      await failure(
        sloserve("partition", "-m", repo, "--model", "digits/cnn-large", "--parts", "2", "--name", "digits", "--force"),
      ),
    ).toMatch(/\/digits exists and was not written by sloserve partition/);
    await sloserve("partition", "-m", repo, "--model", "digits/cnn-large", "--parts", "3", "--force");
    expect((await fs.readdir(path.join(repo, "digits"))).sort()).toEqual(["cnn-large", "task.yaml"]);
    expect(await failure(sloserve("partition", "-m", repo, "--model", "digits/nope", "--parts", "2"))).toMatch(
      /has no variant 'nope' \(it has: cnn-large\)/,
    );
    expect(await failure(sloserve("partition", "-m", repo, "--model", "digits/cnn-large", "--parts", "1"))).toMatch(
      /--parts needs a whole number ≥ 2/,
    );
    expect(
      await failure(
        sloserve("partition", "-m", repo, "--model", "digits/cnn-large", "--parts", "2", "--max-memory-mb", "0.5"),
      ),
    ).toMatch(/no cut into 2 stages fits ≤ 0\.5 MB .*raise --max-memory-mb/);
  });

  it("serves the stages across instances with the whole model's outputs", async () => {
    // a partition whose middle stage carries `a` through untouched, and an early second output
    const task = (await loadRepository(repo, { tasks: ["skip"] })).tasks.get("skip")!;
    const variant = task.variants.get("skip")!;
    const skip = await partitionModel(skipModel(), { parts: 3, batch: 16, positions: [3, 6] });
    await writePartition(skip, { root: repo, name: "skip-p3", task, variant });

    const all = await loadRepository(repo);
    for (const t of all.tasks.values())
      for (const v of t.variants.values())
        if (!v.profile)
          await writeProfile(
            v,
            await profileVariant(v, { batches: [1, 4], cores: [1, 2], budgetMs: 40, minSamples: 5, resizeRounds: 1 }),
          );

    const stages = [1, 2, 3].map((i) => ({ task: `digits-cnn-large-p3-s${i}`, variant: "cnn-large", cores: 1 }));
    const skipStages = [1, 2, 3].map((i) => ({ task: `skip-p3-s${i}`, variant: "skip", cores: 1 }));
    server = await startTestServer({
      modelsDir: repo,
      cores: 2,
      deploy: [
        { task: "digits", variant: "cnn-large", cores: 1 },
        ...stages,
        { task: "skip", variant: "skip", cores: 1 },
        ...skipStages,
      ],
    });
    // every stage runs in a worker process of its own
    const ready = server.cluster.instances().filter((i) => i.state === "ready");
    for (const s of [...stages, ...skipStages]) expect(ready.map((i) => i.task)).toContain(s.task);
    expect(new Set(ready.map((i) => server!.local!.pidOf(i.id))).size).toBe(ready.length);

    const images = Array.from(loadDigits().test.images.subarray(0, 4 * 784));
    const image = [{ name: "image", datatype: "FP32", shape: [4, 1, 28, 28], data: images }];
    const params = { parameters: { slo_ms: 10_000 } };
    for (let round = 0; round < 3; round++) {
      const whole = await infer(server.httpUrl, "/v2/models/digits/versions/cnn-large/infer", image, params);
      const piped = await infer(server.httpUrl, "/v2/models/digits-cnn-large-p3/infer", image, params);
      expect(whole.status, JSON.stringify(whole.json)).toBe(200);
      expect(piped.status, JSON.stringify(piped.json)).toBe(200);
      expect(piped.json.parameters.variant).toBe(stages.map((s) => `${s.task}:cnn-large`).join(","));
      expect(piped.json.outputs.map((o: { name: string }) => o.name)).toEqual(["probabilities"]);
      expect(piped.json.outputs[0].shape).toEqual([4, 10]);
      expect(piped.json.outputs[0].data).toEqual(whole.json.outputs[0].data);
    }

    const x = Array.from({ length: 5 * 8 }, (_, i) => Math.sin(i));
    const input = [{ name: "x", datatype: "FP32", shape: [5, 8], data: x }];
    const whole = await infer(server.httpUrl, "/v2/models/skip/infer", input, params);
    const piped = await infer(server.httpUrl, "/v2/models/skip-p3/infer", input, params);
    expect(piped.status, JSON.stringify(piped.json)).toBe(200);
    const byName = (r: typeof whole) =>
      Object.fromEntries(r.json.outputs.map((o: { name: string; data: number[] }) => [o.name, o.data]));
    expect(Object.keys(byName(piped)).sort()).toEqual(["early", "probabilities"]);
    expect(byName(piped)).toEqual(byName(whole));
  });
});
