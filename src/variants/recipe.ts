// A generated variant's recipe: the transforms applied, in order, to its source model. The same
// recipe rebuilds the same model (calibration data is seeded), so a repository can commit the
// recipe (variant.yaml `derived_from`) and build the binary on first start.
import { createHash } from "node:crypto";
import { z } from "zod";
import { decodeModel, encodeModel } from "../engine/onnx-model.js";
import { optimizeWithOrt } from "./ort-optimize.js";
import { quantizeInt8, QUANTIZABLE_OPS, type Feeds } from "./quantize.js";
import { resizeInputs } from "./resolution.js";
import { simplifyGraph } from "./simplify.js";

export const Transform = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("simplify") }).strict(),
  z.object({ kind: z.literal("ort-optimize"), level: z.enum(["basic", "extended"]) }).strict(),
  z.object({ kind: z.literal("resolution"), size: z.number().int().positive() }).strict(),
  z
    .object({
      kind: z.literal("int8"),
      ops: z.array(z.enum(QUANTIZABLE_OPS as [string, ...string[]])).min(1),
      first_layer: z.enum(["int8", "float"]).default("int8"),
      /** Activation ranges clip this share of extreme values on each side (0: plain min/max). */
      percentile: z.number().min(0).max(0.01).default(0),
      calibration: z.string().min(1),
    })
    .strict(),
]);
export type Transform = z.infer<typeof Transform>;

export function parseTransforms(raw: unknown): Transform[] {
  const parsed = z.array(Transform).min(1).safeParse(raw);
  if (!parsed.success)
    throw new Error(
      `unknown or malformed transform in derived_from: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  return parsed.data;
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Calibration inputs of the task, by their description in the recipe. */
export type CalibrationSource = () => Promise<Feeds[]>;

export async function applyTransform(
  bytes: Uint8Array,
  t: Transform,
  calibration: CalibrationSource,
): Promise<Uint8Array> {
  switch (t.kind) {
    case "simplify": {
      const model = decodeModel(await optimizeWithOrt(bytes, "basic"));
      simplifyGraph(model);
      return encodeModel(model);
    }
    case "ort-optimize":
      return optimizeWithOrt(bytes, t.level);
    case "resolution":
      return resizeInputs(bytes, t.size);
    case "int8":
      return (
        await quantizeInt8(bytes, await calibration(), {
          ops: t.ops,
          firstLayerFloat: t.first_layer === "float",
          percentile: t.percentile,
        })
      ).bytes;
  }
}

export async function applyRecipe(
  bytes: Uint8Array,
  transforms: Transform[],
  calibration: CalibrationSource,
): Promise<Uint8Array> {
  let out = bytes;
  for (const t of transforms) out = await applyTransform(out, t, calibration);
  return out;
}

export function describeTransforms(ts: Transform[]): string {
  return ts
    .map((t) =>
      t.kind === "resolution"
        ? `input ${t.size}x${t.size}`
        : t.kind === "int8"
          ? `int8 (${t.ops.join("/")}${t.first_layer === "float" ? ", first layer float" : ""}${t.percentile ? `, ranges at ${t.percentile} percentile` : ""})`
          : t.kind === "ort-optimize"
            ? `onnxruntime ${t.level}`
            : "simplified",
    )
    .join(" + ");
}
