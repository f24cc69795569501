// Stage model of the Themis planner (docs/EXPERIMENTS.md, "Shared definitions" and "Themis"): the
// Amdahl-form latency l(b,c) = α·b/c + β·b + γ/c + ζ in ms, its integer-ms form, throughput, the
// batch-formation queueing delay and the per-instance cost, under two semantics:
//   v1      — Themis' 2024 code: lat = int(l) (truncation), q = int((b−1)·1000/λ), cost = cores.
//   revised — Themis' 2025 code: ζ' = ζ + (α+β+γ+ζ)/10, lat = ceil(l with ζ'), q = ceil of the p99 of
//             Gamma(b−1, 1/λ) in ms (the time until b−1 more Poisson arrivals), cost = n·(mem_GB + 18·c).
// In both, h(b,c) = floor(1000·b / lat(b,c)) with the *integer* latency (golden vector A1 decides:
// stage 1 at 4 cores, b=1 has l = 33.95 ms, floor(1000/33.95) = 29 < 30 = λ, but floor(1000/33) = 30).
// Everything here is pure arithmetic: no clock, no I/O.
import { latencyOf } from "../../stats/latency-model.js";

export type Semantics = "v1" | "revised";

/**
 * How the batch-formation delay is budgeted: `mean` (v1, IPA: (b−1)·1000/λ), `gamma-p99` (the revised
 * solver examples, golden vector A2: the p99 of the time for b−1 Poisson arrivals) or `exp-p99` (the revised
 * 2025 control loop: (b−1) times the p99 of one exponential inter-arrival, (b−1)·ln(100)·1000/λ).
 */
export type QueueModel = "mean" | "gamma-p99" | "exp-p99";

/** The queue model a semantics implies when none is named. */
export function queueModelOf(semantics: Semantics): QueueModel {
  return semantics === "v1" ? "mean" : "gamma-p99";
}

export interface StageModel {
  alpha: number;
  beta: number;
  gamma: number;
  zeta: number;
  /** Memory of one instance in GB; only the revised cost uses it (0 when absent). */
  memGb?: number;
}

/** Revised semantics' cost weight of one core, relative to one GB of memory. */
export const CORE_WEIGHT = 18;
/** Percentile of the batch-formation time the revised semantics budget for. */
export const QUEUE_PERCENTILE = 0.99;

/** The model the semantics evaluate: revised adds a tenth of l(1,1) to ζ as headroom. */
export function effectiveModel(m: StageModel, semantics: Semantics): StageModel {
  if (semantics === "v1") return m;
  return { ...m, zeta: m.zeta + (m.alpha + m.beta + m.gamma + m.zeta) / 10 };
}

/** l(b,c) in ms before rounding, under the semantics. */
export function latencyRaw(m: StageModel, b: number, c: number, semantics: Semantics): number {
  return latencyOf(effectiveModel(m, semantics), b, c);
}

/**
 * Integer latency in DP time units of `unitMs` (1 ms in the papers; sub-ms models need finer units or
 * every choice rounds to 0): v1 truncates (Python int()), revised rounds up. A latency is at least one
 * unit: a batch never takes no time (the authors' code would divide by zero there), and a least-squares
 * fit of a sub-millisecond model can dip below zero off its grid — that is the fit's error, not a free
 * configuration to skip.
 */
export function lat(m: StageModel, b: number, c: number, semantics: Semantics, unitMs = 1): number {
  const l = latencyRaw(m, b, c, semantics) / unitMs;
  if (Number.isNaN(l)) return 0;
  return Math.max(1, semantics === "v1" ? Math.trunc(l) : Math.ceil(l - 1e-9));
}

/** Requests per second one instance serves: floor(1000·b / lat) on the integer latency; 0 when lat ≤ 0. */
export function throughput(m: StageModel, b: number, c: number, semantics: Semantics, unitMs = 1): number {
  const l = lat(m, b, c, semantics, unitMs) * unitMs;
  return l > 0 ? Math.floor((1000 * b) / l + 1e-9) : 0;
}

/**
 * Batch-formation delay at arrival rate λ (req/s) in integer units of `unitMs`; 0 for b = 1. v1 truncates,
 * the revised semantics round up.
 */
export function queueMs(
  b: number,
  lambda: number,
  semantics: Semantics,
  unitMs = 1,
  model: QueueModel = queueModelOf(semantics),
): number {
  if (b <= 1) return 0;
  if (!(lambda > 0)) return Number.POSITIVE_INFINITY;
  const ms =
    model === "mean"
      ? ((b - 1) * 1000) / lambda
      : model === "exp-p99"
        ? ((b - 1) * Math.log(1 / (1 - QUEUE_PERCENTILE)) * 1000) / lambda
        : gammaQuantile(QUEUE_PERCENTILE, b - 1, 1000 / lambda);
  return semantics === "v1" ? Math.trunc(ms / unitMs + 1e-9) : Math.ceil(ms / unitMs - 1e-9);
}

