// The speed-ups of the simulator and of the serving core change no result: fixed scenarios give the summaries,
// per-request records, per-second series and actuations recorded before them (equivalence/fingerprints.json).
// Deciding every task at every interval (holds off) also takes exactly the decisions taken before; with holds,
// the loop takes a subset of them and skips the rest, which the policies promised would answer the same.
import { readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { Repository } from "../../src/repository/repository.js";
import { simulate, type SimulationConfig } from "../../src/sim/index.js";
import { SCENARIOS, runScenario, scenarioRepository, type Fingerprint } from "./equivalence/scenarios.js";

const recorded = JSON.parse(
  readFileSync(path.join(import.meta.dirname, "equivalence", "fingerprints.json"), "utf8"),
) as Record<string, Fingerprint>;

let repo: Repository;
beforeAll(async () => {
  repo = await scenarioRepository();
});

describe("the simulator's results do not move", () => {
  for (const s of SCENARIOS) {
    it.skipIf(s.missing?.() != null)(s.name, async () => {
      const want = recorded[s.name]!;
      const every = await runScenario(s, repo, false);
      expect(every.fingerprint).toEqual(want);
      const held = await runScenario(s, repo, true);
      const { log: _l, ...rest } = held.fingerprint;
      const { log: _w, ...wanted } = want;
      expect(rest).toEqual(wanted);
      // the decisions taken with holds are among those taken without, in the same order for each task (a
      // decision whose actuation ran is logged when it ends, which other tasks' skipped decisions can move)
      const perTask = (log: string[]) => {
        const m = new Map<string, string[]>();
        for (const d of log) {
          const task = (JSON.parse(d) as { task: string }).task;
          m.set(task, [...(m.get(task) ?? []), d]);
        }
        return m;
      };
      const all = perTask(every.taken);
      for (const [task, taken] of perTask(held.taken)) {
        const from = all.get(task) ?? [];
        let k = 0;
        for (const d of taken) {
          while (k < from.length && from[k] !== d) k++;
          expect(k, `decision not taken without holds: ${d.slice(0, 300)}`).toBeLessThan(from.length);
          k++;
        }
      }
    });
  }
});

describe("holds", () => {
  // a promise covers a task's own inputs: fair sharing and the online model decide from other tasks' too
  it("skip decisions on their own, and none under fair sharing or the online latency model", async () => {
    const s = SCENARIOS.find((x) => x.name === "sporadic-themis")!;
    const run = (extra: Partial<SimulationConfig>, c: SimulationConfig["controller"] = {}) => {
      const config = s.config(repo);
      return simulate({ ...config, ...extra, controller: { ...config.controller, ...c, holds: true } });
    };
    expect((await run({})).summary.decisionsSkipped).toBeGreaterThan(0);
    expect((await run({}, { sharing: "fair" })).summary.decisionsSkipped).toBe(0);
    expect((await run({ onlineLatency: true })).summary.decisionsSkipped).toBe(0);
  });
});
