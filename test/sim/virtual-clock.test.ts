import { describe, expect, it } from "vitest";
import { VirtualClock } from "../../src/sim/virtual-clock.js";

describe("VirtualClock", () => {
  it("fires events in time order and same-time events in scheduling order", async () => {
    const clock = new VirtualClock();
    const seen: string[] = [];
    clock.setTimer(20, () => seen.push(`b@${clock.now()}`));
    clock.setTimer(10, () => seen.push(`a@${clock.now()}`));
    clock.setTimer(20, () => seen.push(`c@${clock.now()}`));
    const cancelled = clock.setTimer(15, () => seen.push("never"));
    clock.clearTimer(cancelled);
    clock.setTimer(10, () => clock.setTimer(5, () => seen.push(`past@${clock.now()}`)));
    await clock.runUntil(100);
    expect(seen).toEqual(["a@10", "past@10", "b@20", "c@20"]);
    expect(clock.now()).toBe(100);
  });

  it("stops at the horizon and resumes from there", async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    for (const t of [5, 10, 15]) clock.setTimer(t, () => seen.push(clock.now()));
    await clock.runUntil(10);
    expect(seen).toEqual([5, 10]);
    expect(clock.pending).toBe(1);
    await clock.advance(100);
    expect(seen).toEqual([5, 10, 15]);
    expect(clock.now()).toBe(110);
  });

  it("keeps order across many random timers with cancellations", async () => {
    const clock = new VirtualClock({ flush: "never" });
    const fired: [number, number][] = [];
    const timers = [];
    let x = 12345;
    for (let i = 0; i < 5000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      const at = x % 1000;
      timers.push(clock.setTimer(at, () => fired.push([clock.now(), i])));
    }
    for (let i = 0; i < 5000; i += 3) clock.clearTimer(timers[i]!);
    await clock.runUntil(Infinity);
    expect(fired.length).toBe(5000 - Math.ceil(5000 / 3));
    for (let k = 1; k < fired.length; k++) {
      const [t0, i0] = fired[k - 1]!;
      const [t1, i1] = fired[k]!;
      expect(t1 > t0 || (t1 === t0 && i1 > i0)).toBe(true);
    }
  });

  it("runs promise continuations at the virtual time they became runnable", async () => {
    const clock = new VirtualClock();
    const sleep = (ms: number) => new Promise<void>((resolve) => clock.setTimer(clock.now() + ms, resolve));
    const seen: string[] = [];
    // a chain of awaits several levels deep, like the controller awaiting converge awaiting cluster.start
    const inner = async () => {
      await sleep(100);
      await Promise.resolve();
      await Promise.all([sleep(50), sleep(20)]);
      return clock.now();
    };
    const outer = async () => {
      seen.push(`start@${clock.now()}`);
      const t = await inner();
      seen.push(`inner done@${t}/${clock.now()}`);
      await sleep(0);
      seen.push(`after sleep(0)@${clock.now()}`);
    };
    clock.setTimer(10, () => void outer());
    clock.setTimer(160, () => seen.push(`event@160`));
    clock.setTimer(161, () => seen.push(`event@161`));
    await clock.runUntil(1000);
    expect(seen).toEqual(["start@10", "event@160", "inner done@160/160", "after sleep(0)@160", "event@161"]);
  });

  it("flushes only after events that touched a promise", async () => {
    const clock = new VirtualClock();
    let n = 0;
    for (let i = 0; i < 1000; i++) clock.setTimer(i, () => n++);
    clock.setTimer(500.5, () => void Promise.resolve().then(() => n++));
    await clock.runUntil(Infinity);
    expect(n).toBe(1001);
    expect(clock.events).toBe(1001);
    expect(clock.flushes).toBe(1);
  });

  it("stop() ends the run after the current event", async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    for (const t of [1, 2, 3])
      clock.setTimer(t, () => {
        seen.push(t);
        if (t === 2) clock.stop();
      });
    await clock.runUntil(10);
    expect(seen).toEqual([1, 2]);
    expect(clock.now()).toBe(2);
  });
});
