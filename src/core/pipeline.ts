// The one pipeline walk, for the server and the simulator alike (as Triton's ensemble scheduler is one
// more scheduler behind the front end). A pipeline is a DAG of stage tasks: a stage runs once every stage
// it waits for has finished (fan-in), as a request of its own to its task's queue, every queue ordered by
// the pipeline's one end-to-end deadline. A stage's input comes from the outputs it waited for, through
// the request's `stageInput` (the gateway's tensor flow or glue, the simulator's sampled fan-out), and may
// be many rows (fan-out: one image, many text boxes) — split into requests no larger than any of the
// task's variants takes — or none, and then the stage is skipped, as is an optional stage the request
// skips. The accuracy floor applies to the pipeline's end-to-end accuracy: each stage request may only be
// served by the variants that keep some completion of what already served it at or above the floor.
import type { Clock } from "../cluster/clock.js";
import type { Tensors } from "../engine/engine.js";
import {
  stageTasks,
  topologicalOrder,
  type PipelineGraph,
  type StageNode,
} from "../autoscaler/planner/pipeline-graph.js";
import type { Failed, Outcome, Request } from "../router/request.js";
import type { Router } from "../router/router.js";
import type { FanOutMeter } from "./fan-out.js";
import type { PipelineAccuracy } from "./pipeline-accuracy.js";
import { SKIP_STAGE } from "./pipeline-accuracy.js";

export interface PipelineDef {
  name: string;
  graph: PipelineGraph;
  sloMs: number;
}

/** What one stage request of a pipeline request served (a stage split into several has one each). */
export interface StageServed {
  task: string;
  variant: string;
  subnet?: string;
  batchSize: number;
  /** Rows this stage request carried. */
  rows: number;
  queueMs: number;
  computeMs: number;
  /** When the stage request was queued and answered (clock ms). */
  submittedAt: number;
  finishedAt: number;
}

/** A finished stage of one pipeline request: its outputs (null in the simulator or when skipped). */
export interface StageResult {
  output: Tensors | null;
  rows: number;
  /** Variants that served it (several when it was split); empty when skipped. */
  variants: readonly string[];
  skipped: boolean;
}

export type PipelineOutcome =
  | {
      ok: true;
      /** Every stage request served, in the order they finished. */
      stages: StageServed[];
      /** Every stage's result, by task: the sinks' outputs are the answer. */
      results: ReadonlyMap<string, StageResult>;
      /** Stages skipped: optional ones the request skipped, and stages that had no rows to run. */
      skipped: string[];
      /** End-to-end accuracy of what served it (measured, or the product of the stages'); NaN if unmeasured. */
      accuracy: number;
      finishedAt: number;
      sloMet: boolean;
    }
  | (Failed & { /** The stage task that failed it. */ stage: string });

export interface StageInput {
  input: Tensors | null;
  rows: number;
}

export interface PipelineRequest {
  id: string;
  pipeline: string;
  /** Clock ms. */
  arrival: number;
  deadline: number;
  priority: number;
  minAccuracy: number;
  /** Rows entering each source stage. */
  rows: number;
  /** The sources' input (null in the simulator). */
  input: Tensors | null;
  /** Optional stages this request skips. */
  skip?: ReadonlySet<string>;
  /**
   * A stage's input from the results of the stages it waits for (a skipped one is there, marked skipped),
   * or null to skip it; may throw when they do not fit. Absent: each stage gets the rows its first input
   * had and no tensors (the simulator without a fan-out model).
   */
  stageInput?(task: string, upstream: ReadonlyMap<string, StageResult>): StageInput | null;
  done(outcome: PipelineOutcome): void;
}

/** What the walk needs to know of a stage task. */
export interface StageTask {
  lateOk: boolean;
  /** The most rows one of its requests may carry: the smallest max_batch of its variants. */
  maxRows: number;
  /** How many variants it has (a floor that rules none out needs no allowed set). */
  variants: number;
}

/** What served a pipeline request, stage by stage in graph order ("task:variant,task:variant"). */
export function servedStages(stages: readonly StageServed[], graph?: PipelineGraph): string {
  const byTask = new Map<string, Set<string>>();
  for (const s of stages) {
    const set = byTask.get(s.task) ?? new Set<string>();
    set.add(s.subnet ? `${s.variant}/${s.subnet}` : s.variant);
    byTask.set(s.task, set);
  }
  const order = graph ? stageTasks(graph).filter((t) => byTask.has(t)) : [...byTask.keys()];
  return order.map((t) => `${t}:${[...byTask.get(t)!].join("+")}`).join(",");
}

/** Time a pipeline request spent queued and computing, summed over its stage requests. */
export function stageTotals(stages: readonly StageServed[]): { queueMs: number; computeMs: number } {
  let queueMs = 0;
  let computeMs = 0;
  for (const s of stages) {
    queueMs += s.queueMs;
    computeMs += s.computeMs;
  }
  return { queueMs, computeMs };
}

/**
 * Per stage task, from its first stage request's submission to its last one's answer, and the rows it ran
 * (a fanned-out stage runs as several requests).
 */
