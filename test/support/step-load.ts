// An open-loop load of one vision variant in phases (low → high → low), relative to what one 1-core
// instance of it carries (by its profile, then as measured while the first phase runs): the shape the
// autoscaler's end-to-end tests drive.
import type { RunningServer } from "../../src/server/server.js";
import { median } from "../../src/stats/quantile.js";
import { float32Bytes, infer } from "./oip-client.js";

export interface StepLoadResult {
  statuses: number[];
  /** Router clock ms (this process's performance.now()) at the step up. */
  stepAt: number;
  low: number;
  high: number;
}

export async function visionStepLoad(
  server: RunningServer,
  variant: string,
  phases: { lowFraction: number; factor: number; beforeMs: number; highMs: number; afterMs: number },
): Promise<StepLoadResult> {
  const profiled = profiledPerCore(server, variant);
  // the machine may run the model faster or slower today than when it was profiled, and the online latency
  // model tells the autoscaler so: the phases after the first are set against the speed measured in it
  const speed = msPerRow(server, "vision", variant);
  const { send, outcomes } = visionSender(server, variant);
  const phase = (rate: number, ms: number) => openLoopPhase(send, rate, ms);
  await phase(phases.lowFraction * profiled, phases.beforeMs);
  const ms = speed.stop();
  const measured = ms !== undefined ? 1000 / ms : profiled;
  const low = phases.lowFraction * measured;
  const high = phases.factor * low;
  await phase(low, msToWholeSecond());
  const stepAt = performance.now();
  await phase(high, phases.highMs);
  await phase(low, phases.afterMs);
  return { statuses: await Promise.all(outcomes), stepAt, low, high };
}

/** Requests one 1-core instance of the vision variant carries per second, by its profile's best batch. */
export function profiledPerCore(server: RunningServer, variant: string): number {
  const points = server.repo.tasks.get("vision")!.variants.get(variant)!.profile!.points;
  return Math.max(...points.filter((p) => p.cores === 1).map((p) => (1000 * p.batch) / p.p50_ms));
}

/** One 224×224 image to the vision variant per call of `send` (a 20-s SLO); `outcomes` holds the statuses. */
export function visionSender(
  server: RunningServer,
  variant: string,
): { send: () => void; outcomes: Promise<number>[] } {
  const body = float32Bytes(new Float32Array(3 * 224 * 224));
  const outcomes: Promise<number>[] = [];
  const send = () =>
    void outcomes.push(
      infer(
        server.httpUrl,
        `/v2/models/vision/versions/${variant}/infer`,
        [{ name: "image", datatype: "FP32", shape: [1, 3, 224, 224], binary: body }],
        { parameters: { slo_ms: 20_000, binary_data_output: true } },
      ).then((r) => r.status),
    );
  return { send, outcomes };
}

/**
 * The model's own time per row of `task`/`variant` as its batches run from now on (the router's batch events):
 * `stop()` ends the watch and gives the median ms per row (undefined when none ran).
 */
export function msPerRow(server: RunningServer, task: string, variant: string): { stop(): number | undefined } {
  const samples: number[] = [];
  const unwatch = server.core.router.on("batch", (b) => {
    if (b.task === task && b.variant === variant) samples.push(b.computeMs / b.rows);
  });
  return {
    stop: () => {
      unwatch();
      return samples.length > 0 ? median(samples) : undefined;
    },
  };
}

/**
 * Time to the next whole second of the router's clock (this process's performance.now()). The meter counts
 * arrivals per whole second, so a step that starts there is seen all at once: a step begun mid-second first
 * shows as a mixed count, which may be below what the instances carry and rightly met by a scale-out where
 * the test waits for a resize.
 */
export function msToWholeSecond(): number {
  return 1000 - (performance.now() % 1000);
}

/**
 * Open-loop arrivals at `rate` per second, evenly spaced (calls of `send` due by now, every 5 ms), for `ms`
 * or until `until()` says the phase has done its work.
 */
export async function openLoopPhase(
  send: () => void,
  rate: number,
  ms: number,
  until: () => boolean = () => false,
): Promise<void> {
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < ms && !until()) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    for (; sent < due; sent++) send();
    await new Promise((r) => setTimeout(r, 5));
  }
}
