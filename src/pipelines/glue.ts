// Glue: the code a pipeline runs between its stages when tensors do not simply pass by name (pipeline.yaml
// `glue:`). It decodes the pipeline's own inputs (an image file, say) into its source stages' inputs, turns
// the outputs a stage waited for into its input (OCR: the detector's map → boxes → crops, one row per box),
// and makes the pipeline's answer from every stage's results. The walk of the serving core calls it; it
// never queues anything itself.
import type { StageInput, StageResult } from "../core/pipeline.js";
import type { TypedArray } from "../engine/engine.js";
import type { OipDatatype } from "../repository/datatypes.js";
import type { GlueName } from "../repository/glue-names.js";

/** A tensor at the pipeline's edge, as the protocol front ends decode and encode it. */
export interface GlueTensor {
  name: string;
  datatype: OipDatatype;
  shape: number[];
  data: TypedArray | Uint8Array[];
}

/** A tensor the pipeline takes or gives; -1 marks a dimension that varies. */
export interface GlueTensorDecl {
  name: string;
  datatype: OipDatatype;
  /** Full shape, the leading (request) dimension included. */
  shape: number[];
  /** Another input may stand in for it. */
  optional?: boolean;
}

/** Bad pipeline input: the gateway answers 400 with this message. */
export class GlueInputError extends Error {}

/** One request's passage through the glue: what the stages get, what the client gets back. */
export interface GlueRun {
  /** The input of a stage (a source gets an empty `upstream`); null skips the stage. */
  stageInput(task: string, upstream: ReadonlyMap<string, StageResult>): StageInput | null;
  /** The pipeline's outputs from every stage's results. */
  answer(results: ReadonlyMap<string, StageResult>): GlueTensor[];
}

/** What a glue takes and gives, known before it is made (metadata, config, load checks). */
export interface GlueSignature {
  readonly inputs: readonly GlueTensorDecl[];
  readonly outputs: readonly GlueTensorDecl[];
  /** The stage tasks it knows how to feed (a pipeline.yaml naming others is refused at load). */
  readonly stages: readonly string[];
}

export interface Glue {
  /** Checks and decodes a request's inputs; throws GlueInputError with what to fix. */
  start(inputs: readonly GlueTensor[]): Promise<GlueRun>;
}

export interface GlueDef {
  signature: GlueSignature;
  create(): Promise<Glue>;
}

/** Makes each glue once, on first use (the OCR glue reads its dictionary). */
export class GlueRegistry {
  private readonly made = new Map<GlueName, Promise<Glue>>();

  constructor(private readonly defs: Record<GlueName, GlueDef>) {}

  signature(name: GlueName): GlueSignature {
    return this.defs[name].signature;
  }

  get(name: GlueName): Promise<Glue> {
    let g = this.made.get(name);
    if (!g) {
      g = this.defs[name].create();
      this.made.set(name, g);
      g.catch(() => this.made.delete(name));
    }
    return g;
  }
}