export function stageSpans(stages: readonly StageServed[]): Map<string, { from: number; to: number; rows: number }> {
  const span = new Map<string, { from: number; to: number; rows: number }>();
  for (const s of stages) {
    const x = span.get(s.task);
    if (!x) span.set(s.task, { from: s.submittedAt, to: s.finishedAt, rows: s.rows });
    else {
      x.from = Math.min(x.from, s.submittedAt);
      x.to = Math.max(x.to, s.finishedAt);
      x.rows += s.rows;
    }
  }
  return span;
}

/** One pipeline request on its way through the graph. */
class Walking {
  readonly results = new Map<string, StageResult>();
  readonly served: StageServed[] = [];
  /** Variants that served each stage so far. */
  readonly assignment = new Map<string, string[]>();
  /** Optional stages the request skips: the accuracy record reads them as skipped. */
  readonly skipped = new Set<string>();
  /** Stages that had no rows to run (no text found): any of their variants would have answered the same. */
  readonly empty = new Set<string>();
  /** Stage requests still out, per stage. */
  readonly pending = new Map<string, number>();
  readonly outputs = new Map<string, Tensors[]>();
  finished = false;

  constructor(
    readonly def: PipelineDef,
    readonly p: PipelineRequest,
    readonly order: readonly string[],
  ) {
    for (const t of p.skip ?? []) this.skipped.add(t);
  }
}

export class PipelineWalk {
  constructor(
    private readonly router: Router,
    private readonly clock: Clock,
    private readonly taskOf: (name: string) => StageTask | undefined,
    private readonly accuracyOf: (pipeline: string) => PipelineAccuracy,
    private readonly finished: (p: PipelineRequest, o: PipelineOutcome) => void,
    private readonly fanOut?: FanOutMeter,
  ) {}

  start(def: PipelineDef, p: PipelineRequest): void {
    const order = topologicalOrder(def.graph);
    if (!order) {
      this.finish(
        new Walking(def, p, []),
        this.failure(def.graph.stages[0]!.task, 500, `pipeline '${def.name}' has a cycle`),
      );
      return;
    }
    this.advance(new Walking(def, p, order));
  }

  /** Starts every stage whose inputs are all in (or skips it), until nothing more can start. */
  private advance(w: Walking): void {
    let moved = true;
    while (moved && !w.finished) {
      moved = false;
      for (const task of w.order) {
        if (w.results.has(task) || w.pending.has(task)) continue;
        const node = w.def.graph.stages.find((s) => s.task === task)!;
        if (!node.after.every((a) => w.results.has(a))) continue;
        moved = true;
        if (w.skipped.has(task)) {
          this.complete(w, task, { output: null, rows: 0, variants: [], skipped: true });
          continue;
        }
        let next: StageInput | null;
        try {
          next = this.inputOf(w, node);
        } catch (err) {
          this.finish(
            w,
            this.failure(
              task,
              500,
              `the outputs of ${node.after.map((a) => `'${a}'`).join(", ")} do not fit stage '${task}': ${(err as Error).message}`,
            ),
          );
          return;
        }
        for (const a of node.after) {
          const from = w.results.get(a)!;
          if (!from.skipped) this.fanOut?.edge(w.def.name, a, task, from.rows, next?.rows ?? 0);
        }
        if (next === null || next.rows === 0) {
          this.complete(w, task, { output: null, rows: 0, variants: [], skipped: true });
          continue;
        }
        this.run(w, node, next);
      }
    }
    if (!w.finished && w.order.every((t) => w.results.has(t))) this.answer(w);
  }

  private inputOf(w: Walking, node: StageNode): StageInput | null {
    const upstream = new Map(node.after.map((a) => [a, w.results.get(a)!]));
    if (w.p.stageInput) return w.p.stageInput(node.task, upstream);
    if (node.after.length === 0) return { input: w.p.input, rows: w.p.rows };
    const first = node.after.map((a) => w.results.get(a)!).find((r) => !r.skipped);
    return first ? { input: null, rows: first.rows } : null;
  }

