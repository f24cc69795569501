// INFaaS' model autoscaler (EXPERIMENTS.md): demand w against capacity W = instances × throughput;
// add ceil((w − 0.95·W)/tp) instances when short, remove one only after 10 consecutive low signals,
// and upgrade to a faster variant instead of replicating when replication costs over 1.5× more.
import { latencyOf } from "../../stats/latency-model.js";
import type { VariantModel } from "../../router/scheduling/types.js";
import { currentPlan, uniform, type Decided, type Observation, type Plan, type ScalingPolicy } from "../types.js";

export const INFAAS_SCALING = { headroom: 0.95, lowSignals: 10, upgradeFactor: 1.5 } as const;

export interface InfaasScalingState {
  /** Consecutive decisions whose demand would fit one instance fewer. */
  low: number;
}

export class InfaasScalingPolicy implements ScalingPolicy<InfaasScalingState> {
  readonly name = "infaas";

  initialState(): InfaasScalingState {
    return { low: 0 };
  }

  steady(): boolean {
    return false;
  }

  decide(obs: Observation, state: InfaasScalingState): Decided<InfaasScalingState> {
    const d = this.plan(obs, state.low);
    return { plan: d.plan, state: { low: d.low } };
  }

  private plan(obs: Observation, lowBefore: number): { plan: Plan; low: number } {
    const v = obs.variants.find((x) => x.name === obs.variant)!;
    const mine = obs.instances.filter((i) => i.variant === v.name && i.state !== "draining" && i.state !== "stopped");
    const n = mine.length;
    const cores = mine[0]?.cores ?? 1;
    const b = Math.max(1, Math.min(v.maxBatch, Math.round(obs.avgBatch)));
    const tp = throughput(v, b, cores);
    const w = Math.max(obs.rateNow, 0);
    const W = n * tp;
    const H = INFAAS_SCALING;
    if (w > H.headroom * W || n === 0) {
      const add = Math.max(1, Math.ceil((w - H.headroom * W) / tp));
      const replicate = (n + add) * cores;
      const faster = obs.variants
        .filter((u) => u.name !== v.name && throughput(u, b, cores) > tp)
        .map((u) => ({ u, count: Math.max(1, Math.ceil(w / (H.headroom * throughput(u, b, cores)))) }))
        .sort((a, c) => a.count - c.count)[0];
      if (faster && replicate > H.upgradeFactor * faster.count * cores) {
        const plan: Plan = {
          instances: uniform(faster.u.name, faster.count, cores),
          reason: `demand ${w.toFixed(1)} > 0.95 × capacity ${W.toFixed(1)}; replicating costs ${replicate} cores > ${H.upgradeFactor} × ${faster.count * cores} for ${faster.u.name}: upgrade`,
          mode: "upgrade",
          scope: "task",
        };
        return { plan, low: 0 };
      }
      const plan: Plan = {
        instances: uniform(v.name, n + add, cores),
        reason: `demand ${w.toFixed(1)} req/s > 0.95 × capacity ${W.toFixed(1)}: add ${add} (tp ${tp.toFixed(1)} each)`,
        mode: "replicate",
      };
      return { plan, low: 0 };
    }
    if (n > 1 && w < H.headroom * (n - 1) * tp) {
      const low = lowBefore + 1;
      if (low >= H.lowSignals) {
        const plan: Plan = {
          instances: uniform(v.name, n - 1, cores),
          reason: `${H.lowSignals} low signals in a row (demand ${w.toFixed(1)} fits ${n - 1} instances): remove one`,
          mode: "scale-in",
        };
        return { plan, low: 0 };
      }
      return { plan: currentPlan(obs, `low signal ${low}/${H.lowSignals}`, "wait"), low };
    }
    return { plan: currentPlan(obs, `demand ${w.toFixed(1)} within capacity ${W.toFixed(1)}`, "steady"), low: 0 };
  }
}

function throughput(v: VariantModel, b: number, c: number): number {
  return (1000 * b) / latencyOf(v.fit, b, c);
}
