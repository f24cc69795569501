// The simulator's pending events: a binary min-heap on (time, insertion sequence), so that events
// due at the same instant fire in the order they were scheduled and a run repeats exactly.
// Cancelled events stay in the heap with no callback (lazy deletion) and are skipped when they
// surface; the heap is rebuilt when they would otherwise dominate it.
import type { Timer } from "../cluster/clock.js";

export interface SimEvent extends Timer {
  at: number;
  seq: number;
  /** null once fired or cancelled. */
  fn: (() => void) | null;
  /** In the heap (a cancelled event stays there until it surfaces). */
  queued: boolean;
}

export class EventHeap {
  private items: SimEvent[] = [];
  private cancelled = 0;

  /** Live (not cancelled) events. */
  get size(): number {
    return this.items.length - this.cancelled;
  }

  push(ev: SimEvent): void {
    ev.queued = true;
    const items = this.items;
    let i = items.length;
    items.push(ev);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (!earlier(ev, p)) break;
      items[i] = p;
      i = parent;
    }
    items[i] = ev;
  }

  /** Marks a pending event cancelled; it is dropped when it reaches the top. */
  cancel(ev: SimEvent): void {
    if (ev.fn === null) return;
    ev.fn = null;
    this.cancelled++;
    if (this.cancelled > 1024 && this.cancelled * 2 > this.items.length) this.compact();
  }

  /** Time of the earliest live event (Infinity when none). */
  peekTime(): number {
    this.skipCancelled();
    return this.items.length > 0 ? this.items[0]!.at : Infinity;
  }

  /** Removes and returns the earliest live event if it is due at or before `until`. */
  popUntil(until: number): SimEvent | null {
    this.skipCancelled();
    const top = this.items[0];
    if (top === undefined || top.at > until) return null;
    this.removeTop();
    return top;
  }

  private skipCancelled(): void {
    while (this.items.length > 0 && this.items[0]!.fn === null) {
      this.removeTop();
      this.cancelled--;
    }
  }

  private removeTop(): void {
    const items = this.items;
    items[0]!.queued = false;
    const last = items.pop()!;
    if (items.length === 0) return;
    this.siftDown(last, 0);
  }

  private siftDown(ev: SimEvent, start: number): void {
    const items = this.items;
    const n = items.length;
    let i = start;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && earlier(items[right]!, items[child]!)) child = right;
      if (!earlier(items[child]!, ev)) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = ev;
  }

  private compact(): void {
    this.items = this.items.filter((ev) => {
      if (ev.fn === null) ev.queued = false;
      return ev.fn !== null;
    });
    this.cancelled = 0;
    for (let i = (this.items.length >> 1) - 1; i >= 0; i--) this.siftDown(this.items[i]!, i);
  }
}

function earlier(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
