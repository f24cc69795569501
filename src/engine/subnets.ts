// The subnets of a supernet variant as the worker and the profiler need them: name → control
// values, and which one runs when a batch names none. Read from the variant.yaml beside the model.
import fs from "node:fs/promises";
import path from "node:path";
import YAML from "yaml";
import { defaultSubnetOf, VariantConfig } from "../repository/schema.js";
import { zodMessage } from "../repository/repository.js";

export interface SubnetTable {
  defaultName: string;
  controls: Map<string, Record<string, number[]>>;
}

export function subnetTableOf(config: VariantConfig): SubnetTable | null {
  const def = defaultSubnetOf(config);
  if (!config.subnets || !def) return null;
  return { defaultName: def.name, controls: new Map(config.subnets.map((s) => [s.name, s.controls])) };
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
