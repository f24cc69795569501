// Records the fingerprints test/sim/equivalence.test.ts compares against:
//   npx tsx test/sim/equivalence/record.ts
// Run it only on code whose results are the reference (it was run on the simulator before the speed-ups).
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SCENARIOS, runScenario, scenarioRepository, type Fingerprint } from "./scenarios.js";

const repo = await scenarioRepository();
const out: Record<string, Fingerprint> = {};
for (const s of SCENARIOS) {
  const why = s.missing?.();
  if (why) throw new Error(`scenario ${s.name} cannot run: ${why}`);
  const t0 = performance.now();
  out[s.name] = (await runScenario(s, repo)).fingerprint;
  process.stderr.write(
    `${s.name}: ${out[s.name]!.decisions} decisions, ${((performance.now() - t0) / 1000).toFixed(2)} s\n`,
  );
}
const file = path.join(path.dirname(fileURLToPath(import.meta.url)), "fingerprints.json");
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
process.stderr.write(`wrote ${file}\n`);
