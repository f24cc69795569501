// Where an in-place resize stands, read from the pod alone (KEP-1287's completion test): desired
// `spec.containers[].resources` → allocated `status.containerStatuses[].allocatedResources` → actual
// `status.containerStatuses[].resources`, with the PodResizePending / PodResizeInProgress conditions.
import type { V1Pod, V1PodCondition } from "@kubernetes/client-node";
import { CONTAINER } from "./objects.js";
import { parseQuantity, sameCpu } from "./quantity.js";

export type ResizeState =
  | { kind: "done" }
  | { kind: "waiting"; why: string }
  | { kind: "deferred"; message: string }
  | { kind: "infeasible"; message: string }
  | { kind: "error"; message: string }
  | { kind: "gone"; message: string };

/** Cores the node has allocated to the pod's worker (the spec's request before the node has said). */
export function allocatedCores(pod: V1Pod): number {
  const status = pod.status?.containerStatuses?.find((c) => c.name === CONTAINER);
  const spec = pod.spec?.containers.find((c) => c.name === CONTAINER);
  return parseQuantity(status?.allocatedResources?.cpu ?? spec?.resources?.requests?.cpu);
}

export function desiredCores(pod: V1Pod): number {
  return parseQuantity(pod.spec?.containers.find((c) => c.name === CONTAINER)?.resources?.requests?.cpu);
}

function condition(pod: V1Pod, type: string): V1PodCondition | undefined {
  return pod.status?.conditions?.find((c) => c.type === type && c.status === "True");
}

/**
 * Done when the node has seen generation `generation`, no resize is pending or in progress, and both the
 * allocated and the actual CPU equal `cores` (actual: the worker runs with it, not just the node's books).
 */
export function resizeState(pod: V1Pod | undefined, generation: number, cores: number): ResizeState {
  if (!pod || pod.metadata?.deletionTimestamp)
    return { kind: "gone", message: "the pod was deleted during the resize" };
  const pending = condition(pod, "PodResizePending");
  const inProgress = condition(pod, "PodResizeInProgress");
  // A condition about an older generation says nothing about this request.
  const current = (c: { observedGeneration?: number } | undefined) =>
    c !== undefined && (c.observedGeneration === undefined || c.observedGeneration >= generation);
  if (current(pending)) {
    const message = pending!.message ?? "";
    if (pending!.reason === "Infeasible") return { kind: "infeasible", message };
    if (pending!.reason === "Deferred") return { kind: "deferred", message };
  }
  if (current(inProgress) && inProgress!.reason === "Error")
    return { kind: "error", message: inProgress!.message ?? "resize failed on the node" };
  const observed = pod.status?.observedGeneration ?? 0;
  if (observed < generation) return { kind: "waiting", why: `node has seen generation ${observed} of ${generation}` };
  if (pending || inProgress) return { kind: "waiting", why: "resize in progress" };
  const status = pod.status?.containerStatuses?.find((c) => c.name === CONTAINER);
  if (!sameCpu(status?.allocatedResources?.cpu, cores))
    return { kind: "waiting", why: `allocated ${status?.allocatedResources?.cpu ?? "?"}` };
  if (!sameCpu(status?.resources?.limits?.cpu ?? status?.resources?.requests?.cpu, cores))
    return { kind: "waiting", why: `actual ${status?.resources?.limits?.cpu ?? "?"}` };
  return { kind: "done" };
}
