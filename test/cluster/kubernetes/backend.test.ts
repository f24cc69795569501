// The Kubernetes backend against a real control plane (built from Go modules) with two node agents
// standing in for kubelets: real pods scheduled by the real scheduler, real worker processes, real digits.
import type { WorkerStats } from "../../../src/worker/protocol.js";
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { converge } from "../../../src/autoscaler/actuator.js";
import { KubernetesCluster } from "../../../src/cluster/kubernetes/kubernetes-cluster.js";
import { TARGET_CPU } from "../../../src/cluster/kubernetes/objects.js";
import { WorkerClient } from "../../../src/worker/client.js";
import { eventually, runDigits } from "../../support/k8s/digits-batch.js";
import { startK8sTestCluster, type K8sTestCluster } from "../../support/k8s/harness.js";

let h: K8sTestCluster;
const events: Record<string, unknown>[] = [];
const log = (e: Record<string, unknown>) => events.push(e);

beforeAll(async () => {
  h = await startK8sTestCluster({
    nodes: [
      { name: "node-a", cpu: 2 },
      { name: "node-b", cpu: 2 },
    ],
  });
}, 45 * 60_000); // the first run builds the control plane (about 6 minutes on 2 cores)

afterAll(async () => {
  await h?.stop();
});

async function readPod(ns: string, name: string): Promise<V1Pod> {
  return JSON.parse((await h.cp.kubectl(["get", "pod", name, "-n", ns, "-o", "json"])).stdout) as V1Pod;
}

async function workerStats(pod: V1Pod): Promise<WorkerStats> {
  const client = await WorkerClient.connect(pod.status!.podIP!, 9000, h.workerToken);
  try {
    return (await client.call("stats")).header;
  } finally {
    client.close();
  }
}

