// Themis live on the local backend: an open-loop load on `vision` that steps up 3× and back, within
// this machine's cores. It must resize in place right after the step, consolidate onto 1-core
// instances after 5 stable decisions, and answer every request.
import { describe, expect, it } from "vitest";
import { startTestServer } from "../support/server.js";
import type { Decision } from "../../src/autoscaler/controller.js";
import { float32Bytes, infer } from "../support/oip-client.js";

const VARIANT = "resnet34";

describe("themis on the local backend", () => {
  it("resizes in place on a 3× step, consolidates once the load is stable, loses no request", async () => {
    const server = await startTestServer({
      cores: 2,
      deploy: [{ task: "vision", variant: VARIANT, cores: 1 }],
      autoscaler: "themis",
      decisionIntervalMs: 1000,
    });
    try {
      // Rates relative to what one 1-core instance carries, per the measured profile points.
      const points = server.repo.tasks.get("vision")!.variants.get(VARIANT)!.profile!.points;
      const perCore = Math.max(...points.filter((p) => p.cores === 1).map((p) => (1000 * p.batch) / p.p50_ms));
      const low = 0.45 * perCore;
      const high = 3 * low;
      const body = float32Bytes(new Float32Array(3 * 224 * 224));
      const outcomes: Promise<number>[] = [];
      const send = () =>
        outcomes.push(
          infer(
            server.httpUrl,
            `/v2/models/vision/versions/${VARIANT}/infer`,
            [{ name: "image", datatype: "FP32", shape: [1, 3, 224, 224], binary: body }],
            { parameters: { slo_ms: 20_000, binary_data_output: true } },
          ).then((r) => r.status),
        );
      const phase = async (rate: number, ms: number) => {
        const start = performance.now();
        let sent = 0;
        while (performance.now() - start < ms) {
          const due = Math.floor(((performance.now() - start) / 1000) * rate);
          for (; sent < due; sent++) send();
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      const t0 = performance.now();
      await phase(low, 6000);
      const stepClock = performance.now(); // the router's clock is this process's performance.now()
      const stepAt = stepClock - t0;
      const decisionsBefore = server.core.controller!.decisions.length;
      await phase(high, 14_000);
      const dropAt = performance.now() - t0;
      // The forecast (max of the last 10 s plus trend) remembers the plateau for 10 s, then 5 agreeing
      // decisions must pass before consolidating.
      await phase(low, 20_000);
      const statuses = await Promise.all(outcomes);
      await server.core.controller!.settle();

      const after = server.core.controller!.decisions.slice(decisionsBefore);
      const resize = after.find(
        (d: Decision) => d.plan.mode === "vertical" && d.changes.some((c) => c.startsWith("resize")),
      );
      expect(resize, JSON.stringify(after.map((d) => [d.plan.mode, d.plan.reason, d.changes]))).toBeDefined();
      const resizeDelay = resize!.at - stepClock;
      expect(resizeDelay).toBeLessThanOrEqual(3000);
      const consolidate = after.find((d) => d.at > resize!.at && d.plan.mode === "horizontal" && d.changes.length > 0);
      expect(
        consolidate,
        `horizontal consolidation after the plateau: ${JSON.stringify(after.map((d) => [Math.round(d.at - stepClock), d.plan.mode, d.inputs.rateNow.toFixed(1), d.inputs.ratePred.toFixed(1), d.changes]))}`,
      ).toBeDefined();
      expect(consolidate!.plan.instances.every((i) => i.cores === 1)).toBe(true);
      // Stabilisation: 5 agreeing decisions, 1 s apart, between the surge and the consolidation.
      expect(consolidate!.at - resize!.at).toBeGreaterThanOrEqual(4500);
      const bad = new Map<number, number>();
      for (const s of statuses) if (s !== 200) bad.set(s, (bad.get(s) ?? 0) + 1);
      expect(
        Object.fromEntries(bad),
        `of ${statuses.length} requests; decisions ${JSON.stringify(after.map((d) => [Math.round(d.at - stepClock), d.plan.mode, d.inputs.rateNow.toFixed(1), d.inputs.queueLength, d.changes]))}`,
      ).toEqual({});
      console.log(
        `step at ${(stepAt / 1000).toFixed(1)} s, drop at ${(dropAt / 1000).toFixed(1)} s; ${statuses.length} requests, low ${low.toFixed(1)} / high ${high.toFixed(1)} req/s; first in-place resize decided ${(resizeDelay / 1000).toFixed(1)} s after the step; consolidated at +${((consolidate!.at - resize!.at) / 1000).toFixed(1)} s`,
      );
    } finally {
      await server.close(5000);
    }
  }, 180_000);
});
