// `npm start` on a 2-core machine: every task of the bundled zoo and the mnist-e2e pipeline serves under
// mixed traffic (instances share cores when there are more tasks than cores), and "ready" means it: once
// the server says ready, every model says ready with a reason, and every request is answered 200.
import { describe, expect, it } from "vitest";
import { loadDigits } from "../../src/zoo/digits-data.js";
import { float32Bytes, get, infer } from "../support/oip-client.js";
import { withTestServer } from "../support/server.js";

const digits = loadDigits().test;
const image = float32Bytes(digits.images.subarray(0, 784));
const raw = Array.from(digits.images.subarray(0, 784), (x) => Math.round(x * 255));
const picture = new Uint8Array(3 * 224 * 224 * 4);

const REQUESTS: Record<
  string,
  { name: string; datatype: string; shape: number[]; binary?: Uint8Array; data?: number[] }[]
> = {
  digits: [{ name: "image", datatype: "FP32", shape: [1, 1, 28, 28], binary: image }],
  "digits-supernet": [{ name: "image", datatype: "FP32", shape: [1, 1, 28, 28], binary: image }],
  "mnist-prep": [{ name: "raw", datatype: "UINT8", shape: [1, 28, 28], data: raw }],
  "mnist-e2e": [{ name: "raw", datatype: "UINT8", shape: [1, 28, 28], data: raw }],
  vision: [{ name: "image", datatype: "FP32", shape: [1, 3, 224, 224], binary: picture }],
  "vision-supernet": [{ name: "image", datatype: "FP32", shape: [1, 3, 224, 224], binary: picture }],
};

describe("the bundled zoo on 2 cores", () => {
  it("serves every task and the pipeline under mixed traffic, and is ready only when it can", async () => {
    // the default deployment (no --deploy), as npm start runs it
    await withTestServer({ cores: 2, deploy: undefined, autoscaler: undefined }, async (server) => {
      const ready = await get(server.httpUrl, "/v2/health/ready");
      expect(ready.status, JSON.stringify(ready.json)).toBe(200);
      for (const m of Object.keys(REQUESTS)) {
        const r = await get(server.httpUrl, `/v2/models/${m}/ready`);
        expect(r.status, `${m}: ${JSON.stringify(r.json)}`).toBe(200);
      }
      const statuses = new Map<string, number[]>();
      for (let round = 0; round < 20; round++) {
        const results = await Promise.all(
          Object.entries(REQUESTS).map(([m, inputs]) =>
            infer(server.httpUrl, `/v2/models/${m}/infer`, inputs, { parameters: { slo_ms: 10_000 } }).then(
              (r) => [m, r.status, r.json] as const,
            ),
          ),
        );
        for (const [m, status, json] of results) {
          statuses.set(m, [...(statuses.get(m) ?? []), status]);
          expect(status, `round ${round}, ${m}: ${JSON.stringify(json)}`).toBe(200);
        }
      }
      expect([...statuses.keys()].sort()).toEqual(Object.keys(REQUESTS).sort());
    });
  }, 180_000);
});
