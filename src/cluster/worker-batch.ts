// Sends one batch to a worker over its channel and decodes the answer: what any backend whose instances
// are sloserve worker processes (local processes, Kubernetes pods) does in `Instance.run`.
import type { Tensors } from "../engine/engine.js";
import { WorkerGoneError, type WorkerClient } from "../worker/client.js";
import type { WirePart, WireTensor } from "../worker/protocol.js";
import { bytesOf, viewAs } from "../worker/tensors.js";
import type { BatchResult, BatchWork } from "./types.js";

/**
 * `lost` hears first when the worker is gone (its channel closed), so the backend can take the instance
 * out of the routing before the failure is answered and a retry cannot land there again.
 */
export function sendBatch(
  client: WorkerClient,
  work: BatchWork,
  done: (r: BatchResult) => void,
  lost?: (why: string) => void,
): void {
  const parts: WirePart[] = [];
  const payload: Uint8Array[] = [];
  for (const item of work.items) {
    if (!item.input) {
      done({ ok: false, gone: false, message: "a request without tensors reached a worker instance" });
      return;
    }
    const tensors: WireTensor[] = [];
    for (const [name, t] of Object.entries(item.input)) {
      const bytes = bytesOf(t.data);
      tensors.push({ name, type: t.type, dims: t.dims, bytes: bytes.byteLength });
      payload.push(bytes);
    }
    parts.push({ rows: item.rows, tensors });
  }
  client.call("infer", work.subnet === undefined ? { parts } : { parts, subnet: work.subnet }, payload).then(
    ({ header, payload: out }) => {
      let offset = 0;
      const outputs = header.parts.map((p) => {
        const o: Tensors = {};
        for (const t of p.tensors) {
          o[t.name] = { type: t.type, data: viewAs(t.type, out.subarray(offset, offset + t.bytes)), dims: t.dims };
          offset += t.bytes;
        }
        return o;
      });
      done({ ok: true, outputs, computeMs: header.computeUs / 1000 });
    },
    (err: Error) => {
      const gone = err instanceof WorkerGoneError;
      if (gone) lost?.(err.message);
      done({ ok: false, gone, message: err.message });
    },
  );
}
