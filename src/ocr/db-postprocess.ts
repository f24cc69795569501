// Differentiable-binarisation post-processing (the DB detector's boxes from its probability map),
// with PaddleOCR's inference defaults: threshold the map, take each connected text region, fit its
// minimum-area rectangle, score it by the mean probability inside, and "unclip" it (the network was
// trained to predict text shrunk by a Vatti offset; growing the box by area·ratio/perimeter undoes it).
import { minAreaRect, rectCorners, type Point, type Quad, type RotatedRect } from "./geometry.js";
import type { Letterbox } from "./image.js";

export interface DbOptions {
  /** Pixel threshold of the probability map. */
  threshold: number;
  /** Minimum mean probability inside a box. */
  boxThreshold: number;
  unclipRatio: number;
  /** Boxes whose shorter side is below this (in map pixels) are dropped. */
  minSize: number;
  maxCandidates: number;
}

export const DB_DEFAULTS: DbOptions = {
  threshold: 0.3,
  boxThreshold: 0.6,
  unclipRatio: 1.5,
  minSize: 3,
  maxCandidates: 1000,
};

export interface DetectedBox {
  /** Corners in the original image's pixels, clockwise from top-left. */
  quad: Quad;
  /** Mean text probability inside the box, before unclipping. */
  score: number;
}

/**
 * Connected regions (8-neighbourhood) of the pixels above `threshold`; each region as the list of its
 * pixels on the region's boundary (enough for the hull, and far fewer than all pixels).
 */
export function textRegions(prob: ArrayLike<number>, width: number, height: number, threshold: number): Point[][] {
  const n = width * height;
  const label = new Int32Array(n).fill(-1);
  const regions: Point[][] = [];
  const stack: number[] = [];
  const on = (i: number) => prob[i]! > threshold;
  for (let start = 0; start < n; start++) {
    if (label[start] !== -1 || !on(start)) continue;
    const id = regions.length;
    const boundary: Point[] = [];
    label[start] = id;
    stack.push(start);
    while (stack.length > 0) {
      const i = stack.pop()!;
      const x = i % width;
      const y = (i - x) / width;
      let edge = x === 0 || y === 0 || x === width - 1 || y === height - 1;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if ((dx === 0 && dy === 0) || xx < 0 || xx >= width) continue;
          const j = yy * width + xx;
          if (!on(j)) {
            edge = true;
            continue;
          }
          if (label[j] === -1) {
            label[j] = id;
            stack.push(j);
          }
        }
      }
      if (edge) boundary.push([x, y]);
    }
    regions.push(boundary);
  }
  return regions;
}

/** Mean of the map over the pixels whose centres fall inside the rotated rectangle. */
export function boxScore(prob: ArrayLike<number>, width: number, height: number, r: RotatedRect): number {
  const [ux, uy] = r.axis;
  const corners = rectCorners(r);
  const xs = corners.map((p) => p[0]);
  const ys = corners.map((p) => p[1]);
  const x0 = Math.max(0, Math.floor(Math.min(...xs)));
  const x1 = Math.min(width - 1, Math.ceil(Math.max(...xs)));
  const y0 = Math.max(0, Math.floor(Math.min(...ys)));
  const y1 = Math.min(height - 1, Math.ceil(Math.max(...ys)));
  const hw = r.width / 2 + 0.5;
  const hh = r.height / 2 + 0.5;
  let sum = 0;
  let count = 0;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const dx = x - r.center[0];
      const dy = y - r.center[1];
      const u = dx * ux + dy * uy;
      const v = -dx * uy + dy * ux;
      if (Math.abs(u) <= hw && Math.abs(v) <= hh) {
        sum += prob[y * width + x]!;
        count++;
      }
    }
  }
  return count > 0 ? sum / count : 0;
}

/**
 * Grows a rectangle by the Vatti offset d = area·ratio/perimeter. For a rectangle the rounded offset
 * polygon's minimum-area rectangle is the rectangle with each side moved out by d, so no polygon
 * clipping is needed.
 */
export function unclip(r: RotatedRect, ratio: number): RotatedRect {
  const perimeter = 2 * (r.width + r.height);
  if (perimeter === 0) return r;
  const d = (r.width * r.height * ratio) / perimeter;
  return { ...r, width: r.width + 2 * d, height: r.height + 2 * d };
}

/** PaddleOCR's reading order: top to bottom, and left to right within 10 px of the same line. */
export function readingOrder<T extends { quad: Quad }>(boxes: T[]): T[] {
  const out = [...boxes].sort((a, b) => a.quad[0][1] - b.quad[0][1] || a.quad[0][0] - b.quad[0][0]);
  for (let i = 0; i < out.length - 1; i++) {
    for (let j = i; j >= 0; j--) {
      const a = out[j]!;
      const b = out[j + 1]!;
      if (Math.abs(b.quad[0][1] - a.quad[0][1]) < 10 && b.quad[0][0] < a.quad[0][0]) {
        out[j] = b;
        out[j + 1] = a;
      } else break;
    }
  }
  return out;
}

/**
 * Boxes of the map `prob` (`size`×`size`, the detector's letterboxed input space), mapped back to
 * the original image through `letterbox` and clipped to it, in reading order.
 */
export function dbBoxes(
  prob: ArrayLike<number>,
  size: number,
  letterbox: Letterbox,
  options: Partial<DbOptions> = {},
): DetectedBox[] {
  const o = { ...DB_DEFAULTS, ...options };
  if (prob.length !== size * size) throw new Error(`probability map has ${prob.length} values, expected ${size}²`);
  const regions = textRegions(prob, size, size, o.threshold).slice(0, o.maxCandidates);
  const out: DetectedBox[] = [];
  const clipX = (v: number) => Math.min(Math.max(v, 0), letterbox.width);
  const clipY = (v: number) => Math.min(Math.max(v, 0), letterbox.height);
  for (const region of regions) {
    if (region.length < 4) continue;
    const rect = minAreaRect(region);
    if (Math.min(rect.width, rect.height) < o.minSize) continue;
    const score = boxScore(prob, size, size, rect);
    if (score < o.boxThreshold) continue;
    // region pixels are centres; the region itself spans half a pixel further on each side
    const grown = unclip({ ...rect, width: rect.width + 1, height: rect.height + 1 }, o.unclipRatio);
    if (Math.min(grown.width, grown.height) < o.minSize + 2) continue;
    const quad = rectCorners(grown).map(
      ([x, y]) => [clipX((x + 0.5) / letterbox.scale), clipY((y + 0.5) / letterbox.scale)] as Point,
    ) as Quad;
    const w = Math.hypot(quad[1][0] - quad[0][0], quad[1][1] - quad[0][1]);
    const h = Math.hypot(quad[3][0] - quad[0][0], quad[3][1] - quad[0][1]);
    if (w <= 3 || h <= 3) continue;
    out.push({ quad, score });
  }
  return readingOrder(out);
}
