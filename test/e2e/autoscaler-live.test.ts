// Themis' revised rule live on the local backend, within this machine's 2 cores. `vision` starts as a
// surge left it: one 2-core instance, now under a load one core carries. After 20 agreeing decisions (10 s)
// themis consolidates onto 1-core instances with one spare, and 20 decisions later drops the spare; then the
// load surges past what one core carries and themis resizes the instance in place. Every request is answered.
import { describe, expect, it } from "vitest";
import { startTestServer } from "../support/server.js";
import { msToWholeSecond, openLoopPhase, profiledPerCore, visionSender } from "../support/step-load.js";
import type { Decision } from "../../src/autoscaler/controller.js";

const VARIANT = "resnet34";

describe("themis (revised rule) on the local backend", () => {
  it("consolidates with a spare after 20 agreeing decisions, scales in, resizes in place on a surge, loses no request", async () => {
    const server = await startTestServer({
      cores: 2,
      deploy: [{ task: "vision", variant: VARIANT, cores: 2 }],
      autoscaler: "themis",
      // the rule's 30-s warm-up shortened to keep the test short; everything else is the rule's default
      scalingSettings: { themis: { warmupMs: 3000 } },
      // the rates below are relative to the profile's capacities: the online latency model would (rightly)
      // find this machine faster than profiled, and the surge would then need no resize
      onlineLatency: false,
    });
    try {
      // Rates relative to what one 1-core instance carries, per the measured profile points: the surge is
      // more than one core carries and less than two do.
      const perCore = profiledPerCore(server, VARIANT);
      const low = 0.45 * perCore;
      const high = 1.3 * perCore;
      const { send, outcomes } = visionSender(server, VARIANT);
      const phase = (rate: number, ms: number, until?: () => boolean) => openLoopPhase(send, rate, ms, until);
      const controller = server.core.controller!;
      const acted = (d: Decision) => d.changes.length > 0 && d.actuation !== undefined;
      const spare = () => controller.decisions.find((d) => acted(d) && /spare/.test(d.plan.reason));
      const scaledIn = () =>
        controller.decisions.find((d) => acted(d) && d.at > (spare()?.at ?? Infinity) && d.plan.instances.length === 1);
      const t0 = performance.now(); // the router's clock is this process's performance.now()
      await phase(low, 40_000, () => scaledIn() !== undefined);
      await phase(low, msToWholeSecond()); // the first second λ sees of the surge is all surge
      const surge = performance.now();
      const resized = () =>
        controller.decisions.find(
          (d) =>
            d.at >= surge && d.plan.mode === "vertical" && d.changes.some((c) => c.startsWith("resize")) && d.actuation,
        );
      await phase(high, 8000, () => resized() !== undefined);
      const statuses = await Promise.all(outcomes);
      await controller.settle();

      const log = controller.decisions.filter((d) => d.at >= t0);
      const trail = () =>
        JSON.stringify(
          log.map((d) => [
            Math.round(d.at - t0),
            d.plan.mode,
            d.inputs.instances,
            d.changes,
            d.plan.reason.slice(0, 90),
          ]),
        );
      // decisions every 0.5 s (the revised rule's interval, not the server's default 1 s)
      const gaps = log.slice(1, 12).map((d, i) => Math.round((d.at - log[i]!.at) / 100) * 100);
      expect(gaps.filter((g) => g === 500).length, trail()).toBeGreaterThanOrEqual(8);

      // consolidation: the 2-core instance onto 1-core ones — what the DP wants (1) plus one spare
      const consolidate = spare();
      expect(consolidate, trail()).toBeDefined();
      expect(consolidate!.inputs.instances).toEqual([`${VARIANT}×2`]);
      expect(consolidate!.plan.instances.map((i) => i.cores)).toEqual([1, 1]);
      expect(consolidate!.plan.reason).toMatch(/20 agreeing decisions, 1 \+ 1 spare × 1 core/);
      expect(consolidate!.actuation!.failed).toEqual([]);
      // stabilisation: the 19 decisions before it agreed, none of them acting
      const before = log.filter((d) => d.at < consolidate!.at).slice(-19);
      expect(
        before.map((d) => d.plan.reason.match(/stable (\d+)\/20/)?.[1]),
        trail(),
      ).toEqual(Array.from({ length: 19 }, (_, k) => String(k + 1)));
      expect(before.every((d) => d.changes.length === 0)).toBe(true);
      expect(consolidate!.at - before[0]!.at).toBeGreaterThanOrEqual(9000);

      // 20 agreeing decisions later nothing shrinks any more: the spare goes
      const scaleIn = scaledIn()!;
      expect(scaleIn, trail()).toBeDefined();
      expect(scaleIn.inputs.instances).toEqual([`${VARIANT}×1`, `${VARIANT}×1`]);
      expect(scaleIn.at - consolidate!.at).toBeGreaterThanOrEqual(9500);

      // the surge: λ sees it once its first whole second is over; a vertical decision resizes in place
      const resize = resized();
      expect(resize, trail()).toBeDefined();
      expect(resize!.at - surge).toBeLessThanOrEqual(3000);
      expect(resize!.inputs.instances).toEqual([`${VARIANT}×1`]);
      expect(resize!.changes).toEqual([expect.stringMatching(/^resize .* 1→2 cores$/)]);
      expect(resize!.actuation!.failed).toEqual([]);

      const bad = new Map<number, number>();
      for (const s of statuses) if (s !== 200) bad.set(s, (bad.get(s) ?? 0) + 1);
      expect(Object.fromEntries(bad), `of ${statuses.length} requests; ${trail()}`).toEqual({});
      console.log(
        `${statuses.length} requests, low ${low.toFixed(1)} / surge ${high.toFixed(1)} req/s; consolidated with a spare at ${((consolidate!.at - t0) / 1000).toFixed(1)} s, scaled in at ${((scaleIn.at - t0) / 1000).toFixed(1)} s, resized ${((resize!.at - surge) / 1000).toFixed(1)} s after the surge began`,
      );
    } finally {
      await server.close(5000);
    }
  }, 90_000);
});
