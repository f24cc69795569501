// INFaaS' model autoscaler (EXPERIMENTS.md): demand w against capacity W = instances × throughput;
// add ceil((w − 0.95·W)/tp) instances when short, remove one only after 10 consecutive low signals,
// and upgrade to a faster variant instead of replicating when replication costs over 1.5× more.
import { latencyOf } from "../../stats/latency-model.js";
import { currentPlan, uniform, type Observation, type Plan, type ScalingPolicy, type VariantInfo } from "../types.js";

export const INFAAS_SCALING = { headroom: 0.95, lowSignals: 10, upgradeFactor: 1.5 } as const;

export class InfaasScalingPolicy implements ScalingPolicy {
  readonly name = "infaas";
  private low = 0;

  decide(obs: Observation): Plan {
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
      this.low = 0;
      const add = Math.max(1, Math.ceil((w - H.headroom * W) / tp));
      const replicate = (n + add) * cores;
      const faster = obs.variants
        .filter((u) => u.name !== v.name && throughput(u, b, cores) > tp)
        .map((u) => ({ u, count: Math.max(1, Math.ceil(w / (H.headroom * throughput(u, b, cores)))) }))
        .sort((a, c) => a.count - c.count)[0];
      if (faster && replicate > H.upgradeFactor * faster.count * cores) {
        return {
          instances: uniform(faster.u.name, faster.count, cores),
          reason: `demand ${w.toFixed(1)} > 0.95 × capacity ${W.toFixed(1)}; replicating costs ${replicate} cores > ${H.upgradeFactor} × ${faster.count * cores} for ${faster.u.name}: upgrade`,
          mode: "upgrade",
          scope: "task",
        };
      }
      return {
        instances: uniform(v.name, n + add, cores),
        reason: `demand ${w.toFixed(1)} req/s > 0.95 × capacity ${W.toFixed(1)}: add ${add} (tp ${tp.toFixed(1)} each)`,
        mode: "replicate",
      };
    }
    if (n > 1 && w < H.headroom * (n - 1) * tp) {
      this.low += 1;
      if (this.low >= H.lowSignals) {
        this.low = 0;
        return {
          instances: uniform(v.name, n - 1, cores),
          reason: `${H.lowSignals} low signals in a row (demand ${w.toFixed(1)} fits ${n - 1} instances): remove one`,
          mode: "scale-in",
        };
      }
      return currentPlan(obs, `low signal ${this.low}/${H.lowSignals}`, "wait");
    }
    this.low = 0;
    return currentPlan(obs, `demand ${w.toFixed(1)} within capacity ${W.toFixed(1)}`, "steady");
  }
}

function throughput(v: VariantInfo, b: number, c: number): number {
  return (1000 * b) / latencyOf(v.latency, b, c);
}
