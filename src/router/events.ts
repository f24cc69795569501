// The router's events, each with any number of listeners: the meter, metrics, statistics, the
// dashboard and the simulator's recorder each subscribe themselves, instead of one hook that a
// composition root fans out by hand.
import type { Outcome, Request } from "./request.js";

export interface ExecutedBatch {
  task: string;
  variant: string;
  subnet?: string;
  instance: string;
  /** Rows in the batch (a request may carry several). */
  rows: number;
  requests: number;
  computeMs: number;
}

export interface RouterEvents {
  /** A request admitted to its task's queue. */
  arrived: (r: Request) => void;
  /** Every answered request, served or not, admitted or refused: each exactly once. */
  finished: (r: Request, o: Outcome) => void;
  /** Every batch an instance ran. */
  batch: (b: ExecutedBatch) => void;
  /**
   * A request its client gave up on (disconnected, cancelled, or its gRPC deadline passed), and where it
   * was: still queued, or sent in a batch (its row is computed if the batch runs, but not answered).
   */
  cancelled: (r: Request, where: "queued" | "dispatched") => void;
  /** A batch sent to an instance and then skipped there unrun: every one of its requests was cancelled. */
  dropped: (b: Omit<ExecutedBatch, "computeMs">) => void;
}

type Lists = { [K in keyof RouterEvents]: RouterEvents[K][] };

export class RouterEventHub {
  private readonly lists: Lists = { arrived: [], finished: [], batch: [], cancelled: [], dropped: [] };

  on<K extends keyof RouterEvents>(event: K, listener: RouterEvents[K]): () => void {
    const list = this.lists[event] as RouterEvents[K][];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  arrived(r: Request): void {
    for (const fn of this.lists.arrived) fn(r);
  }

  finished(r: Request, o: Outcome): void {
    for (const fn of this.lists.finished) fn(r, o);
  }

  batch(b: ExecutedBatch): void {
    for (const fn of this.lists.batch) fn(b);
  }

  cancelled(r: Request, where: "queued" | "dispatched"): void {
    for (const fn of this.lists.cancelled) fn(r, where);
  }

  dropped(b: Omit<ExecutedBatch, "computeMs">): void {
    for (const fn of this.lists.dropped) fn(b);
  }
}
