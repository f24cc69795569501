// npm run experiment <name> [-- options]: runs tools/experiment/runs/<name>.ts, which reads
// experiments/<name>/config.yaml and writes results.md and SVG charts into that folder.
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export interface ExperimentContext {
  /** experiments/<name> */
  dir: string;
  /** Arguments after the name (e.g. --quick). */
  args: string[];
  log(msg: string): void;
}

const [name, ...args] = process.argv.slice(2);
const root = path.resolve("experiments");
const runs = path.join(path.dirname(fileURLToPath(import.meta.url)), "runs");
if (!name || !/^[a-z0-9-]+$/.test(name) || !existsSync(path.join(runs, `${name}.ts`))) {
  const { readdirSync } = await import("node:fs");
  const known = readdirSync(root).filter((d) => existsSync(path.join(runs, `${d}.ts`)));
  process.stderr.write(`usage: npm run experiment <name>  (one of: ${known.join(", ")})\n`);
  process.exit(2);
}
const dir = path.join(root, name);
const mod = (await import(pathToFileURL(path.join(runs, `${name}.ts`)).href)) as {
  default: (ctx: ExperimentContext) => Promise<void>;
};
const t0 = performance.now();
await mod.default({ dir, args, log: (m) => process.stderr.write(`${m}\n`) });
process.stderr.write(
  `experiment ${name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s; see ${path.relative(process.cwd(), path.join(dir, "results.md"))}\n`,
);
