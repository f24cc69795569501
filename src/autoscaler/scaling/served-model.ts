// The latency model a planner sizes a variant with: what the scheduling policy actually runs on it. A
// supernet served by SlackFit runs faster subnets under load than its default one; sizing its instances
// by the default subnet's fit would provision for work the scheduler never does. Time to serve R rows in
// batches of b is Σ_k (R_k / b)·l_k(b, c), so the row-weighted mean of the subnets' parameters is exact
// for capacity (the model is linear in its parameters).
import type { LatencyParams } from "../../stats/latency-model.js";
import type { VariantModel } from "../../router/scheduling/types.js";
import type { ServedShare } from "../types.js";

/** The row-weighted fit of `variant` over the served mix; its own fit when the mix says nothing about it. */
export function servedFit(variant: VariantModel, served: readonly ServedShare[]): LatencyParams {
  const fits = new Map((variant.subnets ?? []).map((s) => [s.subnet!, s.fit]));
  const sum = { alpha: 0, beta: 0, gamma: 0, zeta: 0 };
  let rows = 0;
  for (const s of served) {
    if (s.variant !== variant.name || s.rows <= 0) continue;
    const f = (s.subnet !== undefined ? fits.get(s.subnet) : undefined) ?? variant.fit;
    sum.alpha += s.rows * f.alpha;
    sum.beta += s.rows * f.beta;
    sum.gamma += s.rows * f.gamma;
    sum.zeta += s.rows * f.zeta;
    rows += s.rows;
  }
  if (rows === 0) return { ...variant.fit };
  return { alpha: sum.alpha / rows, beta: sum.beta / rows, gamma: sum.gamma / rows, zeta: sum.zeta / rows };
}
