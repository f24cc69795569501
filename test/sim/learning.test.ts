// The control loop that learns, in the simulator (the same serving core as the server): a node that gets
// 1.5× slower mid-run, with and without the online latency model; and a core budget half of what the tasks
// want, shared fairly or in arrival order. experiments/learning runs both at length over five seeds.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadRepository } from "../../src/repository/repository.js";
import { simulate, simTaskFromRepository, Xoshiro128, type SimTask } from "../../src/sim/index.js";
import type { Decision } from "../../src/autoscaler/controller.js";

const repo = await loadRepository(path.resolve("models"), { profilesOnly: true, tasks: ["vision"] });

function poisson(rate: number, endMs: number, seed: number): number[] {
  const rng = new Xoshiro128(seed);
  const out: number[] = [];
  for (let t = rng.exponential(1000 / rate); t < endMs; t += rng.exponential(1000 / rate)) out.push(t);
  return out;
}

function vision(name: string, variant: string, sloMs: number, scaling: string): SimTask {
  const t = simTaskFromRepository(repo.tasks.get("vision")!, { name, sloMs, scaling });
  t.variants = t.variants.filter((v) => v.name === variant);
  return t;
}

describe("a control loop that learns (simulated)", () => {
  it("a node 1.5× slower mid-run: the online model finds it, the planner adds capacity, ≥ 5× fewer violations", async () => {
    const run = (online: boolean) =>
      simulate({
        tasks: [vision("vision", "resnet34", 300, "horizontal")],
        arrivals: [{ target: "vision", times: poisson(40, 200_000, 1) }],
        deployment: [{ task: "vision", variant: "resnet34", cores: 1, count: 2 }],
        nodes: { count: 2, cores: 8 },
        seed: 1,
        onlineLatency: online,
        slowdowns: [{ atMs: 100_000, node: 0, factor: 1.5 }],
      });
    const [without, withModel] = await Promise.all([run(false), run(true)]);
    const late = (r: typeof without) => r.series.violations.slice(100).reduce((a, b) => a + b, 0);
    expect(late(without)).toBeGreaterThan(200);
    expect(late(withModel) * 5).toBeLessThan(late(without));
    // the decisions say what they were made with: the change point on node 0's instances, and the factors
    const seen = withModel.decisions.filter((d) => d.at > 100_000).flatMap((d) => d.correction?.changes ?? []);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((c) => c.place === "node 0" && c.direction === "slower")).toBe(true);
    expect(seen[0]!.at - 100_000).toBeLessThan(2000);
    expect(seen[0]!.to).toBeGreaterThan(1.35);
    expect(seen[0]!.to).toBeLessThan(1.65);
    const last = withModel.decisions.at(-1)!;
    expect(last.correction!.variants.resnet34).toBeGreaterThan(1.05);
    expect(without.decisions.every((d) => d.correction === undefined)).toBe(true);
    // the corrected fleet is planned with more cores
    expect(withModel.summary.meanCores).toBeGreaterThan(without.summary.meanCores);
  });

  it("a short budget: fair sharing takes back what the first task grabbed, loses fewer requests and lifts the worst; the log names the cut", async () => {
    // two equal tasks; b's load rises 40 s after a's: in arrival order a holds the cores it took first
    const steps = (from: [number, number][], seed: number) => {
      const rng = new Xoshiro128(seed);
      const out: number[] = [];
      let k = 0;
      for (let t = 0; ;) {
        while (k + 1 < from.length && t >= from[k + 1]![0]) k++;
        t += rng.exponential(1000 / from[k]![1]);
        if (t >= 120_000) return out;
        out.push(t);
      }
    };
    const run = (sharing: "fair" | "arrival") =>
      simulate({
        tasks: ["a", "b"].map((n) => vision(n, "resnet18", 300, "horizontal")),
        arrivals: [
          { target: "a", times: steps([[0, 60]], 1) },
          {
            target: "b",
            times: steps(
              [
                [0, 5],
                [40_000, 60],
              ],
              2,
            ),
          },
        ],
        deployment: ["a", "b"].map((n) => ({ task: n, variant: "resnet18", cores: 1 })),
        nodes: [4], // each task's plan wants 3 at 60 req/s
        seed: 2,
        controller: { sharing },
      });
    const [arrival, fair] = await Promise.all([run("arrival"), run("fair")]);
    const worst = (r: typeof fair) => Math.min(...Object.values(r.summary.perTarget).map((t) => t.attainmentPct));
    expect(fair.summary.violations * 2).toBeLessThan(arrival.summary.violations);
    expect(worst(fair)).toBeGreaterThan(worst(arrival) + 20);
    const shared = fair.decisions.filter(
      (d): d is Decision & { sharing: NonNullable<Decision["sharing"]> } => !!d.sharing,
    );
    expect(shared.length).toBeGreaterThan(0);
    const note = shared.at(-1)!.sharing;
    expect(note.budget).toBe(4);
    expect(note.granted).toEqual({ a: 2, b: 2 });
    expect(note.cut).toEqual(["a: 3 → 2 cores (−1)", "b: 3 → 2 cores (−1)"]);
    expect(shared.some((d) => /core budget short .*cut to 2 of 3 cores/.test(d.plan.reason))).toBe(true);
    expect(arrival.decisions.every((d) => d.sharing === undefined)).toBe(true);
    console.log(
      `fair vs arrival: ${fair.summary.violations} vs ${arrival.summary.violations} violations, worst task ${worst(fair).toFixed(1)} % vs ${worst(arrival).toFixed(1)} %`,
    );
  });
});
