// The Kubernetes side of `sloserve serve --cluster kubernetes`: the backend in the gateway's namespace, and
// leader election so that among the gateway's replicas exactly one actuates (scales, resizes, starts on
// demand) while every replica routes to every pod.
import { randomUUID } from "node:crypto";
import os from "node:os";
import { KubeConfig } from "@kubernetes/client-node";
import { KubernetesCluster } from "../cluster/kubernetes/kubernetes-cluster.js";
import { LeaderElector } from "../cluster/kubernetes/leader-election.js";
import { WORKER_TOKEN_ENV } from "../worker/protocol.js";

export interface KubernetesServeOptions {
  /** Kubeconfig file; default: in-cluster config inside a pod, else the usual kubeconfig lookup. */
  kubeconfig?: string;
  /** Default: the pod's namespace (POD_NAMESPACE), else the kubeconfig context's, else "default". */
  namespace?: string;
  coreBudget: number;
  /** Memory of each worker pod (request = limit), e.g. "1Gi" for the vision models. */
  podMemory?: string;
  /** Worker image; default sloserve:latest (deploy/kubernetes/Dockerfile). */
  image?: string;
  /** This replica's name in the Lease (default: POD_NAME, else host name, pid and a random suffix). */
  identity?: string;
  log: (event: Record<string, unknown>) => void;
}

export interface KubernetesParts {
  cluster: KubernetesCluster;
  elector: LeaderElector;
  namespace: string;
}

export async function openKubernetes(o: KubernetesServeOptions): Promise<KubernetesParts> {
  const kc = new KubeConfig();
  if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  const namespace =
    o.namespace ?? process.env.POD_NAMESPACE ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
  const workerToken = process.env[WORKER_TOKEN_ENV];
  if (!workerToken)
    throw new Error(
      `${WORKER_TOKEN_ENV} must hold the worker channel's secret (the Secret sloserve-worker-token in namespace ` +
        `${namespace}; see deploy/kubernetes/README.md)`,
    );
  const cluster = new KubernetesCluster({
    kubeConfig: kc,
    namespace,
    coreBudget: o.coreBudget,
    workerToken,
    image: o.image,
    memory: o.podMemory,
    log: o.log,
  });
  const elector = new LeaderElector({
    kubeConfig: kc,
    namespace,
    identity: o.identity ?? process.env.POD_NAME ?? `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
    log: o.log,
  });
  await cluster.open();
  await elector.start();
  return { cluster, elector, namespace };
}
