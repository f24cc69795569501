// A task's queue, kept sorted by (priority, key, arrival order) where the key is the deadline (EDF)
// or the arrival time (FIFO). Requests mostly arrive in key order, so insertion searches from the
// tail and is O(1) in the common case; batches are taken from the head.
import type { Request } from "./request.js";

export type QueueOrder = "deadline" | "arrival";

export class RequestQueue {
  private items: Request[] = [];
  private rowsQueued = 0;

  constructor(readonly order: QueueOrder) {}

  get length(): number {
    return this.items.length;
  }

  get rows(): number {
    return this.rowsQueued;
  }

  at(i: number): Request | undefined {
    return this.items[i];
  }

  [Symbol.iterator](): Iterator<Request> {
    return this.items[Symbol.iterator]();
  }

  push(r: Request): void {
    let i = this.items.length;
    while (i > 0 && this.before(r, this.items[i - 1]!)) i--;
    if (i === this.items.length) this.items.push(r);
    else this.items.splice(i, 0, r);
    this.rowsQueued += r.rows;
  }

  /** Rows queued that a request like `r` would wait behind (it is not in the queue). */
  rowsAhead(r: Request): number {
    let rows = 0;
    for (const q of this.items) {
      if (!this.before(q, r)) break;
      rows += q.rows;
    }
    return rows;
  }

  /** Removes the given requests (any order); returns how many were found. */
  remove(rs: readonly Request[]): number {
    if (rs.length === 0) return 0;
    if (rs.length <= this.items.length && this.atHead(rs)) {
      // the common case: a batch taken from the head in queue order
      for (const r of rs) this.rowsQueued -= r.rows;
      this.items.splice(0, rs.length);
      return rs.length;
    }
    const drop = new Set(rs);
    const before = this.items.length;
    this.items = this.items.filter((r) => {
      if (!drop.has(r)) return true;
      this.rowsQueued -= r.rows;
      return false;
    });
    return before - this.items.length;
  }

  /** Removes one request, found by binary search on the queue's order; false when it is not queued. */
  removeOne(r: Request): boolean {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.before(this.items[mid]!, r)) lo = mid + 1;
      else hi = mid;
    }
    if (this.items[lo] !== r) return false;
    this.items.splice(lo, 1);
    this.rowsQueued -= r.rows;
    return true;
  }

  /** Removes and returns the last request (the lowest class's latest): room for a higher class. */
  pop(): Request | undefined {
    const r = this.items.pop();
    if (r) this.rowsQueued -= r.rows;
    return r;
  }

  private atHead(rs: readonly Request[]): boolean {
    for (let i = 0; i < rs.length; i++) if (this.items[i] !== rs[i]) return false;
    return true;
  }

  /** Removes and returns everything (shutdown). */
  drain(): Request[] {
    const all = this.items;
    this.items = [];
    this.rowsQueued = 0;
    return all;
  }

  private key(r: Request): number {
    return this.order === "deadline" ? r.deadline : r.arrival;
  }

  private before(a: Request, b: Request): boolean {
    if (a.priority !== b.priority) return a.priority < b.priority;
    const ka = this.key(a);
    const kb = this.key(b);
    if (ka !== kb) return ka < kb;
    return a.seq < b.seq;
  }
}