/**
 * The DP time unit for a set of stages: 1 ms (the papers') when the fastest batch-1 latency at C_max is
 * at least 10 ms, else the largest power-of-ten fraction of a ms that keeps it ≥ 10 units — but never
 * so fine that the SLO spans more than 1,000 units, which bounds the DP's time.
 */
export function unitFor(stages: StageModel[], cMax: number, semantics: Semantics, sloMs: number): number {
  const fastest = Math.min(...stages.map((m) => latencyRaw(m, 1, cMax, semantics)));
  let unit = 1;
  while (unit > 1e-3 && fastest / unit < 10 && sloMs / (unit / 10) <= 1_000) unit /= 10;
  return unit;
}

/** Cost of one instance with c cores: v1 counts cores; revised mem_GB + 18·c. */
export function instanceCost(m: StageModel, c: number, semantics: Semantics): number {
  return semantics === "v1" ? c : (m.memGb ?? 0) + CORE_WEIGHT * c;
}

// ---------------------------------------------------------------------------------------------
// Gamma distribution: ln Γ, the regularized lower incomplete gamma P(a, x), and its inverse.

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~15 significant digits). */
export function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let s = LANCZOS[0]!;
  for (let i = 1; i < 9; i++) s += LANCZOS[i]! / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

/** Regularized lower incomplete gamma P(a, x) = γ(a, x)/Γ(a), a > 0, x ≥ 0. */
export function gammaP(a: number, x: number): number {
  if (!(a > 0)) throw new RangeError(`gamma shape must be > 0, got ${a}`);
  if (x <= 0) return 0;
  const lnPre = a * Math.log(x) - x - lnGamma(a);
  if (x < a + 1) {
    // Series: P = e^{-x} x^a / Γ(a+1) · Σ x^n / ((a+1)…(a+n)).
    let ap = a;
    let del = 1 / a;
    let sum = del;
    for (let n = 0; n < 10_000; n++) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * 1e-16) break;
    }
    return Math.min(1, sum * Math.exp(lnPre));
  }
  // Continued fraction for Q = 1 − P (modified Lentz).
  const tiny = 1e-300;
  let bb = x + 1 - a;
  let cc = 1 / tiny;
  let dd = 1 / bb;
  let h = dd;
  for (let i = 1; i < 10_000; i++) {
    const an = -i * (i - a);
    bb += 2;
    dd = an * dd + bb;
    if (Math.abs(dd) < tiny) dd = tiny;
    cc = bb + an / cc;
    if (Math.abs(cc) < tiny) cc = tiny;
    dd = 1 / dd;
    const del = dd * cc;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return Math.max(0, 1 - Math.exp(lnPre) * h);
}

/**
 * The p-quantile of Gamma(shape k, scale θ): x with P(k, x/θ) = p. Brackets the root, then Newton steps
 * safeguarded by bisection (the density is e^{(k−1)ln x − x − lnΓ(k)}), to ~1e-12 relative.
 */
export function gammaQuantile(p: number, shape: number, scale = 1): number {
  if (!(p >= 0 && p < 1)) throw new RangeError(`quantile level must be in [0, 1), got ${p}`);
  if (!(shape > 0) || !(scale > 0)) throw new RangeError(`gamma needs shape > 0 and scale > 0, got ${shape}, ${scale}`);
  if (p === 0) return 0;
  let lo = 0;
  let hi = Math.max(1, shape);
  while (gammaP(shape, hi) < p) {
    lo = hi;
    hi *= 2;
  }
  // Wilson–Hilferty start, clamped into the bracket.
  const z = normalQuantile(p);
  const v = 1 / (9 * shape);
  let x = shape * Math.pow(Math.max(1 - v + z * Math.sqrt(v), 1e-3), 3);
  if (!(x > lo && x < hi)) x = (lo + hi) / 2;
  const lg = lnGamma(shape);
  for (let i = 0; i < 200; i++) {
    const f = gammaP(shape, x) - p;
    if (f === 0) break;
    if (f < 0) lo = x;
    else hi = x;
    const dens = Math.exp((shape - 1) * Math.log(x) - x - lg);
    let next = dens > 0 ? x - f / dens : Number.NaN;
    if (!(next > lo && next < hi)) next = (lo + hi) / 2;
    if (Math.abs(next - x) <= 1e-14 * x || hi - lo <= 1e-14 * hi) {
      x = next;
      break;
    }
    x = next;
  }
  return x * scale;
}

/** Standard normal quantile (Acklam's rational approximation, ~1e-9; only used as a starting point). */
function normalQuantile(p: number): number {
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239,
  ];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -15.76015947838434];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const pl = 0.02425;
  if (p < pl) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
    );
  }
  if (p > 1 - pl) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}
