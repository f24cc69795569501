// The scaling policies by the names task.yaml, pipeline.yaml and `--autoscaler` use: the one list the
// repository schema, the CLI and the serving core read. "none" (no autoscaling) is not a policy.
import type { ScalingPolicy } from "../types.js";
import { Fa2Policy, fa2High, fa2Low, type Fa2Options } from "./fa2.js";
import { HorizontalPolicy, type HorizontalOptions } from "./horizontal.js";
import { HpaPolicy, type HpaOptions } from "./hpa.js";
import { InfaasScalingPolicy } from "./infaas.js";
import { InferlinePolicy, type InferlineOptions } from "./inferline.js";
import { IpaPolicy, RIM_REPLICAS, type IpaOptions } from "./ipa.js";
import { KpaPolicy, type KpaOptions } from "./kpa.js";
import { RayPolicy, type RayOptions } from "./ray.js";
import { SpongePolicy, type VerticalOptions } from "./sponge.js";
import { StaticPolicy } from "./static.js";
import { ThemisPolicy, THEMIS_DEFAULTS, type ThemisOptions } from "./themis.js";
import { ThemisV1Policy, THEMIS_V1_DEFAULTS, type ThemisV1Options } from "./themis-v1.js";

/** Settings an operator (or an experiment) gives a policy; each policy reads its own. */
export interface ScalingSettings {
  /** static: instances × cores */
  staticInstances?: number;
  staticCores?: number;
  themis?: Partial<ThemisOptions>;
  themisV1?: Partial<ThemisV1Options>;
  horizontal?: Partial<HorizontalOptions>;
  vertical?: Partial<VerticalOptions>;
  kpa?: Partial<KpaOptions>;
  hpa?: Partial<HpaOptions>;
  ray?: Partial<RayOptions>;
  il?: Partial<InferlineOptions>;
  /** ipa (and the rim baselines, which share its solver): preset, weights, cores, B_max, … */
  ipa?: Partial<IpaOptions>;
  fa2?: Partial<Fa2Options>;
  /** RIM's fixed replicas per stage (one number for all stages, or one per stage). */
  rimLowReplicas?: number | readonly number[];
  rimHighReplicas?: number | readonly number[];
}

const FACTORIES = {
  themis: (s: ScalingSettings) => new ThemisPolicy({ ...THEMIS_DEFAULTS, ...s.themis }),
  "themis-v1": (s: ScalingSettings) => new ThemisV1Policy({ ...THEMIS_V1_DEFAULTS, ...s.themisV1 }),
  horizontal: (s: ScalingSettings) => new HorizontalPolicy(s.horizontal),
  vertical: (s: ScalingSettings) => new SpongePolicy(s.vertical),
  il: (s: ScalingSettings) => new InferlinePolicy(s.il),
  static: (s: ScalingSettings) => new StaticPolicy({ instances: s.staticInstances ?? 1, cores: s.staticCores ?? 1 }),
  kpa: (s: ScalingSettings) => new KpaPolicy(s.kpa),
  hpa: (s: ScalingSettings) => new HpaPolicy(s.hpa),
  ray: (s: ScalingSettings) => new RayPolicy(s.ray),
  infaas: () => new InfaasScalingPolicy(),
  ipa: (s: ScalingSettings) => new IpaPolicy(s.ipa),
  fa2: (s: ScalingSettings) => new Fa2Policy(s.fa2),
  "fa2-low": () => fa2Low(),
  "fa2-high": () => fa2High(),
  "rim-low": (s: ScalingSettings) =>
    new IpaPolicy({ ...s.ipa, name: "rim-low", fixedReplicas: s.rimLowReplicas ?? RIM_REPLICAS.low }),
  "rim-high": (s: ScalingSettings) =>
    new IpaPolicy({ ...s.ipa, name: "rim-high", fixedReplicas: s.rimHighReplicas ?? RIM_REPLICAS.high }),
} satisfies Record<string, (s: ScalingSettings) => ScalingPolicy>;

export type ScalingPolicyName = keyof typeof FACTORIES;

export const SCALING_POLICY_NAMES = Object.keys(FACTORIES) as [ScalingPolicyName, ...ScalingPolicyName[]];

export function makeScalingPolicy(name: string, s: ScalingSettings = {}): ScalingPolicy {
  const make = (FACTORIES as Record<string, ((s: ScalingSettings) => ScalingPolicy) | undefined>)[name];
  if (!make) throw new Error(`unknown scaling policy '${name}': use ${SCALING_POLICY_NAMES.join(", ")}`);
  return make(s);
}
