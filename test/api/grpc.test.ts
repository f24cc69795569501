// The gRPC front-end of the real server (startServer on the real zoo) against a client written
// from the KServe v2 / Triton spec: stubs from the .proto files, tensors encoded and decoded
// here, and one request built byte by byte to pin the published field numbers. Value-level
// decoding of every contents type is in grpc-codec.test.ts.
import fs from "node:fs/promises";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GRPC_PROTO_DIR } from "../../src/api/grpc.js";
import { startTestServer } from "../support/server.js";
import type { RunningServer } from "../../src/server/server.js";
import { Engine } from "../../src/engine/engine.js";
import { loadDigits } from "../../src/zoo/digits-data.js";

const MODELS = path.resolve("models");
const TOKEN = "s3cret";
const MAX_MESSAGE = 2 ** 20;
const digits = loadDigits().test;
const image = (i: number, n = 1) => digits.images.subarray(i * 784, (i + n) * 784);
const labels = (i: number, n: number) => Array.from(digits.labels.subarray(i, i + n));
const rawPixels = (i: number, n: number) => Uint8Array.from(image(i, n), (x) => Math.round(x * 255));

let server: RunningServer;
// Stubs and answers are generated from the .proto at run time, so they are untyped here.
type Untyped = any;
let client: Untyped;
let health: Untyped;
const engines = new Map<string, Engine>();

function call(stub: Untyped, method: string, request: object, metadata = new grpc.Metadata()): Promise<Untyped> {
  return new Promise((resolve, reject) =>
    stub[method](request, metadata, (err: grpc.ServiceError | null, res: unknown) =>
      err ? reject(err) : resolve(res),
    ),
  );
}
const failure = (
  stub: Untyped,
  method: string,
  request: object,
  metadata?: grpc.Metadata,
): Promise<grpc.ServiceError> =>
  call(stub, method, request, metadata).then(
    (res) => {
      throw new Error(`expected an error, got ${JSON.stringify(res)}`);
    },
    (err: grpc.ServiceError) => err,
  );

const f32Bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const readF32 = (b: Uint8Array) => new Float32Array(new Uint8Array(b).buffer);
const argmaxRows = (p: Float32Array, width: number) =>
  Array.from({ length: p.length / width }, (_, r) => {
    const row = Array.from(p.subarray(r * width, (r + 1) * width));
    return row.indexOf(Math.max(...row));
  });
const expectClose = (got: Float32Array, want: Float32Array, tol = 1e-5) => {
  expect(got.length).toBe(want.length);
  const worst = got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i]!)), 0);
  expect(worst).toBeLessThanOrEqual(tol);
};

/** The probabilities onnxruntime gives for these images when it runs the variant's model file directly. */
async function direct(variant: string, images: Float32Array): Promise<Float32Array> {
  let engine = engines.get(variant);
  if (!engine) {
    engine = await Engine.create(await fs.readFile(path.join(MODELS, "digits", variant, "model.onnx")), { threads: 1 });
    engines.set(variant, engine);
  }
  const [out] = await engine.runBatch([{ rows: images.length / 784, inputs: { image: images } }]);
  return out!.probabilities!.data as Float32Array;
}

const rawImage = (images: Float32Array) => ({
  inputs: [{ name: "image", datatype: "FP32", shape: [images.length / 784, 1, 28, 28] }],
  raw_input_contents: [f32Bytes(images)],
});
const bearer = (token: string) => {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
};

beforeAll(async () => {
  server = await startTestServer({
    modelsDir: MODELS,
    cores: 2,
    deploy: [
      { task: "digits", variant: "mlp-small", cores: 1 },
      { task: "digits", variant: "cnn-large", cores: 1 },
    ],
    maxBodyBytes: MAX_MESSAGE,
    adminToken: TOKEN,
  });
  const defs = protoLoader.loadSync(["grpc_service.proto", "health.proto"], {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [GRPC_PROTO_DIR],
  });
  const pkg = grpc.loadPackageDefinition(defs) as Untyped;
  const address = `127.0.0.1:${server.grpcPort}`;
  client = new pkg.inference.GRPCInferenceService(address, grpc.credentials.createInsecure());
  health = new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  health?.close();
  await server?.close(2000);
  await Promise.all([...engines.values()].map((e) => e.close()));
});

