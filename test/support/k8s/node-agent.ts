// THE KUBELET'S STAND-IN, for tests only. No kubelet with a container runtime can run here (no images can
// be pulled), so this agent plays a node: it registers a Node with CPU capacity, heartbeats its Lease, and
// for each pod the real scheduler binds to it runs the real sloserve worker process (the "container": the
// pod's command and args, run from this checkout as the image's working directory) inside the node's
// network namespace at the pod's own address. It reports pod status and readiness, and implements the
// in-place resize contract of KEP-1287: allocated/actual resources, PodResizePending (Deferred when other
// pods hold the cores, Infeasible beyond the node's allocatable), PodResizeInProgress, observedGeneration.
// The worker is told its new thread count over its socket (in a real pod it follows its cgroup's cpu.max).
// Everything above it — API server, scheduler, controllers, EndpointSlices — is the real thing.
import { WORKER_TOKEN_ENV } from "../../../src/worker/protocol.js";
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import type { KubeConfig, V1Container, V1Pod, V1PodCondition, V1PodStatus } from "@kubernetes/client-node";
import { KubeApi, MERGE } from "../../../src/cluster/kubernetes/api.js";
import { CONTAINER } from "../../../src/cluster/kubernetes/objects.js";
import { formatCpu, parseQuantity } from "../../../src/cluster/kubernetes/quantity.js";
import { ResilientWatch } from "../../../src/cluster/kubernetes/watch.js";
import { WorkerClient } from "../../../src/worker/client.js";
import { threadsFor } from "../../../src/worker/cgroup-cpu.js";
import type { NodeNetwork } from "./pod-network.js";

const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../..");

export interface NodeAgentOptions {
  kubeConfig: KubeConfig;
  name: string;
  /** Allocatable cores. */
  cpu: number;
  memory?: string;
  net: NodeNetwork;
  heartbeatMs?: number;
  log?: (event: Record<string, unknown>) => void;
}

interface PodRun {
  uid: string;
  name: string;
  namespace: string;
  ip: string;
  port: number;
  proc?: ChildProcess;
  client?: WorkerClient;
  ready: boolean;
  restarts: number;
  startedAt: string;
  allocatedCpu: number;
  actualCpu: number;
  memory: string;
  /** Highest pod generation this node has acted on. */
  observedGeneration: number;
  pending?: { reason: "Deferred" | "Infeasible"; message: string; generation: number };
  inProgress?: { generation: number };
  deleting: boolean;
  writing: Promise<void>;
  dirty: boolean;
  /** Batches the worker served, per its stats, when it was last asked (for tests). */
  pid?: number;
}

const workers = new Set<ChildProcess>();
// A test process that dies must not leave worker processes behind.
process.once("exit", () => {
  for (const w of workers) w.kill("SIGKILL");
});

const MICRO = (d = new Date()) => d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");

export class NodeAgent {
  readonly api: KubeApi;
  private readonly runs = new Map<string, PodRun>();
  private readonly watch: ResilientWatch<V1Pod>;
  private heartbeat: NodeJS.Timeout | null = null;
  private silent = false;
  private readonly heartbeatMs: number;

  constructor(private readonly opts: NodeAgentOptions) {
    this.api = new KubeApi(opts.kubeConfig);
    this.heartbeatMs = opts.heartbeatMs ?? 1000;
    const field = `spec.nodeName=${opts.name}`;
    this.watch = new ResilientWatch<V1Pod>({
      kc: opts.kubeConfig,
      path: "/api/v1/pods",
      fieldSelector: field,
      list: () => this.api.core.listPodForAllNamespaces({ fieldSelector: field }),
      onEvent: (kind, pod) => void this.podEvent(kind, pod),
    });
  }

  get name(): string {
    return this.opts.name;
  }

  /** Worker pids of the pods this node runs, by pod name. */
  workerPids(): Record<string, number | undefined> {
    return Object.fromEntries([...this.runs.values()].map((r) => [r.name, r.proc?.pid]));
  }

