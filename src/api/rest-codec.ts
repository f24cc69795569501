// REST bodies of the Open Inference Protocol: a JSON document, optionally followed by raw tensors
// (binary tensor extension, `Inference-Header-Content-Length`), in and out.
import { quoted } from "../repository/safe-path.js";
import {
  parseDatatype,
  parseShape,
  tensorFromBytes,
  tensorFromJson,
  tensorToBytes,
  tensorToJson,
} from "./tensor-codec.js";
import { checkCount, checkId } from "./limits.js";
import { ApiError, type InferRequest, type InferResponse, type ParamValue, type Tensor } from "./types.js";

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

export function splitBody(body: Buffer, headerLength: string | undefined): { json: Json; binary: Buffer } {
  let jsonBytes = body;
  let binary: Buffer = Buffer.alloc(0);
  if (headerLength !== undefined) {
    const n = Number(headerLength);
    if (!Number.isInteger(n) || n < 0 || n > body.byteLength) {
      throw new ApiError(
        400,
        `Inference-Header-Content-Length is ${JSON.stringify(headerLength)} but the body has ${body.byteLength} bytes; it must be the JSON header's byte length`,
      );
    }
    jsonBytes = body.subarray(0, n);
    binary = body.subarray(n);
  }
  if (jsonBytes.byteLength === 0) throw new ApiError(400, "empty request body: send a JSON inference request");
  let json: unknown;
  try {
    json = JSON.parse(jsonBytes.toString("utf8"));
  } catch (err) {
    throw new ApiError(400, `malformed JSON: ${(err as Error).message}`);
  }
  if (!isObject(json)) throw new ApiError(400, "the request body must be a JSON object with an 'inputs' array");
  return { json, binary };
}

function params(v: unknown, where: string): Record<string, ParamValue> {
  if (v === undefined) return {};
  if (!isObject(v)) throw new ApiError(400, `${where}: 'parameters' must be an object`);
  for (const [k, x] of Object.entries(v)) {
    if (!["string", "number", "boolean"].includes(typeof x))
      throw new ApiError(400, `${where}: parameter '${k}' must be a string, number or boolean`);
  }
  return v as Record<string, ParamValue>;
}

export function parseInferRequest(
  json: Json,
  binary: Buffer,
  model: string,
  version: string | undefined,
  receivedAtUnixMs: number,
): InferRequest {
  if (json.id !== undefined && typeof json.id !== "string") throw new ApiError(400, "'id' must be a string");
  if (typeof json.id === "string") checkId(json.id);
  if (!Array.isArray(json.inputs) || json.inputs.length === 0)
    throw new ApiError(400, "'inputs' must be a non-empty array of {name, shape, datatype, data}");
  checkCount("inputs", json.inputs.length);
  let offset = 0;
  const inputs: Tensor[] = json.inputs.map((raw, i) => {
    if (!isObject(raw) || typeof raw.name !== "string")
      throw new ApiError(400, `inputs[${i}] must be an object with a string 'name'`);
    const where = `input ${quoted(raw.name)}`;
    const datatype = parseDatatype(raw.datatype, where);
    const shape = parseShape(raw.shape, where);
    const p = params(raw.parameters, where);
    if (p.binary_data_size !== undefined) {
      const size = p.binary_data_size;
      if (typeof size !== "number" || !Number.isInteger(size) || size < 0)
        throw new ApiError(400, `${where}: binary_data_size must be a non-negative integer`);
      if (raw.data !== undefined)
        throw new ApiError(400, `${where}: give either 'data' or parameters.binary_data_size, not both`);
      if (offset + size > binary.byteLength) {
        throw new ApiError(
          400,
          `${where}: binary_data_size ${size} runs past the end of the binary section (${binary.byteLength - offset} bytes left)`,
        );
      }
      const t = tensorFromBytes(raw.name, datatype, shape, binary.subarray(offset, offset + size));
      offset += size;
      return t;
    }
    if (raw.data === undefined)
      throw new ApiError(
        400,
        `${where}: missing 'data' (or parameters.binary_data_size with the binary tensor extension)`,
      );
    return tensorFromJson(raw.name, datatype, shape, raw.data);
  });
  if (offset !== binary.byteLength)
    throw new ApiError(
      400,
      `the binary section has ${binary.byteLength - offset} bytes that no input claims; check each binary_data_size`,
    );
  let outputs: InferRequest["outputs"];
  const requestParams = params(json.parameters, "request");
  if (json.outputs !== undefined) {
    if (!Array.isArray(json.outputs)) throw new ApiError(400, "'outputs' must be an array of {name, parameters?}");
    checkCount("outputs", json.outputs.length);
    outputs = json.outputs.map((o, i) => {
      if (!isObject(o) || typeof o.name !== "string")
        throw new ApiError(400, `outputs[${i}] must be an object with a string 'name'`);
      const p = params(o.parameters, `output ${quoted(o.name)}`);
      if (p.binary_data !== undefined && typeof p.binary_data !== "boolean")
        throw new ApiError(400, `output ${quoted(o.name)}: binary_data must be true or false`);
      if (p.classification !== undefined && typeof p.classification !== "number")
        throw new ApiError(400, `output ${quoted(o.name)}: classification must be a number (how many top classes)`);
      return { name: o.name, binary: p.binary_data, classCount: p.classification };
    });
  }
  return {
    model,
    version,
    id: json.id as string | undefined,
    inputs,
    outputs,
    parameters: requestParams,
    receivedAtUnixMs,
  };
}

/** Encodes a response: plain JSON, or JSON header + raw outputs when any output is asked in binary. */
export function encodeInferResponse(res: InferResponse, req: InferRequest): { body: Buffer; headerLength?: number } {
  const allBinary = req.parameters.binary_data_output === true;
  // an output's own binary_data flag, when given, wins over the request's binary_data_output
  const own = new Map((req.outputs ?? []).map((o) => [o.name, o.binary]));
  const blobs: Uint8Array[] = [];
  const outputs = res.outputs.map((t) => {
    const base = { name: t.name, datatype: t.datatype, shape: t.shape };
    if (own.get(t.name) ?? allBinary) {
      const bytes = tensorToBytes(t);
      blobs.push(bytes);
      return { ...base, parameters: { binary_data_size: bytes.byteLength } };
    }
    return { ...base, data: tensorToJson(t) };
  });
  const header = Buffer.from(
    JSON.stringify({
      model_name: res.model_name,
      model_version: res.model_version,
      id: res.id,
      parameters: res.parameters,
      outputs,
    }),
  );
  if (blobs.length === 0) return { body: header };
  return { body: Buffer.concat([header, ...blobs]), headerLength: header.byteLength };
}
