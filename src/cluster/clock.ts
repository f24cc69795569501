// Time as the router and policies see it: milliseconds on a monotonic clock, and timers on it.
// Live code gets RealClock; the simulator supplies a virtual clock with the same interface.
export interface Timer {
  readonly at: number;
}

export interface Clock {
  now(): number;
  setTimer(at: number, fn: () => void): Timer;
  clearTimer(timer: Timer): void;
}

interface RealTimer extends Timer {
  handle: NodeJS.Timeout;
}

export class RealClock implements Clock {
  now(): number {
    return performance.now();
  }

  setTimer(at: number, fn: () => void): Timer {
    const handle = setTimeout(fn, Math.max(0, at - performance.now()));
    return { at, handle } as RealTimer;
  }

  clearTimer(timer: Timer): void {
    clearTimeout((timer as RealTimer).handle);
  }
}
