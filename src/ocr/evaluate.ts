// Accuracy of the ocr stages and of the whole pipeline on the rendered labelled set:
// - detection: recall of ground-truth lines, a line found when a detected box overlaps it at IoU ≥ 0.5
//   (one-to-one, greedy by IoU);
// - direction classifier: share of ground-truth crops whose direction it gets right;
// - recogniser: 1 − CER on ground-truth crops (rectified from the labelled corners, upright);
// - end to end: 1 − CER of the page: each detected line is assigned to the ground-truth line it
//   overlaps most (intersection over the smaller area ≥ 0.5); a ground-truth line's reading is its
//   assigned lines' texts left to right; text of unassigned detections counts as insertions.
import type { Engine } from "../engine/engine.js";
import { addCer, oneMinusCer, type CerTally } from "./cer.js";
import type { LabelledImage } from "./eval-set.js";
import { convexIntersection, iou, orderQuad, polygonArea, type Quad } from "./geometry.js";
import { classify, detect, ocr, recognise, type OcrEngines, type OcrLine } from "./pipeline.js";

export const IOU_MATCH = 0.5;

export interface Recall {
  matched: number;
  total: number;
  detections: number;
}

/** Greedy one-to-one matching of detections to truths by IoU, best pairs first. */
export function matchByIou(truth: Quad[], found: Quad[], threshold = IOU_MATCH): number {
  const pairs: [number, number, number][] = [];
  truth.forEach((t, i) =>
    found.forEach((f, j) => {
      const v = iou(t, f);
      if (v >= threshold) pairs.push([v, i, j]);
    }),
  );
  pairs.sort((a, b) => b[0] - a[0]);
  const usedT = new Set<number>();
  const usedF = new Set<number>();
  for (const [, i, j] of pairs) {
    if (usedT.has(i) || usedF.has(j)) continue;
    usedT.add(i);
    usedF.add(j);
  }
  return usedT.size;
}

export async function measureDetection(det: Engine, set: LabelledImage[]): Promise<Recall> {
  const r: Recall = { matched: 0, total: 0, detections: 0 };
  for (const s of set) {
    const boxes = await detect(det, s.image);
    r.detections += boxes.length;
    r.total += s.lines.length;
    r.matched += matchByIou(
      s.lines.map((l) => l.quad),
      boxes.map((b) => b.quad),
    );
  }
  return r;
}

export async function measureClassifier(
  cls: Engine,
  set: LabelledImage[],
): Promise<{ correct: number; total: number }> {
  let correct = 0;
  let total = 0;
  for (const s of set) {
    // the crop as a detector would give it: corners in visual order, not reading order
    const flips = await classify(
      cls,
      s.image,
      s.lines.map((l) => orderQuad(l.quad)),
    );
    s.lines.forEach((l, i) => {
      total++;
      if (flips[i] === l.upsideDown) correct++;
    });
  }
  return { correct, total };
}

export async function measureRecogniser(rec: Engine, charset: string[], set: LabelledImage[]): Promise<CerTally> {
  const tally: CerTally = { edits: 0, chars: 0 };
  for (const s of set) {
    const read = await recognise(
      rec,
      charset,
      s.image,
      s.lines.map((l) => l.quad),
    );
    s.lines.forEach((l, i) => addCer(tally, read[i]!.text, l.text));
  }
  return tally;
}

function overlapOfSmaller(a: Quad, b: Quad): number {
  const inter = polygonArea(convexIntersection(a, b));
  const small = Math.min(polygonArea(a), polygonArea(b));
  return small > 0 ? inter / small : 0;
}

/** Adds one image's end-to-end reading to `tally`. */
export function scorePage(tally: CerTally, truth: LabelledImage["lines"], lines: OcrLine[]): void {
  const assigned: OcrLine[][] = truth.map(() => []);
  for (const line of lines) {
    let best = -1;
    let bestV = 0.5;
    truth.forEach((t, i) => {
      const v = overlapOfSmaller(line.quad, orderQuad(t.quad));
      if (v >= bestV) {
        bestV = v;
        best = i;
      }
    });
    if (best >= 0) assigned[best]!.push(line);
    else addCer(tally, line.text, "");
  }
  truth.forEach((t, i) => {
    const [p0, p1] = t.quad;
    const ux = p1[0] - p0[0];
    const uy = p1[1] - p0[1];
    const along = (l: OcrLine) => {
      const cx = l.quad.reduce((s, p) => s + p[0], 0) / 4;
      const cy = l.quad.reduce((s, p) => s + p[1], 0) / 4;
      return cx * ux + cy * uy;
    };
    const text = assigned[i]!.sort((a, b) => along(a) - along(b))
      .map((l) => l.text)
      .join(" ");
    addCer(tally, text, t.text);
  });
}

export async function measureEndToEnd(engines: OcrEngines, set: LabelledImage[]): Promise<CerTally> {
  const tally: CerTally = { edits: 0, chars: 0 };
  for (const s of set) scorePage(tally, s.lines, await ocr(s.image, engines));
  return tally;
}

export { oneMinusCer };