describe("health and metadata", () => {
  it("answers ServerLive, ServerReady, ServerMetadata and health Check", async () => {
    expect(await call(client, "ServerLive", {})).toEqual({ live: true });
    expect(await call(client, "ServerReady", {})).toEqual({ ready: true });
    const meta = await call(client, "ServerMetadata", {});
    expect(meta.name).toBe("sloserve");
    expect(meta.version).toBe("0.1.0");
    expect(meta.extensions).toEqual(
      expect.arrayContaining(["model_repository", "statistics", "model_configuration", "sloserve_slo"]),
    );
    expect(await call(health, "Check", { service: "" })).toEqual({ status: "SERVING" });
    expect(await call(health, "Check", { service: "inference.GRPCInferenceService" })).toEqual({ status: "SERVING" });
    await expect(call(health, "Check", { service: "nope" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("answers ModelReady for a task, a pinned variant and a pipeline; ready=false for unknown ones, as Triton", async () => {
    expect(await call(client, "ModelReady", { name: "digits" })).toEqual({ ready: true });
    expect(await call(client, "ModelReady", { name: "digits", version: "cnn-large" })).toEqual({ ready: true });
    expect(await call(client, "ModelReady", { name: "mnist-e2e" })).toEqual({ ready: true });
    expect(await call(client, "ModelReady", { name: "nope" })).toEqual({ ready: false });
    expect(await call(client, "ModelReady", { name: "digits", version: "resnet9000" })).toEqual({ ready: false });
  });

  it("describes a task and a pipeline in ModelMetadata, with -1 for the batch dimension", async () => {
    const m = await call(client, "ModelMetadata", { name: "digits" });
    expect(m).toMatchObject({
      name: "digits",
      platform: "onnxruntime_onnx",
      inputs: [{ name: "image", datatype: "FP32", shape: [-1, 1, 28, 28] }],
      outputs: [{ name: "probabilities", datatype: "FP32", shape: [-1, 10] }],
    });
    // the trained variants, and those `sloserve variants generate` derived from them
    expect([...m.versions].filter((v) => !/-(int8|opt)$/.test(v)).sort()).toEqual([
      "cnn-large",
      "cnn-small",
      "linear",
      "mlp-large",
      "mlp-small",
    ]);
    expect((await call(client, "ModelMetadata", { name: "digits", version: "cnn-large" })).versions).toEqual([
      "cnn-large",
    ]);
    expect(await call(client, "ModelMetadata", { name: "mnist-e2e" })).toEqual({
      name: "mnist-e2e",
      versions: ["1"],
      platform: "ensemble",
      inputs: [{ name: "raw", datatype: "UINT8", shape: [-1, 28, 28] }],
      outputs: [{ name: "probabilities", datatype: "FP32", shape: [-1, 10] }],
    });
    await expect(call(client, "ModelMetadata", { name: "nope" })).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
  });

  it("answers Triton's ModelConfig for a task and a pipeline", async () => {
    const { config } = await call(client, "ModelConfig", { name: "digits" });
    expect(config).toMatchObject({
      name: "digits",
      platform: "onnxruntime_onnx",
      backend: "onnxruntime",
      input: [{ name: "image", data_type: "TYPE_FP32", dims: [1, 28, 28] }],
      output: [{ name: "probabilities", data_type: "TYPE_FP32", dims: [10] }],
      scheduling_choice: "dynamic_batching",
      parameters: { slo_ms: { string_value: "50" }, scheduling: { string_value: "edf" } },
    });
    const largest = Math.max(...[...server.repo.tasks.get("digits")!.variants.values()].map((v) => v.config.max_batch));
    expect(config.max_batch_size).toBe(largest);
    expect(config.dynamic_batching.default_queue_policy.max_queue_size).toBe(
      server.repo.tasks.get("digits")!.config.max_queue,
    );
    const { config: pipe } = await call(client, "ModelConfig", { name: "mnist-e2e" });
    expect(pipe).toMatchObject({
      name: "mnist-e2e",
      platform: "ensemble",
      input: [{ name: "raw", data_type: "TYPE_UINT8", dims: [28, 28] }],
      scheduling_choice: "ensemble_scheduling",
      ensemble_scheduling: {
        step: [
          { model_name: "mnist-prep", model_version: -1 },
          { model_name: "digits", model_version: -1 },
        ],
      },
      parameters: { slo_ms: { string_value: "80" } },
    });
    await expect(call(client, "ModelConfig", { name: "nope" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });
});

describe("ModelInfer", () => {
  it("classifies real digits from raw_input_contents on pinned cnn-large, equal to onnxruntime's own run of the model file", async () => {
    const images = image(0, 4);
    const res = await call(client, "ModelInfer", {
      model_name: "digits",
      model_version: "cnn-large",
      id: "req-1",
      ...rawImage(images),
    });
    expect(res.model_name).toBe("digits");
    expect(res.model_version).toBe("cnn-large");
    expect(res.id).toBe("req-1");
    expect(res.outputs).toHaveLength(1);
    expect(res.outputs[0]).toMatchObject({ name: "probabilities", datatype: "FP32", shape: [4, 10] });
    expect(res.raw_output_contents).toHaveLength(1);
    const probs = readF32(res.raw_output_contents[0]);
    expect(argmaxRows(probs, 10)).toEqual(labels(0, 4));
    expectClose(probs, await direct("cnn-large", images));
    expect(res.parameters.variant).toMatchObject({ parameter_choice: "string_param", string_param: "cnn-large" });
  });

  it("gives the same answer from fp32_contents as from raw bytes", async () => {
    const images = image(4, 3);
    const request = (inputs: object) => ({ model_name: "digits", model_version: "cnn-large", ...inputs });
    const fromContents = await call(
      client,
      "ModelInfer",
      request({
        inputs: [
          { name: "image", datatype: "FP32", shape: [3, 1, 28, 28], contents: { fp32_contents: Array.from(images) } },
        ],
      }),
    );
    const fromRaw = await call(client, "ModelInfer", request(rawImage(images)));
    const probs = readF32(fromContents.raw_output_contents[0]);
    expectClose(probs, readF32(fromRaw.raw_output_contents[0]));
    expect(argmaxRows(probs, 10)).toEqual(labels(4, 3));
  });

  it("counts the inference in ModelStatistics", async () => {
    const before = (await call(client, "ModelStatistics", { name: "digits", version: "cnn-large" })).model_stats[0];
    const start = Date.now();
    await call(client, "ModelInfer", { model_name: "digits", model_version: "cnn-large", ...rawImage(image(7, 5)) });
    const stats = await call(client, "ModelStatistics", { name: "digits", version: "cnn-large" });
    expect(stats.model_stats).toHaveLength(1);
    const st = stats.model_stats[0];
    expect(st).toMatchObject({ name: "digits", version: "1" }); // Triton version 1 = the first variant
    expect(st.last_inference).toBeGreaterThanOrEqual(start);
    expect(st.inference_stats.success.count).toBe((before?.inference_stats.success.count ?? 0) + 1);
    expect(st.inference_count).toBe((before?.inference_count ?? 0) + 5);
    expect(st.execution_count).toBeGreaterThanOrEqual(1);
    expect(st.inference_stats.compute_infer.ns).toBeGreaterThan(0);
    expect(st.batch_stats.map((b: Untyped) => b.batch_size)).toContain(5);
    expect((await call(client, "ModelStatistics", {})).model_stats.length).toBeGreaterThanOrEqual(1);
    await expect(call(client, "ModelStatistics", { name: "nope" })).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
  });

  it("takes typed request parameters and answers with typed response parameters", async () => {
    const res = await call(client, "ModelInfer", {
      model_name: "digits",
      parameters: {
        slo_ms: { double_param: 2000.5 },
        min_accuracy: { double_param: 0.98 },
        priority: { int64_param: 2 },
      },
      ...rawImage(image(12, 2)),
    });
    const p = res.parameters;
    // min_accuracy 0.98 leaves only cnn-large (0.988) of the deployed variants
    expect(p.variant).toMatchObject({ parameter_choice: "string_param", string_param: "cnn-large" });
    expect(res.model_version).toBe("cnn-large");
    expect(p.slo_met).toMatchObject({ parameter_choice: "bool_param", bool_param: true });
    for (const k of ["batch_size", "queue_us", "compute_us", "latency_us"])
      expect(p[k], k).toMatchObject({ parameter_choice: "int64_param" });
    expect(p.batch_size.int64_param).toBeGreaterThanOrEqual(2);
    expect(p.compute_us.int64_param).toBeGreaterThan(0);
    expect(argmaxRows(readF32(res.raw_output_contents[0]), 10)).toEqual(labels(12, 2));
    // the values arrive as numbers: the server's own checks quote them back
    const slo = await failure(client, "ModelInfer", {
      model_name: "digits",
      parameters: { slo_ms: { double_param: -2.5 } },
      ...rawImage(image(0)),
    });
    expect(slo).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining("'slo_ms' must be positive, got -2.5"),
    });
    const prio = await failure(client, "ModelInfer", {
      model_name: "digits",
      parameters: { priority: { int64_param: -3 } },
      ...rawImage(image(0)),
    });
    expect(prio).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringMatching(/'priority' must be a non-negative integer.*got -3/),
    });
    const floor = await failure(client, "ModelInfer", {
      model_name: "digits",
      parameters: { min_accuracy: { double_param: 0.9999 } },
      ...rawImage(image(0)),
    });
    expect(floor).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining("no variant of 'digits' reaches min_accuracy 0.9999"),
    });
  });

  it("decodes every typed contents field and raw BYTES/FP16 up to the task's type check", async () => {
    const send = (datatype: string, contents: object | null, raw?: Buffer) =>
      failure(client, "ModelInfer", {
        model_name: "digits",
        inputs: [{ name: "image", datatype, shape: [2], ...(contents ? { contents } : {}) }],
        ...(raw ? { raw_input_contents: [raw] } : {}),
      });
    const item = (s: string) => {
      const b = Buffer.alloc(4 + s.length);
      b.writeUInt32LE(s.length, 0);
      b.write(s, 4);
      return b;
    };
    const cases: [string, object | null, Buffer?][] = [
      ["BOOL", { bool_contents: [true, false] }],
      ["INT8", { int_contents: [-128, 127] }],
      ["INT16", { int_contents: [-32768, 32767] }],
      ["INT32", { int_contents: [-(2 ** 31), 2 ** 31 - 1] }],
      ["INT64", { int64_contents: ["-9007199254740993", "9007199254740993"] }],
      ["UINT16", { uint_contents: [0, 65535] }],
      ["UINT32", { uint_contents: [0, 2 ** 32 - 1] }],
      ["UINT64", { uint64_contents: ["0", "18446744073709551615"] }],
      ["FP64", { fp64_contents: [0.1, -1e300] }],
      ["BYTES", { bytes_contents: [Buffer.from("hi"), Buffer.from("")] }],
      ["BYTES", null, Buffer.concat([item("abc"), item("")])],
      ["FP16", null, Buffer.from([0x00, 0x3c, 0x00, 0xbc])],
    ];
    for (const [datatype, contents, raw] of cases) {
      const err = await send(datatype, contents, raw);
      expect(err.code, `${datatype}: ${err.details}`).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details).toBe(`input 'image' is ${datatype}, but 'digits' takes FP32`);
    }
  });
});

describe("ModelInfer errors", () => {
  it("rejects a raw byte count that does not match the shape, naming the input", async () => {
    const err = await failure(client, "ModelInfer", {
      model_name: "digits",
      inputs: [{ name: "image", datatype: "FP32", shape: [2, 1, 28, 28] }],
      raw_input_contents: [f32Bytes(image(0))],
    });
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toContain("input 'image'");
    expect(err.details).toMatch(/needs 6272 bytes, got 3136/);
  });

  it("rejects raw_input_contents mixed with contents", async () => {
    const err = await failure(client, "ModelInfer", {
      model_name: "digits",
      inputs: [
        { name: "image", datatype: "FP32", shape: [1, 1, 28, 28], contents: { fp32_contents: Array.from(image(0)) } },
      ],
      raw_input_contents: [f32Bytes(image(0))],
    });
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/input 'image' has contents while raw_input_contents is used.*not both/);
  });

  it("rejects a datatype the task does not take, bad shapes and contents with a fix", async () => {
    const bad = (inputs: object[], raw?: Buffer[], model = "digits") =>
      failure(client, "ModelInfer", { model_name: model, inputs, ...(raw ? { raw_input_contents: raw } : {}) });
    const cases: [Promise<grpc.ServiceError>, RegExp][] = [
      [
        bad([
          { name: "image", datatype: "FP64", shape: [1, 1, 28, 28], contents: { fp64_contents: Array.from(image(0)) } },
        ]),
        /input 'image' is FP64, but 'digits' takes FP32/,
      ],
      [
        bad([{ name: "raw", datatype: "FP32", shape: [1, 28, 28] }], [f32Bytes(image(0))], "mnist-prep"),
        /input 'raw' is FP32, but 'mnist-prep' takes UINT8/,
      ],
      [
        bad([{ name: "image", datatype: "FLOAT32", shape: [1] }], [Buffer.alloc(4)]),
        /datatype "FLOAT32" is not one of/,
      ],
      [
        bad([{ name: "image", datatype: "FP32", shape: [1, 784] }], [f32Bytes(image(0))]),
        /has shape \[1,784\], but 'digits' takes \[N,1,28,28\]/,
      ],
      [
        bad([{ name: "image", datatype: "FP32", shape: [2], contents: { int_contents: [1, 2] } }]),
        /fp32_contents, not contents\.int_contents/,
      ],
      [
        bad([{ name: "image", datatype: "FP32", shape: [3], contents: { fp32_contents: [1, 2] } }]),
        /needs 3 elements, contents\.fp32_contents has 2/,
      ],
      [
        bad(
          [
            {
              name: "raw",
              datatype: "UINT8",
              shape: [1, 28, 28],
              contents: { uint_contents: [256, ...new Array(783).fill(0)] },
            },
          ],
          undefined,
          "mnist-prep",
        ),
        /element 0 \(256\) is out of range for UINT8/,
      ],
      [
        bad([{ name: "image", datatype: "FP16", shape: [1], contents: {} }]),
        /FP16 has no typed contents field; send it in raw_input_contents/,
      ],
      [
        bad(
          [
            { name: "image", datatype: "FP32", shape: [1, 1, 28, 28] },
            { name: "extra", datatype: "FP32", shape: [1] },
          ],
          [f32Bytes(image(0))],
        ),
        /1 entries for 2 inputs/,
      ],
      [
        bad(
          [
            { name: "image", datatype: "FP32", shape: [1, 1, 28, 28] },
            { name: "extra", datatype: "FP32", shape: [1] },
          ],
          [f32Bytes(image(0)), Buffer.alloc(4)],
        ),
        /unknown input 'extra'/,
      ],
      [bad([{ name: "pixels", datatype: "FP32", shape: [1] }], [Buffer.alloc(4)]), /missing input 'image'/],
      [
        bad([{ name: "image", datatype: "FP32", shape: [-1, 1, 28, 28] }], [f32Bytes(image(0))]),
        /shape must be an array of non-negative integers/,
      ],
    ];
    for (const [pending, message] of cases) {
      const err = await pending;
      expect(err.code, err.details).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details).toMatch(message);
    }
  });

  it("maps an unknown model to NOT_FOUND", async () => {
    const err = await failure(client, "ModelInfer", { model_name: "faces", ...rawImage(image(0)) });
    expect(err).toMatchObject({
      code: grpc.status.NOT_FOUND,
      details: expect.stringContaining("unknown model 'faces'"),
    });
  });

  it("maps a deadline already past to DEADLINE_EXCEEDED with the server's message", async () => {
    const err = await failure(client, "ModelInfer", {
      model_name: "digits",
      parameters: { deadline_unix_ms: { int64_param: Date.now() - 1000 } },
      ...rawImage(image(0)),
    });
    expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(err.details).toMatch(/deadline cannot be met/);
    expect(err.details).not.toMatch(/\n\s+at /);
  });

  it("refuses a message over the 1 MiB limit with RESOURCE_EXHAUSTED", async () => {
    const rows = Math.ceil(MAX_MESSAGE / 3136) + 1;
    const err = await failure(client, "ModelInfer", {
      model_name: "digits",
      ...rawImage(new Float32Array(rows * 784)),
    });
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it("still serves after all of that", async () => {
    const res = await call(client, "ModelInfer", {
      model_name: "digits",
      model_version: "cnn-large",
      ...rawImage(image(20)),
    });
    expect(argmaxRows(readF32(res.raw_output_contents[0]), 10)).toEqual(labels(20, 1));
  });
});

// ---- wire level: the published field numbers ----

const varint = (n: number): Buffer => {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
};
const lengthDelimited = (field: number, bytes: Buffer) =>
  Buffer.concat([varint((field << 3) | 2), varint(bytes.length), bytes]);
const str = (field: number, s: string) => lengthDelimited(field, Buffer.from(s));
const double = (field: number, v: number) => {
  const b = Buffer.alloc(9);
  b[0] = (field << 3) | 1;
  b.writeDoubleLE(v, 1);
  return b;
};

interface WireField {
  field: number;
  wire: number;
  value: Buffer | number;
}
function readFields(buf: Buffer): WireField[] {
  const fields: WireField[] = [];
  let off = 0;
  const readVarint = () => {
    let n = 0;
    for (let shift = 1; ; shift *= 128) {
      const byte = buf[off++]!;
      n += (byte & 0x7f) * shift;
      if (byte < 0x80) return n;
    }
  };
  while (off < buf.length) {
    const tag = readVarint();
    const wire = tag & 7;
    const field = Math.floor(tag / 8);
    if (wire === 0) fields.push({ field, wire, value: readVarint() });
    else if (wire === 1) {
      fields.push({ field, wire, value: buf.subarray(off, off + 8) });
      off += 8;
    } else if (wire === 5) {
      fields.push({ field, wire, value: buf.subarray(off, off + 4) });
      off += 4;
    } else if (wire === 2) {
      const len = readVarint();
      fields.push({ field, wire, value: buf.subarray(off, off + len) });
      off += len;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  return fields;
}
function unpackVarints(buf: Buffer): number[] {
  const out: number[] = [];
  let n = 0;
  let shift = 1;
  for (const byte of buf) {
    n += (byte & 0x7f) * shift;
    shift *= 128;
    if (byte < 0x80) {
      out.push(n);
      n = 0;
      shift = 1;
    }
  }
  return out;
}
const one = (fields: WireField[], n: number) => fields.filter((f) => f.field === n).map((f) => f.value as Buffer);

describe("wire format", () => {
  it("uses the published field numbers (protobufjs encoding of the .proto)", () => {
    const root = new protobuf.Root().loadSync(path.join(GRPC_PROTO_DIR, "grpc_service.proto"), { keepCase: true });
    const firstByte = (type: string, message: object) => {
      const T = root.lookupType(type);
      return T.encode(T.fromObject(message)).finish()[0];
    };
    const req = "inference.ModelInferRequest";
    expect(firstByte(req, { model_name: "m" })).toBe(0x0a);
    expect(firstByte(req, { model_version: "v" })).toBe(0x12);
    expect(firstByte(req, { id: "i" })).toBe(0x1a);
    expect(firstByte(req, { parameters: { k: { bool_param: true } } })).toBe(0x22);
    expect(firstByte(req, { inputs: [{ name: "x" }] })).toBe(0x2a);
    expect(firstByte(req, { outputs: [{ name: "y" }] })).toBe(0x32);
    expect(firstByte(req, { raw_input_contents: [Buffer.from([1])] })).toBe(0x3a);
    const input = "inference.ModelInferRequest.InferInputTensor";
    expect([
      firstByte(input, { name: "x" }),
      firstByte(input, { datatype: "FP32" }),
      firstByte(input, { shape: [1] }),
      firstByte(input, { parameters: { k: {} } }),
      firstByte(input, { contents: { fp32_contents: [1] } }),
    ]).toEqual([0x0a, 0x12, 0x1a, 0x22, 0x2a]);
    const res = "inference.ModelInferResponse";
    expect([
      firstByte(res, { model_name: "m" }),
      firstByte(res, { model_version: "v" }),
      firstByte(res, { id: "i" }),
      firstByte(res, { parameters: { k: {} } }),
      firstByte(res, { outputs: [{ name: "y" }] }),
      firstByte(res, { raw_output_contents: [Buffer.from([1])] }),
    ]).toEqual([0x0a, 0x12, 0x1a, 0x22, 0x2a, 0x32]);
    const param = "inference.InferParameter";
    expect([
      firstByte(param, { bool_param: true }),
      firstByte(param, { int64_param: 1 }),
      firstByte(param, { string_param: "s" }),
      firstByte(param, { double_param: 1 }),
      firstByte(param, { uint64_param: 1 }),
    ]).toEqual([0x08, 0x10, 0x1a, 0x21, 0x28]);
    const contents = "inference.InferTensorContents";
    const names = ["bool", "int", "int64", "uint", "uint64", "fp32", "fp64", "bytes"];
    // Repeated scalars are packed (wire type 2); field n therefore starts with (n << 3) | 2.
    expect(
      names.map((n) =>
        firstByte(contents, { [`${n}_contents`]: [n === "bool" ? true : n === "bytes" ? Buffer.from([1]) : 1] }),
      ),
    ).toEqual(names.map((_, i) => ((i + 1) << 3) | 2));
  });

  it("serves a ModelInferRequest built byte by byte and answers with the published response fields", async () => {
    const images = image(30, 2);
    const request = Buffer.concat([
      str(1, "digits"),
      str(3, "hand-made"),
      // min_accuracy 0.98 as a double_param (field 4): only cnn-large reaches it
      lengthDelimited(4, Buffer.concat([str(1, "min_accuracy"), lengthDelimited(2, double(4, 0.98))])),
      lengthDelimited(4, Buffer.concat([str(1, "slo_ms"), lengthDelimited(2, double(4, 5000.5))])),
      lengthDelimited(
        5,
        Buffer.concat([str(1, "image"), str(2, "FP32"), lengthDelimited(3, Buffer.concat([2, 1, 28, 28].map(varint)))]),
      ),
      lengthDelimited(7, f32Bytes(images)),
    ]);
    expect(request[0]).toBe(0x0a);
    const raw = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    const identity = (b: Buffer) => b;
    const response = await new Promise<Buffer>((resolve, reject) =>
      raw.makeUnaryRequest("/inference.GRPCInferenceService/ModelInfer", identity, identity, request, (err, res) =>
        err ? reject(err) : resolve(res!),
      ),
    );
    raw.close();

    const top = readFields(response);
    expect(one(top, 1).map(String)).toEqual(["digits"]);
    expect(one(top, 2).map(String)).toEqual(["cnn-large"]);
    expect(one(top, 3).map(String)).toEqual(["hand-made"]);
    const [output] = one(top, 5).map(readFields);
    expect(one(output!, 1).map(String)).toEqual(["probabilities"]);
    expect(one(output!, 2).map(String)).toEqual(["FP32"]);
    expect(unpackVarints(one(output!, 3)[0]!)).toEqual([2, 10]);
    const params = new Map(
      one(top, 4)
        .map(readFields)
        .map((entry) => [String(one(entry, 1)[0]), readFields(one(entry, 2)[0]!)]),
    );
    expect(params.get("variant")).toEqual([{ field: 3, wire: 2, value: Buffer.from("cnn-large") }]);
    expect(params.get("slo_met")).toEqual([{ field: 1, wire: 0, value: 1 }]);
    expect(params.get("batch_size")![0]).toMatchObject({ field: 2, wire: 0 });
    expect(params.get("batch_size")![0]!.value).toBeGreaterThanOrEqual(2);
    const rawOut = one(top, 6);
    expect(rawOut).toHaveLength(1);
    const probs = readF32(rawOut[0]!);
    expect(argmaxRows(probs, 10)).toEqual(labels(30, 2));
    expectClose(probs, await direct("cnn-large", images));
  });
});

describe("repository", () => {
  it("lists the models, and needs the bearer token to load or unload", async () => {
    const all = await call(client, "RepositoryIndex", { ready: false });
    const names = [
      "digits",
      "digits-supernet",
      "mnist-prep",
      "ocr-cls",
      "ocr-det",
      "ocr-rec",
      "vision",
      "vision-supernet",
      "mnist-e2e",
      "ocr",
    ];
    expect(all.models).toEqual(
      expect.arrayContaining(names.map((name) => ({ name, version: "", state: "READY", reason: "" }))),
    );
    expect(all.models).toHaveLength(names.length);
    await expect(call(client, "RepositoryModelUnload", { model_name: "vision" })).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
      details: expect.stringContaining("authorization: Bearer"),
    });
    await expect(call(client, "RepositoryModelLoad", { model_name: "vision" })).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
    });
    await expect(call(client, "RepositoryModelUnload", { model_name: "vision" }, bearer("nope"))).rejects.toMatchObject(
      { code: grpc.status.UNAUTHENTICATED },
    );
    expect(await call(client, "ModelReady", { name: "vision" })).toEqual({ ready: true });

    await call(client, "RepositoryModelUnload", { model_name: "vision" }, bearer(TOKEN));
    expect(await call(client, "ModelReady", { name: "vision" })).toEqual({ ready: false });
    expect((await call(client, "RepositoryIndex", { ready: true })).models.map((m: Untyped) => m.name)).not.toContain(
      "vision",
    );
    expect((await call(client, "RepositoryIndex", { ready: false })).models).toContainEqual({
      name: "vision",
      version: "",
      state: "UNAVAILABLE",
      reason: "unloaded",
    });
    const refused = await failure(client, "ModelInfer", {
      model_name: "vision",
      inputs: [{ name: "image", datatype: "FP32", shape: [1, 3, 224, 224] }],
      raw_input_contents: [Buffer.alloc(3 * 224 * 224 * 4)],
    });
    expect(refused).toMatchObject({ code: grpc.status.UNAVAILABLE, details: expect.stringContaining("unloaded") });

    await call(client, "RepositoryModelLoad", { model_name: "vision" }, bearer(TOKEN));
    expect(await call(client, "ModelReady", { name: "vision" })).toEqual({ ready: true });
    expect(await call(client, "ServerReady", {})).toEqual({ ready: true });
    await expect(
      call(
        client,
        "RepositoryModelLoad",
        { model_name: "vision", parameters: { file: { string_param: "../x" } } },
        bearer(TOKEN),
      ),
    ).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await expect(call(client, "RepositoryModelLoad", { model_name: "../secret" }, bearer(TOKEN))).rejects.toMatchObject(
      { code: grpc.status.INVALID_ARGUMENT },
    );
    await expect(call(client, "RepositoryModelUnload", { model_name: "nope" }, bearer(TOKEN))).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
  });
});

