// TEST FIXTURE, not the server core: a small `Gateway` over one real onnxruntime session of the
// tiny digits model, so protocol front-ends can be tested against real inference while the core
// (src/api/gateway.ts) evolves separately. It records the last decoded request so tests can
// check the front-end's translation exactly.
import { Engine } from "../../../src/engine/engine.js";
import { ApiError, type Gateway, type InferRequest, type InferResponse, type ModelStats, type Readiness } from "../../../src/api/types.js";
import { tinyDigitsModel } from "../../support/tiny-model.js";

export const FIXTURE_MODEL = "digits";
export const FIXTURE_VARIANT = "tiny";
const ROW = [1, 28, 28];
const ROW_SIZE = 784;
const CLASSES = 10;

export class EngineGateway implements Gateway {
  lastRequest: InferRequest | undefined;
  readonly loads: string[] = [];
  private loaded = true;
  private inferences = 0;

  private constructor(readonly engine: Engine) {}

  static async create(): Promise<EngineGateway> {
    return new EngineGateway(await Engine.create(tinyDigitsModel(), { threads: 1 }));
  }

  close(): Promise<void> {
    return this.engine.close();
  }

  metadata() {
    return { name: "sloserve", version: "0.1.0", extensions: ["model_repository", "statistics", "model_configuration", "sloserve_slo"] };
  }

  live(): Readiness {
    return { ready: true };
  }

  ready(): Readiness {
    return this.loaded ? { ready: true } : { ready: false, reason: `'${FIXTURE_MODEL}' is unloaded` };
  }

  modelReady(model: string, version?: string): Readiness {
    this.resolve(model, version);
    return this.ready();
  }

  modelMetadata(model: string, version?: string) {
    this.resolve(model, version);
    return {
      name: model,
      versions: [FIXTURE_VARIANT],
      platform: "onnxruntime_onnx",
      inputs: [{ name: "image", datatype: "FP32" as const, shape: [-1, ...ROW] }],
      outputs: [{ name: "probabilities", datatype: "FP32" as const, shape: [-1, CLASSES] }],
    };
  }

  modelConfig(model: string, version?: string): Record<string, unknown> {
    this.resolve(model, version);
    return {
      name: model,
      platform: "onnxruntime_onnx",
      backend: "onnxruntime",
      max_batch_size: 16,
      input: [{ name: "image", data_type: "TYPE_FP32", dims: ROW }],
      output: [{ name: "probabilities", data_type: "TYPE_FP32", dims: [CLASSES] }],
      dynamic_batching: { max_queue_delay_microseconds: 0, default_queue_policy: { max_queue_size: 64 } },
      version_policy: { specific: { versions: [FIXTURE_VARIANT] } },
      parameters: { slo_ms: { string_value: "50" } },
    };
  }

  statistics(model?: string, version?: string): { model_stats: ModelStats[] } {
    if (model !== undefined) this.resolve(model, version);
    const d = (count: number) => ({ count, ns: count * 1000 });
    return {
      model_stats: [{
        name: FIXTURE_MODEL,
        version: FIXTURE_VARIANT,
        last_inference: 1_700_000_000_000,
        inference_count: this.inferences,
        execution_count: this.inferences,
        inference_stats: { success: d(this.inferences), fail: d(0), queue: d(this.inferences), compute_input: d(0), compute_infer: d(this.inferences), compute_output: d(0) },
        batch_stats: [{ batch_size: 1, compute_infer: d(this.inferences) }],
      }],
    };
  }

  async infer(request: InferRequest): Promise<InferResponse> {
    this.lastRequest = request;
    this.resolve(request.model, request.version);
    if (!this.loaded) throw new ApiError(503, `'${FIXTURE_MODEL}' is unloaded; load it first`);
    const deadline = request.parameters.deadline_unix_ms;
    if (typeof deadline === "number" && deadline <= Date.now()) {
      throw new ApiError(504, `deadline ${deadline} passed before the request could run`);
    }
    const image = request.inputs.find((t) => t.name === "image");
    if (!image || request.inputs.length !== 1) throw new ApiError(400, `'${FIXTURE_MODEL}' takes exactly one input, 'image'`);
    if (image.datatype !== "FP32" || !(image.data instanceof Float32Array)) throw new ApiError(400, "input 'image' must be FP32");
    const rows = image.shape[0] ?? 0;
    if (image.shape.length !== 4 || image.shape.slice(1).join() !== ROW.join() || image.data.length !== rows * ROW_SIZE) {
      throw new ApiError(400, `input 'image' must have shape [n,1,28,28], got [${image.shape.join(",")}]`);
    }
    const t0 = performance.now();
    const [out] = await this.engine.runBatch([{ rows, inputs: { image: image.data } }]);
    const computeUs = Math.round((performance.now() - t0) * 1000);
    this.inferences += rows;
    const probs = out!.probabilities!;
    const slo = request.parameters.slo_ms;
    return {
      model_name: request.model,
      model_version: FIXTURE_VARIANT,
      id: request.id,
      parameters: {
        variant: FIXTURE_VARIANT,
        batch_size: rows,
        queue_us: 0,
        compute_us: computeUs,
        slo_met: typeof slo === "number" ? Date.now() - request.receivedAtUnixMs <= slo : true,
        ...(typeof slo === "number" ? { slo_ms: slo } : {}),
      },
      outputs: [{ name: "probabilities", datatype: "FP32", shape: probs.dims, data: probs.data }],
    };
  }

  repositoryIndex() {
    return [{ name: FIXTURE_MODEL, version: FIXTURE_VARIANT, state: this.loaded ? ("READY" as const) : ("UNAVAILABLE" as const), reason: this.loaded ? "" : "unloaded" }];
  }

  async load(model: string): Promise<void> {
    this.resolve(model);
    this.loads.push(model);
    this.loaded = true;
  }

  async unload(model: string): Promise<void> {
    this.resolve(model);
    this.loaded = false;
  }

  private resolve(model: string, version?: string): void {
    if (model !== FIXTURE_MODEL) throw new ApiError(404, `unknown model '${model}'; this server serves '${FIXTURE_MODEL}'`);
    if (version !== undefined && version !== FIXTURE_VARIANT) throw new ApiError(404, `unknown version '${version}' of '${model}'; use '${FIXTURE_VARIANT}'`);
  }
}
