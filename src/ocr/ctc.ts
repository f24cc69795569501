// Greedy CTC decoding of the recogniser's per-step probabilities with the package's dictionary, and
// the direction classifier's reading: the two small post-processing steps after detection.

/** The recogniser's classes: CTC blank, the dictionary's characters in file order, then the space. */
export function ctcCharset(dictionary: string[]): string[] {
  return ["", ...dictionary, " "];
}

export interface DecodedLine {
  text: string;
  /** Mean of the winning probability over the steps that emitted a character (0 for an empty line). */
  confidence: number;
}

/** Best class per step, repeats merged, blanks dropped. `probs` holds steps × classes values. */
export function ctcGreedyDecode(probs: ArrayLike<number>, steps: number, charset: string[]): DecodedLine {
  const classes = charset.length;
  if (probs.length !== steps * classes)
    throw new Error(`CTC output has ${probs.length} values, expected ${steps} steps × ${classes} classes`);
  let text = "";
  let sum = 0;
  let kept = 0;
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    const base = t * classes;
    let best = 0;
    let bestP = probs[base]!;
    for (let k = 1; k < classes; k++) {
      const p = probs[base + k]!;
      if (p > bestP) {
        bestP = p;
        best = k;
      }
    }
    if (best !== 0 && best !== previous) {
      text += charset[best]!;
      sum += bestP;
      kept++;
    }
    previous = best;
  }
  return { text, confidence: kept > 0 ? sum / kept : 0 };
}

/** PaddleOCR's classifier labels: index 1 means the line is upside down. */
export const CLS_FLIP_THRESHOLD = 0.9;

export function isUpsideDown(probs: ArrayLike<number>, offset = 0, threshold = CLS_FLIP_THRESHOLD): boolean {
  return probs[offset + 1]! > probs[offset]! && probs[offset + 1]! > threshold;
}
