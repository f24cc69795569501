// A control loop that learns, live: `vision` (ResNet-18) on one worker pinned to one core of this 2-core
// machine, under 60 % of the load one core carries (as profiled or as measured just before, the lower). Mid-run,
// seven busy-looping processes are pinned onto the worker's core behind the planner's back: its batches take
// several times as long (and the profile, measured on another day, is off by a factor of its own that the model learns first).
// With the online latency model, within a few decisions the corrected model predicts the worker's batch times
// within 15 %, the planner sees the capacity it lost and adds an instance
// on the free core, and attainment recovers; with the model off (the profile alone) the planner sees
// nothing wrong, adds nothing, and the requests keep missing their deadlines.
import { spawn, type ChildProcess } from "node:child_process";
import { describe, expect, it } from "vitest";
import type { Decision } from "../../src/autoscaler/controller.js";
import type { InstanceCorrection } from "../../src/core/online-latency.js";
import { startTestServer } from "../support/server.js";
import { median } from "../../src/stats/quantile.js";
import { float32Bytes, infer } from "../support/oip-client.js";

const VARIANT = "resnet18";
const SLO_MS = 300;
const WARM_MS = 6000;
const AFTER_MS = 16_000;
/** Busy loops sharing the worker's core with it. */
const HOGS = 7;

interface Run {
  /** Requests sent after the slowdown, by whether they met the SLO, per second since it began. */
  met: { at: number; ok: boolean; status: number; latencyMs: number }[];
  decisions: Decision[];
  /** The slowed instance's correction, polled every 250 ms after the slowdown (time since it, and the state). */
  polls: { at: number; c: InstanceCorrection | undefined }[];
  slowed: string;
  hogAt: number;
}

function hog(core: number): ChildProcess {
  return spawn("taskset", ["-c", String(core), process.execPath, "-e", "for(;;){}"], { stdio: "ignore" });
}

