// variant.yaml of a supernet variant: the usual fields (accuracy = the default subnet's) plus the
// served subnets, each with its control values and its own accuracy.
import type { SubnetControls } from "./subnetact.js";

export type AccuracyRecord =
  | { value: number; source: "measured"; evaluated_on: string; correct: number; total: number }
  | { value: number; source: "declared"; reference: string };

export interface SubnetRecord {
  name: string;
  controls: SubnetControls;
  accuracy: AccuracyRecord;
  parameters: number;
  macs: number;
}

export interface SupernetVariantRecord {
  name: string;
  description: string;
  architecture: string;
  parameters: number;
  maxBatch: number;
  defaultSubnet: string;
  subnets: SubnetRecord[];
}

function accuracyLines(a: AccuracyRecord, indent: string): string[] {
  const lines = [`${indent}value: ${Number(a.value.toFixed(6))}`, `${indent}source: ${a.source}`];
  if (a.source === "measured")
    lines.push(
      `${indent}evaluated_on: ${JSON.stringify(a.evaluated_on)}`,
      `${indent}correct: ${a.correct}`,
      `${indent}total: ${a.total}`,
    );
  else lines.push(`${indent}reference: ${JSON.stringify(a.reference)}`);
  return lines;
}

export function supernetVariantYaml(v: SupernetVariantRecord): string {
  const def = v.subnets.find((s) => s.name === v.defaultSubnet);
  if (!def) throw new Error(`default subnet '${v.defaultSubnet}' is not among the served subnets`);
  const lines = [
    `name: ${v.name}`,
    `description: ${JSON.stringify(v.description)}`,
    `architecture: ${JSON.stringify(v.architecture)}`,
    `parameters: ${v.parameters}`,
    `max_batch: ${v.maxBatch}`,
    `# accuracy of the default subnet (served when a batch names none)`,
    `accuracy:`,
    ...accuracyLines(def.accuracy, "  "),
    `default_subnet: ${v.defaultSubnet}`,
    `# the Pareto front (accuracy vs latency) of the supernet's candidates, fastest first`,
    `subnets:`,
  ];
  for (const s of v.subnets) {
    const controls = Object.entries(s.controls)
      .map(([k, vals]) => `${k}: [${vals.join(", ")}]`)
      .join(", ");
    lines.push(
      `  - name: ${s.name}`,
      `    controls: { ${controls} }`,
      `    parameters: ${s.parameters}`,
      `    macs: ${s.macs}`,
      `    accuracy:`,
      ...accuracyLines(s.accuracy, "      "),
    );
  }
  return lines.join("\n") + "\n";
}
