// Shared output of every benchmark: a readable table on stdout, or with --json one JSON object
// of the figures, named as in the issue that asked for them.
import { printTable } from "./table.js";

export interface BenchReport {
  title: string;
  tables: { head: string[]; rows: string[][] }[];
  figures: Record<string, unknown>;
  notes?: string[];
}

export function emit(report: BenchReport, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(report.figures) + "\n");
    return;
  }
  process.stdout.write(`\n${report.title}\n\n`);
  for (const t of report.tables) {
    printTable(t.head, t.rows);
    process.stdout.write("\n");
  }
  for (const n of report.notes ?? []) process.stdout.write(`${n}\n`);
}
