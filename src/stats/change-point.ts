// A two-sided CUSUM change detector (Page, 1954) on standardised residuals, with the size of the shift it
// found. Residuals are log(measured / predicted) batch times: a node that got 1.5× slower shifts them by
// ln 1.5 ≈ 0.41 at once, where an exponentially weighted mean alone would take tens of batches to follow.
// The noise scale is learnt from the residuals themselves (an EWMA of their square, floored), so a model
// whose batch times spread widely needs a larger shift, or longer, before it is called a change.

export interface ChangePointOptions {
  /** Allowance per sample, in noise standard deviations (shifts smaller than 2k are ignored in the long run). */
  k: number;
  /** Decision threshold on the cumulative sum, in noise standard deviations. */
  h: number;
  /** Smallest noise scale assumed (log units): deterministic batch times must not make every wobble a change. */
  minSigma: number;
  /** Residuals beyond this many deviations count as this many (one stalled batch is not a change). */
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
  h: 5,
  minSigma: 0.05,
  clip: 4,
  sigmaWeight: 0.05,
  minShift: 0.1,
};

/**
 * A change found: which way, the mean residual since the sum left zero (the shift), the mean of the levels
 * pushed with those residuals (the new level), and over how many samples.
 */
export interface ChangePoint {
  direction: "slower" | "faster";
  shift: number;
  level: number;
  samples: number;
}

export class ChangeDetector {
  private up = 0;
  private down = 0;
  private upSum = 0;
  private upLevel = 0;
  private upN = 0;
  private downSum = 0;
  private downLevel = 0;
  private downN = 0;
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
   * Feeds one residual, and the level it was measured at (the raw log ratio, whose mean over the run is the
   * new level); a change point when either sum crosses the threshold (both sums then restart).
   */
  push(residual: number, level = residual): ChangePoint | null {
    const z = Math.max(-this.o.clip, Math.min(this.o.clip, residual / this.sigma));
    this.up = Math.max(0, this.up + z - this.o.k);
    if (this.up > 0) {
      this.upSum += residual;
      this.upLevel += level;
      this.upN++;
    } else {
      this.upSum = this.upLevel = this.upN = 0;
    }
    this.down = Math.max(0, this.down - z - this.o.k);
    if (this.down > 0) {
      this.downSum += residual;
      this.downLevel += level;
      this.downN++;
    } else {
      this.downSum = this.downLevel = this.downN = 0;
    }
    let found: ChangePoint | null = null;
    if (this.up > this.o.h)
      found = { direction: "slower", shift: this.upSum / this.upN, level: this.upLevel / this.upN, samples: this.upN };
    else if (this.down > this.o.h)
      found = {
        direction: "faster",
        shift: this.downSum / this.downN,
        level: this.downLevel / this.downN,
        samples: this.downN,
      };
    if (found) {
      this.reset();
      if (Math.abs(found.shift) < this.o.minShift) found = null;
    }
    // clipped, so that one stalled batch does not blind the detector to the shifts that follow
    this.var += this.o.sigmaWeight * ((z * this.sigma) ** 2 - this.var);
    return found;
  }

  reset(): void {
    this.up = this.down = 0;
    this.upSum = this.downSum = this.upLevel = this.downLevel = 0;
    this.upN = this.downN = 0;
  }
}
