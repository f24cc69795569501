// Images as the OCR stages see them, and the pre-processing PaddleOCR's models were trained with:
// the detector takes BGR normalised by ImageNet mean/std, the classifier and recogniser take BGR
// scaled to [-1, 1]. Pure functions over RGBA pixel buffers (the layout canvases and decoders give).
import { CLS_HEIGHT, CLS_WIDTH, DET_SIZE, REC_HEIGHT, REC_WIDTH } from "./models.js";
import { homography, type Point, type Quad } from "./geometry.js";

export interface RgbaImage {
  width: number;
  height: number;
  /** width × height × 4 bytes, row-major RGBA. */
  data: Uint8ClampedArray | Uint8Array;
}

export function checkImage(img: RgbaImage): void {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width < 1 || img.height < 1)
    throw new Error(`image size must be positive integers, got ${img.width}x${img.height}`);
  if (img.data.length !== img.width * img.height * 4)
    throw new Error(
      `image data has ${img.data.length} bytes; ${img.width}x${img.height} RGBA needs ${img.width * img.height * 4}`,
    );
}

const DET_MEAN = [0.485, 0.456, 0.406];
const DET_STD = [0.229, 0.224, 0.225];

/** Bilinear sample of channel `c` at (x, y) in pixel-centre coordinates; outside the image reads as edge. */
function sample(img: RgbaImage, x: number, y: number, c: number): number {
  const w = img.width;
  const h = img.height;
  const fx = Math.min(Math.max(x, 0), w - 1);
  const fy = Math.min(Math.max(y, 0), h - 1);
  const x0 = Math.floor(fx);
  const y0 = Math.floor(fy);
  const x1 = Math.min(x0 + 1, w - 1);
  const y1 = Math.min(y0 + 1, h - 1);
  const ax = fx - x0;
  const ay = fy - y0;
  const d = img.data;
  const p00 = d[(y0 * w + x0) * 4 + c]!;
  const p01 = d[(y0 * w + x1) * 4 + c]!;
  const p10 = d[(y1 * w + x0) * 4 + c]!;
  const p11 = d[(y1 * w + x1) * 4 + c]!;
  return (p00 * (1 - ax) + p01 * ax) * (1 - ay) + (p10 * (1 - ax) + p11 * ax) * ay;
}

/** Where the detector's input came from: the image was scaled by `scale` into the top-left corner. */
export interface Letterbox {
  scale: number;
  width: number;
  height: number;
}

/**
 * The detector's input: the image scaled down (never up) to fit DET_SIZE², placed top-left, BGR,
 * ImageNet-normalised, zero elsewhere (zero is the mean colour after normalisation).
 */
export function detInput(img: RgbaImage, size = DET_SIZE): { data: Float32Array; letterbox: Letterbox } {
  checkImage(img);
  const scale = Math.min(1, size / Math.max(img.width, img.height));
  const w = Math.max(1, Math.round(img.width * scale));
  const h = Math.max(1, Math.round(img.height * scale));
  const out = new Float32Array(3 * size * size);
  const plane = size * size;
  const sx = img.width / w;
  const sy = img.height / h;
  for (let y = 0; y < h; y++) {
    const srcY = (y + 0.5) * sy - 0.5;
    for (let x = 0; x < w; x++) {
      const srcX = (x + 0.5) * sx - 0.5;
      for (let c = 0; c < 3; c++) {
        // channel c of the output is BGR: blue first
        const v = scale === 1 ? img.data[(y * img.width + x) * 4 + (2 - c)]! : sample(img, srcX, srcY, 2 - c);
        out[c * plane + y * size + x] = (v / 255 - DET_MEAN[c]!) / DET_STD[c]!;
      }
    }
  }
  return { data: out, letterbox: { scale, width: img.width, height: img.height } };
}

/** Side lengths of the rectified crop of `q`: the longer of each pair of opposite edges. */
export function quadSize(q: Quad): { width: number; height: number } {
  const d = (a: Point, b: Point) => Math.hypot(a[0] - b[0], a[1] - b[1]);
  return { width: Math.max(d(q[0], q[1]), d(q[3], q[2])), height: Math.max(d(q[0], q[3]), d(q[1], q[2])) };
}

/**
 * A text line rectified into a `height`-pixel-high strip: the quad (clockwise from top-left) is
 * warped by the homography onto a rectangle keeping its aspect ratio, then written into a
 * `height × maxWidth` tensor normalised to [-1, 1] and zero-padded on the right; a line wider than
 * `maxWidth` at that height is squeezed to fit, as PaddleOCR does. A quad much taller than wide is a
 * vertical line: it is read rotated by 90 degrees. `flip` reads it rotated by 180 degrees.
 */
export function lineInput(
  img: RgbaImage,
  quad: Quad,
  height: number,
  maxWidth: number,
  flip = false,
): { data: Float32Array; width: number } {
  let q = quad;
  const size = quadSize(q);
  if (size.height >= 1.5 * size.width) q = [q[1], q[2], q[3], q[0]];
  if (flip) q = [q[2], q[3], q[0], q[1]];
  const { width: qw, height: qh } = quadSize(q);
  const width = Math.max(1, Math.min(maxWidth, Math.ceil((height * qw) / Math.max(qh, 1e-6))));
  const H = homography(
    [
      [0, 0],
      [width, 0],
      [width, height],
      [0, height],
    ],
    q,
  );
  const out = new Float32Array(3 * height * maxWidth);
  const plane = height * maxWidth;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x + 0.5;
      const v = y + 0.5;
      const den = H[6]! * u + H[7]! * v + H[8]!;
      const sx = (H[0]! * u + H[1]! * v + H[2]!) / den - 0.5;
      const sy = (H[3]! * u + H[4]! * v + H[5]!) / den - 0.5;
      for (let c = 0; c < 3; c++) out[c * plane + y * maxWidth + x] = sample(img, sx, sy, 2 - c) / 127.5 - 1;
    }
  }
  return { data: out, width };
}

export function recInput(img: RgbaImage, quad: Quad, flip = false): Float32Array {
  return lineInput(img, quad, REC_HEIGHT, REC_WIDTH, flip).data;
}

export function clsInput(img: RgbaImage, quad: Quad): Float32Array {
  return lineInput(img, quad, CLS_HEIGHT, CLS_WIDTH).data;
}
