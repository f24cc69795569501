// Seeded distributions for trace generation. Every stochastic trace in sloserve must be
// reproducible from its seed, so all sampling goes through one PRNG (the zoo's mulberry32) and
// exact samplers (no Math.random, no approximations that would shift a rate or a CV²).
import { seededRandom } from "../zoo/onnx-builder.js";

export { seededRandom };

export class Rng {
  private readonly u: () => number;
  private spare = NaN;

  constructor(readonly seed: number) {
    this.u = seededRandom(seed);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.u();
  }

  /** Uniform in (0, 1]: safe under log() and pow(·, 1/k). */
  nextOpen(): number {
    return 1 - this.u();
  }

  /** Standard exponential (mean 1). */
  exponential(): number {
    return -Math.log(this.nextOpen());
  }

  /** Standard normal (Box–Muller, the second value kept for the next call). */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const z = this.spare;
      this.spare = NaN;
      return z;
    }
    const r = Math.sqrt(-2 * Math.log(this.nextOpen()));
    const theta = 2 * Math.PI * this.u();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Gamma(shape, scale 1) by Marsaglia–Tsang; shape < 1 through the U^(1/shape) boost. */
  gamma(shape: number): number {
    if (!(shape > 0)) throw new Error(`gamma shape must be > 0, got ${shape}`);
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(this.nextOpen(), 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.nextOpen();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** Poisson(mean): multiplication method for small means, Hörmann's PTRS (exact, O(1)) above. */
  poisson(mean: number): number {
    if (!(mean >= 0) || !Number.isFinite(mean)) throw new Error(`poisson mean must be finite and >= 0, got ${mean}`);
    if (mean === 0) return 0;
    if (mean < 10) {
      const limit = Math.exp(-mean);
      let k = 0;
      let p = this.nextOpen();
      while (p > limit) {
        k++;
        p *= this.nextOpen();
      }
      return k;
    }
    const slam = Math.sqrt(mean);
    const loglam = Math.log(mean);
    const b = 0.931 + 2.53 * slam;
    const a = -0.059 + 0.02483 * b;
    const invalpha = 1.1239 + 1.1328 / (b - 3.4);
    const vr = 0.9277 - 3.6224 / (b - 2);
    for (;;) {
      const u = this.u() - 0.5;
      const v = this.nextOpen();
      const us = 0.5 - Math.abs(u);
      const k = Math.floor(((2 * a) / us + b) * u + mean + 0.43);
      if (us >= 0.07 && v <= vr) return k;
      if (k < 0 || (us < 0.013 && v > us)) continue;
      if (Math.log(v) + Math.log(invalpha) - Math.log(a / (us * us) + b) <= -mean + k * loglam - logFactorial(k))
        return k;
    }
  }
}

const SMALL_LOG_FACTORIALS = (() => {
  const t = new Float64Array(32);
  for (let k = 2; k < t.length; k++) t[k] = t[k - 1]! + Math.log(k);
  return t;
})();

/** ln(k!) — exact table below 32, Stirling series (error < 1e-12) above. */
export function logFactorial(k: number): number {
  if (k < SMALL_LOG_FACTORIALS.length) return SMALL_LOG_FACTORIALS[k]!;
  const k2 = k * k;
  return (
    k * Math.log(k) - k + 0.5 * Math.log(2 * Math.PI * k) + 1 / (12 * k) - 1 / (360 * k * k2) + 1 / (1260 * k2 * k2 * k)
  );
}