  async start(): Promise<void> {
    const cpu = formatCpu(this.opts.cpu);
    const memory = this.opts.memory ?? "16Gi";
    const resources = { cpu, memory, pods: "110" };
    await this.api.core.createNode({
      body: {
        metadata: {
          name: this.opts.name,
          labels: {
            "kubernetes.io/hostname": this.opts.name,
            "kubernetes.io/os": "linux",
            "sloserve.io/test-node": "true",
          },
        },
        status: {
          capacity: resources,
          allocatable: resources,
          conditions: [this.readyCondition()],
          addresses: [
            { type: "InternalIP", address: this.opts.net.nodeIp },
            { type: "Hostname", address: this.opts.name },
          ],
          nodeInfo: {
            architecture: process.arch === "x64" ? "amd64" : process.arch,
            bootID: "",
            containerRuntimeVersion: "sloserve-node-agent://0",
            kernelVersion: "",
            kubeProxyVersion: "",
            kubeletVersion: "v1.35.4",
            machineID: "",
            operatingSystem: "linux",
            osImage: "sloserve test node",
            systemUUID: "",
          },
        },
      },
    });
    await this.api.coordination.createNamespacedLease({
      namespace: "kube-node-lease",
      body: {
        metadata: { name: this.opts.name },
        spec: {
          holderIdentity: this.opts.name,
          leaseDurationSeconds: 40,
          renewTime: MICRO() as unknown as Date,
        },
      },
    });
    let beats = 0;
    this.heartbeat = setInterval(() => {
      beats += 1;
      void this.api.coordination
        .patchNamespacedLease(
          { name: this.opts.name, namespace: "kube-node-lease", body: { spec: { renewTime: MICRO() } } },
          MERGE,
        )
        .catch(() => undefined);
      if (beats % 10 === 0)
        void this.api.core
          .patchNodeStatus({ name: this.opts.name, body: { status: { conditions: [this.readyCondition()] } } }, MERGE)
          .catch(() => undefined);
    }, this.heartbeatMs);
    await this.watch.start();
  }

  private readyCondition() {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    return {
      type: "Ready",
      status: "True",
      reason: "KubeletReady",
      message: "sloserve node agent (kubelet stand-in) is posting ready status",
      lastHeartbeatTime: now as unknown as Date,
      lastTransitionTime: now as unknown as Date,
    };
  }

  /**
   * The node goes silent, as if its machine dropped off the network: no heartbeats, no status, no reaction
   * to pods. With `killWorkers` its worker processes die too (the machine crashed).
   */
  async stop(opts: { killWorkers?: boolean } = {}): Promise<void> {
    this.silent = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.watch.stop();
    if (opts.killWorkers) for (const r of this.runs.values()) r.proc?.kill("SIGKILL");
  }

  /** Ends every worker and removes the node's network. */
  async shutdown(): Promise<void> {
    await this.stop({ killWorkers: true });
    await Promise.all(
      [...this.runs.values()].map((r) =>
        r.proc && r.proc.exitCode === null ? new Promise((res) => r.proc!.once("exit", res)) : null,
      ),
    );
    for (const r of this.runs.values()) r.client?.close();
    this.runs.clear();
    await this.opts.net.remove();
  }

  // --- pods ------------------------------------------------------------------------------------------------