describe("UINT8 via uint_contents", () => {
  // mnist-prep has no instance: the server starts one on demand once a digits instance has been
  // idle for a second (both cores are taken), so the first request waits for that.
  async function inferWhenCapacity(request: object): Promise<Untyped> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call(client, "ModelInfer", request);
      } catch (err) {
        const e = err as grpc.ServiceError;
        if (e.code !== grpc.status.UNAVAILABLE || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  it("scales raw 8-bit digits in mnist-prep and classifies them through the mnist-e2e pipeline", async () => {
    const n = 6;
    const raw = rawPixels(100, n);
    const prep = await inferWhenCapacity({
      model_name: "mnist-prep",
      inputs: [{ name: "raw", datatype: "UINT8", shape: [n, 28, 28], contents: { uint_contents: Array.from(raw) } }],
      parameters: { slo_ms: { double_param: 5000 } },
    });
    expect(prep.model_version).toBe("scale");
    expect(prep.outputs[0]).toMatchObject({ name: "image", datatype: "FP32", shape: [n, 1, 28, 28] });
    expectClose(
      readF32(prep.raw_output_contents[0]),
      Float32Array.from(raw, (x) => x / 255),
      1e-6,
    );

    const e2e = await inferWhenCapacity({
      model_name: "mnist-e2e",
      inputs: [{ name: "raw", datatype: "UINT8", shape: [n, 28, 28], contents: { uint_contents: Array.from(raw) } }],
      parameters: { slo_ms: { double_param: 5000 } },
    });
    expect(e2e.model_name).toBe("mnist-e2e");
    const stages = /^mnist-prep:scale,digits:([a-z0-9-]+)$/.exec(e2e.parameters.variant.string_param);
    expect(stages, e2e.parameters.variant.string_param).not.toBeNull();
    expect(e2e.outputs[0]).toMatchObject({ name: "probabilities", datatype: "FP32", shape: [n, 10] });
    const probs = readF32(e2e.raw_output_contents[0]);
    expectClose(
      probs,
      await direct(
        stages![1]!,
        Float32Array.from(raw, (x) => x / 255),
      ),
    );
    // the same pixels raw give the same answer
    const fromRaw = await inferWhenCapacity({
      model_name: "mnist-e2e",
      inputs: [{ name: "raw", datatype: "UINT8", shape: [n, 28, 28] }],
      raw_input_contents: [Buffer.from(raw)],
      parameters: { slo_ms: { double_param: 5000 } },
    });
    expect(argmaxRows(readF32(fromRaw.raw_output_contents[0]), 10)).toEqual(argmaxRows(probs, 10));
  });
});
