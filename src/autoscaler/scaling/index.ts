// Scaling policies by the names task.yaml and `--autoscaler` use.
import type { ScalingPolicy } from "../types.js";
import { HorizontalPolicy } from "./horizontal.js";
import { InfaasScalingPolicy } from "./infaas.js";
import { KpaPolicy } from "./kpa.js";
import { RayPolicy } from "./ray.js";
import { SpongePolicy } from "./sponge.js";
import { StaticPolicy } from "./static.js";
import { ThemisPolicy } from "./themis.js";

export const SCALING_POLICY_NAMES = ["themis", "horizontal", "vertical", "static", "kpa", "ray", "infaas"] as const;

export interface ScalingSettings {
  /** static: instances × cores */
  staticInstances?: number;
  staticCores?: number;
}

export function makeScalingPolicy(name: string, s: ScalingSettings = {}): ScalingPolicy {
  switch (name) {
    case "themis":
      return new ThemisPolicy();
    case "horizontal":
      return new HorizontalPolicy();
    case "vertical":
      return new SpongePolicy();
    case "static":
      return new StaticPolicy({ instances: s.staticInstances ?? 1, cores: s.staticCores ?? 1 });
    case "kpa":
      return new KpaPolicy();
    case "ray":
      return new RayPolicy();
    case "infaas":
      return new InfaasScalingPolicy();
    default:
      throw new Error(`unknown scaling policy '${name}': use ${SCALING_POLICY_NAMES.join(", ")}`);
  }
}
