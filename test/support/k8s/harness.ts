// One real control plane plus node agents (the kubelet's stand-ins), for a test file: started in seconds
// once the binaries are cached, stopped with every process and network namespace it made.
import type { KubeConfig } from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import { DEFAULT_WORKER_TOKEN_SECRET } from "../../../src/cluster/kubernetes/kubernetes-cluster.js";
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from "./control-plane.js";
import { NodeAgent } from "./node-agent.js";
import { createNodeNetwork } from "./pod-network.js";

export interface K8sTestCluster {
  cp: ControlPlane;
  kc: KubeConfig;
  agents: NodeAgent[];
  /** The worker channel's secret, held in every test namespace's Secret as the operator would hold it. */
  workerToken: string;
  /** Creates a fresh namespace with the worker-token Secret (each test its own, so objects do not mix). */
  namespace(prefix?: string): Promise<string>;
  addNode(name: string, cpu: number): Promise<NodeAgent>;
  /** Deletes a namespace and waits until its pods are gone from the nodes. */
  dropNamespace(name: string): Promise<void>;
  stop(): Promise<void>;
}

let nsCounter = 0;

/** What deploy/kubernetes/README.md asks an operator to run once per namespace. */
export async function createWorkerTokenSecret(cp: ControlPlane, namespace: string, token: string): Promise<void> {
  await cp.kubectl([
    "create",
    "secret",
    "generic",
    DEFAULT_WORKER_TOKEN_SECRET,
    "-n",
    namespace,
    `--from-literal=token=${token}`,
  ]);
}

export async function startK8sTestCluster(
  opts: ControlPlaneOptions & { nodes: { name: string; cpu: number }[]; log?: (e: Record<string, unknown>) => void },
): Promise<K8sTestCluster> {
  const cp = await startControlPlane(opts);
  const kc = cp.kubeConfig();
  const workerToken = randomBytes(32).toString("hex");
  const agents: NodeAgent[] = [];
  const addNode = async (name: string, cpu: number) => {
    const net = await createNodeNetwork(agents.length);
    const agent = new NodeAgent({ kubeConfig: cp.kubeConfig(), name, cpu, net, log: opts.log });
    agents.push(agent);
    await agent.start();
    return agent;
  };
  try {
    for (const n of opts.nodes) await addNode(n.name, n.cpu);
  } catch (err) {
    for (const a of agents) await a.shutdown().catch(() => undefined);
    await cp.stop();
    throw err;
  }
  return {
    cp,
    kc,
    agents,
    addNode,
    workerToken,
    async namespace(prefix = "t") {
      const name = `${prefix}-${process.pid}-${++nsCounter}`;
      await cp.kubectl(["create", "namespace", name]);
      await createWorkerTokenSecret(cp, name, workerToken);
      // Pods need the namespace's default service account, which the controller manager makes.
      for (let i = 0; i < 100; i++) {
        const { stdout } = await cp.kubectl(["get", "sa", "-n", name, "-o", "name"]);
        if (stdout.includes("serviceaccount/default")) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      return name;
    },
    async dropNamespace(name) {
      // Waiting for the namespace itself takes the namespace controller's sweeps (~10 s); what the next
      // test needs is the nodes' cores back, i.e. the pods gone.
      await cp.kubectl(["delete", "deployments", "--all", "-n", name, "--wait=false"]);
      for (let i = 0; i < 600; i++) {
        const { stdout } = await cp.kubectl(["get", "pods", "-n", name, "-o", "name"]);
        if (stdout.trim() === "") break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await cp.kubectl(["delete", "namespace", name, "--wait=false"]);
    },
    async stop() {
      for (const a of agents) await a.shutdown().catch(() => undefined);
      await cp.stop();
    },
  };
}
