import { describe, expect, it } from "vitest";
import { editDistance, normaliseText, addCer, oneMinusCer } from "../../src/ocr/cer.js";
import { ctcCharset, ctcGreedyDecode, isUpsideDown } from "../../src/ocr/ctc.js";
import { dbBoxes, unclip } from "../../src/ocr/db-postprocess.js";
import { homography, iou, minAreaRect, orderQuad, rectCorners, type Point } from "../../src/ocr/geometry.js";
import { detInput, lineInput } from "../../src/ocr/image.js";

describe("geometry", () => {
  it("finds the minimum-area rectangle of a rotated rectangle's points", () => {
    const angle = (20 * Math.PI) / 180;
    const pts: Point[] = [];
    for (let u = -30; u <= 30; u += 1)
      for (let v = -5; v <= 5; v += 1)
        pts.push([100 + u * Math.cos(angle) - v * Math.sin(angle), 50 + u * Math.sin(angle) + v * Math.cos(angle)]);
    const r = minAreaRect(pts);
    expect(Math.max(r.width, r.height)).toBeCloseTo(60, 1);
    expect(Math.min(r.width, r.height)).toBeCloseTo(10, 1);
    expect(r.center[0]).toBeCloseTo(100, 1);
    expect(r.center[1]).toBeCloseTo(50, 1);
    const q = rectCorners(r);
    // clockwise from the top-left: the top-left corner has the smallest x of the two left points
    expect(q[0][0]).toBeLessThan(q[1][0]);
    expect(q[3][1]).toBeGreaterThan(q[0][1]);
  });

  it("computes IoU of convex quads", () => {
    const a: Point[] = [
      [0, 0],
      [10, 0],
      [10, 10],
      [0, 10],
    ];
    const b: Point[] = [
      [5, 0],
      [15, 0],
      [15, 10],
      [5, 10],
    ];
    expect(iou(a, b)).toBeCloseTo(50 / 150, 6);
    expect(iou(a, a)).toBeCloseTo(1, 6);
    expect(
      iou(a, [
        [20, 20],
        [30, 20],
        [30, 30],
        [20, 30],
      ]),
    ).toBe(0);
  });

  it("maps a rectangle onto a quad by homography", () => {
    const to: Point[] = [
      [10, 20],
      [110, 30],
      [105, 60],
      [8, 48],
    ];
    const H = homography(
      [
        [0, 0],
        [50, 0],
        [50, 10],
        [0, 10],
      ],
      to,
    );
    const map = (x: number, y: number) => {
      const d = H[6]! * x + H[7]! * y + H[8]!;
      return [(H[0]! * x + H[1]! * y + H[2]!) / d, (H[3]! * x + H[4]! * y + H[5]!) / d];
    };
    expect(map(50, 10)[0]).toBeCloseTo(105, 6);
    expect(map(50, 10)[1]).toBeCloseTo(60, 6);
    expect(map(0, 10)[0]).toBeCloseTo(8, 6);
    expect(() =>
      homography(to, [
        [0, 0],
        [1, 1],
        [2, 2],
        [3, 3],
      ]),
    ).toThrow(/collinear/);
  });

  it("orders corners clockwise from the top-left", () => {
    expect(
      orderQuad([
        [10, 10],
        [0, 0],
        [0, 10],
        [10, 0],
      ]),
    ).toEqual([
      [0, 0],
      [10, 0],
      [10, 10],
      [0, 10],
    ]);
  });
});

describe("DB post-processing", () => {
  it("turns a probability blob into an unclipped box in image pixels", () => {
    const size = 64;
    const prob = new Float32Array(size * size);
    for (let y = 20; y < 26; y++) for (let x = 10; x < 50; x++) prob[y * size + x] = 0.9;
    // the image was 128 wide and scaled by 0.5 into the map
    const boxes = dbBoxes(prob, size, { scale: 0.5, width: 128, height: 128 });
    expect(boxes).toHaveLength(1);
    expect(boxes[0]!.score).toBeCloseTo(0.9, 5);
    const grown = unclip({ center: [0, 0], axis: [1, 0], width: 40, height: 6 }, 1.5);
    const d = (40 * 6 * 1.5) / (2 * 46);
    expect(grown.width).toBeCloseTo(40 + 2 * d, 6);
    const q = boxes[0]!.quad;
    expect(q[1][0] - q[0][0]).toBeCloseTo((40 + 2 * d) * 2, 0);
    expect(q[3][1] - q[0][1]).toBeCloseTo((6 + 2 * d) * 2, 0);
    // a faint blob (mean below the box threshold) is dropped; empty maps give no boxes
    expect(
      dbBoxes(
        prob.map((v) => (v ? 0.4 : 0)),
        size,
        { scale: 1, width: 64, height: 64 },
      ),
    ).toHaveLength(0);
    expect(() => dbBoxes(new Float32Array(10), size, { scale: 1, width: 1, height: 1 })).toThrow(/expected 64²/);
  });
});

describe("pre-processing", () => {
  it("letterboxes without upscaling and normalises BGR with ImageNet statistics", () => {
    const img = { width: 2, height: 1, data: new Uint8ClampedArray([255, 0, 0, 255, 0, 0, 255, 255]) };
    const { data, letterbox } = detInput(img, 32);
    expect(letterbox.scale).toBe(1);
    // pixel 0 is red: channel 2 (red in BGR) is high, channel 0 (blue) low
    expect(data[2 * 32 * 32]).toBeCloseTo((1 - 0.406) / 0.225, 4);
    expect(data[0]).toBeCloseTo((0 - 0.485) / 0.229, 4);
    expect(data[5]).toBe(0); // padding
    expect(() => detInput({ width: 2, height: 2, data: new Uint8ClampedArray(3) })).toThrow(/needs 16/);
  });

  it("rectifies a line to the recogniser's height, keeping its aspect ratio and padding with zeros", () => {
    const w = 100;
    const h = 20;
    const data = new Uint8ClampedArray(w * h * 4).fill(255);
    const { data: out, width } = lineInput(
      { width: w, height: h, data },
      [
        [0, 0],
        [100, 0],
        [100, 20],
        [0, 20],
      ],
      48,
      320,
    );
    expect(width).toBe(240);
    expect(out[0]).toBeCloseTo(1, 5);
    expect(out[300]).toBe(0);
  });
});

describe("CTC and CER", () => {
  it("decodes greedily: repeats merged, blanks dropped, space last", () => {
    const charset = ctcCharset(["a", "b"]); // blank, a, b, space
    const steps = [1, 1, 0, 1, 3, 2, 2];
    const probs = new Float32Array(steps.length * 4);
    steps.forEach((k, t) => (probs[t * 4 + k] = 0.9));
    const decoded = ctcGreedyDecode(probs, steps.length, charset);
    expect(decoded.text).toBe("aa b");
    expect(decoded.confidence).toBeCloseTo(0.9, 6);
    expect(() => ctcGreedyDecode(probs, 3, charset)).toThrow(/expected 3 steps/);
    expect(isUpsideDown([0.05, 0.95])).toBe(true);
    expect(isUpsideDown([0.2, 0.8])).toBe(false);
  });

  it("measures character error rate", () => {
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
    expect(normaliseText("  a \t b  ")).toBe("a b");
    const t = { edits: 0, chars: 0 };
    addCer(t, "Total 42", "Total 42");
    addCer(t, "Totl", "Total");
    expect(t).toEqual({ edits: 1, chars: 13 });
    expect(oneMinusCer(t)).toBeCloseTo(12 / 13, 9);
    expect(oneMinusCer({ edits: 30, chars: 10 })).toBe(0);
  });
});
