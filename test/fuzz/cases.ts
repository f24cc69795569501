// The fuzz suite's cases: malformed, hostile and borderline requests over REST JSON, the binary tensor
// extension, raw HTTP and gRPC, generated from a valid digits request by structured mutation (seeded, so a
// failure names a case that repeats). Each case says how to send itself; what must hold of every answer is
// the suite's business (fuzz.test.ts).
import net from "node:net";
import { OIP_DATATYPES } from "../../src/repository/datatypes.js";
import { Mulberry32 } from "../../src/stats/random.js";

export interface Answer {
  status: number;
  body: string;
}

export interface FuzzCase {
  name: string;
  kind: "rest-json" | "rest-binary" | "raw-http" | "grpc";
  send(target: Target): Promise<Answer>;
}

export interface Target {
  httpUrl: string;
  host: string;
  port: number;
  grpc: (method: string, request: object) => Promise<Answer>;
}

const IMAGE = Array.from({ length: 784 }, (_, i) => (i % 7) / 7);
const DIGITS = "/v2/models/digits/infer";

function validBody(): Record<string, unknown> {
  return { inputs: [{ name: "image", datatype: "FP32", shape: [1, 1, 28, 28], data: [...IMAGE] }] };
}

async function post(target: Target, path: string, body: string | Uint8Array, headers: Record<string, string>) {
  const res = await fetch(`${target.httpUrl}${path}`, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : Buffer.from(body),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: await res.text() };
}

function json(name: string, body: unknown, path = DIGITS): FuzzCase {
  return {
    name,
    kind: "rest-json",
    send: (t) =>
      post(t, path, typeof body === "string" ? body : JSON.stringify(body), { "content-type": "application/json" }),
  };
}

/** A valid request with one part replaced. */
function mutated(name: string, mutate: (b: Record<string, unknown>) => void, path?: string): FuzzCase {
  const b = validBody();
  mutate(b);
  return json(name, b, path);
}

const input = (b: Record<string, unknown>) => (b.inputs as Record<string, unknown>[])[0]!;

const ODD_VALUES: [string, unknown][] = [
  ["null", null],
  ["true", true],
  ["zero", 0],
  ["negative", -1],
  ["huge", 1e308],
  ["string", "x"],
  ["empty-string", ""],
  ["array", []],
  ["object", {}],
  ["nested-array", [[1], [2]]],
];

