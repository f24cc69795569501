// The `scale` setting (EXPERIMENTS.md / issue 5): N tasks mapped onto the N busiest functions of the
// Azure Functions file, each task a copy of a zoo task with its measured profiles, on a large cluster,
// the day's per-minute counts spread as Poisson arrivals. Shared by `npm run experiment scale` and
// `npm run bench:sim`.
import type { Repository } from "../../src/repository/repository.js";
import { arrivalsFromCounts, azureFunctionSeries, loadAzureFunctions } from "../../src/traces/index.js";
import { simTaskFromRepository, type SimArrivals, type SimDeployment, type SimTask } from "../../src/sim/scenario.js";
import type { SimulationConfig } from "../../src/sim/simulate.js";

export interface ScaleSetting {
  azureFile: string;
  tasks: number;
  nodes: number;
  coresPerNode: number;
  /** Minutes of the day from its start. */
  minutes: number;
  /** Zoo task every simulated task copies (variants and profiles). */
  template: string;
  scaling: string;
  scheduling: string;
  seed: number;
  /**
   * Skip the decisions the policy promised the answer of (simulate's controller.holds; default true): the same
   * results, much less wall time. false decides every task at every interval, as the live server does.
   */
  holds?: boolean;
}

export function scaleScenario(repo: Repository, s: ScaleSetting): { config: SimulationConfig; requests: number } {
  const template = repo.tasks.get(s.template);
  if (!template) throw new Error(`no task '${s.template}' in the repository`);
  const trace = loadAzureFunctions(s.azureFile, { top: s.tasks, firstMinute: 0, minutes: s.minutes });
  const tasks: SimTask[] = [];
  const arrivals: SimArrivals[] = [];
  const deployment: SimDeployment[] = [];
  let requests = 0;
  trace.functions.forEach((fn, i) => {
    const name = `fn${String(i).padStart(3, "0")}-${fn.hash.slice(0, 8)}`;
    const task = simTaskFromRepository(template, { name, scheduling: s.scheduling, scaling: s.scaling });
    tasks.push(task);
    const times = arrivalsFromCounts(azureFunctionSeries(trace, fn), { spread: "poisson", seed: s.seed + i }).times;
    requests += times.length;
    arrivals.push({ target: name, times });
    // the most accurate variant, one core: what the server's default deployment starts with
    const best = [...task.variants].sort((a, b) => b.accuracy - a.accuracy)[0]!;
    deployment.push({ task: name, variant: best.name, cores: 1 });
  });
  return {
    requests,
    config: {
      tasks,
      arrivals,
      deployment,
      nodes: { count: s.nodes, cores: s.coresPerNode },
      seed: s.seed,
      controller: { intervalMs: 1000, holds: s.holds ?? true },
      mix: false,
      drainMs: 10_000,
    },
  };
}
