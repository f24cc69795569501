// The gRPC front-end against a client written from the KServe v2 / Triton spec: stubs from the
// .proto files, tensors encoded and decoded here, and one request built byte by byte to pin
// the published field numbers. Behind the front-end: the EngineGateway test fixture (real
// onnxruntime inference of the tiny digits model).
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GRPC_PROTO_DIR, startGrpcServer } from "../../src/api/grpc.js";
import { Engine } from "../../src/engine/engine.js";
import { tinyDigitsModel } from "../support/tiny-model.js";
import { EngineGateway } from "./support/engine-gateway.js";

const TOKEN = "s3cret";
const MAX_MESSAGE = 2 ** 20;

let gateway: EngineGateway;
let reference: Engine;
let server: { port: number; close(graceMs?: number): Promise<void> };
// Stubs and answers are generated from the .proto at run time, so they are untyped here.
type Untyped = any;
let client: Untyped;
let health: Untyped;

function call(stub: Untyped, method: string, request: object, metadata = new grpc.Metadata()): Promise<Untyped> {
  return new Promise((resolve, reject) => stub[method](request, metadata, (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res))));
}

function images(rows: number, seed = 1): Float32Array {
  let s = seed;
  return Float32Array.from({ length: rows * 784 }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31));
}

const f32Bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const readF32 = (b: Uint8Array) => new Float32Array(new Uint8Array(b).buffer);

async function expected(image: Float32Array, rows: number): Promise<Float32Array> {
  const [out] = await reference.runBatch([{ rows, inputs: { image } }]);
  return out!.probabilities!.data as Float32Array;
}

beforeAll(async () => {
  gateway = await EngineGateway.create();
  reference = await Engine.create(tinyDigitsModel(), { threads: 1 });
  server = await startGrpcServer(gateway, { host: "127.0.0.1", port: 0, adminToken: TOKEN, maxMessageBytes: MAX_MESSAGE });
  const defs = protoLoader.loadSync(["grpc_service.proto", "health.proto"], { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [GRPC_PROTO_DIR] });
  const pkg = grpc.loadPackageDefinition(defs) as Untyped;
  const address = `127.0.0.1:${server.port}`;
  client = new pkg.inference.GRPCInferenceService(address, grpc.credentials.createInsecure());
  health = new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  health?.close();
  await server?.close(1000);
  await gateway?.close();
  await reference?.close();
});

