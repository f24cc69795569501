// Hands out disjoint sets of cores within a budget, so that instances never share a core.
export class CoreAllocator {
  private readonly owner: (string | null)[];

  constructor(readonly budget: number) {
    if (!Number.isInteger(budget) || budget < 1)
      throw new Error(`core budget must be a positive integer, got ${budget}`);
    this.owner = new Array<string | null>(budget).fill(null);
  }

  get free(): number {
    return this.owner.filter((o) => o === null).length;
  }

  get used(): number {
    return this.budget - this.free;
  }

  coresOf(id: string): number[] {
    return this.owner.flatMap((o, i) => (o === id ? [i] : []));
  }

  /** Allocates `n` free cores to `id`, or returns null when fewer are free. */
  allocate(id: string, n: number): number[] | null {
    const free = this.owner.flatMap((o, i) => (o === null ? [i] : []));
    if (free.length < n) return null;
    const chosen = free.slice(0, n);
    for (const c of chosen) this.owner[c] = id;
    return chosen;
  }

  /** Grows or shrinks `id`'s set to `n` cores, keeping the cores it has; null when too few are free. */
  resize(id: string, n: number): number[] | null {
    const have = this.coresOf(id);
    if (n > have.length) {
      if (this.free < n - have.length) return null;
      this.allocate(id, n - have.length);
    } else {
      for (const c of have.slice(n)) this.owner[c] = null;
    }
    return this.coresOf(id);
  }

  release(id: string): void {
    for (let i = 0; i < this.owner.length; i++) if (this.owner[i] === id) this.owner[i] = null;
  }
}
