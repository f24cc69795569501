// A supernet variant's subnet table (engine/subnets.ts) from its variant.yaml.
import fs from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import type { SubnetTable } from "../engine/subnets.js";
import { zodMessage } from "./repository.js";
import { defaultSubnetOf, VariantConfig } from "./schema.js";

/** Null for an ordinary variant. */
export function subnetTableOf(config: VariantConfig): SubnetTable | null {
  const def = defaultSubnetOf(config);
  if (!config.subnets || !def) return null;
  return { defaultName: def.name, controls: Object.fromEntries(config.subnets.map((s) => [s.name, s.controls])) };
}

/** The subnet table of the variant whose model is `modelPath`; null for an ordinary variant (or no variant.yaml). */
export async function readSubnetTable(modelPath: string): Promise<SubnetTable | null> {
  const file = path.join(path.dirname(modelPath), "variant.yaml");
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch {
    return null;
  }
  const parsed = VariantConfig.safeParse(YAML.parse(text));
  if (!parsed.success) throw new Error(`${file}: ${zodMessage(parsed.error)}`);
  return subnetTableOf(parsed.data);
}