function restJsonCases(): FuzzCase[] {
  const out: FuzzCase[] = [];
  // the body as a whole
  for (const [n, v] of ODD_VALUES) out.push(json(`body is ${n}`, v));
  for (const [n, text] of [
    ["empty body", ""],
    ["truncated JSON", JSON.stringify(validBody()).slice(0, 200)],
    ["garbage", "\u0000\u0001garbage{{{"],
    ["BOM then JSON", "\ufeff" + JSON.stringify(validBody())],
    ["trailing comma", '{"inputs":[],}'],
    ["duplicate keys", '{"inputs":[],"inputs":5}'],
    ["nan literal", '{"inputs":[{"name":"image","datatype":"FP32","shape":[1,1,28,28],"data":[NaN]}]}'],
    ["number literal with 10^4 digits", `{"id":${"9".repeat(10_000)},"inputs":[]}`],
    ["deep nesting 10^4", `{"inputs":${"[".repeat(10_000)}${"]".repeat(10_000)}}`],
    [
      "deep nesting 10^5 in data",
      `{"inputs":[{"name":"image","datatype":"FP32","shape":[1],"data":${"[".repeat(100_000)}1${"]".repeat(100_000)}}]}`,
    ],
  ] as const)
    out.push(json(text.length > 60 ? n : n, text));
  // top-level fields
  for (const field of ["inputs", "outputs", "parameters", "id"])
    for (const [n, v] of ODD_VALUES) out.push(mutated(`${field} is ${n}`, (b) => (b[field] = v)));
  out.push(mutated("inputs missing", (b) => delete b.inputs));
  out.push(mutated("unknown top-level field", (b) => (b.surprise = 1)));
  // input fields
  for (const field of ["name", "datatype", "shape", "data", "parameters"])
    for (const [n, v] of ODD_VALUES) out.push(mutated(`input ${field} is ${n}`, (b) => (input(b)[field] = v)));
  for (const field of ["name", "datatype", "shape", "data"])
    out.push(mutated(`input ${field} missing`, (b) => delete input(b)[field]));
  // datatypes
  for (const dt of [...OIP_DATATYPES, "fp32", "FLOAT", "STRING", "BF16"])
    out.push(mutated(`datatype ${dt}`, (b) => (input(b).datatype = dt)));
  for (const dt of ["UINT8", "INT64", "BOOL", "BYTES", "FP64", "INT8"])
    out.push(
      mutated(`datatype ${dt} with string data`, (b) =>
        Object.assign(input(b), { datatype: dt, data: IMAGE.map(String) }),
      ),
    );
  // shapes
  for (const shape of [
    [],
    [1],
    [784],
    [1, 784],
    [1, 1, 28],
    [1, 1, 28, 28, 1],
    [0, 1, 28, 28],
    [-1, 1, 28, 28],
    [2, 1, 28, 28],
    [1e9, 1, 28, 28],
    [1.5, 1, 28, 28],
    [1, 1, 28, -28],
    [2 ** 53, 1, 28, 28],
    ["1", 1, 28, 28],
    [null, 1, 28, 28],
  ])
    out.push(mutated(`shape ${JSON.stringify(shape)}`, (b) => (input(b).shape = shape)));
  // data values
  const nested = [[IMAGE.slice(0, 392), IMAGE.slice(392)]];
  for (const [n, data] of [
    ["too few values", IMAGE.slice(0, 100)],
    ["too many values", [...IMAGE, ...IMAGE]],
    ["nested in the shape", [[nested]]],
    ["ragged nesting", [[IMAGE.slice(0, 500)], [IMAGE.slice(0, 284)]]],
    ["strings", IMAGE.map(String)],
    ["booleans", IMAGE.map((x) => x > 0.5)],
    ["nulls", IMAGE.map(() => null)],
    ["objects", IMAGE.map(() => ({}))],
    ["1e39 overflows FP32", IMAGE.map(() => 1e39)],
    ["-1e39 overflows FP32", IMAGE.map(() => -1e39)],
    ["one string among numbers", [...IMAGE.slice(0, 783), "0.5"]],
    ["one array among numbers", [...IMAGE.slice(0, 783), [0.5]]],
  ] as const)
    out.push(mutated(`data: ${n}`, (b) => (input(b).data = data)));
  // two inputs, duplicates, unknown names
  out.push(mutated("the same input twice", (b) => (b.inputs = [input(b), input(b)])));
  out.push(mutated("an unknown input besides", (b) => (b.inputs = [input(b), { ...input(b), name: "other" }])));
  out.push(mutated("an unknown input name", (b) => (input(b).name = "picture")));
  out.push(mutated("no inputs", (b) => (b.inputs = [])));
  out.push(
    mutated(
      "10^4 inputs",
      (b) => (b.inputs = Array.from({ length: 10_000 }, (_, i) => ({ ...input(b), name: `x${i}`, data: [0] }))),
    ),
  );
  // parameters
  for (const p of [
    "slo_ms",
    "min_accuracy",
    "priority",
    "timeout",
    "deadline_unix_ms",
    "sent_at_unix_ms",
    "binary_data_output",
  ])
    for (const [n, v] of [
      ...ODD_VALUES,
      ["NaN string", "NaN"],
      ["tiny", 1e-300],
      ["fraction", 0.5],
      ["above one", 2],
    ] as [string, unknown][])
      out.push(mutated(`parameter ${p} is ${n}`, (b) => (b.parameters = { [p]: v })));
  // outputs
  for (const [n, outputs] of [
    ["unknown output", [{ name: "nope" }]],
    ["output without a name", [{}]],
    ["output name a number", [{ name: 1 }]],
    ["the output 10^5 times", Array.from({ length: 100_000 }, () => ({ name: "probabilities" }))],
    ["binary_data a string", [{ name: "probabilities", parameters: { binary_data: "yes" } }]],
    ["class_count 0", [{ name: "probabilities", parameters: { classification: 0 } }]],
    ["class_count -1", [{ name: "probabilities", parameters: { classification: -1 } }]],
    ["class_count 10^6", [{ name: "probabilities", parameters: { classification: 1e6 } }]],
    ["class_count a string", [{ name: "probabilities", parameters: { classification: "3" } }]],
  ] as const)
    out.push(mutated(`outputs: ${n}`, (b) => (b.outputs = outputs)));
  // paths
  for (const [n, path] of [
    ["unknown model", "/v2/models/nope/infer"],
    ["unknown version", "/v2/models/digits/versions/nope/infer"],
    ["numeric version out of range", "/v2/models/digits/versions/99999/infer"],
    ["a 5 KB model name", `/v2/models/${"a".repeat(5000)}/infer`],
    ["a 60 KB model name", `/v2/models/${"a".repeat(60_000)}/infer`],
    ["path traversal", "/v2/models/..%2F..%2Fetc/infer"],
    ["unicode model name", "/v2/models/%F0%9F%98%80/infer"],
    ["a NUL in the name", "/v2/models/dig%00its/infer"],
    ["pipeline with a version", "/v2/models/mnist-e2e/versions/2/infer"],
    ["trailing slash", "/v2/models/digits/infer/"],
  ] as const)
    out.push(mutated(`path: ${n}`, () => undefined, path));
  // the UINT8 input of mnist-prep: values out of range
  for (const v of [256, -1, 3.5, 1e10, "7", null])
    out.push(
      json(
        `UINT8 value ${JSON.stringify(v)}`,
        { inputs: [{ name: "raw", datatype: "UINT8", shape: [1, 28, 28], data: [...new Array(783).fill(0), v] }] },
        "/v2/models/mnist-prep/infer",
      ),
    );
  return out;
}