async function run(online: boolean, rate: number): Promise<Run> {
  const server = await startTestServer({
    cores: 2,
    deploy: [{ task: "vision", variant: VARIANT, cores: 1 }],
    autoscaler: "horizontal",
    // scale in only after 10 agreeing decisions: the slowed instance keeps serving beside the new one
    scalingSettings: { horizontal: { stableDecisions: 10 } },
    onlineLatency: online,
  });
  const hogs: ChildProcess[] = [];
  try {
    const slowed = server.cluster.instances().find((i) => i.task === "vision")!.id;
    const place = server.local!.placeOf(slowed)!;
    const core = Number(/^cpu (\d+)$/.exec(place)![1]);
    const body = float32Bytes(new Float32Array(3 * 224 * 224).fill(0.5));
    const met: Run["met"] = [];
    const pending: Promise<void>[] = [];
    const t0 = performance.now();
    let hogAt = Infinity;
    const send = () => {
      const sent = performance.now();
      pending.push(
        infer(
          server.httpUrl,
          `/v2/models/vision/versions/${VARIANT}/infer`,
          [{ name: "image", datatype: "FP32", shape: [1, 3, 224, 224], binary: body }],
          { parameters: { slo_ms: SLO_MS, binary_data_output: true } },
        ).then(
          (r) => {
            if (sent >= hogAt)
              met.push({
                at: sent - hogAt,
                ok: r.status === 200 && r.json.parameters?.slo_met === true,
                status: r.status,
                latencyMs: performance.now() - sent,
              });
          },
          () => {
            if (sent >= hogAt)
              met.push({ at: sent - hogAt, ok: false, status: 0, latencyMs: performance.now() - sent });
          },
        ),
      );
    };
    const polls: Run["polls"] = [];
    let sent = 0;
    let lastPoll = 0;
    while (performance.now() - t0 < WARM_MS + AFTER_MS) {
      const now = performance.now();
      if (hogAt === Infinity && now - t0 >= WARM_MS) {
        for (let k = 0; k < HOGS; k++) hogs.push(hog(core));
        hogAt = now;
      }
      const due = Math.floor(((now - t0) / 1000) * rate);
      for (; sent < due; sent++) send();
      if (now >= hogAt && now - lastPoll >= 250) {
        lastPoll = now;
        polls.push({ at: now - hogAt, c: server.core.latencyModel?.instances().find((i) => i.instance === slowed) });
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const end = server.cluster.instances().map((i) => `${i.id}@${server.local!.placeOf(i.id)}`);
    for (const h of hogs) h.kill("SIGKILL");
    await Promise.all(pending);
    console.log(`online ${online}: slowed ${slowed} on ${place}; at the end: ${end.join(", ")}`);
    await server.core.controller!.settle();
    return { met, decisions: server.core.controller!.decisions, polls, slowed, hogAt };
  } finally {
    for (const h of hogs) h.kill("SIGKILL");
    await server.close(2000);
  }
}

/** Attainment of the requests sent from `from` ms after the slowdown on. */
function attainment(r: Run, from: number): number {
  const late = r.met.filter((m) => m.at >= from);
  return late.filter((m) => m.ok).length / Math.max(1, late.length);
}

describe("the online latency model, live", () => {
  it("a worker's core is slowed mid-run: the corrected model predicts it within 15 %, the planner adds capacity, attainment recovers; without the model it does not", async () => {
    // what one core carries as this machine runs the model today (it may be faster or slower than when it was
    // profiled, and the slowdown below must overload one instance either way): the load is 60 % of it, one
    // instance's worth by any forecast
    const server = await startTestServer({ cores: 1, deploy: [{ task: "vision", variant: VARIANT, cores: 1 }] });
    const computeUs: number[] = [];
    try {
      const body = float32Bytes(new Float32Array(3 * 224 * 224).fill(0.5));
      for (let i = 0; i < 30; i++) {
        const r = await infer(
          server.httpUrl,
          `/v2/models/vision/versions/${VARIANT}/infer`,
          [{ name: "image", datatype: "FP32", shape: [1, 3, 224, 224], binary: body }],
          { parameters: { binary_data_output: true } },
        );
        if (r.status === 200 && i >= 5) computeUs.push(r.json.parameters.compute_us);
      }
    } finally {
      await server.close(0);
    }
    // and no more than the profile says one core carries: without the model the planner must see one
    // instance's worth
    const points = server.repo.tasks.get("vision")!.variants.get(VARIANT)!.profile!.points;
    const profiled = 1000 / points.find((p) => p.batch === 1 && p.cores === 1)!.p50_ms;
    const perCore = Math.min(profiled, 1e6 / median(computeUs));
    const rate = Math.round(0.6 * perCore);

    const on = await run(true, rate);
    const off = await run(false, rate);
    const trail = (r: Run) =>
      JSON.stringify(
        r.decisions
          .filter((d) => d.at >= r.hogAt - 2000)
          .map((d) => [Math.round(d.at - r.hogAt), d.inputs.instances, d.changes, d.correction?.variants]),
      );

    const change = on.decisions
      .flatMap((d) => d.correction?.changes ?? [])
      .find((c) => c.instance === on.slowed && c.at >= on.hogAt);
    // of its last 32 batches at least 24 ran after the slowdown, and the model's median prediction is within
    // 15 % of them (each batch predicted before it was learnt from); single batches scatter widely on a
    // shared core
    const batchesAtHog = on.polls.find((p) => p.c)?.c?.batches ?? 0;
    const accurate = on.polls.find((p) => p.c && p.c.batches >= batchesAtHog + 24 && Math.abs(p.c.error.bias) <= 0.15);
    const added = on.decisions.find((d) => d.at > on.hogAt && d.changes.some((c) => c.startsWith("start")));
    const onAtt = attainment(on, AFTER_MS - 8000);
    const offAtt = attainment(off, AFTER_MS - 8000);
    const bins = (r: Run) =>
      Array.from({ length: AFTER_MS / 2000 }, (_, k) => {
        const b = r.met.filter((m) => m.at >= k * 2000 && m.at < (k + 1) * 2000);
        const st: Record<number, number> = {};
        for (const m of b) if (!m.ok) st[m.status] = (st[m.status] ?? 0) + 1;
        return `${k * 2}s:${((100 * b.filter((m) => m.ok).length) / Math.max(1, b.length)).toFixed(0)}%${JSON.stringify(st)}`;
      }).join(" ");
    console.log(`with: ${bins(on)}\nwithout: ${bins(off)}`);
    const polls = JSON.stringify(
      on.polls.map((p) => [
        Math.round(p.at),
        p.c?.batches,
        p.c?.factor,
        p.c?.error.bias.toFixed(2),
        p.c?.error.median.toFixed(2),
      ]),
    );
    console.log(
      `rate ${rate} req/s; with the model: change point ${change ? `${Math.round(change.at - on.hogAt)} ms after the slowdown (×${change.from} → ×${change.to})` : "none"}, median prediction within 15 % after ${accurate ? `${Math.round(accurate.at)} ms (bias ${(accurate.c!.error.bias * 100).toFixed(1)} %, per-batch error median ${(accurate.c!.error.median * 100).toFixed(1)} %)` : "never"}, instance added ${added ? `${Math.round(added.at - on.hogAt)} ms after` : "never"}; attainment over the last 8 s ${(onAtt * 100).toFixed(1)} % with the model, ${(offAtt * 100).toFixed(1)} % without\n${trail(on)}\n${trail(off)}\n${polls}`,
    );

    // learnt: the slowed instance's change point, then its batches predicted within 15 %, within a few decisions
    expect(change, trail(on)).toBeDefined();
    expect(change!.direction).toBe("slower");
    expect(accurate, polls).toBeDefined();
    expect(accurate!.at).toBeLessThan(8000);

    // acted on: an instance added after the slowdown, by a decision that knew of the change
    expect(added, trail(on)).toBeDefined();
    expect(added!.at - on.hogAt).toBeLessThan(8000);
    expect(added!.correction!.variants[VARIANT]).toBeGreaterThan(1);

    // without the model: the profile says one instance carries the load, and nothing is added
    expect(
      off.decisions.some((d) => d.at > off.hogAt && d.changes.some((c) => c.startsWith("start"))),
      trail(off),
    ).toBe(false);
    expect(off.decisions.every((d) => d.correction === undefined)).toBe(true);

    // recovered: the last 8 s of the run, against the same seconds without the model. How far it recovers
    // depends on what else this 2-core machine runs (this process, the load generator and the gateway, shares
    // the free core with the new worker): 64–92 % were measured beside other work, against 1.5–43 % without
    expect(onAtt).toBeGreaterThanOrEqual(offAtt + 0.15);
    expect(onAtt).toBeGreaterThanOrEqual(0.6);
  }, 120_000);
});
