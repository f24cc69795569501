// One real control plane plus node agents (the kubelet's stand-ins), for a test file: started in seconds
// once the binaries are cached, stopped with every process and network namespace it made.
import type { KubeConfig } from "@kubernetes/client-node";
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from "./control-plane.js";
import { NodeAgent } from "./node-agent.js";
import { createNodeNetwork } from "./pod-network.js";

export interface K8sTestCluster {
  cp: ControlPlane;
  kc: KubeConfig;
  agents: NodeAgent[];
  /** Creates a fresh namespace (each test its own, so their objects do not mix). */
  namespace(prefix?: string): Promise<string>;
  addNode(name: string, cpu: number): Promise<NodeAgent>;
  /** Deletes a namespace and waits until its pods are gone from the nodes. */
  dropNamespace(name: string): Promise<void>;
  stop(): Promise<void>;
}

let nsCounter = 0;

export async function startK8sTestCluster(
  opts: ControlPlaneOptions & { nodes: { name: string; cpu: number }[]; log?: (e: Record<string, unknown>) => void },
): Promise<K8sTestCluster> {
  const cp = await startControlPlane(opts);
  const kc = cp.kubeConfig();
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
    async namespace(prefix = "t") {
      const name = `${prefix}-${process.pid}-${++nsCounter}`;
      await cp.kubectl(["create", "namespace", name]);
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
