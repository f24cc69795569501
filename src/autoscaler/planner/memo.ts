// The horizontal DP is a pure function of the stage models, the options and λ; a policy deciding every
// half second for the same models asks it the same few questions again and again (λ is a small integer for
// most tasks). This keeps its answers for the models and options last asked with, by λ.
import { horizontal, type PlanOptions, type StagesPlan } from "./dp.js";
import type { StageModel } from "./model.js";

/** Answers kept for one set of models and options before the oldest are dropped. */
const MAX_ANSWERS = 64;
/** Sets of models and options kept at once (a busy task's served model moves between a few values). */
const MAX_INPUTS = 8;

interface Inputs {
  models: StageModel[];
  options: Omit<PlanOptions, "lambda">;
  answers: Map<number | string, StagesPlan | null>;
}

export class HorizontalMemo {
  private readonly inputs: Inputs[] = [];

  /** horizontal(models, {...options, lambda}), λ one rate per stage. */
  plan(models: StageModel[], options: Omit<PlanOptions, "lambda">, lambda: readonly number[]): StagesPlan | null {
    let found = this.inputs.find((x) => same(x, models, options));
    if (!found) {
      found = { models: models.map((m) => ({ ...m })), options: { ...options }, answers: new Map() };
      this.inputs.unshift(found);
      if (this.inputs.length > MAX_INPUTS) this.inputs.pop();
    }
    const answers = found.answers;
    // −0 and 0 are one key of a Map but could plan differently: keep them apart
    const key =
      lambda.length === 1
        ? Object.is(lambda[0], -0)
          ? "-0"
          : lambda[0]!
        : lambda.map((x) => (Object.is(x, -0) ? "-0" : String(x))).join(",");
    if (answers.has(key)) return answers.get(key)!;
    const answer = horizontal(models, { ...options, lambda });
    if (answers.size >= MAX_ANSWERS) answers.delete(answers.keys().next().value!);
    answers.set(key, answer);
    return answer;
  }
}

function same(x: Inputs, models: StageModel[], o: Omit<PlanOptions, "lambda">): boolean {
  const p = x.options;
  if (
    p.sloMs !== o.sloMs ||
    p.bMax !== o.bMax ||
    p.cMax !== o.cMax ||
    p.semantics !== o.semantics ||
    p.queue !== o.queue ||
    p.unitMs !== o.unitMs ||
    models.length !== x.models.length
  )
    return false;
  return models.every((m, i) => {
    const n = x.models[i]!;
    return (
      Object.is(m.alpha, n.alpha) &&
      Object.is(m.beta, n.beta) &&
      Object.is(m.gamma, n.gamma) &&
      Object.is(m.zeta, n.zeta) &&
      Object.is(m.memGb, n.memGb)
    );
  });
}
