// Faults on the real control plane: the API server restarting, the leader gateway killed, a node going
// silent. Each is caused for real (process restart, SIGKILL, a node agent that stops answering).
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import readline from "node:readline";
import type { V1Lease, V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubernetesCluster } from "../../../src/cluster/kubernetes/kubernetes-cluster.js";
import { LeaderElector } from "../../../src/cluster/kubernetes/leader-election.js";
import { eventually, runDigits } from "../../support/k8s/digits-batch.js";
import { startK8sTestCluster, type K8sTestCluster } from "../../support/k8s/harness.js";

const require = createRequire(import.meta.url);
const TSX = require.resolve("tsx/esm");
let h: K8sTestCluster;
const events: Record<string, unknown>[] = [];
const log = (e: Record<string, unknown>) => events.push({ ...e, at: Date.now() });

beforeAll(async () => {
  h = await startK8sTestCluster({
    nodes: [
      { name: "node-a", cpu: 2 },
      { name: "node-b", cpu: 2 },
    ],
    log,
  });
}, 45 * 60_000);

afterAll(async () => {
  await h?.stop();
});

/** Sends digits batches, one at a time, to whichever instance is ready (as the router would); counts outcomes. */
function steadyLoad(cluster: KubernetesCluster) {
  const s = {
    stop: false,
    ok: 0,
    failed: [] as string[],
    byPod: new Map<string, number>(),
    lastAt: new Map<string, number>(),
  };
  const done = (async () => {
    for (let k = 0; !s.stop; k++) {
      const inst = cluster.instances().find((i) => i.state === "ready");
      if (!inst) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const a = await runDigits(inst, "cnn-small", 4, k * 4);
      if (a.ok) {
        s.ok++;
        s.byPod.set(inst.id, (s.byPod.get(inst.id) ?? 0) + 1);
        s.lastAt.set(inst.id, Date.now());
      } else s.failed.push(a.message ?? "?");
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return { s, finish: async () => ((s.stop = true), await done) };
}

describe("faults on the real control plane", () => {
  it("API server restart: watches resume, nothing is lost, no batch fails, actuation works after", async () => {
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
      const load = steadyLoad(cluster);
      const before = cluster.instances().map((i) => `${i.id}:${i.state}:${i.cores}`);
      const errorsBefore = Object.values(cluster.watchErrors()).reduce((x, y) => x + y, 0);
      const servedBefore = load.s.ok;
      const { downMs } = await h.cp.restartApiServer();
      // the watches broke and came back on their own
      expect(Object.values(cluster.watchErrors()).reduce((x, y) => x + y, 0)).toBeGreaterThan(errorsBefore);
      expect(cluster.instances().map((i) => `${i.id}:${i.state}:${i.cores}`)).toEqual(before);
      // events after the restart reach the backend: a resize and a scale-out need them (the resize first:
      // the scheduler may put a second pod beside the first, leaving that node no core to grow into)
      const r = await cluster.resize(a.instance!, 2);
      expect(r.ok, r.message).toBe(true);
      const b = await cluster.start("digits", "cnn-small", 1);
      expect(b.ok, b.message).toBe(true);
      await load.finish();
      expect(load.s.failed).toEqual([]);
      expect(load.s.ok - servedBefore).toBeGreaterThan(0);
      expect(downMs).toBeGreaterThan(0);
    } finally {
      await cluster.shutdown();
      await h.dropNamespace(ns);
    }
  }, 180_000);

  it("leader killed: the other replica takes the Lease within seconds and actuates", async () => {
    const ns = await h.namespace();
    const proc = spawn(
      process.execPath,
      ["--import", TSX, path.resolve("test/support/k8s/elector-main.ts"), h.cp.kubeconfigPath, ns, "gw-a"],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const lines = readline.createInterface({ input: proc.stdout! });
    const aLeads = new Promise<void>((resolve) =>
      lines.on("line", (l) => {
        if ((JSON.parse(l) as { leader?: boolean }).leader === true) resolve();
      }),
    );
    const b = new LeaderElector({
      kubeConfig: h.kc,
      namespace: ns,
      identity: "gw-b",
      leaseDurationMs: 3000,
      retryPeriodMs: 500,
      log,
    });
    // gw-b's backend follows from the start (it routes); gw-a's is the one that actuates while gw-a leads.
    const cluster = new KubernetesCluster({
      kubeConfig: h.kc,
      workerToken: h.workerToken,
      namespace: ns,
      coreBudget: 4,
      log,
    });
    const clusterA = new KubernetesCluster({
      kubeConfig: h.kc,
      workerToken: h.workerToken,
      namespace: ns,
      coreBudget: 4,
      log,
    });
    try {
      await cluster.open();
      await aLeads;
      await clusterA.open();
      const byA = await clusterA.start("digits", "cnn-small", 1);
      expect(byA.ok, byA.message).toBe(true);
      await clusterA.shutdown();
      await b.start();
      await new Promise((r) => setTimeout(r, 1500));
      expect(b.isLeader()).toBe(false);
      expect(b.holder()).toBe("gw-a");
      const killedAt = Date.now();
      proc.kill("SIGKILL");
      let tookOverAt = 0;
      b.onChange((leader) => (tookOverAt = leader ? Date.now() : tookOverAt));
      await eventually("gw-b to lead", 15_000, () => b.isLeader());
      const takeoverMs = tookOverAt - killedAt;
      expect(takeoverMs).toBeLessThan(8_000);
      const lease = JSON.parse(
        (await h.cp.kubectl(["get", "lease", "sloserve-gateway", "-n", ns, "-o", "json"])).stdout,
      ) as V1Lease;
      expect(lease.spec?.holderIdentity).toBe("gw-b");
      expect(lease.spec?.leaseTransitions).toBeGreaterThanOrEqual(1);
      // the new leader acts on the cluster, from the state the old one left (one replica, not zero)
      const started = await cluster.start("digits", "cnn-small", 1);
      expect(started.ok, started.message).toBe(true);
      const deploy = JSON.parse((await h.cp.kubectl(["get", "deploy", "-n", ns, "-o", "json"])).stdout).items[0];
      expect(deploy.spec.replicas).toBe(2);
      expect(
        cluster
          .instances()
          .map((i) => i.id)
          .sort(),
      ).toEqual([byA.instance, started.instance].sort());
      console.log(`leader takeover after SIGKILL: ${takeoverMs} ms (lease 3 s, retry 0.5 s)`);
    } finally {
      proc.kill("SIGKILL");
      await b.stop();
      await cluster.shutdown();
      await clusterA.shutdown();
      await h.dropNamespace(ns);
    }
  }, 120_000);

  // Last: the silent node stays silent for the rest of the file.
  it("node agent stopped: its pod is replaced on the other node by the real controllers and the router stops sending to it", async () => {
    const ns = await h.namespace();
    const cluster = new KubernetesCluster({
      kubeConfig: h.kc,
      workerToken: h.workerToken,
      namespace: ns,
      coreBudget: 4,
      log,
      unreachableTolerationSeconds: 1,
    });
    await cluster.open();
    try {
      const a = await cluster.start("digits", "cnn-small", 1);
      expect(a.ok, a.message).toBe(true);
      // 2 cores in place: the Deployment's target says 2, its template still 1
      const grown = await cluster.resize(a.instance!, 2);
      expect(grown.ok, grown.message).toBe(true);
      const podA = JSON.parse(
        (await h.cp.kubectl(["get", "pod", a.instance!, "-n", ns, "-o", "json"])).stdout,
      ) as V1Pod;
      const agent = h.agents.find((x) => x.name === podA.spec!.nodeName)!;
      const load = steadyLoad(cluster);
      await eventually("a batch on the first pod", 10_000, () => (load.s.byPod.get(a.instance!) ?? 0) > 0);
      const stoppedAt = Date.now();
      // the node drops off: no heartbeats, no status; its worker keeps running, unreachable to the control plane
      await agent.stop();
      await eventually(
        "the pod to leave service",
        30_000,
        () => cluster.instances().find((i) => i.id === a.instance)?.state !== "ready",
      );
      const outAt = Date.now();
      const replacement = await eventually("a replacement pod serving", 60_000, () =>
        cluster.instances().find((i) => i.id !== a.instance && i.state === "ready"),
      );
      await eventually("batches on the replacement", 10_000, () => (load.s.byPod.get(replacement.id) ?? 0) > 2);
      // the ReplicaSet made it from the template (1 core); the backend brought it to the target
      await eventually("the replacement at the target size", 20_000, () => replacement.cores === 2);
      expect(events.some((e) => e.event === "template_drift" && e.instance === replacement.id)).toBe(true);
      await load.finish();
      const podB = JSON.parse(
        (await h.cp.kubectl(["get", "pod", replacement.id, "-n", ns, "-o", "json"])).stdout,
      ) as V1Pod;
      expect(podB.spec!.nodeName).not.toBe(agent.name);
      const old = JSON.parse((await h.cp.kubectl(["get", "pod", a.instance!, "-n", ns, "-o", "json"])).stdout) as V1Pod;
      expect(old.metadata?.deletionTimestamp).toBeTruthy(); // evicted by the taint manager, awaiting its silent node
      // nothing went to the silent node's pod once it was out of service (its worker still answers: it was not asked)
      expect(load.s.lastAt.get(a.instance!) ?? 0).toBeLessThanOrEqual(outAt);
      expect(load.s.failed).toEqual([]);
      console.log(
        `node stopped → pod out of service ${outAt - stoppedAt} ms → replacement serving ${Date.now() - stoppedAt} ms`,
      );
    } finally {
      await cluster.shutdown();
    }
  }, 180_000);
});
