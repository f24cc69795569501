// Which tasks the control loop looks at on a tick. Looking at every task on every tick costs one pass over
// all of them per interval, whatever they do; with hundreds of mostly idle tasks that pass is the loop.
// Here a task the loop has nothing to do for sleeps: a quiet one (it would be found still quiet), a stage
// of a pipeline planned as a whole (it is not decided alone), or one whose policy promised the same answer
// until some time (a hold). It wakes when something happens to it — a request, an instance change — or
// when its hold runs out, and is then looked at again in registration order, as if it had been all along.

/** A policy's promise that deciding again would give the same answer, as the loop keeps it. */
export interface Hold {
  /** Clock ms of the decision it repeats. */
  from: number;
  /** Time between the decisions it stands for: the task's interval in whole ticks. */
  spacing: number;
  /** The tick at which the promise has run out and the task must be decided again. */
  wakeAt: number;
  /** The tick from which the loop, had it decided all along, would find the task quiet (Infinity: never). */
  quietAt: number;
  /** The task's instances when the hold began (variant:cores:state each): any other set wakes it. */
  shape: string;
}

interface Slot {
  readonly name: string;
  /** Registration order: the order the loop decides tasks in. */
  readonly order: number;
  awake: boolean;
  /** In the list of the next tick. */
  listed: boolean;
  hold: Hold | null;
}

export class DecisionSchedule {
  private readonly slots = new Map<string, Slot>();
  private order = 0;
  /** Tasks to look at on the next tick (unordered). */
  private next: Slot[] = [];
  /** Tasks the current tick looks at, and how far it has gone through them. */
  private current: Slot[] = [];
  private cursor = 0;
  /** Holds by the tick they end at (earliest first); entries of a hold that ended early are skipped. */
  private readonly timers = new HoldHeap();
  /** Tasks asleep on a hold. */
  readonly held = new Set<Slot>();

  /** Registers a task (awake); one registered again keeps its place. */
  add(name: string): void {
    let s = this.slots.get(name);
    if (!s) {
      s = { name, order: this.order++, awake: false, listed: false, hold: null };
      this.slots.set(name, s);
    }
    this.drop(s);
    this.wakeSlot(s);
  }

  remove(name: string): void {
    const s = this.slots.get(name);
    if (!s) return;
    this.drop(s);
    s.awake = false;
    this.slots.delete(name);
    this.next = this.next.filter((x) => x !== s);
  }

  /** Something happened to the task: the loop looks at it on the next tick. */
  wake(name: string): void {
    const s = this.slots.get(name);
    if (s && !s.awake) this.wakeSlot(s);
  }

  /** The loop has nothing to do for the task until it is woken. */
  rest(name: string): void {
    const s = this.slots.get(name);
    if (s) s.awake = false;
  }

  /** The task sleeps on a hold until `h.wakeAt` or `h.quietAt`, whichever comes first, or until woken. */
  hold(name: string, h: Hold): void {
    const s = this.slots.get(name);
    if (!s) return;
    s.awake = false;
    s.hold = h;
    this.held.add(s);
    const at = Math.min(h.wakeAt, h.quietAt);
    if (at < Infinity) this.timers.push(at, s, h);
  }

  /**
   * Sleeping tasks with the instance shape they sleep on (`quietShape` gives a quiet one's), and whether
   * each is on a hold; `later` keeps only those the current tick has not reached yet.
   */
  sleepers(quietShape: (name: string) => string | undefined, later = false): [string, string, boolean][] {
    const out: [string, string, boolean][] = [];
    const after = later ? (this.current[this.cursor - 1]?.order ?? -1) : -1;
    for (const s of this.slots.values()) {
      if (s.awake || s.order <= after) continue;
      const shape = s.hold?.shape ?? quietShape(s.name);
      if (shape !== undefined) out.push([s.name, shape, s.hold !== null]);
    }
    return out;
  }

  /**
   * Something happened to a sleeping task during a tick: one the tick has not reached yet is looked at in its
   * turn (its hold released as of now), one it has passed on the next tick.
   */
  wakeInTick(name: string, release: (name: string, h: Hold) => void): void {
    const s = this.slots.get(name);
    if (!s || s.awake) return;
    const after = this.current[this.cursor - 1]?.order ?? -1;
    if (this.cursor === 0 || s.order <= after) {
      this.wakeSlot(s);
      return;
    }
    if (s.hold) {
      release(s.name, s.hold);
      this.drop(s);
    }
    s.awake = true;
    let i = this.cursor;
    while (i < this.current.length && this.current[i]!.order < s.order) i++;
    this.current.splice(i, 0, s);
  }

  /** Wakes every task; `release` books what each held one stood for. */
  wakeAll(release: (name: string, h: Hold) => void): void {
    for (const s of this.slots.values()) {
      if (s.hold) release(s.name, s.hold);
      this.drop(s);
      this.wakeSlot(s);
    }
  }

  /**
   * Starts a tick at `now`: it looks, in registration order (nextDue()), at the tasks that stayed awake,
   * those woken since, and those whose hold ends by now (`slack` absorbs a live timer's lateness). `release`
   * books what each hold that ends stood for. While the loop goes through them, rest() and hold() put tasks
   * to sleep; settle() then keeps the others for the next tick.
   */
  begin(now: number, slack: number, release: (name: string, h: Hold) => void): void {
    for (;;) {
      const top = this.timers.peek();
      if (top === null || top.at > now + slack) break;
      this.timers.pop();
      if (top.slot.hold === top.hold) this.wakeSlot(top.slot);
    }
    const list = this.next;
    this.next = [];
    list.sort((a, b) => a.order - b.order);
    for (const s of list) {
      s.listed = false;
      if (s.hold) {
        release(s.name, s.hold);
        this.drop(s);
      }
    }
    this.current = list;
    this.cursor = 0;
  }

  /** The next task the current tick looks at (null at its end). */
  nextDue(): string | null {
    return this.cursor < this.current.length ? this.current[this.cursor++]!.name : null;
  }

  /** After a tick: the tasks it looked at that nothing put to sleep stay awake for the next one. */
  settle(): void {
    for (const s of this.current) if (s.awake && !s.listed && this.slots.get(s.name) === s) this.list(s);
    this.current = [];
    this.cursor = 0;
  }

  private wakeSlot(s: Slot): void {
    s.awake = true;
    if (!s.listed) this.list(s);
  }

  private list(s: Slot): void {
    s.listed = true;
    this.next.push(s);
  }

  private drop(s: Slot): void {
    s.hold = null;
    this.held.delete(s);
  }
}

interface Entry {
  at: number;
  slot: Slot;
  hold: Hold;
}

/** A binary min-heap of hold ends. */
class HoldHeap {
  private readonly items: Entry[] = [];

  push(at: number, slot: Slot, hold: Hold): void {
    const items = this.items;
    const e = { at, slot, hold };
    let i = items.length;
    items.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (items[p]!.at <= at) break;
      items[i] = items[p]!;
      i = p;
    }
    items[i] = e;
  }

  peek(): Entry | null {
    return this.items[0] ?? null;
  }

  pop(): void {
    const items = this.items;
    const last = items.pop()!;
    if (items.length === 0) return;
    const n = items.length;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && items[c + 1]!.at < items[c]!.at) c++;
      if (items[c]!.at >= last.at) break;
      items[i] = items[c]!;
      i = c;
    }
    items[i] = last;
  }
}
