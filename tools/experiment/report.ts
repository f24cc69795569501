// What an experiment leaves behind: experiments/<name>/results.md (tables, the command that
// regenerates it, the machine) and SVG charts next to it.
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { describeMachine } from "../../src/profiler/machine.js";

export function markdownTable(head: string[], rows: (string | number)[][]): string {
  const cell = (x: string | number) => String(x).replace(/\|/g, "\\|");
  return [
    `| ${head.map(cell).join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
  ].join("\n");
}

export interface ResultsDoc {
  title: string;
  command: string;
  /** Paragraphs before the sections: setting, deviations from the paper. */
  intro: string[];
  sections: { heading: string; body: string[] }[];
}

export async function writeResults(dir: string, doc: ResultsDoc, charts: Record<string, string> = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [file, svg] of Object.entries(charts)) await writeFile(path.join(dir, file), svg);
  const m = describeMachine();
  const lines = [
    `# ${doc.title}`,
    "",
    `Regenerate: \`${doc.command}\` — written ${new Date().toISOString().slice(0, 10)} on ${m.cpu} (${m.cores} cores, ${m.memory_gb} GB), Node ${m.node}.`,
    "",
    ...doc.intro.flatMap((p) => [p, ""]),
    ...doc.sections.flatMap((s) => [`## ${s.heading}`, "", ...s.body.flatMap((p) => [p, ""])]),
  ];
  await writeFile(path.join(dir, "results.md"), lines.join("\n"));
}

export const pct = (x: number, digits = 2) => (Number.isFinite(x) ? `${x.toFixed(digits)} %` : "–");
export const num = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

/** a/b as "12.3×", with "∞" when b is 0 and a is not. */
export function ratio(a: number, b: number): string {
  if (b === 0) return a === 0 ? "1.0× (both 0)" : "∞";
  return `${(a / b).toFixed(1)}×`;
}

/** JSON with one line per entry of the top-level arrays (a cell, a goal check): small, and diffs per cell. */
export function jsonLines(doc: Record<string, unknown>): string {
  const field = ([k, v]: [string, unknown]) =>
    Array.isArray(v)
      ? ` ${JSON.stringify(k)}: [\n${v.map((x) => `  ${JSON.stringify(x)}`).join(",\n")}\n ]`
      : ` ${JSON.stringify(k)}: ${JSON.stringify(v)}`;
  return `{\n${Object.entries(doc).map(field).join(",\n")}\n}\n`;
}

/** The comma-separated values after `flag` in a partial run's arguments (`--only a,b`). */
export function argList(args: string[], flag: string): string[] | undefined {
  const i = args.indexOf(flag);
  return i >= 0 && args[i + 1] ? args[i + 1]!.split(",") : undefined;
}
