// deploy/kubernetes against the real API server: server-side dry run, a real apply, and the backend driven
// with the gateway's own service-account token, so the RBAC Role is shown to be enough — and no broader.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubernetesCluster } from "../../../src/cluster/kubernetes/kubernetes-cluster.js";
import { LeaderElector } from "../../../src/cluster/kubernetes/leader-election.js";
import { eventually, runDigits } from "../../support/k8s/digits-batch.js";
import { createWorkerTokenSecret, startK8sTestCluster, type K8sTestCluster } from "../../support/k8s/harness.js";

let h: K8sTestCluster;
let overlay: string;
const NS = "sloserve-manifests";

beforeAll(async () => {
  // No node yet: the gateway pods cannot run here (no image); they are removed before a node joins.
  h = await startK8sTestCluster({ nodes: [] });
  overlay = fs.mkdtempSync(path.join(os.tmpdir(), "sloserve-kustomize-"));
  fs.writeFileSync(
    path.join(overlay, "kustomization.yaml"),
    [
      "apiVersion: kustomize.config.k8s.io/v1beta1",
      "kind: Kustomization",
      `namespace: ${NS}`,
      "resources:",
      `  - ${path.relative(overlay, path.resolve("deploy/kubernetes"))}`,
      "",
    ].join("\n"),
  );
}, 45 * 60_000);

afterAll(async () => {
  await h?.stop();
  if (overlay) fs.rmSync(overlay, { recursive: true, force: true });
});

describe("deploy/kubernetes", () => {
  it("passes a server-side dry run and applies for real", async () => {
    // A dry run creates nothing, the namespace included: the namespaced objects need it to exist.
    await h.cp.kubectl(["create", "namespace", NS]);
    const dry = await h.cp.kubectl(["apply", "--dry-run=server", "-k", overlay]);
    expect(dry.stdout).toMatch(/deployment.apps\/sloserve-gateway created \(server dry run\)/);
    expect(dry.stdout).toMatch(/poddisruptionbudget.policy\/sloserve-gateway created \(server dry run\)/);
    await h.cp.kubectl(["apply", "-k", overlay]);
    const objs = JSON.parse(
      (await h.cp.kubectl(["get", "deploy,svc,pdb,sa,role,rolebinding", "-n", NS, "-o", "json"])).stdout,
    ) as { items: { kind: string; metadata: { name: string } }[] };
    const names = objs.items.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    for (const want of [
      "Deployment/sloserve-gateway",
      "Service/sloserve",
      "PodDisruptionBudget/sloserve-gateway",
      "ServiceAccount/sloserve-gateway",
      "Role/sloserve-gateway",
      "RoleBinding/sloserve-gateway",
    ])
      expect(names).toContain(want);
    const gw = JSON.parse((await h.cp.kubectl(["get", "deploy", "sloserve-gateway", "-n", NS, "-o", "json"])).stdout);
    const c = gw.spec.template.spec.containers[0];
    expect(c.readinessProbe.httpGet.path).toBe("/v2/health/ready");
    expect(c.livenessProbe.httpGet.path).toBe("/v2/health/live");
    await h.cp.kubectl(["delete", "deploy", "sloserve-gateway", "-n", NS, "--wait=true"]);
  });

  it("the gateway's service account can do exactly what the backend and the leader election need", async () => {
    const sa = `system:serviceaccount:${NS}:sloserve-gateway`;
    // "pods/resize" would be read as the pod named "resize": a subresource goes in its own flag
    const can = async (verb: string, resource: string) => {
      const [res, sub] = resource.split("/");
      const args = ["auth", "can-i", verb, res!, ...(sub ? [`--subresource=${sub}`] : []), "-n", NS, "--as", sa];
      const out = await h.cp.kubectl(args).catch((e: Error) => ({ stdout: e.message }));
      return out.stdout.includes("yes");
    };
    expect(await can("patch", "pods/resize")).toBe(true);
    expect(await can("patch", "deployments.apps/scale")).toBe(true);
    expect(await can("patch", "pods")).toBe(true);
    expect(await can("watch", "endpointslices.discovery.k8s.io")).toBe(true);
    expect(await can("update", "leases.coordination.k8s.io")).toBe(true);
    for (const [verb, res] of [
      ["delete", "pods"],
      ["update", "pods"],
      ["delete", "deployments.apps"],
      ["get", "secrets"],
      ["patch", "nodes"],
      ["patch", "pods/status"],
    ])
      expect(await can(verb!, res!), `${verb} ${res}`).toBe(false);

    // A real token for that account (TokenRequest), and the backend doing its whole job with it.
    const token = (
      await h.cp.kubectl(["create", "token", "sloserve-gateway", "-n", NS, "--duration=1h"])
    ).stdout.trim();
    const admin = h.cp.kubeConfig();
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ ...admin.getCurrentCluster()!, name: "test" }],
      users: [{ name: "gateway", token }],
      contexts: [{ name: "gateway", cluster: "test", user: "gateway", namespace: NS }],
      currentContext: "gateway",
    });
    await h.addNode("node-a", 2);
    const elector = new LeaderElector({ kubeConfig: kc, namespace: NS, identity: "gw-0", leaseDurationMs: 3000 });
    await createWorkerTokenSecret(h.cp, NS, h.workerToken);
    const cluster = new KubernetesCluster({ kubeConfig: kc, workerToken: h.workerToken, namespace: NS, coreBudget: 2 });
    try {
      await elector.start();
      await eventually("leadership", 10_000, () => elector.isLeader());
      await cluster.open();
      const a = await cluster.start("digits", "linear", 1);
      expect(a.ok, a.message).toBe(true);
      const r = await cluster.resize(a.instance!, 2);
      expect(r.ok, r.message).toBe(true);
      expect((await runDigits(cluster.instances()[0]!, "linear", 8)).ok).toBe(true);
      const b = await cluster.resize(a.instance!, 1);
      expect(b.ok, b.message).toBe(true);
      const s = await cluster.stop(a.instance!);
      expect(s.ok, s.message).toBe(true);
    } finally {
      await elector.stop();
      await cluster.shutdown();
    }
  });
});