  /** Queues a stage: one request, or several when its rows exceed what one request may carry. */
  private run(w: Walking, node: StageNode, input: StageInput): void {
    const task = node.task;
    const t = this.taskOf(task);
    if (!t) {
      this.finish(
        w,
        this.failure(
          task,
          503,
          `stage '${task}' of pipeline '${w.def.name}' is not loaded; load it with POST /v2/repository/models/${task}/load`,
          "shutdown",
        ),
      );
      return;
    }
    // a floor of 0 rules nothing out, not even a variant the record never measured
    const allowed =
      w.p.minAccuracy > 0 ? this.accuracyOf(w.def.name).allowed(task, w.assignment, w.skipped, w.p.minAccuracy) : null;
    if (allowed?.length === 0) {
      this.finish(
        w,
        this.failure(
          task,
          503,
          `no variant of stage '${task}' keeps pipeline '${w.def.name}' at min_accuracy ${w.p.minAccuracy} after ${[...w.assignment].map(([k, v]) => `${k}:${v.join("+")}`).join(", ") || "nothing"}; lower min_accuracy`,
          "no_capacity",
        ),
      );
      return;
    }
    this.fanOut?.stageRows(w.def.name, task, input.rows);
    const chunks = split(input, Math.max(1, t.maxRows));
    w.pending.set(task, chunks.length);
    const outputs: Tensors[] = new Array(chunks.length);
    let got = 0;
    const variants = new Set<string>();
    const index = w.def.graph.stages.indexOf(node);
    const submitted = this.clock.now();
    chunks.forEach((chunk, k) => {
      if (w.finished) return; // an earlier chunk was refused at once
      const r: Request = {
        seq: this.router.nextSeq(),
        id: w.p.id,
        task,
        arrival: submitted,
        deadline: w.p.deadline,
        priority: w.p.priority,
        rows: chunk.rows,
        minAccuracy: 0,
        ...(allowed && allowed.length < t.variants ? { allowed: new Set(allowed) } : {}),
        lateOk: t.lateOk,
        input: chunk.input,
        stage: { pipeline: w.def.name, index },
        done: (o: Outcome) => {
          if (w.finished) return;
          if (!o.ok) {
            this.finish(w, { ...o, stage: task });
            return;
          }
          w.served.push({
            task,
            variant: o.variant,
            subnet: o.subnet,
            batchSize: o.batchSize,
            rows: chunk.rows,
            queueMs: o.queueMs,
            computeMs: o.computeMs,
            submittedAt: submitted,
            finishedAt: o.finishedAt,
          });
          variants.add(o.variant);
          if (o.output) {
            outputs[k] = o.output;
            got++;
          }
          const left = w.pending.get(task)! - 1;
          w.pending.set(task, left);
          if (left > 0) return;
          w.pending.delete(task);
          w.assignment.set(task, [...variants]);
          // the simulator computes nothing: no outputs to join
          const output = got === chunks.length ? (chunks.length === 1 ? outputs[0]! : concatRows(outputs)) : null;
          this.complete(w, task, { output, rows: input.rows, variants: [...variants], skipped: false });
          this.advance(w);
        },
      };
      this.router.submit(r);
    });
  }

  private complete(w: Walking, task: string, result: StageResult): void {
    w.results.set(task, result);
    if (result.skipped && !w.skipped.has(task)) w.empty.add(task);
  }

  private answer(w: Walking): void {
    const now = this.clock.now();
    const accuracy = this.accuracyOf(w.def.name).of(w.assignment, w.skipped);
    this.finish(w, {
      ok: true,
      stages: w.served,
      results: w.results,
      skipped: [...w.skipped, ...w.empty],
      accuracy,
      finishedAt: now,
      sloMet: now <= w.p.deadline,
    });
  }

  private failure(
    stage: string,
    status: 500 | 503,
    message: string,
    reason: Failed["reason"] = "internal",
  ): PipelineOutcome {
    return { ok: false, status, reason, message, stage };
  }

  private finish(w: Walking, o: PipelineOutcome): void {
    if (w.finished) return;
    w.finished = true;
    w.p.done(o);
    this.finished(w.p, o);
  }
}

/** A stage input as requests of at most `maxRows` rows each. */
function split(input: StageInput, maxRows: number): StageInput[] {
  if (input.rows <= maxRows) return [input];
  const out: StageInput[] = [];
  for (let from = 0; from < input.rows; from += maxRows) {
    const rows = Math.min(maxRows, input.rows - from);
    out.push({ rows, input: input.input ? sliceRows(input.input, from, rows, input.rows) : null });
  }
  return out;
}

function sliceRows(t: Tensors, from: number, rows: number, total: number): Tensors {
  const out: Tensors = {};
  for (const [name, x] of Object.entries(t)) {
    const per = x.data.length / total;
    out[name] = {
      type: x.type,
      dims: [rows, ...x.dims.slice(1)],
      data: x.data.subarray(from * per, (from + rows) * per) as typeof x.data,
    };
  }
  return out;
}

/** The outputs of a stage's requests, in order, as one tensor per name. */
function concatRows(parts: Tensors[]): Tensors {
  const out: Tensors = {};
  const first = parts[0]!;
  for (const name of Object.keys(first)) {
    const pieces = parts.map((p) => p[name]!);
    const total = pieces.reduce((n, p) => n + p.data.length, 0);
    const Ctor = pieces[0]!.data.constructor as new (n: number) => (typeof first)[string]["data"];
    const data = new Ctor(total);
    let at = 0;
    for (const p of pieces) {
      (data as unknown as { set(a: ArrayLike<number | bigint>, o: number): void }).set(
        p.data as unknown as ArrayLike<number>,
        at,
      );
      at += p.data.length;
    }
    out[name] = {
      type: pieces[0]!.type,
      dims: [pieces.reduce((n, p) => n + p.dims[0]!, 0), ...pieces[0]!.dims.slice(1)],
      data,
    };
  }
  return out;
}

export { SKIP_STAGE };