describe("KubernetesCluster on a real control plane", () => {
  it("starts a pod through a Deployment, finds it through its EndpointSlice and serves real digits", async () => {
    const ns = await h.namespace();
    const cluster = new KubernetesCluster({
      kubeConfig: h.kc,
      workerToken: h.workerToken,
      namespace: ns,
      coreBudget: 4,
      log,
    });
    await cluster.open();
    try {
      const started = await cluster.start("digits", "cnn-small", 1);
      expect(started.ok, started.message).toBe(true);
      const [inst] = cluster.instances();
      expect(inst).toMatchObject({
        id: started.instance,
        task: "digits",
        variant: "cnn-small",
        cores: 1,
        state: "ready",
      });
      const slices = JSON.parse((await h.cp.kubectl(["get", "endpointslices", "-n", ns, "-o", "json"])).stdout) as {
        items: { endpoints: { addresses: string[]; conditions: { ready: boolean }; targetRef: { name: string } }[] }[];
      };
      const pod = await readPod(ns, inst!.id);
      const ep = slices.items.flatMap((s) => s.endpoints ?? []).find((e) => e.targetRef.name === inst!.id);
      expect(ep?.addresses).toEqual([pod.status!.podIP]);
      expect(ep?.conditions.ready).toBe(true);
      const answer = await runDigits(inst!, "cnn-small", 16);
      expect(answer.ok, answer.message).toBe(true);
      expect(answer.correct).toBeGreaterThanOrEqual(14);
      const deploy = JSON.parse((await h.cp.kubectl(["get", "deploy", "-n", ns, "-o", "json"])).stdout).items[0];
      expect(deploy.spec.replicas).toBe(1);
      expect(pod.status?.qosClass).toBe("Guaranteed");
    } finally {
      await cluster.shutdown();
      await h.dropNamespace(ns);
    }
  });

  it("resizes in place through pods/resize: new generation, allocated and actual CPU read back, worker threads follow, no batch fails", async () => {
    const ns = await h.namespace();
    const cluster = new KubernetesCluster({
      kubeConfig: h.kc,
      workerToken: h.workerToken,
      namespace: ns,
      coreBudget: 4,
      log,
    });
    await cluster.open();
    try {
      const started = await cluster.start("digits", "cnn-small", 1);
      expect(started.ok, started.message).toBe(true);
      const id = started.instance!;
      const before = await readPod(ns, id);
      expect((await workerStats(before)).threads).toBe(1);
      let failures = 0;
      let served = 0;
      let stop = false;
      const load = (async () => {
        for (let k = 0; !stop; k++) {
          const inst = cluster.instances().find((i) => i.id === id)!;
          const a = await runDigits(inst, "cnn-small", 4, k * 4);
          if (a.ok) served++;
          else failures++;
        }
      })();
      const requests0 = cluster.api.counts.get("patch pods/resize") ?? 0;
      const up = await cluster.resize(id, 2);
      expect(up.ok, up.message).toBe(true);
      expect(cluster.api.counts.get("patch pods/resize")! - requests0).toBe(1);
      const after = await readPod(ns, id);
      expect(after.metadata!.generation).toBeGreaterThan(before.metadata!.generation!);
      expect(after.status!.observedGeneration).toBeGreaterThanOrEqual(after.metadata!.generation!);
      const cs = after.status!.containerStatuses![0]!;
      expect(cs.allocatedResources!.cpu).toBe("2");
      expect(cs.resources!.limits!.cpu).toBe("2");
      expect(after.spec!.containers[0]!.resources!.requests!.cpu).toBe("2");
      expect(after.metadata!.uid).toBe(before.metadata!.uid); // the same pod: no restart
      expect(cs.restartCount).toBe(0);
      expect((await workerStats(after)).threads).toBe(2);
      expect(cluster.instances().find((i) => i.id === id)?.cores).toBe(2);
      const down = await cluster.resize(id, 1);
      expect(down.ok, down.message).toBe(true);
      expect((await workerStats(await readPod(ns, id))).threads).toBe(1);
      stop = true;
      await load;
      expect(failures).toBe(0);
      expect(served).toBeGreaterThan(0);
      expect(events.some((e) => e.event === "instance_resized" && e.instance === id)).toBe(true);
      // measured, in the profile's shape, for the planners and the simulator
      const prof = cluster.actuationProfile("digits", "cnn-small")!;
      expect(prof.resize_ms.samples).toEqual([up.ms, down.ms]);
      expect(prof.load_ms.samples).toEqual([started.ms]);
    } finally {
      await cluster.shutdown();
      await h.dropNamespace(ns);
    }
  });

  it("scales out through deployments/scale (new pods resized to the Deployment's target) and stops exactly the drained pod", async () => {
    const ns = await h.namespace();
    const cluster = new KubernetesCluster({
      kubeConfig: h.kc,
      workerToken: h.workerToken,
      namespace: ns,
      coreBudget: 4,
      log,
    });
    await cluster.open();
    try {
      const a = await cluster.start("digits", "cnn-small", 1);
      expect(a.ok, a.message).toBe(true);
      const b = await cluster.start("digits", "cnn-small", 2);
      expect(b.ok, b.message).toBe(true);
      const deploy = JSON.parse((await h.cp.kubectl(["get", "deploy", "-n", ns, "-o", "json"])).stdout).items[0];
      expect(deploy.spec.replicas).toBe(2);
      expect(deploy.metadata.annotations[TARGET_CPU]).toBe("2");
      // the template keeps 1 core: a size change never rolls the Deployment
      expect(deploy.spec.template.spec.containers[0].resources.requests.cpu).toBe("1");
      const podB = await readPod(ns, b.instance!);
      expect(podB.status!.containerStatuses![0]!.allocatedResources!.cpu).toBe("2");
      expect(cluster.coresInUse()).toBe(3);
      const stopped = await cluster.stop(a.instance!);
      expect(stopped.ok, stopped.message).toBe(true);
      const pods = JSON.parse((await h.cp.kubectl(["get", "pods", "-n", ns, "-o", "json"])).stdout).items as V1Pod[];
      expect(pods.map((p) => p.metadata!.name)).toEqual([b.instance]);
      expect(cluster.instances().map((i) => i.id)).toEqual([b.instance]);
      const again = JSON.parse((await h.cp.kubectl(["get", "deploy", "-n", ns, "-o", "json"])).stdout).items[0];
      expect(again.spec.replicas).toBe(1);
      expect((await runDigits(cluster.instances()[0]!, "cnn-small", 8)).ok).toBe(true);
    } finally {
      await cluster.shutdown();
      await h.dropNamespace(ns);
    }
  });

  it("reports an Infeasible resize (reverted on the pod) and the actuator scales out instead, saying so", async () => {
    const ns = await h.namespace();
    const cluster = new KubernetesCluster({
      kubeConfig: h.kc,
      workerToken: h.workerToken,
      namespace: ns,
      coreBudget: 4,
      log,
    });
    await cluster.open();
    try {
      const a = await cluster.start("digits", "cnn-small", 2);
      expect(a.ok, a.message).toBe(true);
      // 3 cores on a 2-core node: the node calls it Infeasible
      const report = await converge(cluster, "digits", {
        instances: [{ variant: "cnn-small", cores: 3 }],
        reason: "test",
      });
      const [resize, instead] = report.results;
      expect(resize!.ok).toBe(false);
      expect(resize!.scaleOutInstead).toBe(true);
      expect(resize!.message).toMatch(/Infeasible.*scale out instead/);
      expect(instead!.action).toMatchObject({ kind: "start", cores: 1, insteadOfResize: a.instance });
      expect(instead!.ok, instead!.message).toBe(true);
      expect(instead!.message).toMatch(/^instead of resizing/);
      const pod = await readPod(ns, a.instance!);
      expect(pod.spec!.containers[0]!.resources!.requests!.cpu).toBe("2"); // reverted
      const cond = pod.status!.conditions!.find((c) => c.type === "PodResizePending");
      expect(cond).toBeUndefined();
      expect(
        cluster
          .instances()
          .map((i) => i.cores)
          .sort(),
      ).toEqual([1, 2]);
      expect(cluster.instances().every((i) => i.state === "ready")).toBe(true);
    } finally {
      await cluster.shutdown();
      await h.dropNamespace(ns);
    }
  });

  it("a resize Deferred past its deadline (other pods hold the node's cores) is undone and reported for scale-out", async () => {
    const ns = await h.namespace();
    const cluster = new KubernetesCluster({
      kubeConfig: h.kc,
      workerToken: h.workerToken,
      namespace: ns,
      coreBudget: 4,
      log,
      deferredDeadlineMs: 1000,
    });
    await cluster.open();
    try {
      const a = await cluster.start("digits", "cnn-small", 1);
      expect(a.ok, a.message).toBe(true);
      const pod = await readPod(ns, a.instance!);
      // Another pod takes the node's second core (bound there directly, as a DaemonSet's would be).
      const filler = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "filler", labels: { role: "filler" } },
        spec: {
          nodeName: pod.spec!.nodeName,
          containers: [
            {
              ...pod.spec!.containers[0]!,
              args: ["--model", "models/digits/linear/model.onnx", "--host", "0.0.0.0", "--port", "9000"],
            },
          ],
        },
      };
      await h.cp.kubectl(["apply", "-n", ns, "-f", "-"], { input: JSON.stringify(filler) });
      await eventually(
        "the filler pod running",
        30_000,
        async () => (await readPod(ns, "filler")).status?.containerStatuses?.[0]?.ready,
      );
      const r = await cluster.resize(a.instance!, 2);
      expect(r.ok).toBe(false);
      expect(r.scaleOutInstead).toBe(true);
      expect(r.message).toMatch(/Deferred for over 1000 ms/);
      expect(r.ms).toBeGreaterThanOrEqual(1000);
      const after = await readPod(ns, a.instance!);
      expect(after.spec!.containers[0]!.resources!.requests!.cpu).toBe("1"); // undone: it cannot land later
      await eventually(
        "the pending condition cleared",
        10_000,
        async () => !(await readPod(ns, a.instance!)).status!.conditions!.some((c) => c.type === "PodResizePending"),
      );
      expect(cluster.instances().find((i) => i.id === a.instance)).toMatchObject({ cores: 1, state: "ready" });
    } finally {
      await cluster.shutdown();
      await h.cp.kubectl(["delete", "pod", "filler", "-n", ns, "--wait=true"]).catch(() => undefined);
      await h.dropNamespace(ns);
    }
  });
});
