// Value-level decoding of gRPC ModelInferRequests (src/api/grpc.ts inferRequestFromWire): every
// typed contents field, raw BYTES and FP16, parameters, and the decoder's own errors. The zoo's
// models only take FP32 and UINT8, so the other types are checked here as a pure function;
// grpc.test.ts shows the real server gets them decoded up to its datatype check. Requests are
// serialised to protobuf bytes and deserialised the way the server's proto-loader does, so the
// decoder sees exactly what it sees in production.
import * as protoLoader from "@grpc/proto-loader";
import { describe, expect, it } from "vitest";
import { GRPC_PROTO_DIR, inferRequestFromWire } from "../../src/api/grpc.js";
import { ApiError } from "../../src/api/types.js";

// The options src/api/grpc.ts loads its service with (64-bit integers as decimal strings).
const defs = protoLoader.loadSync("grpc_service.proto", {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [GRPC_PROTO_DIR],
});
const modelInfer = (defs["inference.GRPCInferenceService"] as protoLoader.ServiceDefinition).ModelInfer!;
type Wire = Parameters<typeof inferRequestFromWire>[0];

/** The request as the server's handler receives it after the bytes crossed the wire. */
const overTheWire = (request: object): Wire =>
  modelInfer.requestDeserialize(modelInfer.requestSerialize(request)) as Wire;
const decode = (request: object, receivedAt = 1_700_000_000_000) =>
  inferRequestFromWire(overTheWire({ model_name: "m", ...request }), receivedAt);
