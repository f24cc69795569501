// A supernet subnet's control values (variant.yaml `subnets[].controls`) as onnxruntime feeds.
import ort from "onnxruntime-node";

/** int64 tensors, one per control input; built once per subnet and reused for every batch. */
export function controlFeeds(controls: Record<string, readonly number[]>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, values] of Object.entries(controls)) {
    feeds[name] = new ort.Tensor("int64", BigInt64Array.from(values.map((v) => BigInt(v))), [values.length]);
  }
  return feeds;
}
