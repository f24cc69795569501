// The objects the Kubernetes backend owns, one Deployment and one headless Service per variant: names,
// labels, the pod template (Guaranteed QoS, CPU resizable in place without restart) and annotations.
import { WORKER_TOKEN_ENV } from "../../worker/protocol.js";
import type { V1Deployment, V1Service } from "@kubernetes/client-node";
import { formatCpu } from "./quantity.js";

export const CONTAINER = "worker";
export const MANAGED_BY = "app.kubernetes.io/managed-by";
export const COMPONENT = "app.kubernetes.io/component";
export const TASK_LABEL = "sloserve.io/task";
export const VARIANT_LABEL = "sloserve.io/variant";
/** The cores new pods should end up with: kept on the Deployment, not its template (that would roll every pod). */
export const TARGET_CPU = "sloserve.io/target-cpu";
/** Lower = removed first when the ReplicaSet scales down; how `stop` picks the pod it drained. */
export const DELETION_COST = "controller.kubernetes.io/pod-deletion-cost";
/** Selects every object of this backend (Deployments, Services, their EndpointSlices, pods). */
export const WORKER_SELECTOR = `${MANAGED_BY}=sloserve,${COMPONENT}=worker`;

export interface WorkerTemplate {
  image: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  port: number;
  memory: string;
  /** Model file inside the image, relative to its working directory. */
  modelPath: string;
  /** How long pods stay on a node that stopped answering before they are replaced elsewhere. */
  unreachableTolerationSeconds: number;
  /** The Secret (key `token`) holding the worker channel's secret; the kubelet hands it to each worker. */
  tokenSecret: string;
}

/** A DNS-1035 label for a variant's Deployment and Service. */
export function variantObjectName(task: string, variant: string): string {
  const name = `sloserve-${task}-${variant}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/-$/, "");
  if (name.length > 63) throw new Error(`task and variant names too long for a Kubernetes object name: ${name}`);
  return name;
}

export function variantLabels(task: string, variant: string): Record<string, string> {
  const ok = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
  for (const v of [task, variant])
    if (!ok.test(v)) throw new Error(`'${v}' cannot be a Kubernetes label value (letters, digits, - _ .; ≤ 63)`);
  return { [MANAGED_BY]: "sloserve", [COMPONENT]: "worker", [TASK_LABEL]: task, [VARIANT_LABEL]: variant };
}

export function workerDeployment(
  task: string,
  variant: string,
  cores: number,
  replicas: number,
  t: WorkerTemplate,
): V1Deployment {
  const labels = variantLabels(task, variant);
  const cpu = formatCpu(cores);
  const tolerate = (key: string) => ({
    key,
    operator: "Exists",
    effect: "NoExecute",
    tolerationSeconds: t.unreachableTolerationSeconds,
  });
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: variantObjectName(task, variant), labels, annotations: { [TARGET_CPU]: cpu } },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      // New pods start with these resources and are resized to the target once Running; a rollout is
      // never needed for a size change.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels },
        spec: {
          terminationGracePeriodSeconds: 30,
          enableServiceLinks: false,
          automountServiceAccountToken: false,
          tolerations: [tolerate("node.kubernetes.io/unreachable"), tolerate("node.kubernetes.io/not-ready")],
          containers: [
            {
              name: CONTAINER,
              image: t.image,
              imagePullPolicy: t.imagePullPolicy ?? "IfNotPresent",
              command: ["node", "--import", "tsx", "src/worker/main.ts"],
              args: [
                "--model",
                t.modelPath,
                "--threads",
                "auto",
                "--follow-cgroup",
                "--host",
                "0.0.0.0",
                "--port",
                String(t.port),
              ],
              env: [{ name: WORKER_TOKEN_ENV, valueFrom: { secretKeyRef: { name: t.tokenSecret, key: "token" } } }],
              ports: [{ name: CONTAINER, containerPort: t.port, protocol: "TCP" }],
              // requests == limits: Guaranteed QoS, which an in-place resize must keep.
              resources: { requests: { cpu, memory: t.memory }, limits: { cpu, memory: t.memory } },
              resizePolicy: [
                { resourceName: "cpu", restartPolicy: "NotRequired" },
                { resourceName: "memory", restartPolicy: "NotRequired" },
              ],
              readinessProbe: { tcpSocket: { port: t.port }, periodSeconds: 1, failureThreshold: 2 },
            },
          ],
        },
      },
    },
  };
}

/** Headless: the router reaches pods directly (it must know each one's queue), so no cluster IP is needed. */
export function workerService(task: string, variant: string, port: number): V1Service {
  const labels = variantLabels(task, variant);
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: variantObjectName(task, variant), labels },
    spec: {
      clusterIP: "None",
      selector: labels,
      ports: [{ name: CONTAINER, port, targetPort: port, protocol: "TCP" }],
    },
  };
}

/** Strategic merge patch body for `pods/{name}/resize`: containers merge by name, other resources are kept. */
export function resizePatch(cores: number): object {
  const cpu = formatCpu(cores);
  return { spec: { containers: [{ name: CONTAINER, resources: { requests: { cpu }, limits: { cpu } } }] } };
}
