// The functions a V8 CPU profile (node --cpu-prof) spent the most self time in, with where they
// live: what bench:peers reports for sloserve's gateway to show where its CPU per request goes.
// usage: tsx tools/peers/cpuprofile-top.ts FILE.cpuprofile [--top 25] [--json]
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface SelfTime {
  function: string;
  where: string;
  self_ms: number;
  share: number;
}

/**
 * Self time per function (samples weighted by their time deltas), largest first; with `window`
 * (CLOCK_MONOTONIC µs, the clock V8 stamps samples with on Linux) only the samples inside it.
 */
export function selfTimes(
  profile: CpuProfile,
  root = process.cwd(),
  window?: { fromUs: number; toUs: number },
): { totalMs: number; top: SelfTime[] } {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // a sample's time is the gap to the next one
  let t = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, dt));
  }
  const byFunction = new Map<string, SelfTime>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const f = byNode.get(id)!.callFrame;
    const name = f.functionName || "(anonymous)";
    const url = f.url.replace(/^file:\/\//, "");
    // tsx-compiled sources report line 0 for everything: their file names alone are what helps
    const line = f.lineNumber > 0 ? `:${f.lineNumber + 1}` : "";
    const where = url ? `${path.relative(root, url) || url}${line}` : "";
    const key = `${name}@${where}`;
    const e = byFunction.get(key) ?? { function: name, where, self_ms: 0, share: 0 };
    e.self_ms += us / 1000;
    byFunction.set(key, e);
    total += us / 1000;
  }
  const top = [...byFunction.values()].sort((a, b) => b.self_ms - a.self_ms);
  for (const e of top) e.share = e.self_ms / total;
  return { totalMs: total, top };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: "string", default: "25" }, json: { type: "boolean", default: false } },
  });
  const file = positionals[0];
  if (!file) throw new Error("usage: cpuprofile-top.ts FILE.cpuprofile [--top 25] [--json]");
  const { totalMs, top } = selfTimes(JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile);
  const n = Number(values.top);
  if (values.json) process.stdout.write(JSON.stringify({ total_ms: totalMs, top: top.slice(0, n) }) + "\n");
  else {
    process.stdout.write(`${file}: ${totalMs.toFixed(0)} ms sampled\n`);
    for (const e of top.slice(0, n))
      process.stdout.write(
        `${(e.share * 100).toFixed(1).padStart(5)}%  ${e.self_ms.toFixed(0).padStart(7)} ms  ${e.function}  ${e.where}\n`,
      );
  }
}
