// The server core behind both protocol front-ends: resolves a task, a pinned variant or a
// pipeline; validates inputs against the task's signature; turns SLO parameters into a deadline;
// queues the request with the router and answers with what happened. Also health, metadata,
// Triton-style config and statistics, and the repository API.
import { coreTaskOf, corePipelineOf, type ScalingChoice } from "../core/from-repository.js";
import {
  servedStages,
  stageTotals,
  type PipelineOutcome,
  type StageInput,
  type StageResult,
} from "../core/pipeline.js";
import { GlueInputError, type GlueRegistry, type GlueRun, type GlueTensorDecl } from "../pipelines/glue.js";
import { glueRegistry } from "../pipelines/index.js";
import { sinks, sources, stageTasks } from "../autoscaler/planner/pipeline-graph.js";
import type { ServingCore } from "../core/serving-core.js";
import { variantModel } from "../core/variant-model.js";
import type { Tensors } from "../engine/engine.js";
import { DATATYPES } from "../repository/datatypes.js";
import {
  loadRepository,
  RepositoryError,
  type Pipeline,
  type Repository,
  type Task,
} from "../repository/repository.js";
import { nameProblem, quoted } from "../repository/safe-path.js";
import type { TaskConfig } from "../repository/schema.js";
import type { Outcome, Request, Served } from "../router/request.js";
import type { HotLoop } from "../worker/hot-loop.js";
import { checkDistinctOutputs } from "./limits.js";
import { sloTerms, type SloTerms } from "./slo-params.js";
import { elementCount } from "./tensor-codec.js";
import {
  ApiError,
  type Gateway,
  type InferRequest,
  type InferResponse,
  type ModelMetadata,
  type ModelStats,
  type ParamValue,
  type Readiness,
  type RepositoryEntry,
  type ServerMetadata,
  type Tensor,
} from "./types.js";
import { topClasses } from "./classification.js";

export const SERVER_NAME = "sloserve";
export const SERVER_VERSION = "0.1.0";
export const EXTENSIONS = [
  "binary_tensor_data",
  "model_repository",
  "statistics",
  "model_configuration",
  "classification",
  "sloserve_slo",
  "sloserve_pipelines",
];

/** Triton-style statistics, kept by an observer of the serving core. */
export interface StatisticsSource {
  report(model?: string, version?: string): ModelStats[];
}

export interface GatewayDeps {
  repo: Repository;
  /** Where requests go; what is registered there is what is loaded. */
  core: ServingCore;
  /** How a task or pipeline (re)loaded through the repository API is scaled. */
  scaling: ScalingChoice;
  statistics: StatisticsSource;
  /** Busy-polls the gateway's event loop around requests (off unless configured). */
  hot?: HotLoop;
  /** The code pipelines run between their stages (default: every glue of src/pipelines). */
  glues?: GlueRegistry;
}

/** A pipeline request parameter: optional stages to skip, comma-separated. */
export const SKIP_STAGES_PARAM = "skip_stages";

export class SloGateway implements Gateway {
  /** Classification requests by the output list checkOutputs returned (see there). */
  private readonly classCounts = new WeakMap<string[], Map<string, number>>();
  private stopping = false;
  private starting = true;
  private readonly glues: GlueRegistry;

  constructor(private readonly d: GatewayDeps) {
    this.glues = d.glues ?? glueRegistry();
  }

  private loaded(name: string): boolean {
    return this.d.core.task(name) !== undefined || this.d.core.pipeline(name) !== undefined;
  }

  /** The initial instances are up: readiness may turn 200. */
  markStarted(): void {
    this.starting = false;
  }

  /** Stops admitting requests (health turns 503); used at shutdown. */
  stopAdmission(): void {
    this.stopping = true;
  }

  metadata(): ServerMetadata {
    return { name: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS };
  }

  live(): Readiness {
    return { ready: true };
  }

