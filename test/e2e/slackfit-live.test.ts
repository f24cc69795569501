// SlackFit live: the digits supernet served by the real server (worker process, onnxruntime). Quiet
// traffic has the whole SLO as slack and runs on the most accurate subnet; a burst under a tight
// SLO leaves little slack and must switch to faster subnets with bigger batches, in the same
// session (answers name their subnet).
import { describe, expect, it } from "vitest";
import { startTestServer } from "../support/server.js";
import { float32Bytes, infer } from "../support/oip-client.js";

const TASK = "digits-supernet";

describe("slackfit on the local backend", () => {
  it("switches the digits supernet's subnets with the load", async () => {
    const server = await startTestServer({
      cores: 1,
      deploy: [{ task: TASK, variant: "supernet", cores: 1 }],
    });
    try {
      const subnets = server.repo.tasks.get(TASK)!.variants.get("supernet")!.config.subnets!;
      const accuracyOf = new Map(subnets.map((s) => [s.name, s.accuracy.value]));
      const mostAccurate = subnets.reduce((a, b) => (b.accuracy.value > a.accuracy.value ? b : a)).name;
      const body = float32Bytes(new Float32Array(28 * 28).fill(0.5));
      const send = (sloMs: number) =>
        infer(
          server.httpUrl,
          `/v2/models/${TASK}/infer`,
          [{ name: "image", datatype: "FP32", shape: [1, 1, 28, 28], binary: body }],
          { parameters: { slo_ms: sloMs, binary_data_output: true } },
        );

      const quiet = [];
      for (let i = 0; i < 10; i++) quiet.push(await send(50));
      expect(quiet.map((r) => r.status)).toEqual(Array(10).fill(200));
      expect(new Set(quiet.map((r) => r.json.parameters.subnet))).toEqual(new Set([mostAccurate]));

      const burst = await Promise.all(Array.from({ length: 400 }, () => send(4)));
      const served = burst
        .filter((r) => r.status === 200)
        .map((r) => r.json.parameters as { subnet: string; batch_size: number });
      const statuses = new Set(burst.map((r) => r.status));
      expect(
        [...statuses].every((s) => s === 200 || s === 504),
        `statuses ${[...statuses]}`,
      ).toBe(true);
      const faster = served.filter(
        (p) => accuracyOf.get(p.subnet)! < accuracyOf.get(mostAccurate)! && p.batch_size > 1,
      );
      const mix: Record<string, number> = {};
      for (const p of served) mix[p.subnet] = (mix[p.subnet] ?? 0) + 1;
      console.log(
        `burst: ${served.length}/400 served; subnets ${JSON.stringify(mix)}; largest batch ${Math.max(0, ...served.map((p) => p.batch_size))}`,
      );
      expect(faster.length, `subnets under the burst: ${JSON.stringify(mix)}`).toBeGreaterThan(0);
    } finally {
      await server.close(5000);
    }
  }, 30_000);
});