function binary(name: string, header: unknown, payload: Uint8Array, headerLength?: string): FuzzCase {
  return {
    name,
    kind: "rest-binary",
    send: (t) => {
      const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
      return post(t, DIGITS, Buffer.concat([json, payload]), {
        "content-type": "application/octet-stream",
        "inference-header-content-length": headerLength ?? String(json.byteLength),
      });
    },
  };
}

function restBinaryCases(): FuzzCase[] {
  const good = new Uint8Array(new Float32Array(IMAGE).buffer);
  const header = (size: unknown, extra: Record<string, unknown> = {}) => ({
    inputs: [
      { name: "image", datatype: "FP32", shape: [1, 1, 28, 28], parameters: { binary_data_size: size }, ...extra },
    ],
  });
  const out: FuzzCase[] = [];
  for (const [n, len] of [
    ["header length 0", "0"],
    ["header length negative", "-5"],
    ["header length not a number", "abc"],
    ["header length beyond the body", "999999"],
    ["header length a fraction", "10.5"],
    ["header length 2^53", String(2 ** 53)],
    ["header length with spaces", " 12 "],
  ] as const)
    out.push(binary(n, header(good.byteLength), good, len));
  for (const [n, size] of [
    ["binary_data_size too small", 100],
    ["binary_data_size too large", good.byteLength * 2],
    ["binary_data_size negative", -4],
    ["binary_data_size a string", "3136"],
    ["binary_data_size a fraction", 3135.5],
    ["binary_data_size zero", 0],
    ["binary_data_size not a multiple of 4", 3133],
  ] as const)
    out.push(binary(n, header(size), good));
  out.push(binary("binary and data both", header(good.byteLength, { data: [...IMAGE] }), good));
  out.push(binary("payload shorter than declared", header(good.byteLength), good.subarray(0, 1000)));
  out.push(binary("payload longer than declared", header(good.byteLength), Buffer.concat([good, good])));
  out.push(
    binary("FP16 declared, FP32 sent", { inputs: [{ ...header(good.byteLength).inputs[0], datatype: "FP16" }] }, good),
  );
  out.push(
    binary(
      "BYTES with a broken length prefix",
      { inputs: [{ ...header(8).inputs[0], datatype: "BYTES" }] },
      new Uint8Array([255, 255, 255, 127, 1, 2, 3, 4]),
    ),
  );
  out.push(binary("header is not JSON", "not json at all", good));
  out.push(binary("header is a JSON number", "12345", good));
  out.push(binary("header is half of the JSON", JSON.stringify(header(good.byteLength)).slice(0, 30), good));
  out.push(
    binary(
      "two binary inputs for one",
      { inputs: [header(3136).inputs[0], { ...header(3136).inputs[0], name: "x" }] },
      Buffer.concat([good, good]),
    ),
  );
  out.push(
    binary(
      "binary_data_output on an unknown output",
      { ...header(good.byteLength), outputs: [{ name: "nope", parameters: { binary_data: true } }] },
      good,
    ),
  );
  return out;
}

