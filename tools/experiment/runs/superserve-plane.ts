// Reading the attainment–accuracy plane: the static curve (each subnet alone) interpolated at a
// policy's point, for the two headline deltas at matched points.

export interface PlanePoint {
  name: string;
  attainmentPct: number;
  /** Mean accuracy of served requests, in percent. */
  accuracyPct: number;
}

export interface Matched {
  /** Accuracy of the static curve at the policy's attainment (NaN when no static point reaches it). */
  staticAccuracyAtAttainment: number;
  /** Accuracy gain in points at equal attainment; against the best-attaining static point when none reaches it. */
  accuracyGain: number;
  /** True when no static point reaches the policy's attainment. */
  beyondStatic: boolean;
  /** Attainment of the static curve at the policy's accuracy. */
  staticAttainmentAtAccuracy: number;
  attainmentRatio: number;
}

/** Linear interpolation between the two static points around `x` (by `key`), clamped at the ends. */
function interpolate(
  points: PlanePoint[],
  key: "attainmentPct" | "accuracyPct",
  x: number,
  other: "attainmentPct" | "accuracyPct",
): number {
  const s = [...points].sort((a, b) => a[key] - b[key]);
  if (x <= s[0]![key]) return s[0]![other];
  if (x >= s.at(-1)![key]) return s.at(-1)![other];
  for (let i = 1; i < s.length; i++) {
    const a = s[i - 1]!;
    const b = s[i]!;
    if (x <= b[key]) return a[other] + ((x - a[key]) / (b[key] - a[key] || 1)) * (b[other] - a[other]);
  }
  return s.at(-1)![other];
}

/**
 * The static curve as a trade-off: attainment falls as accuracy rises, so the curve is the upper-left
 * envelope (a static point beaten on both axes by another is not on it).
 */
export function staticFront(points: PlanePoint[]): PlanePoint[] {
  return points.filter(
    (p) =>
      !points.some(
        (q) =>
          q !== p &&
          q.attainmentPct >= p.attainmentPct &&
          q.accuracyPct >= p.accuracyPct &&
          (q.attainmentPct > p.attainmentPct || q.accuracyPct > p.accuracyPct),
      ),
  );
}

export function matchAgainstStatic(policy: PlanePoint, statics: PlanePoint[]): Matched {
  const front = staticFront(statics);
  const bestAttaining = front.reduce((a, b) => (b.attainmentPct > a.attainmentPct ? b : a));
  const beyondStatic = policy.attainmentPct > bestAttaining.attainmentPct;
  const staticAccuracyAtAttainment = beyondStatic
    ? Number.NaN
    : interpolate(front, "attainmentPct", policy.attainmentPct, "accuracyPct");
  const accuracyGain = policy.accuracyPct - (beyondStatic ? bestAttaining.accuracyPct : staticAccuracyAtAttainment);
  const staticAttainmentAtAccuracy = interpolate(front, "accuracyPct", policy.accuracyPct, "attainmentPct");
  return {
    staticAccuracyAtAttainment,
    accuracyGain,
    beyondStatic,
    staticAttainmentAtAccuracy,
    attainmentRatio: policy.attainmentPct / Math.max(staticAttainmentAtAccuracy, 1e-9),
  };
}
