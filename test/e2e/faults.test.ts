// Faults an operator meets, against the real server and real worker processes: a worker that stops
// answering (SIGSTOP) is detected and replaced and its batch fails over; a gateway killed with -9 leaves
// no worker behind; a task unloaded during its cold start leaves no worker behind and none is started
// for it afterwards; nothing may connect to a worker's channel but the gateway that started it.
import net from "node:net";
import { describe, expect, it } from "vitest";
import { encodeFrame, FrameDecoder } from "../../src/worker/protocol.js";
import { loadDigits } from "../../src/zoo/digits-data.js";
import { float32Bytes, infer, post } from "../support/oip-client.js";
import { alive, workerPids, startServerProcess } from "../support/server-process.js";
import { withTestServer } from "../support/server.js";

const digits = loadDigits().test;
const oneDigit = () => [
  { name: "image", datatype: "FP32", shape: [1, 1, 28, 28], binary: float32Bytes(digits.images.subarray(0, 784)) },
];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (!(await check())) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
  return performance.now() - t0;
}

describe("a worker that stops answering", () => {
  it("is detected, killed and replaced within seconds; its batch fails over and no request waits on it", async () => {
    await withTestServer(
      {
        cores: 2,
        deploy: [
          { task: "digits", variant: "cnn-large", cores: 1 },
          { task: "digits", variant: "cnn-large", cores: 1 },
        ],
      },
      async (server) => {
        const victim = server.cluster.instances()[0]!;
        const pid = server.local!.pidOf(victim.id)!;
        process.kill(pid, "SIGSTOP");
        try {
          // a steady trickle while the worker is stopped: each request may land on it
          const t0 = performance.now();
          const sent = Array.from({ length: 40 }, (_, i) =>
            sleep(i * 25).then(() =>
              infer(server.httpUrl, "/v2/models/digits/versions/cnn-large/infer", oneDigit(), {
                parameters: { slo_ms: 10_000 },
              }).then((r) => ({ ...r, ms: performance.now() - t0 - i * 25 })),
            ),
          );
          const results = await Promise.all(sent);
          // suspect after 5 × the predicted batch time + 1 s, killed when a 1-s probe sees it answer no ping
          // and use no CPU: nothing waits anywhere near the 10-s stop
          for (const r of results) {
            expect(r.status, JSON.stringify(r.json)).toBe(200);
            expect(r.ms).toBeLessThan(5000);
          }
          await until("the stopped worker is killed", async () => !(await alive(pid)), 5000);
          await until(
            "a replacement is ready",
            () =>
              server.cluster.instances().filter((i) => i.state === "ready" && server.local!.pidOf(i.id) !== pid)
                .length === 2,
            15_000,
          );
        } finally {
          if (await alive(pid)) process.kill(pid, "SIGKILL");
        }
      },
    );
  });
});

describe("worker processes never outlive their gateway", () => {
  it("leaves no worker running 5 s after the gateway is killed with -9", async () => {
    const server = await startServerProcess({
      cores: 2,
      deploy: [
        { task: "digits", variant: "linear", cores: 1 },
        { task: "digits", variant: "mlp-small", cores: 1 },
      ],
    });
    const workers = await workerPids(server.pid);
    expect(workers).toHaveLength(2);
    process.kill(server.pid, "SIGKILL");
    await server.exited;
    const ms = await until(
      "every worker exits",
      async () => (await Promise.all(workers.map(alive))).every((a) => !a),
      5000,
    );
    process.stdout.write(`workers gone ${ms.toFixed(0)} ms after the gateway was killed\n`);
  });

  it("cancels a cold start when its task is unloaded, and starts nothing for it afterwards", async () => {
    await withTestServer({ cores: 2, deploy: [] }, async (server) => {
      // a request to a task with no instance starts one on demand (a vision cold start takes over a second)
      const pending = infer(
        server.httpUrl,
        "/v2/models/vision/infer",
        [{ name: "image", datatype: "FP32", shape: [1, 3, 224, 224], binary: new Uint8Array(3 * 224 * 224 * 4) }],
        { parameters: { slo_ms: 60_000 } },
      );
      await until(
        "an instance of vision is starting",
        () => server.cluster.instances().some((i) => i.task === "vision"),
        5000,
      );
      const starting = server.cluster.instances().find((i) => i.task === "vision")!;
      expect(starting.state).toBe("starting");
      const unload = await post(server.httpUrl, "/v2/repository/models/vision/unload", {});
      expect(unload.status).toBe(200);
      const answer = await pending;
      expect(answer.status).toBe(503);
      expect(answer.json.error).toMatch(/unloaded/);
      await sleep(2500); // longer than a vision cold start: a start that went on would show up now
      expect(server.cluster.instances().filter((i) => i.task === "vision")).toEqual([]);
      const fs = await import("node:fs/promises");
      for (const w of await workerPids(process.pid)) {
        const cmd = await fs.readFile(`/proc/${w}/cmdline`, "utf8").catch(() => "");
        expect(cmd).not.toMatch(/models\/vision\//);
      }
    });
  });
});

describe("the worker channel", () => {
  it("refuses a connection that does not open with the instance's secret", async () => {
    await withTestServer({ cores: 1, deploy: [{ task: "digits", variant: "linear", cores: 1 }] }, async (server) => {
      const inst = server.cluster.instances()[0]!;
      const port = server.local!.portOf(inst.id)!;
      const reply = await new Promise<{ ok: boolean; error?: string; closed: boolean }>((resolve, reject) => {
        const socket = net.connect({ host: "127.0.0.1", port }, () => {
          for (const b of encodeFrame({ id: 1, op: "shutdown" })) socket.write(b);
        });
        const decoder = new FrameDecoder<{ ok: boolean; error?: string }>();
        let got: { ok: boolean; error?: string } | undefined;
        socket.on("data", (d) => (got = decoder.push(d)[0]?.header ?? got));
        socket.on("close", () => resolve({ ...(got ?? { ok: true }), closed: true }));
        socket.on("error", reject);
      });
      expect(reply).toMatchObject({ ok: false, error: "unauthenticated worker connection", closed: true });
      // the worker is still there and serving
      const r = await infer(server.httpUrl, "/v2/models/digits/infer", oneDigit());
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    });
  });
});