describe("health and metadata", () => {
  it("answers ServerLive, ServerReady, ServerMetadata and health Check", async () => {
    expect(await call(client, "ServerLive", {})).toEqual({ live: true });
    expect(await call(client, "ServerReady", {})).toEqual({ ready: true });
    const meta = await call(client, "ServerMetadata", {});
    expect(meta.name).toBe("sloserve");
    expect(meta.version).toBe("0.1.0");
    expect(meta.extensions).toContain("sloserve_slo");
    expect(await call(health, "Check", { service: "" })).toEqual({ status: "SERVING" });
    expect(await call(health, "Check", { service: "inference.GRPCInferenceService" })).toEqual({ status: "SERVING" });
    await expect(call(health, "Check", { service: "nope" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("answers ModelReady for a known model and version, NOT_FOUND for unknown ones", async () => {
    expect(await call(client, "ModelReady", { name: "digits" })).toEqual({ ready: true });
    expect(await call(client, "ModelReady", { name: "digits", version: "tiny" })).toEqual({ ready: true });
    await expect(call(client, "ModelReady", { name: "nope" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: expect.stringContaining("nope") });
    await expect(call(client, "ModelReady", { name: "digits", version: "v9" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("describes the model in ModelMetadata, with -1 for the batch dimension", async () => {
    expect(await call(client, "ModelMetadata", { name: "digits" })).toEqual({
      name: "digits",
      versions: ["tiny"],
      platform: "onnxruntime_onnx",
      inputs: [{ name: "image", datatype: "FP32", shape: [-1, 1, 28, 28] }],
      outputs: [{ name: "probabilities", datatype: "FP32", shape: [-1, 10] }],
    });
  });

  it("answers Triton's ModelConfig and ModelStatistics", async () => {
    const { config } = await call(client, "ModelConfig", { name: "digits" });
    expect(config).toMatchObject({
      name: "digits",
      platform: "onnxruntime_onnx",
      backend: "onnxruntime",
      max_batch_size: 16,
      input: [{ name: "image", data_type: "TYPE_FP32", dims: [1, 28, 28] }],
      output: [{ name: "probabilities", data_type: "TYPE_FP32", dims: [10] }],
      scheduling_choice: "dynamic_batching",
      dynamic_batching: { default_queue_policy: { max_queue_size: 64 } },
      parameters: { slo_ms: { string_value: "50" } },
    });
    const stats = await call(client, "ModelStatistics", { name: "digits" });
    expect(stats.model_stats).toHaveLength(1);
    expect(stats.model_stats[0]).toMatchObject({ name: "digits", version: "tiny", last_inference: 1_700_000_000_000, inference_stats: { fail: { count: 0, ns: 0 } } });
    expect(stats.model_stats[0].batch_stats[0]).toMatchObject({ batch_size: 1 });
    await expect(call(client, "ModelStatistics", { name: "nope" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });
});

describe("ModelInfer", () => {
  const image = images(2);

  it("runs raw_input_contents and returns raw_output_contents equal to the engine's own run", async () => {
    const res = await call(client, "ModelInfer", {
      model_name: "digits",
      id: "req-1",
      inputs: [{ name: "image", datatype: "FP32", shape: [2, 1, 28, 28] }],
      raw_input_contents: [f32Bytes(image)],
    });
    expect(res.model_name).toBe("digits");
    expect(res.model_version).toBe("tiny");
    expect(res.id).toBe("req-1");
    expect(res.outputs).toHaveLength(1);
    expect(res.outputs[0]).toMatchObject({ name: "probabilities", datatype: "FP32", shape: [2, 10] });
    expect(res.raw_output_contents).toHaveLength(1);
    expect(Array.from(readF32(res.raw_output_contents[0]))).toEqual(Array.from(await expected(image, 2)));
  });

  it("gives the same answer from fp32_contents as from raw bytes", async () => {
    const res = await call(client, "ModelInfer", {
      model_name: "digits",
      model_version: "tiny",
      inputs: [{ name: "image", datatype: "FP32", shape: [2, 1, 28, 28], contents: { fp32_contents: Array.from(image) } }],
    });
    expect(Array.from(readF32(res.raw_output_contents[0]))).toEqual(Array.from(await expected(image, 2)));
    const input = gateway.lastRequest!.inputs[0]!;
    expect(input.data).toBeInstanceOf(Float32Array);
    expect(gateway.lastRequest!.version).toBe("tiny");
  });

  it("passes request parameters through and returns the gateway's response parameters typed", async () => {
    const before = Date.now();
    const res = await call(client, "ModelInfer", {
      model_name: "digits",
      parameters: {
        slo_ms: { double_param: 12.5 },
        strict: { bool_param: true },
        priority: { int64_param: 2 },
        tag: { string_param: "a/b" },
        big: { uint64_param: 7 },
      },
      inputs: [{ name: "image", datatype: "FP32", shape: [1, 1, 28, 28] }],
      raw_input_contents: [f32Bytes(images(1))],
    });
    const seen = gateway.lastRequest!;
    expect(seen.parameters).toEqual({ slo_ms: 12.5, strict: true, priority: 2, tag: "a/b", big: 7 });
    expect(seen.receivedAtUnixMs).toBeGreaterThanOrEqual(before);
    expect(seen.receivedAtUnixMs).toBeLessThanOrEqual(Date.now());
    const p = res.parameters;
    expect(p.slo_ms).toMatchObject({ parameter_choice: "double_param", double_param: 12.5 });
    expect(p.slo_met).toMatchObject({ parameter_choice: "bool_param" });
    expect(p.batch_size).toMatchObject({ parameter_choice: "int64_param", int64_param: 1 });
    expect(p.variant).toMatchObject({ parameter_choice: "string_param", string_param: "tiny" });
  });

  it("decodes every typed contents field into the right TypedArray", async () => {
    const input = (name: string, datatype: string, shape: number[], contents: object) => ({ name, datatype, shape, contents });
    // The fixture model rejects these inputs, but it records what the front-end decoded first.
    await expect(call(client, "ModelInfer", {
      model_name: "digits",
      inputs: [
        input("b", "BOOL", [2], { bool_contents: [true, false] }),
        input("i8", "INT8", [2], { int_contents: [-128, 127] }),
        input("u16", "UINT16", [1], { uint_contents: [65535] }),
        input("i64", "INT64", [1], { int64_contents: ["-9007199254740993"] }),
        input("u64", "UINT64", [1], { uint64_contents: ["18446744073709551615"] }),
        input("f64", "FP64", [1], { fp64_contents: [0.1] }),
        input("s", "BYTES", [2], { bytes_contents: [Buffer.from("hi"), Buffer.from("")] }),
      ],
    })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    const [b, i8, u16, i64, u64, f64, s] = gateway.lastRequest!.inputs;
    expect(b!.data).toEqual(Uint8Array.from([1, 0]));
    expect(i8!.data).toEqual(Int8Array.from([-128, 127]));
    expect(u16!.data).toEqual(Uint16Array.from([65535]));
    expect(i64!.data).toEqual(BigInt64Array.from([-9007199254740993n]));
    expect(u64!.data).toEqual(BigUint64Array.from([18446744073709551615n]));
    expect(f64!.data).toEqual(Float64Array.from([0.1]));
    expect((s!.data as Uint8Array[]).map((x) => Buffer.from(x).toString())).toEqual(["hi", ""]);
  });

  it("decodes raw BYTES (4-byte little-endian length + bytes) and FP16", async () => {
    const item = (s: string) => { const b = Buffer.alloc(4 + s.length); b.writeUInt32LE(s.length, 0); b.write(s, 4); return b; };
    await expect(call(client, "ModelInfer", {
      model_name: "digits",
      inputs: [{ name: "s", datatype: "BYTES", shape: [2] }, { name: "h", datatype: "FP16", shape: [1] }],
      raw_input_contents: [Buffer.concat([item("abc"), item("")]), Buffer.from([0x00, 0x3c])],
    })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    const [s, h] = gateway.lastRequest!.inputs;
    expect((s!.data as Uint8Array[]).map((x) => Buffer.from(x).toString())).toEqual(["abc", ""]);
    expect(h!.data).toEqual(Uint16Array.from([0x3c00]));
  });
});

describe("ModelInfer errors", () => {
  const rawImage = (rows: number) => ({ inputs: [{ name: "image", datatype: "FP32", shape: [rows, 1, 28, 28] }], raw_input_contents: [f32Bytes(images(rows))] });

  it("rejects a raw byte count that does not match the shape, naming the input", async () => {
    const err = await call(client, "ModelInfer", { model_name: "digits", inputs: [{ name: "image", datatype: "FP32", shape: [2, 1, 28, 28] }], raw_input_contents: [f32Bytes(images(1))] }).catch((e) => e);
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toContain("'image'");
    expect(err.details).toContain("6272");
  });

  it("rejects raw_input_contents mixed with contents", async () => {
    const err = await call(client, "ModelInfer", {
      model_name: "digits",
      inputs: [{ name: "image", datatype: "FP32", shape: [1, 1, 28, 28], contents: { fp32_contents: Array.from(images(1)) } }],
      raw_input_contents: [f32Bytes(images(1))],
    }).catch((e) => e);
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/not both/);
  });

  it("rejects unknown datatypes, wrong contents fields, counts and out-of-range values with a fix", async () => {
    const bad = async (inputs: object[], raw?: Buffer[]) => call(client, "ModelInfer", { model_name: "digits", inputs, ...(raw ? { raw_input_contents: raw } : {}) }).catch((e) => e);
    let err = await bad([{ name: "image", datatype: "FLOAT32", shape: [1] }], [Buffer.alloc(4)]);
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/FLOAT32.*FP32/);
    err = await bad([{ name: "image", datatype: "FP32", shape: [2], contents: { int_contents: [1, 2] } }]);
    expect(err.details).toMatch(/fp32_contents, not contents\.int_contents/);
    err = await bad([{ name: "image", datatype: "FP32", shape: [3], contents: { fp32_contents: [1, 2] } }]);
    expect(err.details).toMatch(/needs 3 elements.*has 2/);
    err = await bad([{ name: "x", datatype: "UINT8", shape: [1], contents: { uint_contents: [256] } }]);
    expect(err.details).toMatch(/out of range for UINT8/);
    err = await bad([{ name: "x", datatype: "FP16", shape: [1], contents: {} }]);
    expect(err.details).toMatch(/raw_input_contents/);
    err = await bad([{ name: "a", datatype: "FP32", shape: [1] }, { name: "b", datatype: "FP32", shape: [1] }], [Buffer.alloc(4)]);
    expect(err.details).toMatch(/1 entries for 2 inputs/);
    err = await bad([{ name: "image", datatype: "FP32", shape: [-1, 1, 28, 28] }], [Buffer.alloc(4)]);
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it("maps an unknown model to NOT_FOUND", async () => {
    await expect(call(client, "ModelInfer", { model_name: "nope", ...rawImage(1) })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: expect.stringContaining("'nope'") });
  });

  it("maps the gateway's 504 (deadline passed) to DEADLINE_EXCEEDED with its message", async () => {
    const err = await call(client, "ModelInfer", { model_name: "digits", parameters: { deadline_unix_ms: { int64_param: Date.now() - 1000 } }, ...rawImage(1) }).catch((e) => e);
    expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(err.details).toMatch(/deadline .* passed/);
    expect(err.details).not.toMatch(/\n\s+at /);
  });

  it("refuses a message over the size limit with RESOURCE_EXHAUSTED", async () => {
    const rows = Math.ceil(MAX_MESSAGE / 3136) + 1;
    await expect(call(client, "ModelInfer", { model_name: "digits", ...rawImage(rows) })).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
  });
});

describe("repository", () => {
  it("lists models, and needs the bearer token to load or unload", async () => {
    expect(await call(client, "RepositoryIndex", { ready: true })).toEqual({ models: [{ name: "digits", version: "tiny", state: "READY", reason: "" }] });
    await expect(call(client, "RepositoryModelLoad", { model_name: "digits" })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    const wrong = new grpc.Metadata();
    wrong.set("authorization", "Bearer nope");
    await expect(call(client, "RepositoryModelUnload", { model_name: "digits" }, wrong)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    expect(gateway.loads).toEqual([]);

    const ok = new grpc.Metadata();
    ok.set("authorization", `Bearer ${TOKEN}`);
    await call(client, "RepositoryModelUnload", { model_name: "digits" }, ok);
    expect(await call(client, "ServerReady", {})).toEqual({ ready: false });
    expect(await call(client, "ModelReady", { name: "digits" })).toEqual({ ready: false });
    expect(await call(health, "Check", {})).toEqual({ status: "NOT_SERVING" });
    await expect(call(client, "ModelInfer", { model_name: "digits", inputs: [{ name: "image", datatype: "FP32", shape: [1, 1, 28, 28] }], raw_input_contents: [f32Bytes(images(1))] }))
      .rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await call(client, "RepositoryModelLoad", { model_name: "digits" }, ok);
    expect(gateway.loads).toEqual(["digits"]);
    expect(await call(client, "ServerReady", {})).toEqual({ ready: true });
    await expect(call(client, "RepositoryModelLoad", { model_name: "digits", parameters: { file: { string_param: "../x" } } }, ok)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
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
const lengthDelimited = (field: number, bytes: Buffer) => Buffer.concat([varint((field << 3) | 2), varint(bytes.length), bytes]);
const str = (field: number, s: string) => lengthDelimited(field, Buffer.from(s));
const double = (field: number, v: number) => { const b = Buffer.alloc(9); b[0] = (field << 3) | 1; b.writeDoubleLE(v, 1); return b; };

interface WireField { field: number; wire: number; value: Buffer | number }
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
    else if (wire === 1) { fields.push({ field, wire, value: buf.subarray(off, off + 8) }); off += 8; }
    else if (wire === 5) { fields.push({ field, wire, value: buf.subarray(off, off + 4) }); off += 4; }
    else if (wire === 2) { const len = readVarint(); fields.push({ field, wire, value: buf.subarray(off, off + len) }); off += len; }
    else throw new Error(`unexpected wire type ${wire}`);
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
    expect([firstByte(input, { name: "x" }), firstByte(input, { datatype: "FP32" }), firstByte(input, { shape: [1] }), firstByte(input, { parameters: { k: {} } }), firstByte(input, { contents: { fp32_contents: [1] } })])
      .toEqual([0x0a, 0x12, 0x1a, 0x22, 0x2a]);
    const res = "inference.ModelInferResponse";
    expect([firstByte(res, { model_name: "m" }), firstByte(res, { model_version: "v" }), firstByte(res, { id: "i" }), firstByte(res, { parameters: { k: {} } }), firstByte(res, { outputs: [{ name: "y" }] }), firstByte(res, { raw_output_contents: [Buffer.from([1])] })])
      .toEqual([0x0a, 0x12, 0x1a, 0x22, 0x2a, 0x32]);
    const param = "inference.InferParameter";
    expect([firstByte(param, { bool_param: true }), firstByte(param, { int64_param: 1 }), firstByte(param, { string_param: "s" }), firstByte(param, { double_param: 1 }), firstByte(param, { uint64_param: 1 })])
      .toEqual([0x08, 0x10, 0x1a, 0x21, 0x28]);
    const contents = "inference.InferTensorContents";
    const names = ["bool", "int", "int64", "uint", "uint64", "fp32", "fp64", "bytes"];
    // Repeated scalars are packed (wire type 2); field n therefore starts with (n << 3) | 2.
    expect(names.map((n) => firstByte(contents, { [`${n}_contents`]: [n === "bool" ? true : n === "bytes" ? Buffer.from([1]) : 1] })))
      .toEqual(names.map((_, i) => ((i + 1) << 3) | 2));
  });

  it("serves a ModelInferRequest built byte by byte and answers with the published response fields", async () => {
    const image = images(1, 42);
    const request = Buffer.concat([
      str(1, "digits"),
      str(3, "hand-made"),
      lengthDelimited(4, Buffer.concat([str(1, "slo_ms"), lengthDelimited(2, double(4, 250.5))])),
      lengthDelimited(5, Buffer.concat([str(1, "image"), str(2, "FP32"), lengthDelimited(3, Buffer.concat([1, 1, 28, 28].map(varint)))])),
      lengthDelimited(7, f32Bytes(image)),
    ]);
    expect(request[0]).toBe(0x0a);
    const raw = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const identity = (b: Buffer) => b;
    const response = await new Promise<Buffer>((resolve, reject) =>
      raw.makeUnaryRequest("/inference.GRPCInferenceService/ModelInfer", identity, identity, request, (err, res) => (err ? reject(err) : resolve(res!))),
    );
    raw.close();
    expect(gateway.lastRequest!.parameters).toEqual({ slo_ms: 250.5 });

    const top = readFields(response);
    expect(one(top, 1).map(String)).toEqual(["digits"]);
    expect(one(top, 3).map(String)).toEqual(["hand-made"]);
    const [output] = one(top, 5).map(readFields);
    expect(one(output!, 1).map(String)).toEqual(["probabilities"]);
    expect(one(output!, 2).map(String)).toEqual(["FP32"]);
    expect(unpackVarints(one(output!, 3)[0]!)).toEqual([1, 10]);
    const params = new Map(one(top, 4).map(readFields).map((entry) => [String(one(entry, 1)[0]), readFields(one(entry, 2)[0]!)]));
    const slo = params.get("slo_ms")!;
    expect(slo).toHaveLength(1);
    expect(slo[0]).toMatchObject({ field: 4, wire: 1 });
    expect((slo[0]!.value as Buffer).readDoubleLE(0)).toBe(250.5);
    expect(params.get("slo_met")![0]).toMatchObject({ field: 1, wire: 0, value: 1 });
    const rawOut = one(top, 6);
    expect(rawOut).toHaveLength(1);
    expect(Array.from(readF32(rawOut[0]!))).toEqual(Array.from(await expected(image, 1)));
  });
});
