// The autoscaler's load forecaster (Themis' switching rule, EXPERIMENTS.md): every decision
// interval the control loop hands over the arrivals of the last HISTORY_SECONDS seconds and asks
// for the maximum per-second rate it should expect over the next HORIZON_SECONDS seconds.

/** Seconds of per-second arrival counts a forecaster looks at. */
export const HISTORY_SECONDS = 60;
/** Seconds ahead whose maximum per-second rate a forecaster predicts. */
export const HORIZON_SECONDS = 10;

export interface Forecaster {
  readonly name: string;
  /**
   * `history`: per-second arrival counts (requests/s) of the last HISTORY_SECONDS seconds, oldest
   * first; shorter right after start-up, possibly empty. Longer histories are cut to their last
   * HISTORY_SECONDS values. Resolves to the predicted maximum per-second rate over the next
   * HORIZON_SECONDS seconds: finite and ≥ 0 (0 for an empty history).
   *
   * Asynchronous because the LSTM runs on onnxruntime, whose session.run is; the control loop awaits
   * it once per decision.
   */
  predict(history: readonly number[]): Promise<number>;
  /**
   * Optional: a number no forecast exceeds, of any HISTORY_SECONDS-long history whose counts are all between
   * 0 and `maxCount`. The control loop uses it to know that a policy's answer cannot change while a task's
   * history only drains (see ScalingPolicy.holdsUntil).
   */
  ceiling?(maxCount: number): number;
  /** Frees what the forecaster holds (the LSTM's onnxruntime session). */
  close?(): Promise<void>;
}

/** The forecast target at second `t` of `counts`: max of counts[t .. t+horizon), clamped to the array. */
export function futureMax(counts: ArrayLike<number>, t: number, horizon = HORIZON_SECONDS): number {
  let m = 0;
  const end = Math.min(counts.length, t + horizon);
  for (let i = Math.max(0, t); i < end; i++) if (counts[i]! > m) m = counts[i]!;
  return m;
}
