// The names of the code a pipeline.yaml may put between its stages (`glue:`), listed apart from that
// code (src/pipelines) so that the repository's schema can check them without loading it.
export const GLUE_NAMES = ["ocr"] as const;
export type GlueName = (typeof GLUE_NAMES)[number];
