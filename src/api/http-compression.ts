// HTTP compression as Triton's HTTP endpoint does it: request bodies sent with Content-Encoding
// gzip or deflate (zlib) are inflated before parsing, within the body limit; inference responses
// are compressed when the client's Accept-Encoding asks for gzip or deflate and the body is at least
// 1 KiB (fetch asks on every request, and deflating a few hundred bytes costs more than it saves).
import zlib from "node:zlib";
import { ApiError } from "./types.js";

export function decompressBody(body: Buffer, encoding: string | undefined, maxBytes: number): Buffer {
  const enc = (encoding ?? "").trim().toLowerCase();
  if (enc === "" || enc === "identity") return body;
  const inflate = enc === "gzip" ? zlib.gunzipSync : enc === "deflate" ? zlib.inflateSync : undefined;
  if (!inflate) throw new ApiError(400, `Content-Encoding '${encoding}' is not supported; send gzip, deflate or none`);
  try {
    return inflate(body, { maxOutputLength: maxBytes });
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === "ERR_BUFFER_TOO_LARGE")
      throw new ApiError(413, `the ${enc}-compressed body inflates past the ${maxBytes} byte limit`);
    throw new ApiError(400, `the request body is not valid ${enc} data (Content-Encoding: ${enc}): ${e.message}`);
  }
}

export const COMPRESS_MIN_BYTES = 1024;

/** The body to send, compressed when Accept-Encoding asks for gzip or deflate (gzip preferred). */
export function compressFor(body: Buffer, accept: string | undefined): { body: Buffer; encoding?: string } {
  if (accept === undefined || body.byteLength < COMPRESS_MIN_BYTES) return { body };
  const wanted = (accept ?? "")
    .toLowerCase()
    .split(",")
    .map((s) => s.split(";")[0]!.trim());
  if (wanted.includes("gzip")) return { body: zlib.gzipSync(body), encoding: "gzip" };
  if (wanted.includes("deflate")) return { body: zlib.deflateSync(body), encoding: "deflate" };
  return { body };
}
