import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import YAML from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer } from "../support/server.js";
import type { RunningServer } from "../../src/server/server.js";
import { Engine } from "../../src/engine/engine.js";
import { loadDigits } from "../../src/zoo/digits-data.js";
import { argmaxRows, float32Bytes, get, infer, post, readFloat32 } from "../support/oip-client.js";

const MODELS = path.resolve("models");
const digits = loadDigits().test;
const image = (i: number, n = 1) => digits.images.subarray(i * 784, (i + n) * 784);
const labels = (i: number, n: number) => Array.from(digits.labels.subarray(i, i + n));
const variantYaml = async (v: string) =>
  YAML.parse(await fs.readFile(path.join(MODELS, "digits", v, "variant.yaml"), "utf8"));

let server: RunningServer;
let base: string;

beforeAll(async () => {
  server = await startTestServer({
    modelsDir: MODELS,
    cores: 2,
    deploy: [
      { task: "digits", variant: "mlp-small", cores: 1 },
      { task: "digits", variant: "cnn-large", cores: 1 },
    ],
    maxBodyBytes: 8 * 2 ** 20,
  });
  base = server.httpUrl;
});
afterAll(async () => {
  await server?.close(2000);
});

describe("health and metadata", () => {
  it("answers live, ready and server metadata", async () => {
    expect(await get(base, "/v2/health/live")).toEqual({ status: 200, json: { live: true } });
    expect(await get(base, "/v2/health/ready")).toEqual({ status: 200, json: { ready: true } });
    const meta = await get(base, "/v2");
    expect(meta.json.name).toBe("sloserve");
    expect(meta.json.extensions).toEqual(
      expect.arrayContaining([
        "binary_tensor_data",
        "model_repository",
        "statistics",
        "model_configuration",
        "sloserve_slo",
      ]),
    );
  });

  it("describes a task, a pinned variant and a pipeline; 404 for unknown names", async () => {
    const m = await get(base, "/v2/models/digits");
    expect(m.status).toBe(200);
    expect(m.json.platform).toBe("onnxruntime_onnx");
    expect(m.json.inputs).toEqual([{ name: "image", datatype: "FP32", shape: [-1, 1, 28, 28] }]);
    expect(m.json.outputs).toEqual([{ name: "probabilities", datatype: "FP32", shape: [-1, 10] }]);
    expect(m.json.versions).toEqual(expect.arrayContaining(["mlp-small", "cnn-large"]));
    expect((await get(base, "/v2/models/digits/versions/cnn-large")).json.versions).toEqual(["cnn-large"]);
    const p = await get(base, "/v2/models/mnist-e2e");
    expect(p.json.inputs).toEqual([{ name: "raw", datatype: "UINT8", shape: [-1, 28, 28] }]);
    expect(p.json.platform).toBe("ensemble");
    const unknown = await get(base, "/v2/models/nope");
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toMatch(/unknown model 'nope'/);
    const badVersion = await get(base, "/v2/models/digits/versions/resnet9000");
    expect(badVersion.status).toBe(404);
    expect(badVersion.json.error).toMatch(/no variant 'resnet9000'.*its variants are/);
    const ready = await fetch(`${base}/v2/models/digits/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ name: "digits", ready: true });
    expect(ready.headers.get("sloserve-ready-reason")).toMatch(/instance\(s\) ready: \S+ on \d+ core\(s\)/);
    expect((await get(base, "/v2/models/nope/ready")).status).toBe(404);
    expect((await get(base, "/v2/no/such/path")).status).toBe(404);
  });

  it("serves Triton's model config and statistics", async () => {
    const c = await get(base, "/v2/models/digits/config");
    expect(c.json).toMatchObject({
      name: "digits",
      platform: "onnxruntime_onnx",
      input: [{ name: "image", data_type: "TYPE_FP32", dims: [1, 28, 28] }],
    });
    expect(c.json.max_batch_size).toBeGreaterThanOrEqual(32);
    expect(c.json.dynamic_batching).toBeDefined();
    await infer(base, "/v2/models/digits/versions/mlp-small/infer", [
      { name: "image", datatype: "FP32", shape: [2, 1, 28, 28], data: Array.from(image(0, 2)) },
    ]);
    const s = await get(base, "/v2/models/digits/versions/mlp-small/stats");
    const st = s.json.model_stats[0];
    // Triton's version of a variant is its place in the metadata's versions list
    const versions = (await get(base, "/v2/models/digits")).json.versions as string[];
    expect(st).toMatchObject({
      name: "digits",
      version: String(versions.indexOf("mlp-small") + 1),
      variant: "mlp-small",
    });
    expect(st.inference_stats.success.count).toBeGreaterThanOrEqual(1);
    expect(st.inference_count).toBeGreaterThanOrEqual(2);
    expect(st.execution_count).toBeGreaterThanOrEqual(1);
    expect(st.batch_stats.length).toBeGreaterThan(0);
    expect((await get(base, "/v2/models/stats")).json.model_stats.length).toBeGreaterThan(0);
  });
});

describe("inference", () => {
  it("classifies digits from JSON data and says what served it", async () => {
    const r = await infer(
      base,
      "/v2/models/digits/versions/cnn-large/infer",
      [{ name: "image", datatype: "FP32", shape: [4, 1, 28, 28], data: Array.from(image(0, 4)) }],
      { id: "req-1" },
    );
    expect(r.status).toBe(200);
    expect(r.json.id).toBe("req-1");
    expect(r.json.model_name).toBe("digits");
    expect(r.json.model_version).toBe("cnn-large");
    const out = r.json.outputs[0];
    expect(out).toMatchObject({ name: "probabilities", datatype: "FP32", shape: [4, 10] });
    expect(argmaxRows(out.data, 10)).toEqual(labels(0, 4));
    expect(r.json.parameters).toMatchObject({ variant: "cnn-large", slo_met: true });
    expect(r.json.parameters.batch_size).toBeGreaterThanOrEqual(4);
    expect(r.json.parameters.compute_us).toBeGreaterThan(0);
    expect(r.json.parameters.queue_us).toBeGreaterThanOrEqual(0);
  });

  it("speaks the binary tensor extension both ways", async () => {
    const r = await infer(
      base,
      "/v2/models/digits/versions/cnn-large/infer",
      [{ name: "image", datatype: "FP32", shape: [3, 1, 28, 28], binary: float32Bytes(image(10, 3)) }],
      {
        outputs: [{ name: "probabilities", parameters: { binary_data: true } }],
      },
    );
    expect(r.status).toBe(200);
    expect(r.json.outputs[0].parameters.binary_data_size).toBe(3 * 10 * 4);
    expect(argmaxRows(readFloat32(r.binary.probabilities!), 10)).toEqual(labels(10, 3));
  });

  it("reproduces the serving variant's measured accuracy over the held-out digits", async () => {
    for (const v of ["cnn-large", "mlp-small"]) {
      const rows = 50;
      let correct = 0;
      const jobs = [];
      for (let i = 0; i < digits.count; i += rows) {
        const n = Math.min(rows, digits.count - i);
        jobs.push(
          infer(
            base,
            `/v2/models/digits/versions/${v}/infer`,
            [{ name: "image", datatype: "FP32", shape: [n, 1, 28, 28], binary: float32Bytes(image(i, n)) }],
            { parameters: { binary_data_output: true, slo_ms: 10_000 } },
          ).then((r) => {
            expect(r.status).toBe(200);
            const got = argmaxRows(readFloat32(r.binary.probabilities!), 10);
            correct += got.filter((g, k) => g === digits.labels[i + k]).length;
          }),
        );
      }
      await Promise.all(jobs);
      const declared = (await variantYaml(v)).accuracy;
      expect(Math.abs(correct - declared.correct)).toBeLessThanOrEqual(1);
      expect(correct / digits.count).toBeCloseTo(declared.value, 2);
    }
  });

  it("model-less: a high accuracy floor lands on the accurate variant, a tight SLO on the fast one", async () => {
    const floor = await infer(
      base,
      "/v2/models/digits/infer",
      [{ name: "image", datatype: "FP32", shape: [1, 1, 28, 28], data: Array.from(image(0)) }],
      { parameters: { min_accuracy: 0.98 } },
    );
    expect(floor.json.parameters.variant).toBe("cnn-large");
    const fast = server.repo.tasks.get("digits")!.variants.get("mlp-small")!.profile!;
    const slow = server.repo.tasks.get("digits")!.variants.get("cnn-large")!.profile!;
    const p99 = (p: typeof fast, b: number) => p.points.find((x) => x.batch === b && x.cores === 1)!.p99_ms;
    expect(p99(slow, 8)).toBeGreaterThan(p99(fast, 8) * 3);
    // 8 rows: the SLO sits between what the fast and the accurate variant need
    const slo = (p99(fast, 8) + p99(slow, 8)) / 2 + 0.5;
    const seen = new Set<string>();
    for (let k = 0; k < 5; k++) {
      const r = await infer(
        base,
        "/v2/models/digits/infer",
        [{ name: "image", datatype: "FP32", shape: [8, 1, 28, 28], binary: float32Bytes(image(8 * k, 8)) }],
        { parameters: { slo_ms: slo } },
      );
      if (r.status === 200) seen.add(r.json.parameters.variant);
    }
    expect([...seen]).toEqual(["mlp-small"]);
  });
});

describe("bad input gets a clear 4xx and the server keeps serving", () => {
  const one = () => ({ name: "image", datatype: "FP32", shape: [1, 1, 28, 28], data: Array.from(image(0)) });
  const cases: [string, () => Promise<{ status: number; json: any }>, number, RegExp][] = [
    [
      "malformed JSON",
      () =>
        fetch(`${base}/v2/models/digits/infer`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "{not json",
        }).then(async (r) => ({ status: r.status, json: await r.json() })),
      400,
      /malformed JSON/,
    ],
    [
      "no inputs",
      () => post(base, "/v2/models/digits/infer", { inputs: [] }),
      400,
      /'inputs' must be a non-empty array/,
    ],
    [
      "wrong datatype",
      () => infer(base, "/v2/models/digits/infer", [{ ...one(), datatype: "FP64" }]),
      400,
      /input 'image' is FP64, but 'digits' takes FP32/,
    ],
    [
      "unknown datatype",
      () => infer(base, "/v2/models/digits/infer", [{ ...one(), datatype: "FLOAT" }]),
      400,
      /datatype "FLOAT" is not one of/,
    ],
    [
      "wrong row shape",
      () =>
        infer(base, "/v2/models/digits/infer", [
          { name: "image", datatype: "FP32", shape: [1, 784], data: Array.from(image(0)) },
        ]),
      400,
      /has shape \[1,784\], but 'digits' takes \[N,1,28,28\]/,
    ],
    [
      "data does not fill shape",
      () =>
        infer(base, "/v2/models/digits/infer", [
          { name: "image", datatype: "FP32", shape: [2, 1, 28, 28], data: Array.from(image(0)) },
        ]),
      400,
      /needs 1568 elements, 'data' has 784/,
    ],
    [
      "non-numeric data",
      () =>
        infer(base, "/v2/models/digits/infer", [
          { name: "image", datatype: "FP32", shape: [1, 1, 1, 2], data: ["a", "b"] as unknown as number[] },
        ]),
      400,
      /element 0 must be a finite number/,
    ],
    [
      "unknown input",
      () => infer(base, "/v2/models/digits/infer", [one(), { name: "extra", datatype: "FP32", shape: [1], data: [1] }]),
      400,
      /unknown input 'extra'/,
    ],
    [
      "missing input",
      () => infer(base, "/v2/models/digits/infer", [{ name: "pixels", datatype: "FP32", shape: [1], data: [1] }]),
      400,
      /missing input 'image'/,
    ],
    [
      "binary size past the end",
      () =>
        infer(base, "/v2/models/digits/infer", [
          { name: "image", datatype: "FP32", shape: [1, 1, 28, 28], binary: new Uint8Array(100) },
        ]),
      400,
      /needs 3136 bytes, got 100/,
    ],
    [
      "unknown output",
      () => infer(base, "/v2/models/digits/infer", [one()], { outputs: [{ name: "logits" }] }),
      400,
      /unknown output 'logits'/,
    ],
    [
      "accuracy floor no variant reaches",
      () => infer(base, "/v2/models/digits/infer", [one()], { parameters: { min_accuracy: 0.9999 } }),
      400,
      /no variant of 'digits' reaches min_accuracy 0.9999/,
    ],
    [
      "negative slo",
      () => infer(base, "/v2/models/digits/infer", [one()], { parameters: { slo_ms: -5 } }),
      400,
      /'slo_ms' must be positive/,
    ],
    [
      "min_accuracy out of range",
      () => infer(base, "/v2/models/digits/infer", [one()], { parameters: { min_accuracy: 98 } }),
      400,
      /within 0..1/,
    ],
    [
      "too many rows",
      () =>
        infer(base, "/v2/models/digits/infer", [
          { name: "image", datatype: "FP32", shape: [500, 1, 28, 28], binary: new Uint8Array(500 * 784 * 4) },
        ]),
      400,
      /500 rows exceed the largest max_batch/,
    ],
    ["unknown task", () => infer(base, "/v2/models/faces/infer", [one()]), 404, /unknown model 'faces'/],
    [
      "hostile version",
      () => infer(base, "/v2/models/digits/versions/..%2F..%2Fetc/infer", [one()]),
      404,
      /no variant/,
    ],
    [
      "oversize body",
      () =>
        infer(base, "/v2/models/digits/infer", [
          { name: "image", datatype: "FP32", shape: [3000, 1, 28, 28], binary: new Uint8Array(3000 * 784 * 4) },
        ]),
      413,
      /larger than the 8388608 byte limit/,
    ],
    [
      "deadline already past",
      () => infer(base, "/v2/models/digits/infer", [one()], { parameters: { deadline_unix_ms: Date.now() - 1000 } }),
      504,
      /deadline cannot be met/,
    ],
  ];
  for (const [name, send, status, message] of cases) {
    it(`${name} → ${status}`, async () => {
      const r = await send();
      expect(r.status, JSON.stringify(r.json)).toBe(status);
      expect(r.json.error).toMatch(message);
    });
  }
  it("still serves after all of that", async () => {
    const r = await infer(base, "/v2/models/digits/infer", [one()]);
    expect(r.status).toBe(200);
  });
});

describe("deadlines, overload and failures", () => {
  it("refuses at once what the queue would make late (429, when to retry) or what can no longer make it (504), and counts the misses", async () => {
    const big = float32Bytes(image(0, 64));
    const sent = Array.from({ length: 40 }, () =>
      infer(
        base,
        "/v2/models/digits/versions/cnn-large/infer",
        [{ name: "image", datatype: "FP32", shape: [64, 1, 28, 28], binary: big }],
        { parameters: { slo_ms: 25 } },
      ),
    );
    const results = await Promise.all(sent);
    const refused = results.filter((r) => r.status === 429 || r.status === 504);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused)
      if (r.status === 504) expect(r.json.error).toMatch(/deadline cannot be met: waited .* ms/);
      else {
        expect(r.json.error).toMatch(/^overloaded: \d+ rows are queued ahead .* retry in ~\d+ ms/);
        expect(r.json.retry_after_ms).toBeGreaterThan(0);
      }
    expect(results.every((r) => [200, 429, 504].includes(r.status))).toBe(true);
    const text = await (await fetch(`${base}/metrics`)).text();
    // requests pinned to cnn-large are counted under it, even those that never ran
    expect(text).toMatch(
      /sloserve_slo_missed_total\{model="digits",version="cnn-large",reason="(deadline|overloaded)"\} [1-9]/,
    );
    const triton = await (await fetch(server.tritonMetricsUrl)).text();
    expect(triton).toMatch(
      /nv_inference_request_failure\{model="digits",version="cnn-large",reason="REJECTED"\} [1-9]/,
    );
  });

  it("keeps answering when a worker is killed mid-batch, and replaces it", async () => {
    const victim = server.cluster.instances().find((i) => i.variant === "cnn-large")!;
    const pid = server.local!.pidOf(victim.id)!;
    const big = float32Bytes(image(0, 64));
    const sent = Array.from({ length: 30 }, () =>
      infer(
        base,
        "/v2/models/digits/versions/cnn-large/infer",
        [{ name: "image", datatype: "FP32", shape: [64, 1, 28, 28], binary: big }],
        { parameters: { slo_ms: 20_000 } },
      ),
    );
    await new Promise((r) => setTimeout(r, 30));
    process.kill(pid, "SIGKILL");
    const results = await Promise.all(sent);
    for (const r of results) {
      expect([200, 503]).toContain(r.status);
      if (r.status === 503) expect(r.json.error).toMatch(/failed while running this request/);
    }
    const replaced = () =>
      server.cluster
        .instances()
        .some((x) => x.variant === "cnn-large" && x.state === "ready" && server.local!.pidOf(x.id) !== pid);
    for (let i = 0; i < 100 && !replaced(); i++) await new Promise((r) => setTimeout(r, 100));
    expect(replaced()).toBe(true);
    const after = await infer(base, "/v2/models/digits/versions/cnn-large/infer", [
      { name: "image", datatype: "FP32", shape: [1, 1, 28, 28], data: Array.from(image(0)) },
    ]);
    expect(after.status, JSON.stringify(after.json)).toBe(200);
    expect(server.local!.pidOf(server.cluster.instances().find((i) => i.variant === "cnn-large")!.id)).not.toBe(pid);
  });

  it("exposes Triton's metric families, and its own that promtool accepts", async () => {
    const triton = await (await fetch(server.tritonMetricsUrl)).text();
    for (const family of [
      "nv_inference_request_success",
      "nv_inference_request_failure",
      "nv_inference_count",
      "nv_inference_exec_count",
      "nv_inference_pending_request_count",
      "nv_inference_request_duration_us",
      "nv_inference_queue_duration_us",
      "nv_inference_compute_infer_duration_us",
    ]) {
      expect(triton).toMatch(new RegExp(`^${family}\\{[^}]*model="digits"[^}]*\\} [0-9]`, "m"));
    }
    const text = await (await fetch(`${base}/metrics`)).text();
    for (const family of [
      "sloserve_inference_request_success_total",
      "sloserve_inferences_total",
      "sloserve_executions_total",
      "sloserve_request_duration_seconds_total",
      "sloserve_slo_met_total",
      "sloserve_request_latency_seconds_bucket",
      "sloserve_instances",
      "sloserve_cores",
    ]) {
      expect(text).toMatch(new RegExp(`^${family}\\{[^}]*model="digits"`, "m"));
    }
    const promtool = await which("promtool");
    if (!promtool) {
      console.warn(
        "promtool not installed (Debian package 'prometheus'); .ci/run installs it — skipping the lint step here",
      );
      return;
    }
    const file = path.join(os.tmpdir(), `sloserve-metrics-${process.pid}.txt`);
    await fs.writeFile(file, text);
    const { stdout, stderr } = await promisify(execFile)("sh", ["-c", `promtool check metrics < ${file}`]).catch(
      (e) => ({ stdout: e.stdout as string, stderr: `${e.stderr}\nexit ${e.code}` }),
    );
    expect(`${stdout}${stderr}`.trim()).toBe("");
  });
});

describe("repository API", () => {
  it("lists, unloads and reloads a task", async () => {
    const idx = await post(base, "/v2/repository/index", {});
    expect(idx.json).toEqual(
      expect.arrayContaining([
        { name: "digits", state: "READY", reason: "" },
        { name: "mnist-e2e", state: "READY", reason: "" },
      ]),
    );
    expect((await post(base, "/v2/repository/models/vision/unload")).status).toBe(200);
    expect((await get(base, "/v2/models/vision/ready")).status).toBe(503);
    const refused = await infer(base, "/v2/models/vision/infer", [
      { name: "image", datatype: "FP32", shape: [1, 3, 224, 224], binary: new Uint8Array(3 * 224 * 224 * 4) },
    ]);
    expect(refused.status).toBe(503);
    expect(refused.json.error).toMatch(/unloaded/);
    expect((await post(base, "/v2/repository/models/vision/load")).status).toBe(200);
    expect((await get(base, "/v2/models/vision/ready")).status).toBe(200);
    const bad = await post(base, "/v2/repository/models/..%2Fsecret/load");
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/contains/);
  });
});

describe("pipelines", () => {
  it("runs the mnist-e2e pipeline on raw 8-bit digits, starting its first stage on demand", async () => {
    await new Promise((r) => setTimeout(r, 1100)); // let an instance go idle: both cores are taken
    const n = 20;
    const raw = Array.from(image(100, n), (x) => Math.round(x * 255));
    const r = await infer(
      base,
      "/v2/models/mnist-e2e/infer",
      [{ name: "raw", datatype: "UINT8", shape: [n, 28, 28], data: raw }],
      { parameters: { slo_ms: 5000 } },
    );
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    const m = /^mnist-prep:scale,digits:([a-z0-9-]+)$/.exec(r.json.parameters.variant);
    expect(m, r.json.parameters.variant).not.toBeNull();
    // the same classifier run directly on the same 8-bit pixels gives the same answers
    const engine = await Engine.create(await fs.readFile(path.join(MODELS, "digits", m![1]!, "model.onnx")), {
      threads: 1,
    });
    const [direct] = await engine.runBatch([{ rows: n, inputs: { image: Float32Array.from(raw, (x) => x / 255) } }]);
    await engine.close();
    expect(argmaxRows(r.json.outputs[0].data, 10)).toEqual(argmaxRows(direct!.probabilities!.data as Float32Array, 10));
  });
});

async function which(cmd: string): Promise<string | null> {
  try {
    const { stdout } = await promisify(execFile)("sh", ["-c", `command -v ${cmd}`]);
    return stdout.trim() || null;
  } catch {
    return null;
  }
}
