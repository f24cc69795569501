// Themis' revised rule live on the local backend, within this machine's 2 cores: an open-loop load on
// `vision` that surges past what one core carries and falls back. It must resize the instance in place
// right after the surge, hold through 20 agreeing decisions (10 s) once the load is calm again, then
// consolidate onto 1-core instances with one spare, and answer every request.
import { describe, expect, it } from "vitest";
import { startTestServer } from "../support/server.js";
import type { Decision } from "../../src/autoscaler/controller.js";
import { float32Bytes, infer } from "../support/oip-client.js";

const VARIANT = "resnet34";

describe("themis (revised rule) on the local backend", () => {
  it("resizes in place on a surge, stabilises, consolidates with a spare instance, loses no request", async () => {
    const server = await startTestServer({
      cores: 2,
      deploy: [{ task: "vision", variant: VARIANT, cores: 1 }],
      autoscaler: "themis",
      // the rule's 30-s warm-up shortened to keep the test short; everything else is the rule's default
      scalingSettings: { themis: { warmupMs: 3000 } },
    });
    try {
      // Rates relative to what one 1-core instance carries, per the measured profile points: the surge is
      // more than one core carries and less than two do.
      const points = server.repo.tasks.get("vision")!.variants.get(VARIANT)!.profile!.points;
      const perCore = Math.max(...points.filter((p) => p.cores === 1).map((p) => (1000 * p.batch) / p.p50_ms));
      const low = 0.45 * perCore;
      const high = 1.3 * perCore;
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
      const phase = async (rate: number, ms: number, until?: () => boolean) => {
        const start = performance.now();
        let sent = 0;
        while (performance.now() - start < ms && !until?.()) {
          const due = Math.floor(((performance.now() - start) / 1000) * rate);
          for (; sent < due; sent++) send();
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      const controller = server.core.controller!;
      const consolidated = () =>
        controller.decisions.some((d) => d.plan.mode === "horizontal" && /spare/.test(d.plan.reason) && d.actuation);
      await phase(low, 8000);
      const step = performance.now(); // the router's clock is this process's performance.now()
      await phase(high, 10_000);
      const drop = performance.now();
      // calm: λ (the max of the last 5 s) falls after 5 s, then 20 agreeing decisions (10 s) must pass
      await phase(low, 22_000, consolidated);
      const statuses = await Promise.all(outcomes);
      await controller.settle();

      const log = controller.decisions.filter((d) => d.at >= step);
      const trail = () =>
        JSON.stringify(
          log.map((d) => [Math.round(d.at - step), d.plan.mode, d.inputs.instances, d.changes, d.plan.reason]),
        );
      const resize = log.find(
        (d: Decision) => d.plan.mode === "vertical" && d.changes.some((c) => c.startsWith("resize")),
      );
      expect(resize, trail()).toBeDefined();
      // λ sees the surge once its first whole second is over; a decision follows within 0.5 s
      expect(resize!.at - step).toBeLessThanOrEqual(3000);
      expect(resize!.actuation?.failed).toEqual([]);
      const consolidate = log.find((d) => d.at > drop && /spare/.test(d.plan.reason) && d.changes.length > 0);
      expect(consolidate, trail()).toBeDefined();
      // onto 1-core instances: what the DP wants plus one spare
      expect(consolidate!.plan.instances.map((i) => i.cores)).toEqual([1, 1]);
      expect(consolidate!.actuation?.failed).toEqual([]);
      // stabilisation: the 19 decisions before it agreed, 0.5 s apart, none of them acting
      const before = log.filter((d) => d.at < consolidate!.at).slice(-19);
      expect(before.map((d) => d.changes.length)).toEqual(new Array(19).fill(0));
      expect(before.map((d) => d.plan.reason.match(/stable (\d+)\/20/)?.[1])).toEqual(
        Array.from({ length: 19 }, (_, k) => String(k + 1)),
      );
      expect(consolidate!.at - before[0]!.at).toBeGreaterThanOrEqual(9000);
      // make before break within 2 cores: both 1-core instances serve now
      const vision = server.cluster.instances().filter((i) => i.task === "vision" && i.state !== "stopped");
      expect(vision.map((i) => [i.cores, i.state])).toEqual([
        [1, "ready"],
        [1, "ready"],
      ]);
      const bad = new Map<number, number>();
      for (const s of statuses) if (s !== 200) bad.set(s, (bad.get(s) ?? 0) + 1);
      expect(Object.fromEntries(bad), `of ${statuses.length} requests; ${trail()}`).toEqual({});
      console.log(
        `${statuses.length} requests, low ${low.toFixed(1)} / surge ${high.toFixed(1)} req/s; resized ${((resize!.at - step) / 1000).toFixed(1)} s after the surge began, consolidated with a spare ${((consolidate!.at - drop) / 1000).toFixed(1)} s after it ended`,
      );
    } finally {
      await server.close(5000);
    }
  }, 90_000);
});
