// npm run bench:overload [-- --json] [--seconds 60] [--factor 10] [--slo-ms 100] [--model burn|digits]
//                        [--layers 2] [--variant cnn-small] [--sweep from:to:step]:
// how sloserve behaves far beyond what it can serve. The model is by default the burn task (3×3 convolutions
// built and profiled on this machine, test/support/burn-model.ts) with a capacity of a few hundred requests
// a second, so that 10× its capacity is a load one core of load generator can offer; digits/cnn-small serves
// ~4,000 a second on a core here, and 40,000 a second is beyond any client on the other core. The server
// runs in a process of its own (one core of instances); its capacity is found by a sweep (the highest Poisson
// rate served with ≥ 99 % of requests within the SLO); then it is offered `factor` × that for `seconds`, and
// then half its capacity again.
// Reported: the fraction shed (refused at once, 429/503), the admitted requests' p99 against the SLO,
// goodput (answers within the SLO per second) ÷ capacity, the health probe's p99 while overloaded, the
// gateway's RSS peak ÷ idle, and how long until it serves within its SLO again.
// Within-SLO counts are the server's (the slo_met it reports), the client's are shown beside them.
// Goals (issue 12): admitted p99 ≤ SLO, goodput ≥ 0.9 × capacity, health p99 ≤ 50 ms, RSS peak ≤ 2 × idle.
import { parseArgs } from "node:util";
import { openSession, type LoadOptions, type LoadRun } from "../../src/loadgen/run.js";
import { describeMachine } from "../../src/profiler/machine.js";
import { quantile } from "../../src/stats/quantile.js";
import { emit } from "../../src/terminal/report.js";
import { fmt } from "../../src/terminal/table.js";
import { pinProcess } from "../../src/worker/pin.js";
import { rssMb, startServerProcess } from "../../test/support/server-process.js";
import { BURN_TASK, BURN_VARIANT } from "../../test/support/burn-model.js";
import { burnTask } from "../../test/support/pressure.js";

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    seconds: { type: "string", default: "60" },
    factor: { type: "string", default: "10" },
    "slo-ms": { type: "string", default: "100" },
    model: { type: "string", default: "burn" },
    layers: { type: "string", default: "2" },
    variant: { type: "string", default: "cnn-small" },
    sweep: { type: "string" },
  },
});
const seconds = Number(values.seconds);
const factor = Number(values.factor);
const sloMs = Number(values["slo-ms"]);
const burn = values.model === "burn";
if (!burn && values.model !== "digits") throw new Error(`--model: burn or digits, not '${values.model}'`);
const variant = burn ? BURN_VARIANT : values.variant!;
const task = burn ? BURN_TASK : "digits";
const log = (m: string) => process.stderr.write(`bench:overload: ${m}\n`);

/** Samples a number every `ms` until stopped; returns the samples. */
function sampler(ms: number, sample: () => Promise<number | null>): { stop(): Promise<number[]> } {
  const out: number[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      const v = await sample();
      if (v !== null) out.push(v);
      await new Promise((r) => setTimeout(r, ms));
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      return out;
    },
  };
}

