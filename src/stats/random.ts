// Every random draw in sloserve comes from here, seeded: a trace, a weight tensor or a simulation must
// repeat exactly from its seed (Math.random cannot be seeded). Two generators, because committed results
// depend on each: mulberry32 draws the traces, the synthetic arrivals and the zoo's seeded weights;
// xoshiro128** (53-bit uniforms, independent forked streams) drives the simulator. The distributions are
// written once over either generator, with exact samplers (no approximation that would shift a rate or a CV²).

/** mulberry32: a function returning uniforms in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Distributions over a generator's uniforms. */
export abstract class RandomSource {
  private spareNormal = Number.NaN;

  /** Uniform in [0, 1). */
  abstract next(): number;

  /** Uniform in (0, 1]: safe under log() and pow(·, 1/k). */
  abstract open(): number;

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Exponential with the given mean. */
  exponential(mean = 1): number {
    return -Math.log(this.open()) * mean;
  }

  /** Standard normal (Box–Muller, the second value of each pair kept for the next call). */
  normal(): number {
    if (!Number.isNaN(this.spareNormal)) {
      const z = this.spareNormal;
      this.spareNormal = Number.NaN;
      return z;
    }
    const r = Math.sqrt(-2 * Math.log(this.open()));
    const theta = 2 * Math.PI * this.next();
    this.spareNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Gamma(shape, scale 1) by Marsaglia–Tsang; shape < 1 through the U^(1/shape) boost. */
  gamma(shape: number): number {
    if (!(shape > 0)) throw new Error(`gamma shape must be > 0, got ${shape}`);
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(this.open(), 1 / shape);
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
      const u = this.open();
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
      let p = this.open();
      while (p > limit) {
        k++;
        p *= this.open();
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
      const u = this.next() - 0.5;
      const v = this.open();
      const us = 0.5 - Math.abs(u);
      const k = Math.floor(((2 * a) / us + b) * u + mean + 0.43);
      if (us >= 0.07 && v <= vr) return k;
      if (k < 0 || (us < 0.013 && v > us)) continue;
      if (Math.log(v) + Math.log(invalpha) - Math.log(a / (us * us) + b) <= -mean + k * loglam - logFactorial(k))
        return k;
    }
  }
}

/** mulberry32 with distributions: traces, synthetic arrivals, seeded inputs. */
export class Mulberry32 extends RandomSource {
  private readonly u: () => number;

  constructor(readonly seed: number) {
    super();
    this.u = seededRandom(seed);
  }

  next(): number {
    return this.u();
  }

  open(): number {
    return 1 - this.u();
  }
}

/** xoshiro128** (seeded through splitmix32) with distributions: the simulator's streams. */
export class Xoshiro128 extends RandomSource {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    super();
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in the open interval (0, 1) with 53 bits: logs of it stay finite and exponential tails are not cut at 2⁻³². */
  uniform(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo + 0.5) / 9007199254740992;
  }

  next(): number {
    return this.uniform();
  }

  open(): number {
    return this.uniform();
  }

  /** An independent generator derived from this one (a separate stream per purpose). */
  fork(): Xoshiro128 {
    return new Xoshiro128(this.nextUint32());
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** z of the 99th percentile of the standard normal: p99 = p50 · exp(σ · Z99) for a lognormal. */
export const Z99 = 2.3263478740408408;

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
