// Plane geometry of text boxes: convex hulls, the minimum-area rectangle around a region, quad
// ordering, convex-polygon intersection (for IoU) and the homography that rectifies a quad.
export type Point = [number, number];
/** Four corners, clockwise in image coordinates (y down) starting at the top-left. */
export type Quad = [Point, Point, Point, Point];

const cross = (o: Point, a: Point, b: Point) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);

/** Andrew's monotone chain; returns the hull counter-clockwise in math axes (clockwise on screen). */
export function convexHull(points: Point[]): Point[] {
  const pts = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (pts.length <= 2) return pts;
  const lower: Point[] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, p) <= 0) upper.pop();
    upper.push(p);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

export interface RotatedRect {
  center: Point;
  /** Unit vector of the `width` side. */
  axis: Point;
  width: number;
  height: number;
}

/** The minimum-area enclosing rectangle: one of its sides lies on a hull edge (rotating calipers). */
export function minAreaRect(points: Point[]): RotatedRect {
  const hull = convexHull(points);
  if (hull.length === 0) throw new Error("minAreaRect of no points");
  if (hull.length === 1) return { center: [...hull[0]!] as Point, axis: [1, 0], width: 0, height: 0 };
  let best: RotatedRect | null = null;
  let bestArea = Infinity;
  for (let i = 0; i < hull.length; i++) {
    const a = hull[i]!;
    const b = hull[(i + 1) % hull.length]!;
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    if (len === 0) continue;
    const ux = (b[0] - a[0]) / len;
    const uy = (b[1] - a[1]) / len;
    let minU = Infinity;
    let maxU = -Infinity;
    let minV = Infinity;
    let maxV = -Infinity;
    for (const p of hull) {
      const u = p[0] * ux + p[1] * uy;
      const v = -p[0] * uy + p[1] * ux;
      minU = Math.min(minU, u);
      maxU = Math.max(maxU, u);
      minV = Math.min(minV, v);
      maxV = Math.max(maxV, v);
    }
    const area = (maxU - minU) * (maxV - minV);
    if (area < bestArea - 1e-9) {
      bestArea = area;
      const cu = (minU + maxU) / 2;
      const cv = (minV + maxV) / 2;
      best = {
        center: [cu * ux - cv * uy, cu * uy + cv * ux],
        axis: [ux, uy],
        width: maxU - minU,
        height: maxV - minV,
      };
    }
  }
  return best!;
}

/** A rectangle's corners, ordered clockwise from the top-left as PaddleOCR orders its boxes. */
export function rectCorners(r: RotatedRect): Quad {
  const [ux, uy] = r.axis;
  const hw = r.width / 2;
  const hh = r.height / 2;
  const c = r.center;
  const pts: Point[] = [
    [c[0] - ux * hw + uy * hh, c[1] - uy * hw - ux * hh],
    [c[0] + ux * hw + uy * hh, c[1] + uy * hw - ux * hh],
    [c[0] + ux * hw - uy * hh, c[1] + uy * hw + ux * hh],
    [c[0] - ux * hw - uy * hh, c[1] - uy * hw + ux * hh],
  ];
  return orderQuad(pts);
}

/**
 * Orders four corners: by x, the left two give top-left (smaller y) and bottom-left, the right two
 * top-right and bottom-right; returned clockwise from top-left.
 */
export function orderQuad(pts: Point[]): Quad {
  const s = [...pts].sort((a, b) => a[0] - b[0]);
  const [l1, l2, r1, r2] = s as [Point, Point, Point, Point];
  const [tl, bl] = l1[1] <= l2[1] ? [l1, l2] : [l2, l1];
  const [tr, br] = r1[1] <= r2[1] ? [r1, r2] : [r2, r1];
  return [tl, tr, br, bl];
}

/** Shoelace area (absolute). */
export function polygonArea(poly: Point[]): number {
  let s = 0;
  for (let i = 0; i < poly.length; i++) {
    const a = poly[i]!;
    const b = poly[(i + 1) % poly.length]!;
    s += a[0] * b[1] - b[0] * a[1];
  }
  return Math.abs(s) / 2;
}

function orientCcw(poly: Point[]): Point[] {
  let s = 0;
  for (let i = 0; i < poly.length; i++) {
    const a = poly[i]!;
    const b = poly[(i + 1) % poly.length]!;
    s += a[0] * b[1] - b[0] * a[1];
  }
  return s < 0 ? [...poly].reverse() : poly;
}

/** Intersection of two convex polygons (Sutherland–Hodgman: clip `subject` by each edge of `clip`). */
export function convexIntersection(subject: Point[], clip: Point[]): Point[] {
  let out = orientCcw(subject);
  const c = orientCcw(clip);
  for (let i = 0; i < c.length && out.length > 0; i++) {
    const a = c[i]!;
    const b = c[(i + 1) % c.length]!;
    const input = out;
    out = [];
    const inside = (p: Point) => cross(a, b, p) >= 0;
    for (let j = 0; j < input.length; j++) {
      const p = input[j]!;
      const q = input[(j + 1) % input.length]!;
      const pin = inside(p);
      const qin = inside(q);
      if (pin) out.push(p);
      if (pin !== qin) {
        const d1 = cross(a, b, p);
        const d2 = cross(a, b, q);
        const t = d1 / (d1 - d2);
        out.push([p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t]);
      }
    }
  }
  return out;
}

export function iou(a: Point[], b: Point[]): number {
  const inter = polygonArea(convexIntersection(a, b));
  const union = polygonArea(a) + polygonArea(b) - inter;
  return union > 0 ? inter / union : 0;
}

/** Share of `a`'s area that lies inside `b`. */
export function coverage(a: Point[], b: Point[]): number {
  const area = polygonArea(a);
  return area > 0 ? polygonArea(convexIntersection(a, b)) / area : 0;
}

/**
 * The 3×3 homography (row-major, h[8] = 1) mapping each `from` corner onto the matching `to` corner:
 * the 8×8 linear system of the direct linear transform, solved by Gaussian elimination.
 */
export function homography(from: Point[], to: Point[]): Float64Array {
  const A: number[][] = [];
  for (let i = 0; i < 4; i++) {
    const [x, y] = from[i]!;
    const [u, v] = to[i]!;
    A.push([x, y, 1, 0, 0, 0, -u * x, -u * y, u]);
    A.push([0, 0, 0, x, y, 1, -v * x, -v * y, v]);
  }
  for (let col = 0; col < 8; col++) {
    let pivot = col;
    for (let r = col + 1; r < 8; r++) if (Math.abs(A[r]![col]!) > Math.abs(A[pivot]![col]!)) pivot = r;
    if (Math.abs(A[pivot]![col]!) < 1e-12) throw new Error("degenerate quad: its corners are collinear");
    [A[col], A[pivot]] = [A[pivot]!, A[col]!];
    for (let r = 0; r < 8; r++) {
      if (r === col) continue;
      const f = A[r]![col]! / A[col]![col]!;
      if (f !== 0) for (let k = col; k < 9; k++) A[r]![k]! -= f * A[col]![k]!;
    }
  }
  const h = new Float64Array(9);
  for (let i = 0; i < 8; i++) h[i] = A[i]![8]! / A[i]![i]!;
  h[8] = 1;
  return h;
}
