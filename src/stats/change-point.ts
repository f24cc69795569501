// A two-sided CUSUM change detector (Page, 1954) on standardised residuals, with the size of the shift it
// found. Residuals are log(measured / predicted) batch times: a node that got 1.5× slower shifts them by
// ln 1.5 ≈ 0.41 at once, where an exponentially weighted mean alone would take tens of batches to follow.
// The noise scale is learnt from the residuals themselves (an EWMA of their square, clipped and floored),
// so a model whose batch times spread widely needs a larger shift, or longer, before it is called a change.
// When a sum crosses its threshold, the change is dated by maximum likelihood within the run (the split
// that maximises (Σ residuals after it)² / their count, a mean shift in Gaussian noise), and the new level
// is the mean of what was measured after that split: the noise that started the run is not averaged in.

export interface ChangePointOptions {
  /** Allowance per sample, in noise standard deviations (shifts smaller than 2k are ignored in the long run). */
  k: number;
  /** Decision threshold on the cumulative sum, in noise standard deviations. */
  h: number;
  /** Smallest noise scale assumed (log units): deterministic batch times must not make every wobble a change. */
  minSigma: number;
  /** Residuals beyond this many deviations count as this many: one stalled batch is not a change. */
  clip: number;
  /** Weight of a new squared residual in the noise estimate. */
  sigmaWeight: number;
  /**
   * Smallest shift reported (log units): smaller ones are left to the caller's weighted mean, which follows
   * them soon enough; reporting them would only log noise as changes.
   */
  minShift: number;
}

export const CHANGE_POINT_DEFAULTS: ChangePointOptions = {
  k: 0.5,
  h: 10,
  minSigma: 0.05,
  clip: 2.5,
  sigmaWeight: 0.05,
  minShift: 0.1,
};

/**
 * A change found: which way, the mean residual after the estimated change (the shift), the mean of the
 * levels pushed with those residuals (the new level), and how many samples that is.
 */
export interface ChangePoint {
  direction: "slower" | "faster";
  shift: number;
  level: number;
  samples: number;
}

/** Samples of a run kept for dating the change (a run longer than this is dated within its last ones). */
const RUN_WINDOW = 64;
const MIN_RUN = 2;

/** One side's cumulative sum and the samples since it left zero. */
class Side {
  sum = 0;
  n = 0;
  readonly residuals = new Float64Array(RUN_WINDOW);
  readonly levels = new Float64Array(RUN_WINDOW);

  add(z: number, k: number, sign: 1 | -1, residual: number, level: number): void {
    this.sum = Math.max(0, this.sum + sign * z - k);
    if (this.sum === 0) {
      this.n = 0;
      return;
    }
    const i = this.n++ % RUN_WINDOW;
    this.residuals[i] = residual;
    this.levels[i] = level;
  }

  /** The split of the kept run with the largest likelihood ratio; the residuals' and levels' means after it. */
  date(): { shift: number; level: number; samples: number } {
    const kept = Math.min(this.n, RUN_WINDOW);
    let best = { score: -1, shift: 0, level: 0, samples: 0 };
    let rs = 0;
    let ls = 0;
    for (let m = 1; m <= kept; m++) {
      const i = (this.n - m) % RUN_WINDOW;
      rs += this.residuals[i]!;
      ls += this.levels[i]!;
      const score = (rs * rs) / m;
      // a change is dated at least two samples back: one sample alone is an outlier, not a new level
      if (m >= MIN_RUN && score > best.score) best = { score, shift: rs / m, level: ls / m, samples: m };
    }
    return best;
  }

  reset(): void {
    this.sum = 0;
    this.n = 0;
  }
}

export class ChangeDetector {
  private readonly up = new Side();
  private readonly down = new Side();
  private var: number;

  constructor(
    private readonly o: ChangePointOptions = CHANGE_POINT_DEFAULTS,
    initialSigma = 0.1,
  ) {
    this.var = initialSigma ** 2;
  }

  get sigma(): number {
    return Math.max(this.o.minSigma, Math.sqrt(this.var));
  }

  /**
   * Feeds one residual, and the level it was measured at (e.g. the raw log ratio, whose mean after the change
   * is the new level); a change point when either sum crosses the threshold (both sums then restart).
   */
  push(residual: number, level = residual): ChangePoint | null {
    const sigma = this.sigma;
    const z = Math.max(-this.o.clip, Math.min(this.o.clip, residual / sigma));
    this.up.add(z, this.o.k, 1, residual, level);
    this.down.add(z, this.o.k, -1, residual, level);
    let found: ChangePoint | null = null;
    if (this.up.sum > this.o.h) found = { direction: "slower", ...this.up.date() };
    else if (this.down.sum > this.o.h) found = { direction: "faster", ...this.down.date() };
    if (found) {
      this.up.reset();
      this.down.reset();
      if (Math.abs(found.shift) < this.o.minShift || Math.sign(found.shift) !== (found.direction === "slower" ? 1 : -1))
        found = null;
    }
    // clipped, so that one stalled batch does not blind the detector to the shifts that follow
    this.var += this.o.sigmaWeight * ((z * sigma) ** 2 - this.var);
    return found;
  }

  reset(): void {
    this.up.reset();
    this.down.reset();
  }
}
