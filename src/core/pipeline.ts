// The one pipeline walk, for the server and the simulator alike (as Triton's ensemble scheduler is one
// more scheduler behind the front end): a pipeline request runs its stages in order, each stage a request
// of its own to the stage task's queue, every queue ordered by the pipeline's one end-to-end deadline; the
// accuracy floor applies at the last stage, where the pipeline's answer is chosen.
import type { Clock } from "../cluster/clock.js";
import type { Tensors } from "../engine/engine.js";
import type { Failed, Outcome, Request } from "../router/request.js";
import type { Router } from "../router/router.js";

export interface PipelineDef {
  name: string;
  /** Stage task names, in order. */
  stages: readonly string[];
  sloMs: number;
}

/** What one stage served. */
export interface StageServed {
  task: string;
  variant: string;
  subnet?: string;
  batchSize: number;
  queueMs: number;
  computeMs: number;
}

export type PipelineOutcome =
  | {
      ok: true;
      stages: StageServed[];
      /** The last stage's outputs (null in the simulator). */
      output: Tensors | null;
      finishedAt: number;
      sloMet: boolean;
    }
  | (Failed & { /** The stage task that failed it. */ stage: string });

export interface PipelineRequest {
  id: string;
  pipeline: string;
  /** Clock ms. */
  arrival: number;
  deadline: number;
  priority: number;
  minAccuracy: number;
  rows: number;
  input: Tensors | null;
  /**
   * Turns a stage's outputs into the next stage's input (the server checks them against that stage's
   * signature and may throw). Absent: the rows pass on as they are (the simulator computes nothing).
   */
  next?(stage: number, output: Tensors | null): { input: Tensors | null; rows: number };
  done(outcome: PipelineOutcome): void;
}

/** What the walk needs to know of a stage task. */
export interface StageTask {
  lateOk: boolean;
}

/** The accuracy floor of stage `index`: only the last stage's variant answers the client. */
export function stageFloor(def: PipelineDef, index: number, minAccuracy: number): number {
  return index === def.stages.length - 1 ? minAccuracy : 0;
}

/** What served a pipeline request, stage by stage ("task:variant,task:variant"). */
export function servedStages(stages: readonly StageServed[]): string {
  return stages.map((s) => `${s.task}:${s.variant}`).join(",");
}

/** Time a pipeline request spent queued and computing, summed over its stages. */
export function stageTotals(stages: readonly StageServed[]): { queueMs: number; computeMs: number } {
  let queueMs = 0;
  let computeMs = 0;
  for (const s of stages) {
    queueMs += s.queueMs;
    computeMs += s.computeMs;
  }
  return { queueMs, computeMs };
}

export function firstStage(p: { stages: readonly string[] }): string {
  return p.stages[0]!;
}

export function lastStage(p: { stages: readonly string[] }): string {
  return p.stages[p.stages.length - 1]!;
}

export class PipelineWalk {
  constructor(
    private readonly router: Router,
    private readonly clock: Clock,
    private readonly taskOf: (name: string) => StageTask | undefined,
    private readonly finished: (p: PipelineRequest, o: PipelineOutcome) => void,
  ) {}

  start(def: PipelineDef, p: PipelineRequest): void {
    this.stage(def, p, 0, p.input, p.rows, []);
  }

  private stage(
    def: PipelineDef,
    p: PipelineRequest,
    index: number,
    input: Tensors | null,
    rows: number,
    served: StageServed[],
  ): void {
    const task = def.stages[index]!;
    const t = this.taskOf(task);
    if (!t) {
      this.finish(p, {
        ok: false,
        status: 503,
        reason: "shutdown",
        message: `stage '${task}' of pipeline '${def.name}' is not loaded; load it with POST /v2/repository/models/${task}/load`,
        stage: task,
      });
      return;
    }
    const last = index === def.stages.length - 1;
    const r: Request = {
      seq: this.router.nextSeq(),
      id: p.id,
      task,
      arrival: this.clock.now(),
      deadline: p.deadline,
      priority: p.priority,
      rows,
      minAccuracy: stageFloor(def, index, p.minAccuracy),
      lateOk: t.lateOk,
      input,
      stage: { pipeline: def.name, index },
      done: (o: Outcome) => {
        if (!o.ok) {
          this.finish(p, { ...o, stage: task });
          return;
        }
        served.push({
          task,
          variant: o.variant,
          subnet: o.subnet,
          batchSize: o.batchSize,
          queueMs: o.queueMs,
          computeMs: o.computeMs,
        });
        if (last) {
          this.finish(p, { ok: true, stages: served, output: o.output, finishedAt: o.finishedAt, sloMet: o.sloMet });
          return;
        }
        let next: { input: Tensors | null; rows: number };
        try {
          next = p.next ? p.next(index, o.output) : { input: null, rows };
        } catch (err) {
          this.finish(p, {
            ok: false,
            status: 500,
            reason: "internal",
            message: `the outputs of stage '${task}' do not fit stage '${def.stages[index + 1]}': ${(err as Error).message}`,
            stage: task,
          });
          return;
        }
        this.stage(def, p, index + 1, next.input, next.rows, served);
      },
    };
    this.router.submit(r);
  }

  private finish(p: PipelineRequest, o: PipelineOutcome): void {
    p.done(o);
    this.finished(p, o);
  }
}
