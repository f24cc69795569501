// A flood of large gRPC requests over one connection, faster than the gateway can even decode them: 3 s of
// 602 KB ResNet inputs at 1,000 req/s (the gateway decodes a few hundred a second on this machine's cores).
// The gateway's memory stays bounded — HTTP/2 flow control keeps the calls past `--grpc-max-streams` waiting
// in the client — every call is answered (served, or refused with a gRPC status that says why), and the
// server serves normally afterwards. Without the bound grpc-js reads every open stream's body at once: this
// flood then added 1.26 GB to the gateway (77 MB with it).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GrpcClient } from "../../src/loadgen/grpc-client.js";
import { rssMb, startServerProcess, type ServerChild } from "../support/server-process.js";
import { openLoopPhase } from "../support/step-load.js";

const RATE = 1000;
const FLOOD_MS = 3000;
/** What the flood may add to the gateway's RSS: 128 streams of 602 KB, with the copies decoding makes. */
const GROWTH_MB = 400;

let server: ServerChild;
let client: GrpcClient;

beforeAll(async () => {
  server = await startServerProcess({ cores: 2, deploy: [{ task: "vision", variant: "resnet18", cores: 1 }] });
  client = new GrpcClient({ target: server.grpcTarget, timeoutMs: 120_000 });
});

afterAll(async () => {
  await client?.close();
  await server?.stop();
});

describe("a flood of large gRPC requests", () => {
  it("keeps the gateway's memory bounded, answers every call and serves on", async () => {
    const send = client.sender({
      model: "vision",
      version: "resnet18",
      parameters: { slo_ms: 200 },
      inputs: [
        {
          name: "image",
          datatype: "FP32",
          shape: [1, 3, 224, 224],
          data: null,
          raw: new Uint8Array(new Float32Array(3 * 224 * 224).buffer),
        },
      ],
    });
    expect((await send()).ok).toBe(true);
    const before = (await rssMb(server.pid))!;
    let peak = before;
    const sampler = setInterval(() => void rssMb(server.pid).then((mb) => (peak = Math.max(peak, mb ?? 0))), 100);
    const replies: ReturnType<typeof send>[] = [];
    try {
      await openLoopPhase(() => replies.push(send()), RATE, FLOOD_MS);
      const answers = await Promise.all(replies);
      const outcomes = new Map<string, number>();
      for (const a of answers) outcomes.set(a.status, (outcomes.get(a.status) ?? 0) + 1);
      const summary = JSON.stringify(Object.fromEntries(outcomes));
      process.stdout.write(
        `grpc flood: ${answers.length} calls, gateway RSS ${before.toFixed(0)} -> peak ${peak.toFixed(0)} MB; ${summary}\n`,
      );

      expect(answers.length).toBeGreaterThanOrEqual(0.9 * RATE * (FLOOD_MS / 1000));
      expect(peak - before, summary).toBeLessThanOrEqual(GROWTH_MB);
      // served, or refused by admission (overloaded / the deadline cannot be met), each with its reason
      const refused = new Set(["gRPC RESOURCE_EXHAUSTED", "gRPC DEADLINE_EXCEEDED"]);
      const other = answers.filter((a) => !a.ok && !refused.has(a.status));
      expect(other.slice(0, 3), summary).toEqual([]);
      expect(answers.every((a) => a.ok || (a.message ?? "").length > 10)).toBe(true);
      expect(outcomes.get("200") ?? 0).toBeGreaterThan(0);
    } finally {
      clearInterval(sampler);
    }
    expect((await send()).ok).toBe(true);
  }, 120_000);
});
