// Sends one batch to a worker over its channel and decodes the answer: what any backend whose instances
// are sloserve worker processes (local processes, Kubernetes pods) does in `Instance.run`.
import type { Tensors } from "../engine/engine.js";
import { WorkerGoneError, type WorkerClient } from "../worker/client.js";
import type { WirePart, WireTensor } from "../worker/protocol.js";
import { bytesOf, viewAs } from "../worker/tensors.js";
import type { BatchResult, BatchWork } from "./types.js";

/**
 * `lost` hears first when the worker is gone (its channel closed), so the backend can take the instance
 * out of the routing before the failure is answered and a retry cannot land there again. Returns the call's
 * id (for `cancelBatch`), or null when nothing was sent.
 */
export function sendBatch(
  client: WorkerClient,
  work: BatchWork,
  done: (r: BatchResult) => void,
  lost?: (why: string) => void,
): number | null {
  const parts: WirePart[] = [];
  const payload: Uint8Array[] = [];
  for (const item of work.items) {
    if (!item.input) {
      done({ ok: false, gone: false, message: "a request without tensors reached a worker instance" });
      return null;
    }
    const tensors: WireTensor[] = [];
    for (const [name, t] of Object.entries(item.input)) {
      const bytes = bytesOf(t.data);
      tensors.push({ name, type: t.type, dims: t.dims, bytes: bytes.byteLength });
      payload.push(bytes);
    }
    parts.push({ rows: item.rows, tensors });
  }
  const call = client.send("infer", work.subnet === undefined ? { parts } : { parts, subnet: work.subnet }, payload);
  call.reply.then(
    ({ header, payload: out }) => {
      if (header.cancelled) {
        done({ ok: false, gone: false, cancelled: true, message: "skipped unrun: every request in it was cancelled" });
        return;
      }
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
  return call.id;
}

/** Asks the worker to skip a batch sent as call `id` if it has not started it (its answer comes as usual). */
export function cancelBatch(client: WorkerClient, id: number): void {
  // a worker that is gone fails the batch itself; nothing to do here
  client.call("cancel", { target: id }).catch(() => undefined);
}
