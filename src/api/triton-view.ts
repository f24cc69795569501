// What Triton's tools assume of a model's versions, on top of any Gateway. Triton numbers versions
// (int64 in ModelConfig.version_policy; perf_analyzer parses statistics versions with std::stoll),
// while sloserve names its variants. Here variant k of a task — the k-th name of its metadata's
// `versions` list — is also version k: a numeric version addresses that variant, statistics report
// the number (and the name as `variant`, in JSON), and the names keep working everywhere.
// It also books Triton's compute input/output statistics, which the front-ends measure (decoding
// the request's tensors, encoding the response's): perf_analyzer insists that their counts equal
// compute_infer's. Both are booked when a request succeeds, in the same run of microtasks as the
// core books compute_infer, so no statistics call can fall between them.
import { quoted } from "../repository/safe-path.js";
import { ApiError, type Gateway, type InferRequest, type ModelStats } from "./types.js";

const NUMBER = /^[1-9][0-9]{0,8}$/;
const VIEWS = new WeakMap<Gateway, TritonView>();

interface Io {
  count: number;
  inputNs: number;
  outputNs: number;
}

export class TritonView implements Gateway {
  private readonly io = new Map<string, Io>();

  private constructor(private readonly inner: Gateway) {}

  /** One view per gateway, so the REST and gRPC front-ends book into the same statistics. */
  static of(inner: Gateway): TritonView {
    let view = VIEWS.get(inner);
    if (!view) VIEWS.set(inner, (view = new TritonView(inner)));
    return view;
  }

  /** A request to `model` served by `variant` took this long to decode and to encode. */
  computeInputOutput(model: string, variant: string, inputMs: number, outputMs: number): void {
    const key = `${model}\u0000${variant}`;
    const io = this.io.get(key) ?? { count: 0, inputNs: 0, outputNs: 0 };
    io.count += 1;
    io.inputNs += Math.round(inputMs * 1e6);
    io.outputNs += Math.round(outputMs * 1e6);
    this.io.set(key, io);
  }

  /** The variant names of a task, in version order (a pipeline has the one version "1"). */
  versionsOf(model: string): string[] {
    return this.inner.modelMetadata(model).versions;
  }

  /** A variant name for `version`, which may be a name or a Triton version number. */
  variantOf(model: string, version: string | undefined): string | undefined {
    if (version === undefined || !NUMBER.test(version)) return version;
    const names = this.versionsOf(model);
    if (names.includes(version)) return version;
    const k = Number(version);
    if (k > names.length)
      throw new ApiError(
        404,
        `'${model}' has no variant ${quoted(version)}: versions 1..${names.length} are its variants ${names.join(", ")}`,
      );
    return names[k - 1];
  }

  /** The Triton version number of a variant ("" stays ""). */
  numberOf(model: string, variant: string): string {
    if (variant === "") return variant;
    const k = this.versionsOf(model).indexOf(variant);
    return k < 0 ? variant : String(k + 1);
  }

  metadata: Gateway["metadata"] = () => this.inner.metadata();
  live: Gateway["live"] = () => this.inner.live();
  ready: Gateway["ready"] = () => this.inner.ready();
  modelReady: Gateway["modelReady"] = (m, v) => this.inner.modelReady(m, this.variantOf(m, v));
  modelMetadata: Gateway["modelMetadata"] = (m, v) => this.inner.modelMetadata(m, this.variantOf(m, v));
  repositoryIndex: Gateway["repositoryIndex"] = (readyOnly) => this.inner.repositoryIndex(readyOnly);
  load: Gateway["load"] = (m) => this.inner.load(m);
  unload: Gateway["unload"] = (m) => this.inner.unload(m);

  modelConfig: Gateway["modelConfig"] = (m, v) => this.inner.modelConfig(m, this.variantOf(m, v));

  statistics: Gateway["statistics"] = (m, v) => {
    const { model_stats } = this.inner.statistics(m, m === undefined ? v : this.variantOf(m, v));
    return {
      model_stats: model_stats.map((s): ModelStats => {
        const io = this.io.get(`${s.name}\u0000${s.version}`);
        const inference_stats = io
          ? {
              ...s.inference_stats,
              compute_input: { count: io.count, ns: io.inputNs },
              compute_output: { count: io.count, ns: io.outputNs },
            }
          : s.inference_stats;
        return { ...s, inference_stats, version: this.numberOf(s.name, s.version), variant: s.version };
      }),
    };
  };

  admit: Gateway["admit"] = (m, v, sloMs, priority) => this.inner.admit(m, this.variantOf(m, v), sloMs, priority);

  infer: Gateway["infer"] = (req: InferRequest) =>
    this.inner.infer(req.version === undefined ? req : { ...req, version: this.variantOf(req.model, req.version) });

  /**
   * Triton's `unload_dependents`: unloading a pipeline also unloads its stages (the composing models
   * of an ensemble). A task has no dependents.
   */
  async unloadWithDependents(model: string): Promise<void> {
    const config = this.inner.modelConfig(model) as { ensemble_scheduling?: { step: { model_name: string }[] } };
    await this.inner.unload(model);
    for (const step of config.ensemble_scheduling?.step ?? []) await this.inner.unload(step.model_name);
  }
}