  ready(): Readiness {
    if (this.stopping) return { ready: false, reason: "server is shutting down" };
    if (this.starting) return { ready: false, reason: "starting the initial instances" };
    for (const name of [...this.d.repo.tasks.keys(), ...this.d.repo.pipelines.keys()]) {
      if (!this.loaded(name)) continue;
      const r = this.modelReady(name);
      if (!r.ready) return { ready: false, reason: r.reason };
    }
    return { ready: true };
  }

  modelReady(model: string, version?: string): Readiness {
    const target = this.resolve(model, version);
    if (this.stopping) return { ready: false, reason: "server is shutting down" };
    if (!this.loaded(model))
      return {
        ready: false,
        reason: `${quoted(model)} is unloaded; load it with POST /v2/repository/models/${model}/load`,
      };
    // Ready means a request is served now or as soon as an instance is up: one ready, starting, or startable
    const tasks = target.kind === "pipeline" ? stageTasks(target.pipeline.graph) : [model];
    const reasons: string[] = [];
    for (const t of tasks) {
      if (!this.loaded(t)) return { ready: false, reason: `stage '${t}' is unloaded` };
      const r = this.d.core.readiness(t);
      if (!r.servable) return { ready: false, reason: tasks.length > 1 ? `stage '${t}': ${r.reason}` : r.reason };
      reasons.push(tasks.length > 1 ? `${t}: ${r.reason}` : r.reason);
    }
    return { ready: true, reason: reasons.join("; ") };
  }