  private async podEvent(kind: string, pod: V1Pod): Promise<void> {
    if (this.silent) return;
    const uid = pod.metadata?.uid;
    if (!uid) return;
    const run = this.runs.get(uid);
    if (kind === "delete") {
      if (run) await this.finish(run, false);
      return;
    }
    if (pod.metadata?.deletionTimestamp) {
      if (run && !run.deleting) await this.terminate(run, pod);
      else if (!run) await this.forceDelete(pod);
      return;
    }
    if (pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") return;
    if (!run) await this.admit(pod);
    else {
      // Someone else wrote the status (the node controller marks pods NotReady when heartbeats lapse, e.g.
      // while the API server was down): put back what this node knows, as the kubelet's status manager does.
      const ready = pod.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
      if (ready !== run.ready || pod.status?.podIP !== run.ip) this.writeStatus(run);
      this.resizeIfAsked(run, pod);
    }
    this.retryDeferred();
  }

  private container(pod: V1Pod): V1Container {
    const c = pod.spec?.containers.find((x) => x.name === CONTAINER) ?? pod.spec?.containers[0];
    if (!c) throw new Error(`pod ${pod.metadata?.name} has no container`);
    return c;
  }

  private async admit(pod: V1Pod): Promise<void> {
    const c = this.container(pod);
    const cpu = parseQuantity(c.resources?.requests?.cpu);
    const port = c.ports?.[0]?.containerPort ?? 9000;
    const run: PodRun = {
      uid: pod.metadata!.uid!,
      name: pod.metadata!.name!,
      namespace: pod.metadata!.namespace!,
      ip: "",
      port,
      ready: false,
      restarts: 0,
      startedAt: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
      allocatedCpu: cpu,
      actualCpu: cpu,
      memory: c.resources?.requests?.memory ?? "0",
      observedGeneration: pod.metadata?.generation ?? 1,
      deleting: false,
      writing: Promise.resolve(),
      dirty: false,
    };
    this.runs.set(run.uid, run);
    run.ip = await this.opts.net.allocate();
    await this.launch(run, c);
    this.writeStatus(run);
  }

  /** The container's environment, secretKeyRef resolved through the API as a kubelet resolves it. */
  private async envOf(namespace: string, c: V1Container): Promise<Record<string, string>> {
    const env: Record<string, string> = {};
    for (const e of c.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      if (e.value !== undefined) env[e.name] = e.value;
      else if (ref) {
        const secret = await this.api.core.readNamespacedSecret({ name: ref.name!, namespace });
        const b64 = secret.data?.[ref.key];
        if (b64 === undefined) throw new Error(`secret ${namespace}/${ref.name} has no key '${ref.key}'`);
        env[e.name] = Buffer.from(b64, "base64").toString("utf8");
      }
    }
    return env;
  }

  /** Runs the container: its command and args from this checkout, at the pod's address, with its cores. */
  private async launch(run: PodRun, c: V1Container): Promise<void> {
    let env: Record<string, string>;
    try {
      env = await this.envOf(run.namespace, c);
    } catch (err) {
      this.opts.log?.({ event: "worker_env_failed", pod: run.name, error: (err as Error).message });
      return;
    }
    const args = [...(c.args ?? [])];
    const set = (flag: string, value: string) => {
      const i = args.indexOf(flag);
      if (i >= 0) args[i + 1] = value;
      else args.push(flag, value);
    };
    set("--host", run.ip);
    set("--threads", String(threadsFor(run.actualCpu)));
    // No cgroup here: this agent tells the worker its size instead.
    const follow = args.indexOf("--follow-cgroup");
    if (follow >= 0) args.splice(follow, 1);
    const command = [...(c.command ?? ["node"])];
    if (command[0] === "node") command[0] = process.execPath;
    const [exe, ...rest] = [...this.opts.net.exec, ...command, ...args];
    const proc = spawn(exe!, rest, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    workers.add(proc);
    proc.once("exit", () => workers.delete(proc));
    run.proc = proc;
    let stderr = "";
    proc.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    readline.createInterface({ input: proc.stdout! }).on("line", (line) => {
      let msg: { event?: string; port?: number; error?: string };
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if (msg.event !== "ready") {
        this.opts.log?.({ event: "worker_failed", pod: run.name, error: msg.error });
        return;
      }
      void WorkerClient.connect(run.ip, run.port, env[WORKER_TOKEN_ENV] ?? "").then(
        (client) => {
          run.client = client;
          run.ready = true;
          run.pid = proc.pid;
          this.writeStatus(run);
          const latest = this.watch.get(run.name, run.namespace);
          if (latest) this.resizeIfAsked(run, latest);
        },
        (err: Error) => this.opts.log?.({ event: "worker_unreachable", pod: run.name, error: err.message }),
      );
    });
    proc.once("exit", (code, signal) => {
      run.client?.close();
      run.client = undefined;
      run.ready = false;
      if (run.proc !== proc) return;
      run.proc = undefined;
      if (run.deleting || this.silent) return;
      // restartPolicy Always: the container is started again, as a kubelet would.
      this.opts.log?.({ event: "worker_exited", pod: run.name, code, signal, stderr: stderr.trim().slice(-500) });
      run.restarts += 1;
      this.writeStatus(run);
      setTimeout(() => {
        const pod = this.watch.get(run.name, run.namespace);
        if (pod && !run.deleting && !this.silent) void this.launch(run, this.container(pod));
      }, 500).unref();
    });
  }

  // --- resize ----------------------------------------------------------------------------------------------

  private usedByOthers(run: PodRun): number {
    let n = 0;
    for (const r of this.runs.values()) if (r !== run && !r.deleting) n += r.allocatedCpu;
    return n;
  }

  private resizeIfAsked(run: PodRun, pod: V1Pod): void {
    if (this.silent || run.deleting || run.inProgress) return;
    const generation = pod.metadata?.generation ?? 1;
    const desired = parseQuantity(this.container(pod).resources?.requests?.cpu);
    if (Math.round(desired * 1000) === Math.round(run.allocatedCpu * 1000)) {
      // Nothing (left) to do: a pending verdict about an older spec no longer holds.
      if (run.pending || run.observedGeneration < generation) {
        run.pending = undefined;
        run.observedGeneration = generation;
        this.writeStatus(run);
      }
      return;
    }
    if (!run.ready) return; // resized once its worker is up
    const cap = this.opts.cpu;
    const used = this.usedByOthers(run);
    const refuse = (reason: "Deferred" | "Infeasible", message: string) => {
      // Unchanged verdict: no write (each write comes back as a pod event).
      if (run.pending?.reason === reason && run.pending.generation === generation) return;
      run.pending = { reason, message, generation };
      run.observedGeneration = generation;
      this.writeStatus(run);
    };
    const m = (n: number) => Math.round(n * 1000);
    if (desired > cap)
      return refuse(
        "Infeasible",
        `Node didn't have enough capacity: cpu, requested: ${m(desired)}, capacity: ${m(cap)}`,
      );
    if (used + desired > cap)
      return refuse(
        "Deferred",
        `Node didn't have enough resource: cpu, requested: ${m(desired)}, used: ${m(used)}, capacity: ${m(cap)}`,
      );
    run.pending = undefined;
    run.allocatedCpu = desired;
    run.inProgress = { generation };
    run.observedGeneration = generation;
    this.writeStatus(run);
    const threads = threadsFor(desired);
    void (async () => {
      try {
        await run.client!.call("resize", { threads, cpus: [] });
        run.actualCpu = desired;
        run.inProgress = undefined;
      } catch (err) {
        run.inProgress = undefined;
        run.pending = undefined;
        this.opts.log?.({ event: "resize_failed", pod: run.name, error: (err as Error).message });
      }
      this.writeStatus(run);
      this.opts.log?.({ event: "pod_resized", pod: run.name, cpu: desired, threads });
      const latest = this.watch.get(run.name, run.namespace);
      if (latest) this.resizeIfAsked(run, latest);
      this.retryDeferred();
    })();
  }

  /** Deferred resizes are retried whenever cores may have freed up. */
  private retryDeferred(): void {
    for (const r of this.runs.values()) {
      if (r.pending?.reason !== "Deferred") continue;
      const pod = this.watch.get(r.name, r.namespace);
      if (pod) this.resizeIfAsked(r, pod);
    }
  }

  // --- status ----------------------------------------------------------------------------------------------

  private status(run: PodRun): V1PodStatus {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z") as unknown as Date;
    const cond = (type: string, status: boolean): V1PodCondition => ({
      type,
      status: status ? "True" : "False",
      lastTransitionTime: now,
    });
    const conditions: V1PodCondition[] = [
      cond("PodScheduled", true),
      cond("Initialized", true),
      cond("ContainersReady", run.ready),
      cond("Ready", run.ready),
    ];
    if (run.pending)
      conditions.push({
        ...cond("PodResizePending", true),
        reason: run.pending.reason,
        message: run.pending.message,
        observedGeneration: run.pending.generation,
      });
    if (run.inProgress)
      conditions.push({ ...cond("PodResizeInProgress", true), observedGeneration: run.inProgress.generation });
    const cpu = (n: number) => formatCpu(n);
    return {
      phase: "Running",
      hostIP: this.opts.net.nodeIp,
      hostIPs: [{ ip: this.opts.net.nodeIp }],
      podIP: run.ip,
      podIPs: [{ ip: run.ip }],
      startTime: run.startedAt as unknown as Date,
      qosClass: "Guaranteed",
      observedGeneration: run.observedGeneration,
      conditions,
      containerStatuses: [
        {
          name: CONTAINER,
          image: "sloserve:latest",
          imageID: "",
          ready: run.ready,
          started: run.proc !== undefined,
          restartCount: run.restarts,
          state: run.proc
            ? { running: { startedAt: run.startedAt as unknown as Date } }
            : { waiting: { reason: "CrashLoopBackOff" } },
          allocatedResources: { cpu: cpu(run.allocatedCpu), memory: run.memory },
          resources: {
            requests: { cpu: cpu(run.actualCpu), memory: run.memory },
            limits: { cpu: cpu(run.actualCpu), memory: run.memory },
          },
        },
      ],
    };
  }

  /** Writes the pod's whole status (merge patch: lists are replaced), one write at a time, latest state wins. */
  private writeStatus(run: PodRun): void {
    if (this.silent) return;
    if (run.dirty) return;
    run.dirty = true;
    run.writing = run.writing.then(async () => {
      run.dirty = false;
      if (this.silent || run.deleting) return;
      try {
        await this.api.core.patchNamespacedPodStatus(
          { name: run.name, namespace: run.namespace, body: { status: this.status(run) } },
          MERGE,
        );
      } catch (err) {
        this.opts.log?.({
          event: "status_write_failed",
          pod: run.name,
          error: String((err as Error).message).slice(0, 200),
        });
        // the API server may be restarting: try again shortly
        if (!this.silent && !run.deleting) setTimeout(() => this.writeStatus(run), 500).unref();
      }
    });
  }

  // --- termination -----------------------------------------------------------------------------------------

  /** Graceful: the worker gets SIGTERM (it finishes what it holds), then the pod object is removed. */
  private async terminate(run: PodRun, pod: V1Pod): Promise<void> {
    run.deleting = true;
    const grace = (pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
    const proc = run.proc;
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), grace);
      await exited;
      clearTimeout(timer);
    }
    await this.forceDelete(pod);
    await this.finish(run, true);
  }

  private async forceDelete(pod: V1Pod): Promise<void> {
    if (this.silent) return;
    await this.api.core
      .deleteNamespacedPod({
        name: pod.metadata!.name!,
        namespace: pod.metadata!.namespace!,
        gracePeriodSeconds: 0,
        body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata!.uid } },
      })
      .catch(() => undefined);
  }

  private async finish(run: PodRun, alreadyStopped: boolean): Promise<void> {
    run.deleting = true;
    if (!alreadyStopped) run.proc?.kill("SIGKILL");
    run.client?.close();
    this.runs.delete(run.uid);
    if (run.ip) await this.opts.net.release(run.ip);
    this.retryDeferred();
  }
}
