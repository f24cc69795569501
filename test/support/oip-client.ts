// An Open Inference Protocol v2 REST client written from the spec for the tests, independent of
// the server's own codecs: JSON bodies, and the binary tensor extension built byte by byte.

export interface ClientInput {
  name: string;
  datatype: string;
  shape: number[];
  data?: number[] | boolean[] | string[];
  binary?: Uint8Array;
}

export interface ClientResponse {
  status: number;
  json: Record<string, any>;
  /** Binary outputs by name (raw bytes) when the response used the binary extension. */
  binary: Record<string, Uint8Array>;
  headers: Headers;
}

export async function infer(
  base: string,
  path: string,
  inputs: ClientInput[],
  extra: { parameters?: Record<string, unknown>; outputs?: unknown[]; id?: string } = {},
  headers: Record<string, string> = {},
): Promise<ClientResponse> {
  const binaries = inputs.filter((i) => i.binary);
  const header = {
    ...(extra.id ? { id: extra.id } : {}),
    ...(extra.parameters ? { parameters: extra.parameters } : {}),
    ...(extra.outputs ? { outputs: extra.outputs } : {}),
    inputs: inputs.map((i) =>
      i.binary
        ? { name: i.name, datatype: i.datatype, shape: i.shape, parameters: { binary_data_size: i.binary.byteLength } }
        : { name: i.name, datatype: i.datatype, shape: i.shape, data: i.data },
    ),
  };
  const json = Buffer.from(JSON.stringify(header));
  const body = binaries.length ? Buffer.concat([json, ...binaries.map((b) => Buffer.from(b.binary!))]) : json;
  const h: Record<string, string> = {
    "content-type": binaries.length ? "application/octet-stream" : "application/json",
    ...headers,
  };
  if (binaries.length) h["inference-header-content-length"] = String(json.byteLength);
  const res = await fetch(`${base}${path}`, { method: "POST", headers: h, body });
  return readResponse(res);
}

export async function readResponse(res: Response): Promise<ClientResponse> {
  const buf = Buffer.from(await res.arrayBuffer());
  const hl = res.headers.get("inference-header-content-length");
  const jsonLen = hl ? Number(hl) : buf.byteLength;
  const json = JSON.parse(buf.subarray(0, jsonLen).toString("utf8"));
  const binary: Record<string, Uint8Array> = {};
  let off = jsonLen;
  for (const o of json.outputs ?? []) {
    const size = o.parameters?.binary_data_size;
    if (typeof size === "number") {
      binary[o.name] = new Uint8Array(buf.subarray(off, off + size));
      off += size;
    }
  }
  return { status: res.status, json, binary, headers: res.headers };
}

export async function get(base: string, path: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`);
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

export async function post(
  base: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

export function float32Bytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

export function readFloat32(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float32Array.from({ length: bytes.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

export function argmaxRows(values: ArrayLike<number>, classes: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * classes < values.length; r++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (values[r * classes + k]! > values[r * classes + best]!) best = k;
    out.push(best);
  }
  return out;
}