  modelMetadata(model: string, version?: string): ModelMetadata {
    const target = this.resolve(model, version);
    const meta = (decls: readonly GlueTensorDecl[]) =>
      decls.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape }));
    if (target.kind === "pipeline") {
      const sig = this.pipelineSignature(target.pipeline);
      return {
        name: model,
        versions: ["1"],
        platform: "ensemble",
        inputs: meta(sig.inputs),
        outputs: meta(sig.outputs),
      };
    }
    const rows = (decls: TaskConfig["inputs"]) => decls.map((t) => ({ ...t, shape: [-1, ...t.shape] }));
    return {
      name: model,
      versions: version ? [version] : [...target.task.variants.keys()],
      platform: "onnxruntime_onnx",
      inputs: meta(rows(target.task.config.inputs)),
      outputs: meta(rows(target.task.config.outputs)),
    };
  }

  /**
   * A pipeline's own inputs and outputs (full shapes, -1 where they vary): its glue's, else its source stages'
   * inputs and its last stages' outputs.
   */
  private pipelineSignature(p: Pipeline): { inputs: GlueTensorDecl[]; outputs: GlueTensorDecl[] } {
    if (p.config.glue) {
      const sig = this.glues.signature(p.config.glue);
      return { inputs: [...sig.inputs], outputs: [...sig.outputs] };
    }
    const rows = (decls: TaskConfig["inputs"]) =>
      decls.map((t) => ({ name: t.name, datatype: t.datatype, shape: [-1, ...t.shape] }));
    const inputs = new Map<string, GlueTensorDecl>();
    for (const s of sources(p.graph)) for (const t of rows(this.task(s.task).config.inputs)) inputs.set(t.name, t);
    return {
      inputs: [...inputs.values()],
      outputs: sinks(p.graph).flatMap((s) => rows(this.task(s.task).config.outputs)),
    };
  }

  modelConfig(model: string, version?: string): Record<string, unknown> {
    const target = this.resolve(model, version);
    const dims = (decls: TaskConfig["inputs"]) =>
      decls.map((t) => ({
        name: t.name,
        data_type: `TYPE_${t.datatype === "BYTES" ? "STRING" : t.datatype}`,
        dims: t.shape,
      }));
    if (target.kind === "pipeline") {
      const p = target.pipeline;
      const tasks = stageTasks(p.graph);
      const sig = this.pipelineSignature(p);
      const glued = p.config.glue !== undefined;
      // Triton's dims leave out the batch dimension; a glue pipeline takes one request at a time (no batch)
      const decl = (t: GlueTensorDecl) => ({
        name: t.name,
        data_type: `TYPE_${t.datatype === "BYTES" ? "STRING" : t.datatype}`,
        dims: glued ? t.shape : t.shape.slice(1),
        ...(t.optional ? { optional: true } : {}),
      });
      return {
        name: model,
        platform: "ensemble",
        max_batch_size: glued
          ? 0
          : Math.min(
              ...tasks.map((s) => Math.max(...[...this.task(s).variants.values()].map((v) => v.config.max_batch))),
            ),
        input: sig.inputs.map(decl),
        output: sig.outputs.map(decl),
        // Triton's steps have no edges or optional flag (its ensembles wire stages by tensor names): the
        // graph travels as a parameter, so that strict ModelConfig parsers still accept the config
        ensemble_scheduling: { step: p.graph.stages.map((s) => ({ model_name: s.task, model_version: -1 })) },
        version_policy: { specific: { versions: [1] } },
        parameters: {
          slo_ms: { string_value: String(p.config.slo_ms) },
          stage_graph: {
            string_value: JSON.stringify(
              p.graph.stages.map((s) => ({ task: s.task, after: s.after, ...(s.optional ? { optional: true } : {}) })),
            ),
          },
          min_accuracy: { string_value: String(p.config.min_accuracy) },
          ...(p.config.glue ? { glue: { string_value: p.config.glue } } : {}),
          accuracy: {
            string_value: p.record ? "measured per combination of stage variants" : "product of the stages'",
          },
        },
      };
    }
    const t = target.task;
    const variants = version ? [t.variants.get(version)!] : [...t.variants.values()];
    // Triton's versions are int64: variant k of the task (in metadata order) is version k (triton-view.ts)
    const names = [...t.variants.keys()];
    return {
      name: model,
      platform: "onnxruntime_onnx",
      backend: "onnxruntime",
      max_batch_size: Math.max(...variants.map((v) => v.config.max_batch)),
      input: dims(t.config.inputs),
      output: dims(t.config.outputs),
      dynamic_batching: {
        max_queue_delay_microseconds: 0,
        preserve_ordering: false,
        default_queue_policy: { max_queue_size: t.config.max_queue },
      },
      version_policy: { specific: { versions: variants.map((v) => names.indexOf(v.name) + 1) } },
      parameters: {
        slo_ms: { string_value: String(t.config.slo_ms) },
        min_accuracy: { string_value: String(t.config.min_accuracy) },
        scheduling: { string_value: t.config.scheduling },
        scaling: { string_value: t.config.scaling },
        late: { string_value: t.config.late },
        variants: { string_value: variants.map((v) => v.name).join(",") },
      },
    };
  }

  statistics(model?: string, version?: string) {
    if (model !== undefined) this.resolve(model, version);
    return { model_stats: this.d.statistics.report(model, version) };
  }

  repositoryIndex(readyOnly = false): RepositoryEntry[] {
    const out: RepositoryEntry[] = [];
    for (const name of [...this.d.repo.tasks.keys(), ...this.d.repo.pipelines.keys()]) {
      const r = this.loaded(name) ? this.modelReady(name) : { ready: false, reason: "unloaded" };
      const state = r.ready ? "READY" : "UNAVAILABLE";
      // as Triton's index: a reason only for what is not ready
      if (!readyOnly || state === "READY") out.push({ name, state, reason: r.ready ? "" : (r.reason ?? "") });
    }
    return out;
  }

  async load(model: string): Promise<void> {
    const problem = nameProblem(model);
    if (problem) throw new ApiError(400, problem);
    let fresh: Repository;
    try {
      fresh = await loadRepository(this.d.repo.root, { tasks: [model] });
    } catch (err) {
      // the repository's place on disk is the operator's business, not the caller's
      if (err instanceof RepositoryError) throw new ApiError(400, err.message.replaceAll(this.d.repo.root, "<models>"));
      throw err;
    }
    const pipeline = fresh.pipelines.get(model);
    if (pipeline) {
      for (const s of stageTasks(pipeline.graph))
        if (!this.d.repo.tasks.has(s)) throw new ApiError(400, `pipeline '${model}' needs task '${s}'; load it first`);
      const problem = this.glueProblem(pipeline);
      if (problem) throw new ApiError(400, problem);
      this.d.repo.pipelines.set(model, pipeline);
      this.d.core.addPipeline(corePipelineOf(pipeline, this.d.scaling));
      return;
    }
    const task = fresh.tasks.get(model)!;
    try {
      for (const v of task.variants.values()) variantModel(v);
    } catch (err) {
      throw new ApiError(400, (err as Error).message.replaceAll(this.d.repo.root, "<models>"));
    }
    this.d.repo.tasks.set(model, task);
    this.d.core.addTask(coreTaskOf(task, this.d.scaling));
  }

  async unload(model: string): Promise<void> {
    const target = this.resolve(model);
    if (target.kind === "pipeline") this.d.core.removePipeline(model);
    else await this.d.core.removeTask(model, `task '${model}' was unloaded`);
  }

  async infer(req: InferRequest): Promise<InferResponse> {
    this.d.hot?.poke();
    try {
      return await this.inferNow(req);
    } finally {
      this.d.hot?.poke();
    }
  }

  admit(model: string, version?: string, sloMs?: number, priority?: number): void {
    if (this.stopping) throw new ApiError(503, "server is shutting down; retry on another replica");
    const task = this.d.repo.tasks.get(model);
    if (!task || !this.loaded(model)) return; // a pipeline, or an error the request itself will get
    const refused = this.d.core.router.admitEarly(model, sloMs, version, priority ?? task.config.priority ?? 1);
    if (refused) throw new ApiError(refused.status, refused.message, refused.retryAfterMs);
  }

  private async inferNow(req: InferRequest): Promise<InferResponse> {
    if (this.stopping) throw new ApiError(503, "server is shutting down; retry on another replica");
    const target = this.resolve(req.model, req.version);
    if (!this.loaded(req.model))
      throw new ApiError(
        503,
        `${quoted(req.model)} is unloaded; load it with POST /v2/repository/models/${req.model}/load`,
      );
    const now = this.d.core.clock.now();
    if (target.kind === "pipeline") return this.inferPipeline(target.pipeline, req, now);
    const task = target.task;
    const terms = sloTerms(
      req.parameters,
      { sloMs: task.config.slo_ms, minAccuracy: task.config.min_accuracy, priority: task.config.priority },
      req.receivedAtUnixMs,
      now,
    );
    const { input, rows } = this.checkInputs(task, req.inputs);
    this.checkFloor(task, terms.minAccuracy, req.version);
    const wanted = this.checkOutputs(task.config.outputs, req);
    const served = this.expectServed(await this.submit(task, input, rows, terms, now, req.version, req.signal));
    return {
      model_name: req.model,
      model_version: served.variant,
      id: req.id,
      parameters: responseParams(served, now),
      outputs: this.outputsOf(task, served.output, wanted),
    };
  }

  private async inferPipeline(p: Pipeline, req: InferRequest, now: number): Promise<InferResponse> {
    const terms = sloTerms(
      req.parameters,
      { sloMs: p.config.slo_ms, minAccuracy: p.config.min_accuracy },
      req.receivedAtUnixMs,
      now,
    );
    const skip = this.skipOf(p, req.parameters);
    const accuracy = this.d.core.accuracyOf(p.name);
    const best = accuracy.best(new Map(), skip);
    if (best < terms.minAccuracy)
      throw new ApiError(
        400,
        `no combination of the variants of '${p.name}'${skip.size > 0 ? ` skipping ${[...skip].join(", ")}` : ""} reaches min_accuracy ${terms.minAccuracy}; the most accurate ${accuracy.measured ? "measured " : ""}reaches ${Number.isFinite(best) ? best.toFixed(4) : "nothing (none measured)"}`,
      );
    const sig = this.pipelineSignature(p);
    const wanted = this.checkOutputs(sig.outputs, req);
    const flow = p.config.glue ? await this.glueFlow(p, req) : this.tensorFlow(p, req);
    const o = await new Promise<PipelineOutcome>((resolve) =>
      this.d.core.submitPipeline({
        id: req.id ?? "",
        pipeline: p.name,
        arrival: now,
        deadline: terms.deadline,
        priority: terms.priority,
        minAccuracy: terms.minAccuracy,
        rows: flow.rows,
        input: null,
        skip,
        stageInput: flow.stageInput,
        done: resolve,
      }),
    );
    if (!o.ok) throw new ApiError(o.status, o.message, o.retryAfterMs);
    const end = this.d.core.clock.now();
    let outputs: Tensor[];
    try {
      outputs = flow.answer(o.results);
    } catch (err) {
      throw new ApiError(500, `pipeline '${p.name}' could not assemble its answer: ${(err as Error).message}`);
    }
    const byName = new Map(outputs.map((t) => [t.name, t]));
    const { queueMs, computeMs } = stageTotals(o.stages);
    const last = o.stages.reduce<(typeof o.stages)[number] | undefined>(
      (a, s) => (!a || s.finishedAt >= a.finishedAt ? s : a),
      undefined,
    );
    const params: Record<string, ParamValue> = {
      variant: servedStages(o.stages, p.graph),
      batch_size: last?.batchSize ?? 0,
      queue_us: Math.round(queueMs * 1000),
      compute_us: Math.round(computeMs * 1000),
      slo_met: o.sloMet,
      latency_us: Math.round((end - now) * 1000),
    };
    if (Number.isFinite(o.accuracy)) params.pipeline_accuracy = Number(o.accuracy.toFixed(6));
    if (o.skipped.length > 0) params.skipped_stages = o.skipped.join(",");
    return {
      model_name: req.model,
      model_version: "1",
      id: req.id,
      parameters: params,
      outputs: wanted.map((name) => {
        const t = byName.get(name);
        if (!t) throw new ApiError(500, `pipeline '${p.name}' did not produce output '${name}'`);
        return t;
      }),
    };
  }

  /** Optional stages the request skips (`skip_stages`: comma-separated stage names). */
  private skipOf(p: Pipeline, params: Record<string, ParamValue>): Set<string> {
    const raw = params[SKIP_STAGES_PARAM];
    if (raw === undefined) return new Set();
    if (typeof raw !== "string")
      throw new ApiError(400, `parameter '${SKIP_STAGES_PARAM}' must be a string of stage names, comma-separated`);
    const out = new Set<string>();
    for (const name of raw
      .split(",")
      .map((x) => x.trim())
      .filter((x) => x.length > 0)) {
      const s = p.graph.stages.find((x) => x.task === name);
      const optional = p.graph.stages.filter((x) => x.optional).map((x) => `'${x.task}'`);
      if (!s)
        throw new ApiError(
          400,
          `parameter '${SKIP_STAGES_PARAM}': ${quoted(name)} is not a stage of '${p.name}' (its optional stages: ${optional.join(", ") || "none"})`,
        );
      if (!s.optional)
        throw new ApiError(
          400,
          `parameter '${SKIP_STAGES_PARAM}': stage '${name}' of '${p.name}' is not optional (optional: ${optional.join(", ") || "none"})`,
        );
      out.add(name);
    }
    return out;
  }

  /** A glue pipeline: the glue decodes the request and feeds every stage. */
  private async glueFlow(p: Pipeline, req: InferRequest): Promise<PipelineFlow> {
    const problem = this.glueProblem(p);
    if (problem) throw new ApiError(503, problem);
    const glue = await this.glues.get(p.config.glue!);
    let run: GlueRun;
    try {
      run = await glue.start(req.inputs);
    } catch (err) {
      if (err instanceof GlueInputError) throw new ApiError(400, err.message);
      throw err;
    }
    return {
      rows: 1,
      stageInput: (task, upstream) => {
        const next = run.stageInput(task, upstream);
        if (next?.input) this.checkStageInput(this.task(task), next);
        return next;
      },
      answer: (results) => run.answer(results),
    };
  }

  /** A glue pipeline's glue must feed exactly its stages. */
  private glueProblem(p: Pipeline): string | null {
    if (!p.config.glue) return null;
    const sig = this.glues.signature(p.config.glue);
    const tasks = stageTasks(p.graph);
    const foreign = tasks.filter((t) => !sig.stages.includes(t));
    if (foreign.length > 0)
      return `pipeline '${p.name}': glue '${p.config.glue}' feeds ${sig.stages.join(", ")}, not ${foreign.join(", ")}`;
    return null;
  }

  /**
   * A pipeline without glue: the request's tensors feed its source stages by name, every later stage takes
   * its inputs by name from the outputs of the stages it waits for, and the last stages' outputs answer.
   */
  private tensorFlow(p: Pipeline, req: InferRequest): PipelineFlow {
    const firsts = sources(p.graph).map((s) => this.task(s.task));
    const declared = new Map(firsts.flatMap((t) => t.config.inputs.map((i) => [i.name, i] as const)));
    for (const t of req.inputs)
      if (!declared.has(t.name))
        throw new ApiError(
          400,
          `unknown input ${quoted(t.name)}; '${p.name}' takes ${[...declared.keys()].map((n) => `'${n}'`).join(", ")}`,
        );
    const checked = firsts.map((task) => {
      const mine = new Set(task.config.inputs.map((i) => i.name));
      return this.checkInputs(
        task,
        req.inputs.filter((t) => mine.has(t.name)),
        firsts.length > 1 ? `stage '${task.name}'` : "",
      );
    });
    const rows = checked[0]!.rows;
    if (checked.some((c) => c.rows !== rows))
      throw new ApiError(400, `inputs disagree on the batch size: ${checked.map((c) => c.rows).join(" vs ")} rows`);
    return {
      rows,
      stageInput: (task, upstream) => {
        const to = this.task(task);
        const at = firsts.indexOf(to);
        if (at >= 0) return checked[at]!;
        const tensors: Tensor[] = [];
        for (const [from, r] of upstream) {
          if (r.skipped) continue;
          const f = this.task(from);
          const names = f.config.outputs.map((o) => o.name).filter((n) => to.config.inputs.some((i) => i.name === n));
          tensors.push(...this.outputsOf(f, r.output, names));
        }
        return this.checkInputs(to, tensors, `stage '${to.name}'`);
      },
      answer: (results) =>
        sinks(p.graph).flatMap((s) => {
          const t = this.task(s.task);
          return this.outputsOf(
            t,
            results.get(s.task)?.output ?? null,
            t.config.outputs.map((o) => o.name),
          );
        }),
    };
  }

  /** What glue hands a stage must fit the stage's signature, as a client's request must. */
  private checkStageInput(task: Task, next: StageInput): void {
    const tensors: Tensor[] = Object.entries(next.input!).map(([name, t]) => ({
      name,
      datatype: task.config.inputs.find((i) => i.name === name)?.datatype ?? "FP32",
      shape: t.dims,
      data: t.data,
    }));
    const { rows } = this.checkInputs(task, tensors, `stage '${task.name}'`, false);
    if (rows !== next.rows) throw new Error(`stage '${task.name}' was given ${rows} rows but told ${next.rows}`);
  }

  private submit(
    task: Task,
    input: Tensors,
    rows: number,
    terms: SloTerms,
    arrival: number,
    pinned?: string,
    signal?: AbortSignal,
  ): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const router = this.d.core.router;
      const cancel = () => router.cancel(r);
      const r: Request = {
        seq: router.nextSeq(),
        id: String(router.nextSeq()),
        task: task.name,
        arrival,
        deadline: terms.deadline,
        priority: terms.priority,
        rows,
        minAccuracy: terms.minAccuracy,
        pinned,
        lateOk: task.config.late === "serve",
        input,
        done: (o) => {
          signal?.removeEventListener("abort", cancel);
          resolve(o);
        },
      };
      signal?.addEventListener("abort", cancel, { once: true });
      this.d.core.submit(r);
      // gone while its body was read: counted as cancelled like any other
      if (signal?.aborted) cancel();
    });
  }

  private expectServed(o: Outcome): Served {
    if (o.ok) return o;
    throw new ApiError(o.status, o.message, o.retryAfterMs);
  }

  private resolve(
    model: string,
    version?: string,
  ): { kind: "task"; task: Task } | { kind: "pipeline"; pipeline: Pipeline } {
    const task = this.d.repo.tasks.get(model);
    if (task) {
      if (version !== undefined && !task.variants.has(version)) {
        throw new ApiError(
          404,
          `task '${model}' has no variant ${quoted(version)}; its variants are: ${[...task.variants.keys()].join(", ")}`,
        );
      }
      return { kind: "task", task };
    }
    const pipeline = this.d.repo.pipelines.get(model);
    if (pipeline) {
      if (version !== undefined && version !== "1")
        throw new ApiError(
          404,
          `pipeline '${model}' has no versions to pin (got ${quoted(version)}); address it as /v2/models/${model}`,
        );
      return { kind: "pipeline", pipeline };
    }
    const known = [...this.d.repo.tasks.keys(), ...this.d.repo.pipelines.keys()];
    throw new ApiError(
      404,
      `unknown model ${quoted(model)}: it is neither a task nor a pipeline of this server (known: ${known.join(", ")})`,
    );
  }

  private task(name: string): Task {
    const t = this.d.repo.tasks.get(name);
    if (!t) throw new ApiError(503, `task '${name}' is not in the repository`);
    return t;
  }

  /** Inputs must be exactly the task's, with its datatypes and row shapes, and one batch size. */
  private checkInputs(task: Task, tensors: Tensor[], where = "", capRows = true): { input: Tensors; rows: number } {
    const prefix = where ? `${where}: ` : "";
    const byName = new Map<string, Tensor>();
    for (const t of tensors) {
      if (byName.has(t.name)) throw new ApiError(400, `${prefix}input ${quoted(t.name)} is given twice`);
      byName.set(t.name, t);
    }
    const input: Tensors = {};
    let rows = -1;
    for (const decl of task.config.inputs) {
      const t = byName.get(decl.name);
      if (!t)
        throw new ApiError(
          400,
          `${prefix}missing input '${decl.name}' (${decl.datatype}, shape [-1,${decl.shape.join(",")}]) for '${task.name}'`,
        );
      byName.delete(decl.name);
      if (t.datatype !== decl.datatype)
        throw new ApiError(
          400,
          `${prefix}input '${decl.name}' is ${t.datatype}, but '${task.name}' takes ${decl.datatype}`,
        );
      const rowOk = t.shape.length === decl.shape.length + 1 && decl.shape.every((d, i) => t.shape[i + 1] === d);
      if (!rowOk || t.shape[0]! < 1) {
        throw new ApiError(
          400,
          `${prefix}input '${decl.name}' has shape [${t.shape.join(",")}], but '${task.name}' takes [N,${decl.shape.join(",")}] with N >= 1 rows`,
        );
      }
      if (rows !== -1 && t.shape[0] !== rows)
        throw new ApiError(400, `${prefix}inputs disagree on the batch size: ${rows} vs ${t.shape[0]} rows`);
      rows = t.shape[0]!;
      if ((t.data as { length: number }).length !== elementCount(t.shape))
        throw new ApiError(400, `${prefix}input '${decl.name}' data does not fill its shape`);
      input[decl.name] = { type: DATATYPES[decl.datatype].ort, dims: t.shape, data: t.data as never };
    }
    if (byName.size > 0)
      throw new ApiError(
        400,
        `${prefix}unknown input${byName.size > 1 ? "s" : ""} ${[...byName.keys()]
          .slice(0, 5)
          .map((n) => quoted(n))
          .join(", ")}; '${task.name}' takes ${task.config.inputs.map((i) => `'${i.name}'`).join(", ")}`,
      );
    const maxBatch = Math.max(...[...task.variants.values()].map((v) => v.config.max_batch));
    // a pipeline's stage may take more rows than one batch: the walk splits them
    if (capRows && rows > maxBatch)
      throw new ApiError(
        400,
        `${prefix}${rows} rows exceed the largest max_batch of '${task.name}' (${maxBatch}); split the request`,
      );
    return { input, rows };
  }

  private checkFloor(task: Task, floor: number, pinned?: string): void {
    if (pinned) return;
    const best = Math.max(...[...task.variants.values()].map((v) => v.config.accuracy.value));
    if (best < floor)
      throw new ApiError(
        400,
        `no variant of '${task.name}' reaches min_accuracy ${floor}; the most accurate has ${best}`,
      );
  }

  private checkOutputs(
    decls: readonly { name: string; datatype: string; labels?: string[] }[],
    req: InferRequest,
  ): string[] {
    const names = decls.map((o) => o.name);
    if (!req.outputs || req.outputs.length === 0) return names;
    checkDistinctOutputs(req.outputs.map((o) => o.name));
    const classes = new Map<string, number>();
    for (const o of req.outputs) {
      if (!names.includes(o.name))
        throw new ApiError(
          400,
          `unknown output ${quoted(o.name)}; '${req.model}' produces ${names.map((n) => `'${n}'`).join(", ")}`,
        );
      if (o.classCount === undefined || o.classCount === 0) continue;
      if (!Number.isInteger(o.classCount) || o.classCount < 0)
        throw new ApiError(
          400,
          `output ${quoted(o.name)}: classification must be a positive integer (the number of top classes), got ${o.classCount}`,
        );
      const decl = decls.find((d) => d.name === o.name)!;
      if (decl.datatype === "BYTES" || decl.datatype === "BOOL")
        throw new ApiError(400, `output ${quoted(o.name)} is ${decl.datatype}: classification needs a numeric output`);
      if (this.d.repo.pipelines.has(req.model))
        throw new ApiError(400, `classification is not available on pipelines; ask one of its stage tasks directly`);
      classes.set(o.name, o.classCount);
    }
    const wanted = req.outputs.map((o) => o.name);
    // the class counts travel with this very array to outputsOf, which infer calls with it
    if (classes.size > 0) this.classCounts.set(wanted, classes);
    return wanted;
  }

  private outputsOf(task: Task, out: Tensors | null, wanted: string[]): Tensor[] {
    const classes = this.classCounts.get(wanted);
    return wanted.map((name) => {
      const decl = task.config.outputs.find((o) => o.name === name)!;
      const t = out?.[name];
      if (!t) throw new ApiError(500, `the model did not produce output '${name}'`);
      const tensor: Tensor = { name, datatype: decl.datatype, shape: t.dims, data: t.data };
      const k = classes?.get(name);
      return k === undefined ? tensor : topClasses(tensor, k, decl.labels);
    });
  }
}

/** How a pipeline request's tensors come in, move between its stages, and go out. */
interface PipelineFlow {
  rows: number;
  stageInput(task: string, upstream: ReadonlyMap<string, StageResult>): StageInput | null;
  answer(results: ReadonlyMap<string, StageResult>): Tensor[];
}

function responseParams(s: Served, arrival: number): Record<string, ParamValue> {
  const p: Record<string, ParamValue> = {
    variant: s.variant,
    batch_size: s.batchSize,
    queue_us: Math.round(s.queueMs * 1000),
    compute_us: Math.round(s.computeMs * 1000),
    slo_met: s.sloMet,
    latency_us: Math.round((s.finishedAt - arrival) * 1000),
  };
  if (s.subnet) p.subnet = s.subnet;
  return p;
}
