// npm run bench:k8s [-- --json] [--rounds N] [--seconds S] [--variant V] [--write-profile]: the Kubernetes backend through
// the real API server (test/support/k8s: control plane built from Go modules, node agents standing in for
// kubelets, real worker processes). Measures, in one run on one machine:
//   - resize-to-serving: from the pods/resize PATCH until the resized pod has answered a batch;
//   - scale-out-to-serving: from the deployments/scale PATCH until the new pod has answered a batch;
//     their ratio is Themis' premise (goal ≤ 1/5);
//   - API requests per actuation, and CPU time of this process per actuation (the backend and the node
//     agents share it, so this bounds the backend's own cost from above);
//   - actuations per second the backend sustains (in-place resizes back to back, one pod and two at once).
import path from "node:path";
import { parseArgs } from "node:util";
import { writeProfile } from "../../src/profiler/profiler.js";
import { loadRepository } from "../../src/repository/repository.js";
import { KubernetesCluster } from "../../src/cluster/kubernetes/kubernetes-cluster.js";
import type { ActuationResult, Instance } from "../../src/cluster/types.js";
import { fmt } from "../../src/terminal/table.js";
import { emit } from "../../src/terminal/report.js";
import { quantile } from "../../src/stats/quantile.js";
import { describeMachine } from "../../src/profiler/machine.js";
import { runDigits } from "../../test/support/k8s/digits-batch.js";
import { startK8sTestCluster } from "../../test/support/k8s/harness.js";

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    rounds: { type: "string", default: "5" },
    seconds: { type: "string", default: "10" },
    variant: { type: "string", default: "cnn-small" },
    // record the measured scale-out and resize times in models/digits/<variant>/profile.json (actuation.kubernetes)
    "write-profile": { type: "boolean", default: false },
  },
});
const rounds = Math.max(1, Number(values.rounds));
const seconds = Math.max(1, Number(values.seconds));
const variant = values.variant!;
if (!Number.isFinite(rounds) || !Number.isFinite(seconds)) throw new Error("--rounds and --seconds take numbers");

