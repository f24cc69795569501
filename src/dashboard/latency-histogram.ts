// Per-second latency percentiles at any request rate: a log-spaced histogram costs one Math.log per
// request and a fixed few hundred buckets per second, where keeping and sorting every sample would
// grow with the load. Buckets 5 % wide bound the error of a reported percentile by about 2.5 %.
const MIN_MS = 0.01;
const GROWTH = 1.05;
const LOG_GROWTH = Math.log(GROWTH);
/** 0.01 ms … ~100 s; anything beyond lands in the last bucket. */
const BUCKETS = Math.ceil(Math.log(1e7) / LOG_GROWTH) + 1;

export class LatencyHistogram {
  private readonly counts = new Uint32Array(BUCKETS);
  private total = 0;

  add(ms: number): void {
    const i = ms <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(ms / MIN_MS) / LOG_GROWTH));
    this.counts[i]! += 1;
    this.total += 1;
  }

  get count(): number {
    return this.total;
  }

  /** The q-quantile (0..1) as the geometric middle of its bucket; null when empty. */
  quantile(q: number): number | null {
    if (this.total === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return MIN_MS * GROWTH ** (i + 0.5);
    }
    return MIN_MS * GROWTH ** (BUCKETS - 0.5);
  }

  reset(): void {
    if (this.total === 0) return;
    this.counts.fill(0);
    this.total = 0;
  }
}