async function main(): Promise<void> {
  // the load generator on core 1; the gateway and its one instance on core 0 (the instance is pinned there
  // by the local backend's allocator; the gateway process is pinned below)
  await pinProcess(process.pid, [1]);
  const burnt = burn ? await burnTask({ sloMs, layers: Number(values.layers) }) : null;
  const server = await startServerProcess({
    ...(burnt ? { modelsDir: burnt.root } : {}),
    cores: 1,
    deploy: [{ task, variant, cores: 1 }],
  });
  await pinProcess(server.pid, [0]);
  const url = server.httpUrl;
  const base: Omit<LoadOptions, "source"> = {
    model: `${task}/${variant}`,
    protocol: "rest",
    url,
    grpcUrl: server.grpcTarget,
    sloMs,
    connections: 512,
    timeoutMs: 10_000,
  };
  try {
    // capacity: the highest rate of the sweep that met the target; one miss may be noise (batching makes a
    // higher rate cheaper per request), two in a row end the sweep
    // by default around what the profile says one core carries (burn), or up to 4,000 req/s (digits)
    const around = burnt ? (f: number) => Math.max(1, Math.round(f * burnt.capacityPerS)) : null;
    const sweepSpec = values.sweep ?? (around ? `${around(0.4)}:${around(2.5)}:${around(0.1)}` : "200:4000:200");
    const [from, to, step] = sweepSpec.split(":").map(Number) as [number, number, number];
    let capacity = 0;
    let misses = 0;
    const sweep = await openSession({
      ...base,
      source: { kind: "synthetic", rate: from, durationS: 8, arrival: "poisson", seed: 1 },
    });
    try {
      for (let rate = from; rate <= to; rate += step) {
        const r = await sweep.run(rate);
        // the server's own account (slo_met): a load generator sharing a small machine adds its own delays
        const met = r.summary.serverAttainment ?? 0;
        log(
          `sweep ${rate} req/s: ${fmt(met * 100, 1)} % within the SLO (server), ${fmt((r.summary.attainment ?? 0) * 100, 1)} % (client)`,
        );
        if (met < 0.99) {
          if (++misses === 2) break;
          continue;
        }
        misses = 0;
        capacity = Math.max(capacity, r.summary.throughput);
      }
    } finally {
      await sweep.close();
    }
    if (capacity === 0) throw new Error(`not even ${from} req/s met the ${sloMs}-ms SLO`);
    await new Promise((r) => setTimeout(r, 2000));
    const idleRss = (await rssMb(server.pid))!;

    const offered = factor * capacity;
    log(`capacity ${fmt(capacity, 0)} req/s; offering ${fmt(offered, 0)} req/s for ${seconds} s`);
    const health = sampler(100, async () => {
      const t0 = performance.now();
      const res = await fetch(`${url}/v2/health/live`, { signal: AbortSignal.timeout(5000) }).catch(() => null);
      await res?.text();
      return res ? performance.now() - t0 : 5000;
    });
    const rss = sampler(250, () => rssMb(server.pid));
    const over = await openSession({
      ...base,
      source: { kind: "synthetic", rate: offered, durationS: seconds, arrival: "poisson", seed: 2 },
    });
    let run: LoadRun;
    try {
      run = await over.run();
    } finally {
      await over.close();
    }
    const healthMs = await health.stop();
    const rssSamples = await rss.stop();

    // recovery: half the capacity again, second by second, until a second meets the SLO for ≥ 99 %
    const calm = await openSession({
      ...base,
      source: { kind: "synthetic", rate: capacity / 2, durationS: 20, arrival: "poisson", seed: 3 },
    });
    let recoveryS = Number.NaN;
    try {
      const r = await calm.run();
      const perSecond = r.recorder.perSecondAttainment(sloMs);
      const first = perSecond.findIndex((a) => a >= 0.99);
      recoveryS = first < 0 ? Number.POSITIVE_INFINITY : first;
    } finally {
      await calm.close();
    }

    const s = run.summary;
    const shed = Object.entries(s.errors)
      .filter(([k]) => /HTTP (429|503)/.test(k))
      .reduce((n, [, v]) => n + v, 0);
    const admittedP99 = s.serverLatencyMs?.p99 ?? Number.NaN;
    const goodput = ((s.serverAttainment ?? 0) * s.sent) / s.durationS;
    const figures = {
      machine: describeMachine(),
      variant: `${task}/${variant}`,
      slo_ms: sloMs,
      capacity_rps: capacity,
      offered_rps: s.offeredRate,
      sent: s.sent,
      shed_fraction: shed / s.sent,
      errors: s.errors,
      admitted_p99_ms: admittedP99,
      admitted_client_p99_ms: s.latencyMs.p99,
      goodput_rps: goodput,
      goodput_over_capacity: goodput / capacity,
      health_p99_ms: quantile(healthMs, 0.99),
      health_max_ms: Math.max(...healthMs),
      rss_idle_mb: idleRss,
      rss_peak_mb: Math.max(...rssSamples),
      rss_peak_over_idle: Math.max(...rssSamples) / idleRss,
      recovery_s: recoveryS,
      loadgen_lag_p99_ms: s.lag.p99Ms,
      goals: {
        admitted_p99_within_slo: admittedP99 <= sloMs,
        goodput_at_least_0_9: goodput / capacity >= 0.9,
        health_p99_at_most_50ms: quantile(healthMs, 0.99) <= 50,
        rss_peak_at_most_2x: Math.max(...rssSamples) / idleRss <= 2,
      },
    };
    emit(
      {
        title: `overload: ${task}/${variant}, ${factor} × capacity for ${seconds} s, SLO ${sloMs} ms`,
        tables: [
          {
            head: ["figure", "value", "goal"],
            rows: [
              ["capacity (≥ 99 % within SLO)", `${fmt(capacity, 0)} req/s`, ""],
              ["offered", `${fmt(s.offeredRate, 0)} req/s (${s.sent} sent)`, ""],
              ["shed at once (429/503)", `${fmt((100 * shed) / s.sent, 1)} %`, ""],
              ["admitted p99 (server)", `${fmt(admittedP99, 1)} ms`, `≤ ${sloMs} ms`],
              ["goodput ÷ capacity", fmt(goodput / capacity, 2), "≥ 0.9"],
              ["health probe p99", `${fmt(quantile(healthMs, 0.99), 1)} ms`, "≤ 50 ms"],
              [
                "gateway RSS peak ÷ idle",
                `${fmt(Math.max(...rssSamples) / idleRss, 2)} (${fmt(idleRss, 0)} → ${fmt(Math.max(...rssSamples), 0)} MB)`,
                "≤ 2",
              ],
              ["recovery at half capacity", `${fmt(recoveryS, 0)} s`, ""],
              ["load generator lag p99", `${fmt(s.lag.p99Ms, 1)} ms`, ""],
            ],
          },
        ],
        figures,
        notes: [
          "The gateway and its instance share core 0; the load generator has core 1.",
          "Shed: answered 429 or 503 (refused, no work done). Admitted p99: the server's latency of the requests it served.",
        ],
      },
      values.json!,
    );
  } finally {
    await server.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench:overload: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
