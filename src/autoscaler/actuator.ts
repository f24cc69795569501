// Converges a task's instances to a plan through the Cluster interface, making before breaking. When
// the core budget is short it does what fits and says what it could not do.
import type { ActuationResult, Cluster, Instance } from "../cluster/types.js";
import type { Plan } from "./types.js";

export interface Action {
  kind: "resize" | "start" | "stop";
  instance?: string;
  variant: string;
  cores: number;
  from?: number;
  /** A start that stands in for a resize of this instance the cluster could not do in place. */
  insteadOfResize?: string;
}

export interface ActuationReport {
  actions: Action[];
  results: (ActuationResult & { action: Action })[];
  /** What the budget did not allow, in words; empty when everything fit. */
  short: string[];
}

/** An instance's slowness (its factor over the profile, lower is faster); undefined when unknown. */
export type Speed = (instance: string) => number | undefined;

/**
 * The actions that turn the task's current instances into the plan's (no side effects). Among instances of
 * one size, the fastest are kept (by `speed`, where known): a scale-in stops the slowest.
 */
export function diff(current: readonly Instance[], plan: Plan, speed?: Speed): Action[] {
  const actions: Action[] = [];
  const variants = new Set([
    ...(plan.scope === "task" ? current.map((i) => i.variant) : []),
    ...plan.instances.map((i) => i.variant),
  ]);
  for (const variant of variants) {
    const slow = (i: Instance) => speed?.(i.id) ?? 1;
    const have = current
      .filter((i) => i.variant === variant)
      .sort((a, b) => b.cores - a.cores || (speed ? slow(a) - slow(b) : 0));
    const want = plan.instances
      .filter((i) => i.variant === variant)
      .map((i) => i.cores)
      .sort((a, b) => b - a);
    const paired = Math.min(have.length, want.length);
    for (let k = 0; k < paired; k++) {
      if (have[k]!.cores !== want[k])
        actions.push({ kind: "resize", instance: have[k]!.id, variant, cores: want[k]!, from: have[k]!.cores });
    }
    for (const extra of have.slice(paired))
      actions.push({ kind: "stop", instance: extra.id, variant, cores: extra.cores });
    for (const cores of want.slice(paired)) actions.push({ kind: "start", variant, cores });
  }
  const order = (a: Action) =>
    a.kind === "stop" ? 0 : a.kind === "resize" && a.cores < (a.from ?? 0) ? 1 : a.kind === "resize" ? 2 : 3;
  return actions.sort((a, b) => order(a) - order(b));
}

/**
 * Make before break: first what fits in the free cores now (starts and in-place growth, in parallel),
 * so capacity never dips while new instances warm up; then shrink and stop; then whatever only fits
 * in the cores that freed. What still does not fit is reported in `short`, not failed.
 */
export async function converge(cluster: Cluster, task: string, plan: Plan, speed?: Speed): Promise<ActuationReport> {
  const current = cluster.instances().filter((i) => i.task === task && (i.state === "ready" || i.state === "starting"));
  const actions = diff(current, plan, speed);
  const results: ActuationReport["results"] = [];
  const freeing = actions.filter((a) => a.kind === "stop" || (a.kind === "resize" && a.cores < (a.from ?? 0)));
  const growing = actions.filter((a) => !freeing.includes(a));
  const need = (a: Action) => (a.kind === "start" ? a.cores : a.cores - (a.from ?? 0));
  // A replacement (a variant switch) on a cluster that shares cores when short starts on a shared core
  // rather than after the instance it replaces has stopped: the gap would serve no one, and the
  // on-demand scaler would fill it with whatever variant it picks.
  const replaces = freeing.some((f) => f.kind === "stop");
  const shared = (a: Action) => cluster.sharesCores === true && replaces && a.kind === "start" && a.cores === 1;
  const fitting = (list: Action[]): [Action[], Action[]] => {
    let free = cluster.coreBudget - cluster.coresInUse();
    const now: Action[] = [];
    const later: Action[] = [];
    for (const a of list) {
      if (shared(a) && need(a) > free) now.push(a);
      else if (need(a) <= free) {
        free -= need(a);
        now.push(a);
      } else later.push(a);
    }
    return [now, later];
  };
  const [first, rest] = fitting(growing);
  results.push(...(await Promise.all(first.map((a) => act(cluster, task, a)))).flat());
  results.push(...(await Promise.all(freeing.map((a) => act(cluster, task, a)))).flat());
  const [second, short] = fitting(rest);
  results.push(...(await Promise.all(second.map((a) => act(cluster, task, a)))).flat());
  const free = cluster.coreBudget - cluster.coresInUse();
  return {
    actions,
    results,
    short: short.map(
      (a) =>
        `${a.kind} ${a.instance ?? a.variant} to ${a.cores} cores needs ${need(a)} more, ${free} of ${cluster.coreBudget} free`,
    ),
  };
}

async function act(cluster: Cluster, task: string, a: Action): Promise<(ActuationResult & { action: Action })[]> {
  const r =
    a.kind === "stop"
      ? await cluster.stop(a.instance!)
      : a.kind === "resize"
        ? await cluster.resize(a.instance!, a.cores)
        : await cluster.start(task, a.variant, a.cores);
  const growth = a.cores - (a.from ?? 0);
  if (r.ok || a.kind !== "resize" || growth <= 0) return [{ ...r, action: a }];
  if (r.scaleOutInstead) {
    // the node will never (or not soon) grant the resize: the same cores, as one more instance; the budget
    // check above already counted them for the resize
    const extra: Action = { kind: "start", variant: a.variant, cores: growth, insteadOfResize: a.instance };
    const s = await cluster.start(task, a.variant, growth);
    return [
      { ...r, action: a },
      { ...s, message: `instead of resizing ${a.instance}: ${s.message}`, action: extra },
    ];
  }
  return [{ ...(await migrate(cluster, task, a, r.message)), action: a }];
}

/**
 * An instance that cannot grow in place (no room on its node) is replaced, making before breaking: a new
 * instance of the new size where there is room, ready before the old one stops.
 */
async function migrate(cluster: Cluster, task: string, a: Action, why: string): Promise<ActuationResult> {
  const old = cluster.instances().find((i) => i.id === a.instance);
  if (!old || old.state !== "ready") return { ok: false, ms: 0, message: why };
  const started = await cluster.start(task, a.variant, a.cores);
  if (!started.ok)
    return { ok: false, ms: started.ms, message: `${why}; no room for a new instance either: ${started.message}` };
  const stopped = await cluster.stop(old.id);
  return {
    ok: true,
    ms: started.ms + stopped.ms,
    message: `${why}: started ${started.instance ?? "a new instance"} with ${a.cores} cores and stopped ${old.id}`,
    instance: started.instance,
  };
}
