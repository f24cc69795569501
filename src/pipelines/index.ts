// Every glue a pipeline.yaml may name, by that name (the names themselves: src/repository/glue-names.ts).
import type { GlueName } from "../repository/glue-names.js";
import { GlueRegistry, type GlueDef } from "./glue.js";
import { OCR_GLUE } from "./ocr.js";

export const GLUES: Record<GlueName, GlueDef> = { ocr: OCR_GLUE };

export function glueRegistry(): GlueRegistry {
  return new GlueRegistry(GLUES);
}