interface Sample {
  ms: number;
  servingMs: number;
  api: number;
  cpuMs: number;
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

/** Runs an actuation, then one batch on the instance it acted on; times both from the start. */
async function timed(
  cluster: KubernetesCluster,
  act: () => Promise<ActuationResult & { apiRequests?: number }>,
  instanceOf: (r: ActuationResult) => string,
): Promise<Sample> {
  const cpu0 = process.cpuUsage();
  const api0 = cluster.api.total;
  const t0 = performance.now();
  const r = await act();
  if (!r.ok) throw new Error(r.message);
  const ms = performance.now() - t0;
  const cpu = cpuMs(cpu0);
  const api = cluster.api.total - api0;
  const inst = cluster.instances().find((i) => i.id === instanceOf(r)) as Instance;
  const answer = await runDigits(inst, variant, 1);
  if (!answer.ok) throw new Error(`first batch after the actuation failed: ${answer.message}`);
  return { ms, servingMs: performance.now() - t0, api, cpuMs: cpu };
}

const stats = (xs: number[]) => ({
  p50: quantile(xs, 0.5),
  mean: xs.reduce((a, b) => a + b, 0) / xs.length,
  min: Math.min(...xs),
  max: Math.max(...xs),
});

async function main(): Promise<void> {
  const buildStart = performance.now();
  const h = await startK8sTestCluster({
    nodes: [
      { name: "node-a", cpu: 2 },
      { name: "node-b", cpu: 2 },
    ],
  });
  const controlPlaneUpMs = performance.now() - buildStart;
  const version = (await h.cp.kubectl(["version", "-o", "json"])).stdout;
  const serverVersion = (JSON.parse(version) as { serverVersion: { gitVersion: string } }).serverVersion.gitVersion;
  const ns = await h.namespace("bench");
  const cluster = new KubernetesCluster({ kubeConfig: h.kc, workerToken: h.workerToken, namespace: ns, coreBudget: 4 });
  try {
    await cluster.open();
    const base = await cluster.start("digits", variant, 1);
    if (!base.ok) throw new Error(base.message);
    const id = base.instance!;
    const up: Sample[] = [];
    const down: Sample[] = [];
    const out: Sample[] = [];
    const stop: Sample[] = [];
    for (let k = 0; k < rounds; k++) {
      up.push(
        await timed(
          cluster,
          () => cluster.resize(id, 2),
          () => id,
        ),
      );
      down.push(
        await timed(
          cluster,
          () => cluster.resize(id, 1),
          () => id,
        ),
      );
      const started = await timed(
        cluster,
        () => cluster.start("digits", variant, 1),
        (r) => r.instance!,
      );
      out.push(started);
      const newest = cluster.instances().find((i) => i.id !== id)!.id;
      const cpu0 = process.cpuUsage();
      const api0 = cluster.api.total;
      const s = await cluster.stop(newest);
      if (!s.ok) throw new Error(s.message);
      stop.push({ ms: s.ms, servingMs: s.ms, api: cluster.api.total - api0, cpuMs: cpuMs(cpu0) });
    }

    // Sustained: in-place resizes back to back on one pod, then on two pods (on two nodes) at once.
    const flips = async (ids: string[], ms: number) => {
      let n = 0;
      const cpu0 = process.cpuUsage();
      const api0 = cluster.api.total;
      const end = performance.now() + ms;
      const t0 = performance.now();
      await Promise.all(
        ids.map(async (pod) => {
          for (let c = 2; performance.now() < end; c = c === 2 ? 1 : 2) {
            const r = await cluster.resize(pod, c);
            if (!r.ok) throw new Error(r.message);
            n++;
          }
        }),
      );
      const wall = (performance.now() - t0) / 1000;
      return {
        per_s: n / wall,
        actuations: n,
        api_per_actuation: (cluster.api.total - api0) / n,
        cpu_ms_per_actuation: cpuMs(cpu0) / n,
      };
    };
    const one = await flips([id], seconds * 1000);
    if (cluster.instances().find((i) => i.id === id)!.cores !== 1) await cluster.resize(id, 1);
    const second = await cluster.start("digits", variant, 1);
    if (!second.ok) throw new Error(second.message);
    const two = await flips([id, second.instance!], seconds * 1000);

    const su = stats(up.map((s) => s.servingMs));
    const so = stats(out.map((s) => s.servingMs));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const figures = {
      kubernetes_version: serverVersion,
      model: `digits/${variant}`,
      rounds,
      resize_to_serving_ms: su,
      resize_down_to_serving_ms: stats(down.map((s) => s.servingMs)),
      scale_out_to_serving_ms: so,
      stop_ms: stats(stop.map((s) => s.ms)),
      resize_over_scale_out_p50: su.p50 / so.p50,
      goal_ratio: 0.2,
      api_requests_per_actuation: {
        resize: mean([...up, ...down].map((s) => s.api)),
        scale_out: mean(out.map((s) => s.api)),
        stop: mean(stop.map((s) => s.api)),
      },
      process_cpu_ms_per_actuation: {
        resize: mean([...up, ...down].map((s) => s.cpuMs)),
        scale_out: mean(out.map((s) => s.cpuMs)),
        stop: mean(stop.map((s) => s.cpuMs)),
      },
      sustained_resizes_per_s: { one_pod: one.per_s, two_pods: two.per_s },
      sustained_api_requests_per_resize: { one_pod: one.api_per_actuation, two_pods: two.api_per_actuation },
      control_plane_start_ms: controlPlaneUpMs,
      machine: describeMachine(),
    };
    const row = (name: string, s: ReturnType<typeof stats>, api: number, cpu: number) => [
      name,
      fmt(s.p50, 0),
      fmt(s.mean, 0),
      fmt(s.min, 0),
      fmt(s.max, 0),
      fmt(api, 1),
      fmt(cpu, 1),
    ];
    emit(
      {
        title: `Kubernetes backend through the API server (${serverVersion}, digits/${variant}, ${rounds} rounds)`,
        tables: [
          {
            head: [
              "actuation → serving",
              "p50 ms",
              "mean ms",
              "min ms",
              "max ms",
              "API req",
              "CPU ms (backend + agents)",
            ],
            rows: [
              row(
                "resize 1→2 (pods/resize)",
                su,
                figures.api_requests_per_actuation.resize,
                figures.process_cpu_ms_per_actuation.resize,
              ),
              row(
                "resize 2→1",
                figures.resize_down_to_serving_ms,
                figures.api_requests_per_actuation.resize,
                figures.process_cpu_ms_per_actuation.resize,
              ),
              row(
                "scale-out (deployments/scale)",
                so,
                figures.api_requests_per_actuation.scale_out,
                figures.process_cpu_ms_per_actuation.scale_out,
              ),
              row(
                "stop (drain, scale down)",
                figures.stop_ms,
                figures.api_requests_per_actuation.stop,
                figures.process_cpu_ms_per_actuation.stop,
              ),
            ],
          },
          {
            head: ["sustained in-place resizes", "per s", "API req each", "CPU ms each (backend + agents)"],
            rows: [
              [
                "one pod, back to back",
                fmt(one.per_s, 1),
                fmt(one.api_per_actuation, 1),
                fmt(one.cpu_ms_per_actuation, 1),
              ],
              ["two pods at once", fmt(two.per_s, 1), fmt(two.api_per_actuation, 1), fmt(two.cpu_ms_per_actuation, 1)],
            ],
          },
        ],
        figures,
        notes: [
          `resize-to-serving / scale-out-to-serving (p50): ${fmt(figures.resize_over_scale_out_p50, 3)} (Themis' premise; goal ≤ 0.2)`,
          "Everything runs on this machine: API server, controllers, scheduler, node agents (the kubelet's stand-in) and workers;",
          "wall-clock figures are noisy when other work runs; the ratio and the per-actuation counts are measured in one run.",
          "CPU ms is this process's: the backend and the node agents (the kubelet's stand-in) run in it together.",
          "A resize is 2 API requests when the size changes the Deployment's target annotation (pods/resize + the annotation).",
        ],
      },
      values.json!,
    );
    if (values["write-profile"]) await writeActuationProfile(cluster, variant);
  } finally {
    await cluster.shutdown();
    await h.stop();
  }
}

/** What the backend measured, into the variant's profile, for the simulator's `--actuation kubernetes`. */
async function writeActuationProfile(cluster: KubernetesCluster, variant: string): Promise<void> {
  const measured = cluster.actuationProfile("digits", variant);
  if (!measured) throw new Error(`nothing was measured for digits/${variant}`);
  const repo = await loadRepository(path.resolve("models"), { tasks: ["digits"] });
  const v = repo.tasks.get("digits")!.variants.get(variant)!;
  const profile = v.profile!;
  profile.actuation = { ...profile.actuation, kubernetes: { measured_at: new Date().toISOString(), ...measured } };
  process.stderr.write(`bench:k8s: wrote Kubernetes actuation times into ${await writeProfile(v, profile)}\n`);
}

main().catch((err) => {
  process.stderr.write(`bench:k8s: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
