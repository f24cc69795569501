// `sloserve bench` against the real server (startServer on the real zoo, in a process of its own
// so that client and server do not share an event loop): the tool's SLO attainment, measured on
// its own clock, must agree with the server's own counters (sloserve_slo_met_total vs every
// request it counted) within one percentage point, over REST with binary tensors and over gRPC;
// the responses' slo_met flags must add up to exactly those counters; the schedule lag must be
// reported; an unknown model must fail before any load is sent, saying what to do.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BenchError } from "../../src/loadgen/client.js";
import { buildReport, rateCsv } from "../../src/loadgen/output.js";
import { openSession, runLoad, type LoadOptions } from "../../src/loadgen/run.js";
import { startServerProcess, type ServerChild } from "../support/server-process.js";

let server: ServerChild;

beforeAll(async () => {
  server = await startServerProcess({
    cores: 2,
    deploy: [
      { task: "digits", variant: "linear", cores: 1 },
      { task: "digits", variant: "mlp-small", cores: 1 },
    ],
  });
});
afterAll(async () => {
  await server?.stop();
});

interface SloCounters {
  met: number;
  missed: number;
}

/** The server's own account: every request it finished is either SLO met or missed (late, rejected, dropped). */
async function sloCounters(): Promise<SloCounters> {
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
  const sum = (name: string) =>
    text
      .split("\n")
      .filter((l) => l.startsWith(`${name}{`) && l.includes('model="digits"'))
      .reduce((a, l) => a + Number(l.split(" ").at(-1)), 0);
  return { met: sum("sloserve_slo_met_total"), missed: sum("sloserve_slo_missed_total") };
}

const options = (protocol: LoadOptions["protocol"], model = "digits"): LoadOptions => ({
  source: { kind: "synthetic", rate: 200, durationS: 5, arrival: "poisson", seed: 7 },
  model,
  protocol,
  url: server.httpUrl,
  grpcUrl: server.grpcTarget,
  sloMs: 50,
});

describe.each(["rest", "grpc"] as const)("bench over %s", (protocol) => {
  it("reproduces the server's attainment within 1 point and reports its schedule lag", async () => {
    // a few requests first so that connections and the instances' first runs are not in the comparison
    await runLoad({
      ...options(protocol),
      source: { kind: "synthetic", rate: 50, durationS: 0.5, arrival: "uniform" },
    });
    const session = await openSession(options(protocol)); // sends its own warm-up request
    const before = await sloCounters();
    const run = await session.run().finally(() => session.close());
    const after = await sloCounters();
    const met = after.met - before.met;
    const counted = met + after.missed - before.missed;
    const s = run.summary;
    const serverAttainment = met / counted;
    console.log(
      `${protocol}: tool attainment ${(s.attainment! * 100).toFixed(2)}%, server ${(serverAttainment * 100).toFixed(2)}% (${met}/${counted}); client p50/p99 ${s.latencyMs.p50.toFixed(2)}/${s.latencyMs.p99.toFixed(2)} ms, server p50/p99 ${s.serverLatencyMs?.p50.toFixed(2)}/${s.serverLatencyMs?.p99.toFixed(2)} ms; lag p50/p99/max ${s.lag.p50Ms.toFixed(3)}/${s.lag.p99Ms.toFixed(3)}/${s.lag.maxMs.toFixed(2)} ms`,
    );

    expect(s.sent).toBe(s.requests);
    expect(s.requests).toBeGreaterThan(800);
    // the server saw every request the tool sent, and the tool read every slo_met the server reported
    expect(counted).toBe(s.sent);
    expect(s.serverSloMet).toBe(met);
    expect(s.serverAttainment).toBeCloseTo(serverAttainment, 10);
    // The tool's own clock (send → answer, 200 within 50 ms) against the server's counters. The two
    // can differ only by answers the server finished in time that reached the client late:
    expect(s.attainment! + s.lateOnClientOnly / s.sent).toBeCloseTo(serverAttainment, 10);
    if (!s.lag.lagged) expect(Math.abs(s.attainment! - serverAttainment)).toBeLessThanOrEqual(0.01);
    else {
      // A client starved of CPU (other processes on this machine) reads answers late, and says so
      // with its lag warning; then its figure may only be lower than the server's, never higher.
      expect(s.attainment!).toBeLessThanOrEqual(serverAttainment + 0.01);
      console.warn(
        `${protocol}: the load generator lagged (p99 ${s.lag.p99Ms.toFixed(2)} ms): the 1-point comparison needs a machine that is not starved`,
      );
    }

    expect(s.latencyMs.p99).toBeGreaterThanOrEqual(s.latencyMs.p50);
    expect(s.serverLatencyMs!.p50).toBeLessThanOrEqual(s.latencyMs.p50);
    expect(s.lag.p50Ms).toBeGreaterThanOrEqual(0);
    expect(s.lag.maxMs).toBeGreaterThanOrEqual(s.lag.p99Ms);
    expect(s.lag.lagged).toBe(s.lag.p99Ms > 1);
    const report = buildReport([run], { model: "digits", protocol, source: "poisson" });
    expect(report.tables[0]!.head).toEqual(
      expect.arrayContaining(["p50 ms", "p90 ms", "p95 ms", "p99 ms", "lag p50/p99/max ms"]),
    );
    expect(report.tables[1]!.head).toEqual(
      expect.arrayContaining(["server p99 ms", "client overhead ms", "server slo_met"]),
    );
    expect(rateCsv([run]).split("\n")[0]).toContain("lag_p99_ms");
  });
});

describe("errors", () => {
  it.each(["rest", "rest-json", "grpc"] as const)(
    "names an unknown model over %s before sending load",
    async (protocol) => {
      const before = await sloCounters();
      const err = await runLoad(options(protocol, "no-such-task")).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BenchError);
      expect((err as Error).message).toMatch(/model 'no-such-task' is unknown to .*Check --model/);
      expect(await sloCounters()).toEqual(before);
    },
  );

  it("names an unknown variant", async () => {
    const err = await runLoad(options("rest", "digits/no-such-variant")).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/no-such-variant.*unknown/);
  });

  it("stops before the load when the server refuses the request, with the server's reason", async () => {
    const err = await runLoad({ ...options("rest"), minAccuracy: 0.9999 }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /refused the request \(HTTP 400: no variant of 'digits' reaches min_accuracy 0.9999.*check --model/,
    );
  });

  it("says when no server answers", async () => {
    const err = await runLoad({ ...options("rest"), url: "http://127.0.0.1:9" }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9.*is the server running/);
  });
});
