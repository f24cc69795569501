// npm run bench:soak [-- --minutes 10] [--json] [--fraction 0.7] [--slo-ms 20] [--variant cnn-small]: a
// steady load at a fraction of capacity for many minutes against the server in a process of its own. The
// gateway's RSS is sampled every 10 s and the latency p99 taken per minute; over the last 7 minutes (or
// all but the first 3) both should stay flat: RSS growth (least-squares slope, MB/min) and p99 drift
// (last minute's p99 over the first counted minute's) ≈ 0.
import { parseArgs } from "node:util";
import { openSession } from "../../src/loadgen/run.js";
import { describeMachine } from "../../src/profiler/machine.js";
import { leastSquares } from "../../src/stats/latency-model.js";
import { quantile } from "../../src/stats/quantile.js";
import { emit } from "../../src/terminal/report.js";
import { fmt } from "../../src/terminal/table.js";
import { pinProcess } from "../../src/worker/pin.js";
import { rssMb, startServerProcess } from "../../test/support/server-process.js";

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    minutes: { type: "string", default: "10" },
    rate: { type: "string", default: "400" },
    "slo-ms": { type: "string", default: "20" },
    variant: { type: "string", default: "cnn-small" },
  },
});
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const sloMs = Number(values["slo-ms"]);
const variant = values.variant!;

async function main(): Promise<void> {
  await pinProcess(process.pid, [1]);
  const server = await startServerProcess({ cores: 1, deploy: [{ task: "digits", variant, cores: 1 }] });
  await pinProcess(server.pid, [0]);
  const rss: { t: number; mb: number }[] = [];
  const t0 = performance.now();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const mb = await rssMb(server.pid);
      if (mb !== null) rss.push({ t: (performance.now() - t0) / 60_000, mb });
      await new Promise((r) => setTimeout(r, 10_000));
    }
  })();
  const perMinute: { minute: number; p99: number; attainment: number; ok: number }[] = [];
  try {
    const session = await openSession({
      source: { kind: "synthetic", rate, durationS: 60, arrival: "poisson", seed: 1 },
      model: `digits/${variant}`,
      protocol: "rest",
      url: server.httpUrl,
      grpcUrl: server.grpcTarget,
      sloMs,
      timeoutMs: 10_000,
    });
    try {
      for (let m = 0; m < minutes; m++) {
        const r = await session.run();
        perMinute.push({
          minute: m + 1,
          p99: r.summary.latencyMs.p99,
          attainment: r.summary.attainment ?? 0,
          ok: r.summary.ok,
        });
        process.stderr.write(
          `bench:soak: minute ${m + 1}: p99 ${fmt(r.summary.latencyMs.p99, 2)} ms, RSS ${fmt(rss.at(-1)?.mb ?? NaN, 0)} MB\n`,
        );
      }
    } finally {
      await session.close();
    }
  } finally {
    sampling = false;
    await sampler;
    await server.stop();
  }
  const skip = Math.max(0, minutes - 7);
  const late = rss.filter((s) => s.t >= skip);
  const [slope] = leastSquares(
    late.map((s) => [s.t, 1]),
    late.map((s) => s.mb),
  ) as [number, number];
  const counted = perMinute.slice(skip);
  const drift = counted.at(-1)!.p99 / counted[0]!.p99;
  const figures = {
    machine: describeMachine(),
    variant: `digits/${variant}`,
    rate_rps: rate,
    minutes,
    rss_mb: rss.map((s) => Math.round(s.mb)),
    rss_growth_mb_per_min: slope,
    p99_ms_per_minute: perMinute.map((m) => m.p99),
    p99_drift: drift,
    p99_median_ms: quantile(
      perMinute.map((m) => m.p99),
      0.5,
    ),
    attainment_per_minute: perMinute.map((m) => m.attainment),
  };
  emit(
    {
      title: `soak: digits/${variant} at ${rate} req/s for ${minutes} min (SLO ${sloMs} ms)`,
      tables: [
        {
          head: ["minute", "p99 ms", "attainment %", "answered"],
          rows: perMinute.map((m) => [String(m.minute), fmt(m.p99, 2), fmt(100 * m.attainment, 2), String(m.ok)]),
        },
        {
          head: [`over the last ${minutes - skip} min`, "value"],
          rows: [
            ["gateway RSS growth", `${fmt(slope, 2)} MB/min`],
            ["p99 last ÷ first", fmt(drift, 2)],
          ],
        },
      ],
      figures,
    },
    values.json!,
  );
}

main().catch((err) => {
  process.stderr.write(`bench:soak: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