/** Sends raw bytes on a fresh connection; the answer is the status line's code (0 when none came). */
function raw(name: string, bytes: string | Buffer, waitMs = 3000): FuzzCase {
  return {
    name,
    kind: "raw-http",
    send: (t) =>
      new Promise<Answer>((resolve) => {
        const socket = net.connect({ host: t.host, port: t.port });
        let got = "";
        const done = () => {
          clearTimeout(timer);
          socket.destroy();
          const m = /^HTTP\/1\.[01] (\d{3})/.exec(got);
          resolve({ status: m ? Number(m[1]) : 0, body: got.slice(got.indexOf("\r\n\r\n") + 4) });
        };
        const timer = setTimeout(done, waitMs);
        socket.on("data", (d) => {
          got += d.toString("latin1");
          if (got.includes("\r\n\r\n") && /\r\n\r\n[\s\S]*\}/.test(got)) done();
        });
        socket.on("close", done);
        socket.on("error", done);
        socket.write(bytes);
      }),
  };
}

function rawHttpCases(): FuzzCase[] {
  const body = JSON.stringify(validBody());
  const req = (head: string, b = body) => `${head}\r\n\r\n${b}`;
  return [
    raw("not HTTP at all", "hello there\r\n\r\n"),
    raw("HTTP/0.9 request line", "GET /v2\r\n\r\n"),
    raw("unknown method", req(`BREW ${DIGITS} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}`)),
    raw("GET on infer", req(`GET ${DIGITS} HTTP/1.1\r\nHost: x`, "")),
    raw(
      "content-length larger than the body",
      req(
        `POST ${DIGITS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length + 50}`,
      ),
    ),
    raw(
      "content-length not a number",
      req(`POST ${DIGITS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ten`),
    ),
    raw(
      "two content-lengths",
      req(
        `POST ${DIGITS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nContent-Length: 3`,
      ),
    ),
    raw(
      "chunked garbage",
      `POST ${DIGITS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nnope\r\n0\r\n\r\n`,
    ),
    raw(
      "chunked and content-length",
      req(
        `POST ${DIGITS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 5`,
      ),
    ),
    raw(
      "a 100 KB header",
      req(
        `POST ${DIGITS} HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(100_000)}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}`,
      ),
    ),
    raw(
      "10^4 headers",
      req(
        `POST ${DIGITS} HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 10_000 }, (_, i) => `X-${i}: 1`).join("\r\n")}\r\nContent-Length: ${body.length}`,
      ),
    ),
    raw(
      "NUL in the path",
      req(
        `POST /v2/models/dig\u0000its/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}`,
      ),
    ),
    raw(
      "absolute-form URL",
      req(
        `POST http://evil.example${DIGITS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}`,
      ),
    ),
    raw("a 20 KB URL", req(`GET /v2/models/${"x".repeat(20_000)} HTTP/1.1\r\nHost: x`, "")),
    raw(
      "text/plain content type",
      req(`POST ${DIGITS} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}`),
    ),
    raw(
      "gzip declared, not gzip",
      req(
        `POST ${DIGITS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${body.length}`,
      ),
    ),
    raw(
      "unknown content encoding",
      req(
        `POST ${DIGITS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: br-fancy\r\nContent-Length: ${body.length}`,
      ),
    ),
    raw(
      "expect: 100-continue",
      req(
        `POST ${DIGITS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${body.length}`,
      ),
    ),
    raw(
      "header without a colon",
      req(`POST ${DIGITS} HTTP/1.1\r\nHost: x\r\nBroken header\r\nContent-Length: ${body.length}`),
    ),
    raw(
      "bare LF line ends",
      `POST ${DIGITS} HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: ${body.length}\n\n${body}`,
    ),
    raw(
      "cross-origin unload without a token",
      req(
        `POST /v2/repository/models/digits/unload HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: 2`,
        "{}",
      ),
    ),
    raw(
      "pipelined requests, one bad",
      req(`POST ${DIGITS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3`, "{{{") +
        `POST ${DIGITS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    ),
  ];
}

function grpcCases(): FuzzCase[] {
  const good = Buffer.from(new Float32Array(IMAGE).buffer);
  const inputSpec = { name: "image", datatype: "FP32", shape: [1, 1, 28, 28] };
  const call = (name: string, method: string, request: object): FuzzCase => ({
    name,
    kind: "grpc",
    send: (t) => t.grpc(method, request),
  });
  const infer = (name: string, request: object) => call(name, "ModelInfer", request);
  const out: FuzzCase[] = [
    infer("no model name", { inputs: [inputSpec], raw_input_contents: [good] }),
    infer("unknown model", { model_name: "nope", inputs: [inputSpec], raw_input_contents: [good] }),
    infer("a 100 KB model name", { model_name: "a".repeat(100_000), inputs: [inputSpec], raw_input_contents: [good] }),
    infer("unknown version", {
      model_name: "digits",
      model_version: "nope",
      inputs: [inputSpec],
      raw_input_contents: [good],
    }),
    infer("no inputs", { model_name: "digits" }),
    infer("raw contents missing", { model_name: "digits", inputs: [inputSpec] }),
    infer("two raw contents for one input", {
      model_name: "digits",
      inputs: [inputSpec],
      raw_input_contents: [good, good],
    }),
    infer("raw contents too short", {
      model_name: "digits",
      inputs: [inputSpec],
      raw_input_contents: [good.subarray(0, 100)],
    }),
    infer("raw contents too long", {
      model_name: "digits",
      inputs: [inputSpec],
      raw_input_contents: [Buffer.concat([good, good])],
    }),
    infer("raw and typed contents", {
      model_name: "digits",
      inputs: [{ ...inputSpec, contents: { fp32_contents: IMAGE } }],
      raw_input_contents: [good],
    }),
    infer("typed contents of the wrong type", {
      model_name: "digits",
      inputs: [{ ...inputSpec, contents: { int_contents: IMAGE.map(() => 1) } }],
    }),
    infer("typed contents too few", {
      model_name: "digits",
      inputs: [{ ...inputSpec, contents: { fp32_contents: [1, 2, 3] } }],
    }),
    infer("datatype bogus", {
      model_name: "digits",
      inputs: [{ ...inputSpec, datatype: "FLOAT" }],
      raw_input_contents: [good],
    }),
    infer("datatype empty", {
      model_name: "digits",
      inputs: [{ ...inputSpec, datatype: "" }],
      raw_input_contents: [good],
    }),
    infer("shape negative", {
      model_name: "digits",
      inputs: [{ ...inputSpec, shape: [-1, 1, 28, 28] }],
      raw_input_contents: [good],
    }),
    infer("shape huge", {
      model_name: "digits",
      inputs: [{ ...inputSpec, shape: [2 ** 40, 1, 28, 28] }],
      raw_input_contents: [good],
    }),
    infer("shape empty", { model_name: "digits", inputs: [{ ...inputSpec, shape: [] }], raw_input_contents: [good] }),
    infer("input name unknown", {
      model_name: "digits",
      inputs: [{ ...inputSpec, name: "x" }],
      raw_input_contents: [good],
    }),
    infer("output unknown", {
      model_name: "digits",
      inputs: [inputSpec],
      raw_input_contents: [good],
      outputs: [{ name: "nope" }],
    }),
    infer("output 10^5 times", {
      model_name: "digits",
      inputs: [inputSpec],
      raw_input_contents: [good],
      outputs: Array.from({ length: 100_000 }, () => ({ name: "probabilities" })),
    }),
    infer("slo_ms a string", {
      model_name: "digits",
      inputs: [inputSpec],
      raw_input_contents: [good],
      parameters: { slo_ms: { string_param: "fast" } },
    }),
    infer("slo_ms negative", {
      model_name: "digits",
      inputs: [inputSpec],
      raw_input_contents: [good],
      parameters: { slo_ms: { int64_param: -5 } },
    }),
    infer("min_accuracy 2", {
      model_name: "digits",
      inputs: [inputSpec],
      raw_input_contents: [good],
      parameters: { min_accuracy: { double_param: 2 } },
    }),
    infer("priority 0", {
      model_name: "digits",
      inputs: [inputSpec],
      raw_input_contents: [good],
      parameters: { priority: { int64_param: 0 } },
    }),
    infer("timeout huge", {
      model_name: "digits",
      inputs: [inputSpec],
      raw_input_contents: [good],
      parameters: { timeout: { int64_param: 2 ** 62 } },
    }),
    infer("a parameter with no value", {
      model_name: "digits",
      inputs: [inputSpec],
      raw_input_contents: [good],
      parameters: { slo_ms: {} },
    }),
    ...[
      "bool_contents",
      "int_contents",
      "int64_contents",
      "uint_contents",
      "uint64_contents",
      "fp32_contents",
      "fp64_contents",
      "bytes_contents",
    ].flatMap((field) =>
      ["FP32", "INT32", "BYTES", "UINT8"].map((datatype) =>
        infer(`${field} declared ${datatype}`, {
          model_name: "digits",
          inputs: [
            {
              ...inputSpec,
              datatype,
              contents: {
                [field]: field === "bytes_contents" ? [Buffer.from("x")] : field === "bool_contents" ? [true] : [1],
              },
            },
          ],
        }),
      ),
    ),
    call("ModelMetadata of a 100 KB name", "ModelMetadata", { name: "a".repeat(100_000) }),
    call("ModelMetadata of an unknown model", "ModelMetadata", { name: "nope" }),
    call("ModelReady of an unknown model", "ModelReady", { name: "nope" }),
    call("ModelConfig of an unknown version", "ModelConfig", { name: "digits", version: "nope" }),
    call("ModelStatistics of an unknown model", "ModelStatistics", { name: "nope" }),
    call("load without a token", "RepositoryModelLoad", { model_name: "digits" }),
    call("load of a traversal name", "RepositoryModelLoad", { model_name: "../../etc" }),
  ];
  return out;
}

/** Every case, in a seeded order (kinds interleaved, so each kind's aftermath meets the others). */
export function fuzzCases(seed = 1): FuzzCase[] {
  const all = [...restJsonCases(), ...restBinaryCases(), ...rawHttpCases(), ...grpcCases()];
  const rng = new Mulberry32(seed);
  for (let i = all.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all;
}
