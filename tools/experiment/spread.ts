// Figures over seeds (EXPERIMENTS.md, "Seeds and spread"): the median and the range of each figure and
// of each ratio; a ratio claimed only where the two policies' ranges do not overlap.
import { median } from "../../src/stats/quantile.js";

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spreadOf(xs: readonly number[]): Spread {
  const known = xs.filter((x) => !Number.isNaN(x));
  if (known.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  // ratios may be ∞ (x/0): interpolating between two infinities would give NaN, so they are ranked as the
  // largest finite number and turned back afterwards
  const m = median(known.map((x) => (x === Number.POSITIVE_INFINITY ? Number.MAX_VALUE : x)));
  return {
    median: m > Number.MAX_VALUE / 4 ? Number.POSITIVE_INFINITY : m,
    min: Math.min(...known),
    max: Math.max(...known),
  };
}

/** The spread over seeds of each named figure. */
export function spreadsOf<K extends string>(
  seeds: readonly Record<K, number>[],
  keys: readonly K[],
): Record<K, Spread> {
  return Object.fromEntries(keys.map((k) => [k, spreadOf(seeds.map((x) => x[k]))])) as Record<K, Spread>;
}

/** Do [a.min, a.max] and [b.min, b.max] share a point? */
export function overlaps(a: Spread, b: Spread): boolean {
  return a.min <= b.max && b.min <= a.max;
}

/** a/b with 0/0 = 1 and x/0 = ∞. */
export function safeRatio(a: number, b: number): number {
  if (b === 0) return a === 0 ? 1 : Number.POSITIVE_INFINITY;
  return a / b;
}

export function fmtSpread(s: Spread, digits: number, unit = ""): string {
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(digits) : x > 0 ? "∞" : "–");
  if (s.min === s.max) return `${f(s.median)}${unit}`;
  return `${f(s.median)}${unit} [${f(s.min)}–${f(s.max)}]`;
}

/** JSON has no ∞: infinite ratios are written as null (and say so in their `infinite` flag). */
export function jsonSpread(s: Spread): { median: number | null; min: number | null; max: number | null } {
  const j = (x: number) => (Number.isFinite(x) ? x : null);
  return { median: j(s.median), min: j(s.min), max: j(s.max) };
}
