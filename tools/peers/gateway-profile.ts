// Where sloserve's gateway spends its CPU per request: the server runs under `node --cpu-prof`,
// `sloserve bench` drives one protocol at a fixed rate, and the gateway's profile (the server's
// own process, not its workers) is reduced to the functions with the most self time.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Clients } from "./clients.js";
import { selfTimes, type SelfTime } from "./cpuprofile-top.js";
import { startServer, type ModelUnderTest, type Protocol, type StartOptions } from "./servers.js";

export interface GatewayProfile {
  protocol: Protocol;
  rate: number;
  requests: number;
  sampled_ms: number;
  /** Busy (not idle) sampled time under load ÷ requests: the profile's view of CPU per request. */
  busy_us_per_request: number;
  idle_share: number;
  top: SelfTime[];
}

export async function profileGateway(
  m: ModelUnderTest,
  protocol: Protocol,
  o: { start: StartOptions; clients: Clients; rate: number; seconds: number; top: number; repoRoot: string },
): Promise<GatewayProfile> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sloserve-cpuprof-"));
  try {
    const s = await startServer("sloserve", m, { ...o.start, nodeArgs: ["--cpu-prof", "--cpu-prof-dir", dir] });
    let requests = 0;
    let window = { fromUs: 0, toUs: 0 };
    const nowUs = () => Number(process.hrtime.bigint() / 1000n);
    try {
      await o.clients.bench(s, { protocol, rate: o.rate, durationS: 2, arrival: "uniform" });
      // only the samples taken under load count (not start-up or warm-up): the run's window on
      // CLOCK_MONOTONIC, the clock of both this process's hrtime and V8's profile stamps
      const from = nowUs();
      const r = await o.clients.bench(s, { protocol, rate: o.rate, durationS: o.seconds, arrival: "uniform" });
      window = { fromUs: from, toUs: nowUs() };
      requests = r.ok;
    } finally {
      await s.stop(); // SIGTERM: sloserve drains and exits, and node writes the profile on exit
    }
    const mine = fs.readdirSync(dir).find((f) => f.includes(`.${s.pid}.`) && f.endsWith(".cpuprofile"));
    if (!mine)
      throw new Error(`no CPU profile of the gateway (pid ${s.pid}) in ${dir}: ${fs.readdirSync(dir).join(", ")}`);
    const profile = JSON.parse(fs.readFileSync(path.join(dir, mine), "utf8"));
    const { totalMs, top } = selfTimes(profile, o.repoRoot, window);
    const idleShare = top.find((e) => e.function === "(idle)")?.share ?? 0;
    return {
      protocol,
      rate: o.rate,
      requests,
      sampled_ms: totalMs,
      busy_us_per_request: (totalMs * (1 - idleShare) * 1000) / requests,
      idle_share: idleShare,
      // shares of the busy time: what the gateway's CPU, not its waiting, is made of
      top: top
        .filter((e) => e.function !== "(idle)")
        .slice(0, o.top)
        .map((e) => ({ ...e, share: e.share / (1 - idleShare) })),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