const input = (name: string, datatype: string, shape: number[], contents?: object) => ({
  name,
  datatype,
  shape,
  ...(contents ? { contents } : {}),
});
const decodeError = (request: object): ApiError => {
  try {
    decode(request);
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error("expected the request to be rejected");
};
const strings = (items: unknown) => (items as Uint8Array[]).map((b) => Buffer.from(b).toString());

describe("typed contents", () => {
  it("decodes every contents field into the right TypedArray, keeping 64-bit values exact", () => {
    const req = decode({
      inputs: [
        input("b", "BOOL", [2], { bool_contents: [true, false] }),
        input("i8", "INT8", [2], { int_contents: [-128, 127] }),
        input("i16", "INT16", [2], { int_contents: [-32768, 32767] }),
        input("i32", "INT32", [2], { int_contents: [-(2 ** 31), 2 ** 31 - 1] }),
        input("i64", "INT64", [2], { int64_contents: ["-9007199254740993", "9223372036854775807"] }),
        input("u8", "UINT8", [2], { uint_contents: [0, 255] }),
        input("u16", "UINT16", [1], { uint_contents: [65535] }),
        input("u32", "UINT32", [1], { uint_contents: [2 ** 32 - 1] }),
        input("u64", "UINT64", [1], { uint64_contents: ["18446744073709551615"] }),
        input("f32", "FP32", [2, 1], { fp32_contents: [0.5, -3.25] }),
        input("f64", "FP64", [1], { fp64_contents: [0.1] }),
        input("s", "BYTES", [2], { bytes_contents: [Buffer.from("hi"), Buffer.from("")] }),
      ],
    });
    const byName = Object.fromEntries(req.inputs.map((t) => [t.name, t]));
    expect(byName.b).toEqual({ name: "b", datatype: "BOOL", shape: [2], data: Uint8Array.from([1, 0]) });
    expect(byName.i8!.data).toEqual(Int8Array.from([-128, 127]));
    expect(byName.i16!.data).toEqual(Int16Array.from([-32768, 32767]));
    expect(byName.i32!.data).toEqual(Int32Array.from([-(2 ** 31), 2 ** 31 - 1]));
    expect(byName.i64!.data).toEqual(BigInt64Array.from([-9007199254740993n, 9223372036854775807n]));
    expect(byName.u8!.data).toEqual(Uint8Array.from([0, 255]));
    expect(byName.u16!.data).toEqual(Uint16Array.from([65535]));
    expect(byName.u32!.data).toEqual(Uint32Array.from([2 ** 32 - 1]));
    expect(byName.u64!.data).toEqual(BigUint64Array.from([18446744073709551615n]));
    expect(byName.f32).toEqual({ name: "f32", datatype: "FP32", shape: [2, 1], data: Float32Array.from([0.5, -3.25]) });
    expect(byName.f64!.data).toEqual(Float64Array.from([0.1]));
    expect(strings(byName.s!.data)).toEqual(["hi", ""]);
  });

  it("rejects values a narrow type cannot hold instead of wrapping them", () => {
    expect(decodeError({ inputs: [input("x", "UINT8", [1], { uint_contents: [256] })] }).message).toMatch(
      /input 'x': element 0 \(256\) is out of range for UINT8/,
    );
    expect(decodeError({ inputs: [input("x", "INT8", [2], { int_contents: [0, 128] })] }).message).toMatch(
      /element 1 \(128\) is out of range for INT8/,
    );
    expect(decodeError({ inputs: [input("x", "INT16", [1], { int_contents: [-32769] })] }).message).toMatch(
      /out of range for INT16/,
    );
    expect(decodeError({ inputs: [input("x", "UINT16", [1], { uint_contents: [65536] })] }).message).toMatch(
      /out of range for UINT16/,
    );
  });

  it("says which contents field a datatype needs, and how many elements", () => {
    const stray = decodeError({ inputs: [input("x", "INT64", [1], { int_contents: [1] })] });
    expect(stray.status).toBe(400);
    expect(stray.message).toBe("input 'x': INT64 data goes in contents.int64_contents, not contents.int_contents");
    expect(decodeError({ inputs: [input("x", "BOOL", [3], { bool_contents: [true] })] }).message).toBe(
      "input 'x': shape [3] needs 3 elements, contents.bool_contents has 1",
    );
    expect(decodeError({ inputs: [input("x", "FP32", [1])] }).message).toMatch(
      /needs 1 elements, contents\.fp32_contents has 0/,
    );
    expect(decodeError({ inputs: [input("h", "FP16", [1], {})] }).message).toMatch(
      /FP16 has no typed contents field; send it in raw_input_contents/,
    );
  });
});

describe("raw_input_contents", () => {
  it("reads raw BYTES (4-byte little-endian length + bytes), FP16 and INT64 little-endian", () => {
    const item = (s: string) => {
      const b = Buffer.alloc(4 + Buffer.byteLength(s));
      b.writeUInt32LE(Buffer.byteLength(s), 0);
      b.write(s, 4);
      return b;
    };
    const i64 = Buffer.alloc(16);
    i64.writeBigInt64LE(-2n, 0);
    i64.writeBigInt64LE(2n ** 62n, 8);
    const req = decode({
      inputs: [input("s", "BYTES", [2]), input("h", "FP16", [2]), input("q", "INT64", [2])],
      raw_input_contents: [Buffer.concat([item("abc"), item("é")]), Buffer.from([0x00, 0x3c, 0x00, 0xc0]), i64],
    });
    const [s, h, q] = req.inputs;
    expect(strings(s!.data)).toEqual(["abc", "é"]);
    expect(h).toEqual({ name: "h", datatype: "FP16", shape: [2], data: Uint16Array.from([0x3c00, 0xc000]) }); // 1.0, -2.0
    expect(q!.data).toEqual(BigInt64Array.from([-2n, 2n ** 62n]));
  });

  it("keeps FP32 bytes bit for bit", () => {
    const values = Float32Array.from([1.5, -0, Number.MIN_VALUE, 3.4e38, Math.PI]);
    const req = decode({ inputs: [input("image", "FP32", [1, 5])], raw_input_contents: [Buffer.from(values.buffer)] });
    expect(req.inputs[0]!.data).toEqual(values);
  });

  it("rejects mismatched byte counts, entry counts and raw mixed with contents", () => {
    expect(
      decodeError({ inputs: [input("image", "FP32", [2, 2])], raw_input_contents: [Buffer.alloc(12)] }).message,
    ).toBe("input 'image': shape [2,2] of FP32 needs 16 bytes, got 12");
    expect(
      decodeError({ inputs: [input("a", "FP32", [1]), input("b", "FP32", [1])], raw_input_contents: [Buffer.alloc(4)] })
        .message,
    ).toMatch(/raw_input_contents has 1 entries for 2 inputs/);
    expect(
      decodeError({ inputs: [input("a", "FP32", [1], { fp32_contents: [1] })], raw_input_contents: [Buffer.alloc(4)] })
        .message,
    ).toMatch(/input 'a' has contents while raw_input_contents is used/);
    expect(
      decodeError({ inputs: [input("s", "BYTES", [1])], raw_input_contents: [Buffer.from([5, 0, 0, 0, 1])] }).message,
    ).toMatch(/BYTES element 0 claims 5 bytes, only 1 remain/);
  });
});

describe("the rest of the request", () => {
  it("passes model, version, id, outputs, typed parameters and the arrival time on", () => {
    const req = decode(
      {
        model_name: "digits",
        model_version: "cnn-large",
        id: "r-7",
        parameters: {
          slo_ms: { double_param: 12.5 },
          strict: { bool_param: true },
          priority: { int64_param: 2 },
          deadline_unix_ms: { int64_param: "1700000000250" },
          tag: { string_param: "a/b" },
          big: { uint64_param: 7 },
          empty: {},
        },
        outputs: [{ name: "probabilities" }],
        inputs: [input("image", "FP32", [1], { fp32_contents: [1] })],
      },
      1_700_000_000_123,
    );
    expect(req).toMatchObject({
      model: "digits",
      version: "cnn-large",
      id: "r-7",
      outputs: [{ name: "probabilities" }],
      receivedAtUnixMs: 1_700_000_000_123,
    });
    expect(req.parameters).toEqual({
      slo_ms: 12.5,
      strict: true,
      priority: 2,
      deadline_unix_ms: 1_700_000_000_250,
      tag: "a/b",
      big: 7,
    });
  });

  it("leaves unset version, id and outputs undefined", () => {
    const req = decode({ inputs: [input("image", "FP32", [1], { fp32_contents: [1] })] });
    expect(req.version).toBeUndefined();
    expect(req.id).toBeUndefined();
    expect(req.outputs).toBeUndefined();
    expect(req.parameters).toEqual({});
  });

  it("rejects a missing model name, unknown datatypes and negative dimensions", () => {
    expect(inferRequestFromWire.bind(null, overTheWire({ inputs: [] }), 0)).toThrow(/model_name is required/);
    expect(decodeError({ inputs: [input("x", "FLOAT32", [1], {})] }).message).toMatch(
      /input 'x': datatype "FLOAT32" is not one of/,
    );
    expect(decodeError({ inputs: [input("x", "FP32", [-1])], raw_input_contents: [Buffer.alloc(4)] }).message).toMatch(
      /input 'x': shape must be an array of non-negative integers/,
    );
  });
});
