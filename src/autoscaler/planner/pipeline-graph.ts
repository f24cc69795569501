// A pipeline's stage graph, as pipeline.yaml describes it and everything else reads it: each stage a
// task, with the stages whose outputs it waits for (`after`; by default the stage listed before it, so
// `stages: [a, b, c]` stays a chain), and whether a request may skip it. Pure: the repository checks
// it, the serving core walks it, the planners read its edges (it lives with them, the lowest of its readers).

export interface StageNode {
  /** The stage's task (a pipeline names each task once, so the task names the stage). */
  task: string;
  /** Stages whose outputs this one waits for; empty for a source. */
  after: readonly string[];
  /** A request may skip it (`skip_stages`), and the stages after it then wait only for the others. */
  optional: boolean;
}

export interface PipelineGraph {
  /** In the order pipeline.yaml lists them. */
  stages: readonly StageNode[];
}

/** A stage as pipeline.yaml may write it: a task name, or an object with the task and its inputs. */
export type StageEntry = string | { task: string; after?: readonly string[]; optional?: boolean };

/** The graph of pipeline.yaml's `stages` list: a missing `after` means the stage listed before it. */
export function graphOf(entries: readonly StageEntry[]): PipelineGraph {
  return {
    stages: entries.map((e, i) => {
      const prev = i === 0 ? [] : [taskOf(entries[i - 1]!)];
      if (typeof e === "string") return { task: e, after: prev, optional: false };
      return { task: e.task, after: e.after ? [...e.after] : prev, optional: e.optional ?? false };
    }),
  };
}

function taskOf(e: StageEntry): string {
  return typeof e === "string" ? e : e.task;
}

/** A chain of tasks as a graph. */
export function chainGraph(tasks: readonly string[]): PipelineGraph {
  return graphOf(tasks);
}

/** What is wrong with a graph, in words (empty when nothing is). */
export function graphProblems(g: PipelineGraph): string[] {
  const out: string[] = [];
  const names = new Set<string>();
  for (const s of g.stages) {
    if (names.has(s.task)) out.push(`task '${s.task}' is listed twice; a pipeline runs each task once`);
    names.add(s.task);
  }
  for (const s of g.stages) {
    for (const a of s.after) {
      if (!names.has(a)) out.push(`stage '${s.task}' waits for '${a}', which is not a stage of this pipeline`);
      else if (a === s.task) out.push(`stage '${s.task}' waits for itself`);
    }
    if (new Set(s.after).size !== s.after.length) out.push(`stage '${s.task}' lists a stage twice in 'after'`);
  }
  if (out.length === 0 && topologicalOrder(g) === null)
    out.push("the stages wait for each other in a cycle; a pipeline is a directed acyclic graph");
  if (out.length === 0 && g.stages.every((s) => s.optional))
    out.push("every stage is optional; at least one stage must run");
  return out;
}

/** Stage tasks in an order where every stage comes after the ones it waits for; null on a cycle. */
export function topologicalOrder(g: PipelineGraph): string[] | null {
  const indeg = new Map(g.stages.map((s) => [s.task, s.after.length]));
  const ready = g.stages.filter((s) => s.after.length === 0).map((s) => s.task);
  const order: string[] = [];
  while (ready.length > 0) {
    const t = ready.shift()!;
    order.push(t);
    for (const s of g.stages)
      if (s.after.includes(t)) {
        const left = indeg.get(s.task)! - 1;
        indeg.set(s.task, left);
        if (left === 0) ready.push(s.task);
      }
  }
  return order.length === g.stages.length ? order : null;
}

export function stageTasks(g: PipelineGraph): string[] {
  return g.stages.map((s) => s.task);
}

export function sources(g: PipelineGraph): StageNode[] {
  return g.stages.filter((s) => s.after.length === 0);
}

/** Stages no other stage waits for: their outputs are the pipeline's answer. */
export function sinks(g: PipelineGraph): StageNode[] {
  return g.stages.filter((s) => !g.stages.some((o) => o.after.includes(s.task)));
}

export function successors(g: PipelineGraph, task: string): StageNode[] {
  return g.stages.filter((s) => s.after.includes(task));
}

export function edges(g: PipelineGraph): { from: string; to: string }[] {
  return g.stages.flatMap((s) => s.after.map((a) => ({ from: a, to: s.task })));
}

/** Whether the graph is one chain in the order listed. */
export function isChainGraph(g: PipelineGraph): boolean {
  return g.stages.every((s, i) =>
    i === 0 ? s.after.length === 0 : s.after.length === 1 && s.after[0] === g.stages[i - 1]!.task,
  );
}

/**
 * The graph without edges another path already implies (a → c when a → b → c): what the latency of a
 * request depends on. OCR's det → rec beside det → cls → rec reduces to the chain det → cls → rec.
 */
export function transitiveReduction(g: PipelineGraph): PipelineGraph {
  const reach = (from: string, to: string, skipDirect: boolean): boolean => {
    const seen = new Set<string>();
    const stack = successors(g, from)
      .map((s) => s.task)
      .filter((t) => !(skipDirect && t === to));
    while (stack.length > 0) {
      const t = stack.pop()!;
      if (t === to) return true;
      if (seen.has(t)) continue;
      seen.add(t);
      for (const s of successors(g, t)) stack.push(s.task);
    }
    return false;
  };
  return {
    stages: g.stages.map((s) => ({ ...s, after: s.after.filter((a) => !reach(a, s.task, true)) })),
  };
}

/** The stages in the order of the chain the graph reduces to, or null when it reduces to no chain. */
export function reducedChain(g: PipelineGraph): string[] | null {
  const r = transitiveReduction(g);
  const order = topologicalOrder(r);
  if (!order) return null;
  const byTask = new Map(r.stages.map((s) => [s.task, s]));
  for (let i = 0; i < order.length; i++) {
    const after = byTask.get(order[i]!)!.after;
    if (i === 0 ? after.length !== 0 : after.length !== 1 || after[0] !== order[i - 1]) return null;
  }
  return order;
}

/** The graph with some optional stages skipped: who waits for a skipped stage waits for what it waited for. */
export function withoutStages(g: PipelineGraph, skipped: ReadonlySet<string>): PipelineGraph {
  if (skipped.size === 0) return g;
  const inputsOf = (task: string): string[] => {
    const s = g.stages.find((x) => x.task === task)!;
    return s.after.flatMap((a) => (skipped.has(a) ? inputsOf(a) : [a]));
  };
  return {
    stages: g.stages.filter((s) => !skipped.has(s.task)).map((s) => ({ ...s, after: [...new Set(inputsOf(s.task))] })),
  };
}
