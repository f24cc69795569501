// Character error rate: edit distance between what was read and the truth, over the truth's length.

/** Levenshtein distance over Unicode code points (two rows, O(|a|·|b|) time). */
export function editDistance(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  if (x.length === 0) return y.length;
  if (y.length === 0) return x.length;
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  let cur = new Array<number>(y.length + 1).fill(0);
  for (let i = 1; i <= x.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= y.length; j++) {
      const sub = prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1);
      cur[j] = Math.min(sub, prev[j]! + 1, cur[j - 1]! + 1);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[y.length]!;
}

/** Spaces are runs of whitespace, and none at the ends: the models read a gap, not its width. */
export function normaliseText(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

export interface CerTally {
  edits: number;
  chars: number;
}

export function addCer(t: CerTally, predicted: string, truth: string): void {
  t.edits += editDistance(normaliseText(predicted), normaliseText(truth));
  t.chars += [...normaliseText(truth)].length;
}

/** 1 − CER, floored at 0 (insertions can push CER above 1). */
export function oneMinusCer(t: CerTally): number {
  return t.chars > 0 ? Math.max(0, 1 - t.edits / t.chars) : 0;
}
