// SlackFit live: the digits supernet served by the real server (worker process, onnxruntime). Quiet
// traffic has the whole SLO as slack and runs on the most accurate subnet; a burst under a tight
// SLO leaves little slack and must switch to faster subnets with bigger batches, in the same
// session (answers name their subnet). And the prefetch slot: with a second batch waiting in the
// worker while one runs, the worker need not idle through the round trip to the router.
import { describe, expect, it } from "vitest";
import { median } from "../../src/stats/quantile.js";
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
      const send = (sloMs: number, rows = 1) =>
        infer(
          server.httpUrl,
          `/v2/models/${TASK}/infer`,
          [
            {
              name: "image",
              datatype: "FP32",
              shape: [rows, 1, 28, 28],
              binary: float32Bytes(new Float32Array(rows * 28 * 28).fill(0.5)),
            },
          ],
          { parameters: { slo_ms: sloMs, binary_data_output: true } },
        );

      const quiet = [];
      for (let i = 0; i < 10; i++) quiet.push(await send(50));
      expect(quiet.map((r) => r.status)).toEqual(Array(10).fill(200));
      expect(new Set(quiet.map((r) => r.json.parameters.subnet))).toEqual(new Set([mostAccurate]));

      // a burst of 16-row requests: the most accurate subnet's batch of 64 rows takes ~10 ms here, longer
      // than the slack it leaves, so bigger batches must go to faster subnets
      const burst = await Promise.all(Array.from({ length: BURST }, () => send(25, 16)));
      const served = burst
        .filter((r) => r.status === 200)
        .map((r) => r.json.parameters as { subnet: string; batch_size: number });
      const statuses = new Set(burst.map((r) => r.status));
      // what no subnet can finish in time is refused at once (429, predictive admission) or answered 504
      expect(
        [...statuses].every((s) => s === 200 || s === 429 || s === 504),
        `statuses ${[...statuses]}`,
      ).toBe(true);
      const faster = served.filter(
        (p) => accuracyOf.get(p.subnet)! < accuracyOf.get(mostAccurate)! && p.batch_size > 1,
      );
      const mix: Record<string, number> = {};
      for (const p of served) mix[p.subnet] = (mix[p.subnet] ?? 0) + 1;
      console.log(
        `burst: ${served.length}/${BURST} served; subnets ${JSON.stringify(mix)}; largest batch ${Math.max(0, ...served.map((p) => p.batch_size))}`,
      );
      expect(faster.length, `subnets under the burst: ${JSON.stringify(mix)}`).toBeGreaterThan(0);
    } finally {
      await server.close(5000);
    }
  }, 30_000);

  it("measures the prefetch slot live: the next batch overlaps the running one", async () => {
    // Two servers, one instance each (one slot, two slots), loaded in turn in short alternating windows
    // (ABBA), so that the load other work puts on this machine falls on both alike.
    const servers = await Promise.all(
      [1, 2].map((slots) =>
        startTestServer({ cores: 1, deploy: [{ task: TASK, variant: "supernet", cores: 1 }], slotsPerInstance: slots }),
      ),
    );
    try {
      const totals = servers.map(() => ({ rows: 0, computeMs: 0, wallMs: 0 }));
      for (let w = 0; w < WINDOWS; w++) {
        const k = [0, 1, 1, 0][w % 4]!;
        const got = await drive(servers[k]!, WINDOW_MS);
        totals[k]!.rows += got.rows;
        totals[k]!.computeMs += got.computeMs;
        totals[k]!.wallMs += got.wallMs;
      }
      const [one, two] = totals.map((t) => ({ rate: (1000 * t.rows) / t.wallMs, busy: t.computeMs / t.wallMs }));
      const show = (x: { rate: number; busy: number }) =>
        `${x.rate.toFixed(0)} rows/s, worker computing ${(100 * x.busy).toFixed(0)} % of the time`;
      console.log(`prefetch: one slot ${show(one!)}; two slots ${show(two!)}; ${(two!.rate / one!.rate).toFixed(2)}x`);
      // The overlap shows as a larger share of time computing. What it buys in throughput is small here and
      // within this machine's noise (0.94-1.32x over loaded runs, 1.00x quiet; experiments/superserve/results.md): the
      // prefetched batch's transfer shares the worker's one core with the running batch, and the router's
      // process, not the worker, limits a saturated 1-core digits instance. It must not cost throughput.
      expect(two!.busy).toBeGreaterThan(one!.busy);
      expect(two!.rate / one!.rate).toBeGreaterThan(0.9);
    } finally {
      await Promise.all(servers.map((s) => s.close(5000)));
    }
  }, 120_000);
});

/** Requests in the burst. */
const BURST = 150;

/** Rows per request, requests kept open, and the alternating windows of the throughput comparison. */
const ROWS = 16;
const OPEN = 12;
const WINDOWS = 24;
const WINDOW_MS = 500;

/**
 * A closed loop of OPEN requests submitted straight to the server's router (no HTTP client on these two
 * cores in the way), for `ms`: rows answered in the window after a short ramp, and the worker's compute
 * time for the batches that ended in it.
 */
async function drive(
  server: Awaited<ReturnType<typeof startTestServer>>,
  ms: number,
): Promise<{ rows: number; computeMs: number; wallMs: number }> {
  const { router, clock } = server.core;
  const image = new Float32Array(ROWS * 28 * 28).fill(0.5);
  let rows = 0;
  let computeMs = 0;
  let counting = false;
  let stop = false;
  let open = 0;
  let failure: string | null = null;
  const off = router.on("batch", (b) => {
    if (counting) computeMs += b.computeMs;
  });
  const submit = () => {
    const seq = router.nextSeq();
    const now = clock.now();
    open++;
    router.submit({
      seq,
      id: String(seq),
      task: TASK,
      arrival: now,
      deadline: now + 5000,
      priority: 1,
      rows: ROWS,
      minAccuracy: 0,
      lateOk: false,
      input: { image: { type: "float32", dims: [ROWS, 1, 28, 28], data: image } },
      done: (o) => {
        open--;
        if (!o.ok) failure = o.message;
        else if (counting) rows += ROWS;
        if (!stop && !failure) submit();
      },
    });
  };
  for (let i = 0; i < OPEN; i++) submit();
  await new Promise((r) => setTimeout(r, 100)); // ramp: the loop fills the instance's slots
  counting = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  counting = false;
  const wallMs = performance.now() - t0;
  stop = true;
  while (open > 0) await new Promise((r) => setTimeout(r, 5));
  off();
  if (failure) throw new Error(failure);
  return { rows, computeMs, wallMs };
}
