// A pipeline's end-to-end accuracy, which its accuracy floor applies to: the measured figure of each
// combination of stage variants where the pipeline has a record (accuracy.yaml: OCR's 1 − CER end to
// end, which is not the product of its stages' figures), otherwise the product of the stages'
// accuracies (IPA's PAS, EXPERIMENTS.md). The pipeline walk asks it, stage by stage, which variants a
// request may still take so that some completion of what already served it meets its floor.

/** The variant a stage was served by, or SKIP_STAGE; a stage absent from an assignment is still open. */
export type Assignment = ReadonlyMap<string, readonly string[]>;

export const SKIP_STAGE = "skip";

export interface MeasuredCombination {
  /** Stage task → variant, or "skip" for a skipped optional stage. */
  stages: Readonly<Record<string, string>>;
  value: number;
}

export interface AccuracyStage {
  task: string;
  optional: boolean;
  /** The variants the stage's task has now, with their own accuracy. */
  variants: readonly { name: string; accuracy: number }[];
}

export class PipelineAccuracy {
  private readonly byTask: Map<string, AccuracyStage>;

  /** `table` absent: the product of the stages' accuracies. */
  constructor(
    private readonly stages: readonly AccuracyStage[],
    private readonly table?: readonly MeasuredCombination[],
  ) {
    this.byTask = new Map(stages.map((s) => [s.task, s]));
  }

  get measured(): boolean {
    return this.table !== undefined;
  }

  /**
   * The best end-to-end accuracy a request can still reach: stages in `served` are fixed (a stage that
   * several variants served counts as its worst), stages in `skipped` are skipped, the rest are free.
   * -Infinity when no measured combination fits.
   */
  best(served: Assignment, skipped: ReadonlySet<string>): number {
    let worst = Infinity;
    for (const fixed of expand(served)) worst = Math.min(worst, this.bestFixed(fixed, skipped));
    return worst;
  }

  /** The accuracy of what served a request (every stage fixed or skipped); NaN when it was never measured. */
  of(served: Assignment, skipped: ReadonlySet<string>): number {
    const v = this.best(served, skipped);
    return v === -Infinity ? Number.NaN : v;
  }

  /** Variants of `task` that keep some completion at or above `floor`. */
  allowed(task: string, served: Assignment, skipped: ReadonlySet<string>, floor: number): string[] {
    const stage = this.byTask.get(task);
    if (!stage) return [];
    return stage.variants
      .filter((v) => {
        const next = new Map(served);
        next.set(task, [v.name]);
        return this.best(next, skipped) >= floor - 1e-12;
      })
      .map((v) => v.name);
  }

  /** The most accurate combination in words, for errors ("ocr-det:x, ocr-rec:y: 0.968"). */
  describeBest(skipped: ReadonlySet<string>): string {
    const top = this.best(new Map(), skipped);
    return Number.isFinite(top) ? top.toFixed(4) : "none measured";
  }

  private bestFixed(fixed: ReadonlyMap<string, string>, skipped: ReadonlySet<string>): number {
    if (!this.table) {
      let acc = 1;
      for (const s of this.stages) {
        if (skipped.has(s.task)) continue;
        const v = fixed.get(s.task);
        const own = v === undefined ? s.variants.map((x) => x.accuracy) : [accuracyOf(s, v)];
        acc *= own.length > 0 ? Math.max(...own) : 0;
      }
      return acc;
    }
    let best = -Infinity;
    for (const c of this.table) {
      if (c.value <= best) continue;
      let fits = true;
      for (const s of this.stages) {
        const want = c.stages[s.task];
        const has = fixed.get(s.task);
        if (skipped.has(s.task)) fits = want === SKIP_STAGE;
        else if (has !== undefined) fits = want === has;
        else fits = want !== undefined && want !== SKIP_STAGE && s.variants.some((v) => v.name === want);
        if (!fits) break;
      }
      if (fits) best = c.value;
    }
    return best;
  }
}

function accuracyOf(s: AccuracyStage, variant: string): number {
  return s.variants.find((v) => v.name === variant)?.accuracy ?? 0;
}

/** Every single-variant assignment a (possibly mixed) one stands for. */
function expand(served: Assignment): Map<string, string>[] {
  let out: Map<string, string>[] = [new Map()];
  for (const [task, variants] of served) {
    if (variants.length === 0) continue;
    out = out.flatMap((m) =>
      variants.map((v) => {
        const next = new Map(m);
        next.set(task, v);
        return next;
      }),
    );
  }
  return out;
}
