// Sends one batch to a worker over its socket and decodes the answer: what any backend whose instances
// are sloserve worker processes (local processes, Kubernetes pods) does in `Instance.run`.
import type { PartOutputs, TypedArray } from "../engine/engine.js";
import { WorkerGoneError, type WorkerClient } from "../worker/client.js";
import type { WirePart, WireTensor } from "../worker/protocol.js";
import { bytesOf, viewAs } from "../worker/tensors.js";
import type { BatchResult, BatchWork } from "./types.js";

/** What a request carries to a worker instance: one flat typed array per model input. */
export type WorkerInput = Record<string, { type: string; dims: number[]; data: TypedArray }>;

export function sendBatch(client: WorkerClient, work: BatchWork, done: (r: BatchResult) => void): void {
  const parts: WirePart[] = [];
  const payload: Uint8Array[] = [];
  for (const r of work.requests) {
    const input = r.input as WorkerInput;
    const tensors: WireTensor[] = [];
    for (const [name, t] of Object.entries(input)) {
      const bytes = bytesOf(t.data);
      tensors.push({ name, type: t.type, dims: t.dims, bytes: bytes.byteLength });
      payload.push(bytes);
    }
    parts.push({ rows: r.rows, tensors });
  }
  client.call("infer", work.subnet === undefined ? { parts } : { parts, subnet: work.subnet }, payload).then(
    ({ header, payload: out }) => {
      let offset = 0;
      const outputs = (header.parts as WirePart[]).map((p) => {
        const o: PartOutputs = {};
        for (const t of p.tensors) {
          o[t.name] = { data: viewAs(t.type, out.subarray(offset, offset + t.bytes)), dims: t.dims };
          offset += t.bytes;
        }
        return o;
      });
      done({ ok: true, outputs, computeMs: (header.computeUs as number) / 1000 });
    },
    (err: Error) => done({ ok: false, gone: err instanceof WorkerGoneError, message: err.message }),
  );
}
