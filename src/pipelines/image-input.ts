// An image as a client sends it to a pipeline: a PNG or JPEG file as one BYTES element (raw over the binary
// extension or gRPC, base64 in JSON, where BYTES are strings), decoded by @napi-rs/canvas; or the pixels
// themselves as a UINT8 tensor [1, H, W, 3|4]. The file's header is read before anything is decoded, so
// an oversized image is refused without the memory its pixels would take.
import { createCanvas, loadImage } from "@napi-rs/canvas";
import type { RgbaImage } from "../ocr/image.js";
import { GlueInputError, type GlueTensor } from "./glue.js";

/** The most pixels an image may have (a 4K page is 8.3 MP). */
export const MAX_IMAGE_PIXELS = 4096 * 4096;

type Format = "png" | "jpeg";

function formatOf(b: Uint8Array): Format | null {
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return "png";
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  return null;
}

/** Width and height from the file's header (PNG IHDR, JPEG SOFn), or null when it has none readable. */
export function headerSize(b: Uint8Array, format: Format): { width: number; height: number } | null {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (format === "png") return b.length >= 24 ? { width: view.getUint32(16), height: view.getUint32(20) } : null;
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1]!;
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      i += 2;
      continue;
    }
    const len = view.getUint16(i + 2);
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc)
      return { height: view.getUint16(i + 5), width: view.getUint16(i + 7) };
    i += 2 + len;
  }
  return null;
}

/** The file's bytes: as sent, or base64-decoded when the client sent the file as base64 text (JSON). */
function fileBytes(raw: Uint8Array): { bytes: Uint8Array; format: Format } {
  const direct = formatOf(raw);
  if (direct) return { bytes: raw, format: direct };
  const text = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("latin1").trim();
  const payload = text.startsWith("data:") ? text.slice(text.indexOf(",") + 1) : text;
  if (/^[A-Za-z0-9+/=\s_-]+$/.test(payload)) {
    const decoded = new Uint8Array(Buffer.from(payload, "base64"));
    const format = formatOf(decoded);
    if (format) return { bytes: decoded, format };
  }
  throw new GlueInputError(
    "input 'image' is neither a PNG nor a JPEG file (raw bytes, or base64 text in JSON); send the image file itself, or its pixels as 'pixels' UINT8 [1, H, W, 3 or 4]",
  );
}

export async function decodeImageFile(raw: Uint8Array): Promise<RgbaImage> {
  const { bytes, format } = fileBytes(raw);
  const size = headerSize(bytes, format);
  if (!size) throw new GlueInputError(`input 'image': the ${format.toUpperCase()} header is unreadable`);
  checkSize(size.width, size.height);
  let img: Awaited<ReturnType<typeof loadImage>>;
  try {
    img = await loadImage(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    throw new GlueInputError(
      `input 'image': the ${format.toUpperCase()} file cannot be decoded (${(err as Error).message})`,
    );
  }
  checkSize(img.width, img.height);
  const canvas = createCanvas(img.width, img.height);
  const ctx = canvas.getContext("2d");
  // transparent pixels read as white paper, not black
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, img.width, img.height);
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, img.width, img.height).data;
  return {
    width: img.width,
    height: img.height,
    data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length),
  };
}

function checkSize(width: number, height: number): void {
  if (!(width >= 1 && height >= 1))
    throw new GlueInputError(`input 'image' is ${width}x${height} pixels; an image needs at least one pixel`);
  if (width * height > MAX_IMAGE_PIXELS)
    throw new GlueInputError(
      `input 'image' is ${width}x${height} pixels, more than ${MAX_IMAGE_PIXELS} (4096x4096); scale it down`,
    );
}

/** Pixels sent as UINT8 [1, H, W, 3] (RGB) or [1, H, W, 4] (RGBA), as RGBA. */
export function imageFromPixels(t: GlueTensor): RgbaImage {
  const [n, height, width, channels] = t.shape;
  if (t.shape.length !== 4 || n !== 1 || !(channels === 3 || channels === 4))
    throw new GlueInputError(
      `input 'pixels' has shape [${t.shape.join(",")}]; send one image as UINT8 [1, H, W, 3] (RGB) or [1, H, W, 4] (RGBA)`,
    );
  checkSize(width!, height!);
  const src = t.data as Uint8Array;
  if (channels === 4) return { width: width!, height: height!, data: src };
  const out = new Uint8ClampedArray(width! * height! * 4);
  for (let i = 0, j = 0; i < src.length; i += 3, j += 4) {
    out[j] = src[i]!;
    out[j + 1] = src[i + 1]!;
    out[j + 2] = src[i + 2]!;
    out[j + 3] = 255;
  }
  return { width: width!, height: height!, data: out };
}

/** An RGBA image as a PNG file (what a client would send; tests and the README's sample page). */
export function encodePng(img: RgbaImage): Uint8Array {
  const canvas = createCanvas(img.width, img.height);
  const ctx = canvas.getContext("2d");
  const data = ctx.createImageData(img.width, img.height);
  data.data.set(img.data);
  ctx.putImageData(data, 0, 0);
  return new Uint8Array(canvas.toBuffer("image/png"));
}
