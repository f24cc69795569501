// Hands out cores within a budget. An instance normally gets cores of its own (no other instance runs
// there); when every core is taken, a 1-core instance may share a core with other sharing instances, so
// that a small machine still serves every task (each a little slower) instead of refusing some.
export class CoreAllocator {
  /** Who holds each core. */
  private readonly holders: Set<string>[];
  /** Instances that hold a shared core rather than cores of their own. */
  private readonly sharing = new Set<string>();

  constructor(
    readonly budget: number,
    /** Most instances one core is shared among. */
    readonly maxSharing = 4,
  ) {
    if (!Number.isInteger(budget) || budget < 1)
      throw new Error(`core budget must be a positive integer, got ${budget}`);
    this.holders = Array.from({ length: budget }, () => new Set<string>());
  }

  /** Cores nobody holds. */
  get free(): number {
    return this.holders.filter((h) => h.size === 0).length;
  }

  /** Cores somebody holds (a shared core counts once). */
  get used(): number {
    return this.budget - this.free;
  }

  isShared(id: string): boolean {
    return this.sharing.has(id);
  }

  coresOf(id: string): number[] {
    return this.holders.flatMap((h, i) => (h.has(id) ? [i] : []));
  }

  /** Allocates `n` cores of its own to `id`, or returns null when fewer are free. */
  allocate(id: string, n: number): number[] | null {
    const free = this.holders.flatMap((h, i) => (h.size === 0 ? [i] : []));
    if (free.length < n) return null;
    const chosen = free.slice(0, n);
    for (const c of chosen) this.holders[c]!.add(id);
    return chosen;
  }

  /**
   * One core, shared: preferably one held by sharing instances only, then the one with the fewest holders;
   * null when every core already has `maxSharing` holders.
   */
  share(id: string): number[] | null {
    const rank = (c: number) => {
      const h = this.holders[c]!;
      const dedicated = [...h].some((x) => !this.sharing.has(x));
      return (dedicated ? this.maxSharing : 0) + h.size;
    };
    let best = -1;
    for (let c = 0; c < this.holders.length; c++)
      if (this.holders[c]!.size < this.maxSharing && (best < 0 || rank(c) < rank(best))) best = c;
    if (best < 0) return null;
    this.holders[best]!.add(id);
    this.sharing.add(id);
    return [best];
  }

  /**
   * Grows or shrinks `id`'s set to `n` cores, keeping the cores it has; null when too few are free. A sharing
   * instance that grows moves onto cores of its own.
   */
  resize(id: string, n: number): number[] | null {
    if (this.sharing.has(id)) {
      if (this.free < n) return null;
      this.release(id);
      return this.allocate(id, n);
    }
    const have = this.coresOf(id);
    if (n > have.length) {
      if (this.free < n - have.length) return null;
      this.allocate(id, n - have.length);
    } else {
      for (const c of have.slice(n)) this.holders[c]!.delete(id);
    }
    return this.coresOf(id);
  }

  release(id: string): void {
    for (const h of this.holders) h.delete(id);
    this.sharing.delete(id);
  }
}
