// A gateway replica's leader election in a process of its own, so that a test can kill it for real
// (SIGKILL: no chance to hand the Lease back). Prints one JSON line per change.
import { KubeConfig } from "@kubernetes/client-node";
import { LeaderElector } from "../../../src/cluster/kubernetes/leader-election.js";

const [kubeconfig, namespace, identity] = process.argv.slice(2);
if (!kubeconfig || !namespace || !identity)
  throw new Error("usage: elector-main.ts <kubeconfig> <namespace> <identity>");
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const elector = new LeaderElector({ kubeConfig: kc, namespace, identity, leaseDurationMs: 3000, retryPeriodMs: 500 });
elector.onChange((leader) => process.stdout.write(JSON.stringify({ leader, at: Date.now() }) + "\n"));
await elector.start();
process.stdout.write(JSON.stringify({ started: true, leader: elector.isLeader() }) + "\n");
process.on("SIGTERM", () => void elector.stop().then(() => process.exit(0)));
