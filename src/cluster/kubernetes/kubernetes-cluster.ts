// The Kubernetes backend: each variant is a Deployment (and a headless Service) in one namespace; its pods
// are the instances. Horizontal = `deployments/scale`; vertical = `pods/resize` (strategic merge patch,
// CPU request = limit) judged by KEP-1287's completion test; a resize the node calls Infeasible, or keeps
// Deferred past a deadline, is undone and reported so that the actuator scales out instead. Instances are
// discovered from the Services' EndpointSlices (ready endpoints serve, terminating ones drain) and reached
// over the same worker socket as the local backend's processes.
import { median } from "../../stats/quantile.js";
import { EventEmitter } from "node:events";
import type {
  KubeConfig,
  V1Deployment,
  V1EndpointSlice,
  V1Pod,
  V1Scale,
  KubernetesListObject,
} from "@kubernetes/client-node";
import { WorkerClient } from "../../worker/client.js";
import type { ActuationResult, BatchResult, BatchWork, Cluster, Instance, InstanceState } from "../types.js";
import { sendBatch } from "../worker-batch.js";
import { KubeApi, MERGE, messageOf, statusOf, STRATEGIC } from "./api.js";
import {
  CONTAINER,
  DELETION_COST,
  TARGET_CPU,
  TASK_LABEL,
  VARIANT_LABEL,
  WORKER_SELECTOR,
  resizePatch,
  variantObjectName,
  workerDeployment,
  workerService,
  type WorkerTemplate,
} from "./objects.js";
import { formatCpu, parseQuantity, sameCpu } from "./quantity.js";
import { allocatedCores, desiredCores, resizeState, type ResizeState } from "./resize-status.js";
import { ResilientWatch } from "./watch.js";

export interface KubernetesClusterOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Cores this gateway may hand out across all its pods. */
  coreBudget: number;
  /** Worker image (the Dockerfile in deploy/kubernetes builds it). */
  image?: string;
  imagePullPolicy?: WorkerTemplate["imagePullPolicy"];
  /** Memory request = limit of every worker pod (default 512Mi). */
  memory?: string;
  /** Worker socket port inside each pod (default 9000). */
  port?: number;
  /** Model file inside the image (default models/<task>/<variant>/model.onnx). */
  modelPath?: (task: string, variant: string) => string;
  /** A resize Deferred longer than this is undone and reported for scale-out (default 3000 ms). */
  deferredDeadlineMs?: number;
  /** Longest a start, stop or resize may take before it is reported failed (default 120 s). */
  actuationTimeoutMs?: number;
  /** A new pod no node can take for this long is taken back and the start fails (default 10 s). */
  unschedulableTimeoutMs?: number;
  /** Seconds pods stay bound to an unreachable or not-ready node before being replaced (default 30). */
  unreachableTolerationSeconds?: number;
  /**
   * The worker channel's secret, and the Secret in the namespace that holds it (key `token`, default
   * "sloserve-worker-token"): the kubelet gives it to each worker pod, the operator to the gateway (see
   * deploy/kubernetes); only their holders can drive a worker.
   */
  workerToken: string;
  workerTokenSecret?: string;
  log?: (event: Record<string, unknown>) => void;
}

/** `scaleOutInstead` is set when the node calls a resize Infeasible or keeps it Deferred past the deadline. */
export interface KubernetesActuationResult extends ActuationResult {
  /** API requests the actuation made. */
  apiRequests?: number;
}

class Unschedulable extends Error {}

export const DEFAULT_WORKER_TOKEN_SECRET = "sloserve-worker-token";

class PodInstance implements Instance {
  state: InstanceState = "starting";
  inFlight = 0;
  cores = 0;
  client?: WorkerClient;
  /** ip:port the client is (being) connected to. */
  address?: string;
  connecting = false;
  /** `stop` took it out of service: no new batches whatever its endpoint says. */
  stopping = false;

  constructor(
    readonly id: string,
    readonly task: string,
    readonly variant: string,
  ) {}

  run(work: BatchWork, done: (r: BatchResult) => void): void {
    const client = this.client;
    if (!client || this.state !== "ready") {
      done({ ok: false, gone: true, message: `pod ${this.id} is not serving (${this.state})` });
      return;
    }
    this.inFlight += 1;
    sendBatch(client, work, (r) => {
      this.inFlight -= 1;
      // The pod went away while this batch ran: its socket closes once nothing is left on it.
      if (this.state === "stopped" && this.inFlight === 0) this.client?.close();
      done(r);
    });
  }

  /** A liveness probe is under way. */
  probing = false;

  /** Whether the worker answers a ping within `ms` (a batch running blocks its loop: give it time). */
  async answers(ms: number): Promise<boolean> {
    const client = this.client;
    if (!client) return false;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    const answered = client.call("ping").then(
      () => true,
      () => false,
    );
    return Promise.race([answered, timedOut]).finally(() => clearTimeout(timer));
  }
}

/** The profile schema's Stat (src/repository/schema.ts), kept structural so the backend needs no zod. */
export interface ProfileStat {
  p50: number;
  max: number;
  samples: number[];
}

interface Endpoint {
  address: string;
  port: number;
  ready: boolean;
  terminating: boolean;
}

export class KubernetesCluster implements Cluster {
  readonly api: KubeApi;
  private readonly ns: string;
  private readonly template: Omit<WorkerTemplate, "modelPath">;
  private readonly events = new EventEmitter();
  private readonly list = new Map<string, PodInstance>();
  private readonly pods: ResilientWatch<V1Pod>;
  private readonly slices: ResilientWatch<V1EndpointSlice>;
  private readonly deployments: ResilientWatch<V1Deployment>;
  /** Replicas this backend last wrote per Deployment: it is the only actor that owns `spec.replicas`. */
  private readonly replicas = new Map<string, number>();
  /** resourceVersion of the Deployment when `replicas` was last set (etcd revisions only grow). */
  private readonly replicasVersion = new Map<string, number>();
  /** Pods a `start` is waiting for, so the drift reconciler leaves them to it. */
  private readonly claimed = new Set<string>();
  /** Pods the ReplicaSet made on its own since `open`, not yet brought to the Deployment's target size. */
  private readonly unsized = new Set<string>();
  private opened = false;
  private active = true;
  private readonly resizing = new Set<string>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly checks = new Set<() => void>();
  private signature = "";
  /** Measured actuation times per variant (task/variant), for profiles and the simulator. */
  private readonly measured = new Map<string, { scaleOut: number[]; resize: number[] }>();
  private closing = false;

  constructor(private readonly opts: KubernetesClusterOptions) {
    if (!Number.isInteger(opts.coreBudget) || opts.coreBudget < 1)
      throw new Error(`core budget must be a positive integer, got ${opts.coreBudget}`);
    this.api = new KubeApi(opts.kubeConfig);
    this.ns = opts.namespace;
    this.template = {
      image: opts.image ?? "sloserve:latest",
      imagePullPolicy: opts.imagePullPolicy,
      port: opts.port ?? 9000,
      memory: opts.memory ?? "512Mi",
      unreachableTolerationSeconds: opts.unreachableTolerationSeconds ?? 30,
      tokenSecret: opts.workerTokenSecret ?? DEFAULT_WORKER_TOKEN_SECRET,
    };
    const kc = opts.kubeConfig;
    const ns = this.ns;
    const onError = (what: string) => (err: unknown) => {
      if (!this.closing) this.opts.log?.({ event: "watch_error", watch: what, error: messageOf(err) });
    };
    this.pods = new ResilientWatch<V1Pod>({
      kc,
      path: `/api/v1/namespaces/${ns}/pods`,
      labelSelector: WORKER_SELECTOR,
      list: () => this.api.core.listNamespacedPod({ namespace: ns, labelSelector: WORKER_SELECTOR }),
      onEvent: (kind, pod) => this.podEvent(kind, pod),
      onError: onError("pods"),
    });
    this.slices = new ResilientWatch<V1EndpointSlice>({
      kc,
      path: `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
      labelSelector: WORKER_SELECTOR,
      list: () => this.api.discovery.listNamespacedEndpointSlice({ namespace: ns, labelSelector: WORKER_SELECTOR }),
      onEvent: () => this.refresh(),
      onError: onError("endpointslices"),
    });
    this.deployments = new ResilientWatch<V1Deployment>({
      kc,
      path: `/apis/apps/v1/namespaces/${ns}/deployments`,
      labelSelector: WORKER_SELECTOR,
      list: () =>
        this.api.apps.listNamespacedDeployment({
          namespace: ns,
          labelSelector: WORKER_SELECTOR,
        }) as Promise<KubernetesListObject<V1Deployment>>,
      onEvent: (kind, d) => this.deploymentEvent(kind, d),
      onError: onError("deployments"),
    });
  }

  /** Lists and starts watching pods, EndpointSlices and Deployments; resolves once all three are in sync. */
  async open(): Promise<void> {
    await Promise.all([this.deployments.start(), this.pods.start(), this.slices.start()]);
    this.opened = true;
    this.refresh();
  }

  get coreBudget(): number {
    return this.opts.coreBudget;
  }

  coresInUse(): number {
    let n = 0;
    for (const i of this.list.values()) n += i.cores;
    return n;
  }

  instances(): readonly Instance[] {
    return [...this.list.values()];
  }

  onChange(listener: () => void): void {
    this.events.on("change", listener);
  }

  /** Watch errors so far, per watch (each was followed by a restart). */
  watchErrors(): Record<string, number> {
    return { pods: this.pods.errors, endpointslices: this.slices.errors, deployments: this.deployments.errors };
  }

  // --- horizontal ------------------------------------------------------------------------------------------

  async start(task: string, variant: string, cores: number): Promise<KubernetesActuationResult> {
    if (this.closing) return { ok: false, ms: 0, message: "cluster is shutting down" };
    const t0 = performance.now();
    const requests0 = this.api.total;
    const name = variantObjectName(task, variant);
    let pod: string;
    try {
      pod = await this.scaleOut(task, variant, name, cores);
    } catch (err) {
      return { ok: false, ms: performance.now() - t0, message: `start ${name}: ${messageOf(err)}` };
    }
    let short = "";
    try {
      let unschedulableSince = 0;
      await this.until(`pod ${pod} running`, () => {
        const p = this.pods.get(pod, this.ns);
        if (!p || p.metadata?.deletionTimestamp) throw new Error(`pod ${pod} was deleted while starting`);
        const sched = p.status?.conditions?.find((c) => c.type === "PodScheduled");
        if (sched?.status === "False" && sched.reason === "Unschedulable") {
          unschedulableSince ||= performance.now();
          if (performance.now() - unschedulableSince > (this.opts.unschedulableTimeoutMs ?? 10_000))
            throw new Unschedulable(sched.message ?? "no node has room");
        } else unschedulableSince = 0;
        return p.status?.phase === "Running";
      });
      // The template's size is not the one asked for (template drift): resize the new pod once Running.
      // A node that cannot give it the cores now keeps it at the template's size; the plan's next round
      // sees what it got.
      if (!sameCpu(desiredCores(this.pods.get(pod, this.ns)!), cores)) {
        const r = await this.resizePod(pod, cores);
        if (!r.ok && !r.scaleOutInstead) throw new Error(r.message);
        if (!r.ok) short = ` (not ${cores}: ${r.message})`;
      }
      await this.until(`pod ${pod} ready`, () => {
        const inst = this.list.get(pod);
        if (!this.pods.get(pod, this.ns)) throw new Error(`pod ${pod} was deleted while starting`);
        return inst?.state === "ready" && (short !== "" || sameCpu(inst.cores, cores));
      });
    } catch (err) {
      // A pod no node can take is taken back, so replicas do not pile up behind the scheduler.
      if (err instanceof Unschedulable) await this.removePod(name, pod).catch(() => undefined);
      return { ok: false, ms: performance.now() - t0, message: `start ${name}: ${messageOf(err)}`, instance: pod };
    } finally {
      this.claimed.delete(pod);
    }
    const ms = performance.now() - t0;
    const apiRequests = this.api.total - requests0;
    const got = this.list.get(pod)?.cores ?? cores;
    this.record(task, variant, "scaleOut", ms);
    this.opts.log?.({
      event: "instance_started",
      instance: pod,
      cores: got,
      scale_out_ms: ms,
      api_requests: apiRequests,
    });
    return {
      ok: true,
      ms,
      message: `started pod ${pod} of ${name} with ${got} cores${short}`,
      instance: pod,
      apiRequests,
    };
  }

  /** One more replica (or a new Deployment); returns the name of the pod that the ReplicaSet made for it. */
  private async scaleOut(task: string, variant: string, name: string, cores: number): Promise<string> {
    const before = new Set(this.podsOf(task, variant).map((p) => p.metadata!.name!));
    await this.withLock(name, async () => {
      await this.ensureService(task, variant, name);
      let dep = this.deployments.get(name, this.ns);
      if (!dep && !this.replicas.has(name)) {
        const body = workerDeployment(task, variant, cores, 1, {
          ...this.template,
          modelPath: this.modelPath(task, variant),
        });
        try {
          await this.api.call("create deployments", () =>
            this.api.apps.createNamespacedDeployment({ namespace: this.ns, body }),
          );
          this.replicas.set(name, 1);
          return;
        } catch (err) {
          if (statusOf(err) !== 409) throw err;
          dep = await this.api.call("get deployments", () =>
            this.api.apps.readNamespacedDeployment({ name, namespace: this.ns }),
          );
        }
      }
      if (dep?.metadata?.annotations?.[TARGET_CPU] !== formatCpu(cores)) await this.setTarget(name, cores);
      const want = (this.replicas.get(name) ?? dep?.spec?.replicas ?? 0) + 1;
      this.replicas.set(name, await this.scaleTo(name, want));
    });
    return this.until(`a new pod of ${name}`, () => {
      const fresh = this.podsOf(task, variant).find(
        (p) => !before.has(p.metadata!.name!) && !this.claimed.has(p.metadata!.name!) && !p.metadata?.deletionTimestamp,
      );
      if (!fresh) return undefined;
      this.claimed.add(fresh.metadata!.name!);
      this.unsized.delete(fresh.metadata!.name!);
      return fresh.metadata!.name!;
    });
  }

  private async scaleTo(name: string, replicas: number): Promise<number> {
    const scale: V1Scale = await this.api.call("patch deployments/scale", () =>
      this.api.apps.patchNamespacedDeploymentScale({ name, namespace: this.ns, body: { spec: { replicas } } }, MERGE),
    );
    this.replicasVersion.set(name, Number(scale.metadata?.resourceVersion ?? 0));
    return scale.spec?.replicas ?? replicas;
  }

  /**
   * Replicas as last written, by this replica of the gateway or (after a failover) by the previous leader:
   * a Deployment event at least as recent as this replica's own last write wins. The watch lags a write,
   * so an older event must not undo it.
   */
  private deploymentEvent(kind: string, d: V1Deployment): void {
    const name = d.metadata?.name;
    if (name && kind !== "delete" && d.spec?.replicas !== undefined) {
      const rv = Number(d.metadata?.resourceVersion ?? 0);
      if (!(rv < (this.replicasVersion.get(name) ?? 0))) {
        this.replicas.set(name, d.spec.replicas);
        this.replicasVersion.set(name, rv);
      }
    }
    if (name && kind === "delete") {
      this.replicas.delete(name);
      this.replicasVersion.delete(name);
    }
    this.refresh();
  }

  private async setTarget(name: string, cores: number): Promise<void> {
    await this.api.call("patch deployments", () =>
      this.api.apps.patchNamespacedDeployment(
        { name, namespace: this.ns, body: { metadata: { annotations: { [TARGET_CPU]: formatCpu(cores) } } } },
        MERGE,
      ),
    );
  }

  private async ensureService(task: string, variant: string, name: string): Promise<void> {
    if (this.replicas.has(name) || this.deployments.get(name, this.ns)) return;
    try {
      await this.api.call("create services", () =>
        this.api.core.createNamespacedService({
          namespace: this.ns,
          body: workerService(task, variant, this.template.port),
        }),
      );
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
    }
  }

  /**
   * Stops taking work, lets running batches finish, then removes exactly this pod: it is marked cheapest to
   * delete and the Deployment scaled down by one, so the ReplicaSet (the owner of its pods) removes it.
   */
  async stop(id: string): Promise<KubernetesActuationResult> {
    const inst = this.list.get(id);
    const pod = this.pods.get(id, this.ns);
    if (!inst || !pod) return { ok: false, ms: 0, message: `no pod ${id}` };
    const t0 = performance.now();
    const requests0 = this.api.total;
    const name = variantObjectName(inst.task, inst.variant);
    inst.stopping = true;
    this.refresh();
    try {
      await this.until(`pod ${id} drained`, () => inst.inFlight === 0);
      await this.removePod(name, id);
    } catch (err) {
      inst.stopping = false;
      this.refresh();
      return { ok: false, ms: performance.now() - t0, message: `stop ${id}: ${messageOf(err)}` };
    }
    const ms = performance.now() - t0;
    const apiRequests = this.api.total - requests0;
    this.opts.log?.({ event: "instance_stopped", instance: id, stop_ms: ms, api_requests: apiRequests });
    return { ok: true, ms, message: `stopped pod ${id} (${name} scaled to ${this.replicas.get(name)})`, apiRequests };
  }

  /**
   * A pod that does not answer a ping within PROBE_MS is hung (a batch blocks a worker's loop for its own
   * length, which the router's limit already exceeds several times): its channel is closed so its batches
   * fail over, and it is replaced by a new pod of the same size.
   */
  static readonly PROBE_MS = 5000;

  suspect(id: string, why: string): void {
    const inst = this.list.get(id);
    if (!inst || inst.state !== "ready" || inst.probing) return;
    inst.probing = true;
    void inst.answers(KubernetesCluster.PROBE_MS).then(async (alive) => {
      inst.probing = false;
      if (alive || inst.state !== "ready") return;
      this.opts.log?.({ event: "instance_hung", instance: id, reason: why });
      const cores = inst.cores;
      this.disconnect(inst);
      await this.stop(id);
      await this.start(inst.task, inst.variant, cores);
    });
  }

  /** Marks the pod cheapest to delete, scales its Deployment down by one, and waits until it is gone. */
  private async removePod(name: string, id: string): Promise<void> {
    await this.withLock(name, async () => {
      await this.api.call("patch pods", () =>
        this.api.core.patchNamespacedPod(
          { name: id, namespace: this.ns, body: { metadata: { annotations: { [DELETION_COST]: "-1000000" } } } },
          MERGE,
        ),
      );
      const dep = this.deployments.get(name, this.ns);
      const want = Math.max(0, (this.replicas.get(name) ?? dep?.spec?.replicas ?? 1) - 1);
      this.replicas.set(name, await this.scaleTo(name, want));
    });
    await this.until(`pod ${id} gone`, () => !this.pods.get(id, this.ns));
  }

  // --- vertical --------------------------------------------------------------------------------------------

  async resize(id: string, cores: number): Promise<KubernetesActuationResult> {
    const inst = this.list.get(id);
    if (!inst || inst.state !== "ready") return { ok: false, ms: 0, message: `pod ${id} is not ready` };
    if (sameCpu(inst.cores, cores) && sameCpu(desiredCores(this.pods.get(id, this.ns)!), cores))
      return { ok: true, ms: 0, message: "no change", instance: id };
    const r = await this.resizePod(id, cores);
    if (r.ok) {
      this.record(inst.task, inst.variant, "resize", r.ms);
      // New pods of this Deployment (replacements, scale-out) should come up to the same size.
      const name = variantObjectName(inst.task, inst.variant);
      if (this.deployments.get(name, this.ns)?.metadata?.annotations?.[TARGET_CPU] !== formatCpu(cores))
        await this.setTarget(name, cores).catch(() => undefined);
    }
    return r;
  }

  /** PATCH pods/{id}/resize, then wait for the node's verdict; undo what the node will not do. */
  private async resizePod(id: string, cores: number): Promise<KubernetesActuationResult> {
    const t0 = performance.now();
    const requests0 = this.api.total;
    const before = this.pods.get(id, this.ns);
    const from = before ? allocatedCores(before) : 0;
    this.resizing.add(id);
    this.unsized.delete(id);
    try {
      let patched: V1Pod;
      try {
        patched = await this.patchResize(id, cores);
      } catch (err) {
        return { ok: false, ms: performance.now() - t0, message: `resize ${id}: ${messageOf(err)}` };
      }
      const generation = patched.metadata?.generation ?? 0;
      let deferredSince = 0;
      let last: ResizeState = { kind: "waiting", why: "patched" };
      try {
        last = await this.until(`resize of ${id} to ${cores} cores`, () => {
          const s = resizeState(this.pods.get(id, this.ns), generation, cores);
          if (s.kind === "deferred") {
            deferredSince ||= performance.now();
            return performance.now() - deferredSince > (this.opts.deferredDeadlineMs ?? 3000) ? s : undefined;
          }
          deferredSince = 0;
          return s.kind === "waiting" ? undefined : s;
        });
      } catch (err) {
        last = { kind: "error", message: messageOf(err) };
      }
      const ms = performance.now() - t0;
      if (last.kind === "done") {
        const apiRequests = this.api.total - requests0;
        this.opts.log?.({
          event: "instance_resized",
          instance: id,
          from,
          cores,
          resize_ms: ms,
          api_requests: apiRequests,
        });
        return { ok: true, ms, message: `resized pod ${id} to ${cores} cores in place`, instance: id, apiRequests };
      }
      // The spec now asks for what the node will not give: put it back, or a Deferred resize could land
      // later behind the planner's back.
      if (last.kind !== "gone") await this.patchResize(id, from).catch(() => undefined);
      const scaleOutInstead = last.kind === "infeasible" || last.kind === "deferred";
      const message =
        last.kind === "infeasible"
          ? `resize of ${id} to ${cores} cores is Infeasible on its node (${last.message}); reverted to ${from}, scale out instead`
          : last.kind === "deferred"
            ? `resize of ${id} to ${cores} cores Deferred for over ${this.opts.deferredDeadlineMs ?? 3000} ms (${last.message}); reverted to ${from}, scale out instead`
            : `resize of ${id} to ${cores} cores failed: ${last.message}`;
      this.opts.log?.({ event: "resize_refused", instance: id, from, cores, reason: last.kind, ms, message });
      return { ok: false, ms, message, instance: id, scaleOutInstead, apiRequests: this.api.total - requests0 };
    } finally {
      this.resizing.delete(id);
    }
  }

  private patchResize(id: string, cores: number): Promise<V1Pod> {
    return this.api.call("patch pods/resize", () =>
      this.api.core.patchNamespacedPodResize({ name: id, namespace: this.ns, body: resizePatch(cores) }, STRATEGIC),
    );
  }

  // --- state from the watches ------------------------------------------------------------------------------

  private podEvent(kind: string, pod: V1Pod): void {
    const id = pod.metadata?.name;
    // Pods the ReplicaSet makes on its own while this backend runs (replacements) start at the template's
    // size; pods a start or resize of this backend settled, and those there before it opened, are left be.
    if (id && kind === "add" && this.opened && !this.claimed.has(id)) this.unsized.add(id);
    if (id && kind === "delete") this.unsized.delete(id);
    this.refresh();
    if (kind !== "delete") this.reconcileDrift(pod);
  }

  /**
   * Only the gateway replica that leads acts on its own (drift resizes); followers route and watch. On by
   * default: a single gateway is its own leader.
   */
  setActive(active: boolean): void {
    this.active = active;
    if (active) for (const p of this.pods.list()) this.reconcileDrift(p);
  }

  /**
   * A pod the ReplicaSet made on its own (a replacement after an eviction) starts from the template's
   * resources; once Running it is resized to the Deployment's target, kept in its annotation.
   */
  private reconcileDrift(pod: V1Pod): void {
    const id = pod.metadata?.name;
    if (!id || !this.active || !this.unsized.has(id) || this.closing || this.claimed.has(id)) return;
    if (this.resizing.has(id) || pod.metadata?.deletionTimestamp) return;
    if (pod.status?.phase !== "Running") return;
    const task = pod.metadata?.labels?.[TASK_LABEL];
    const variant = pod.metadata?.labels?.[VARIANT_LABEL];
    if (!task || !variant) return;
    const target = this.deployments.get(variantObjectName(task, variant), this.ns)?.metadata?.annotations?.[TARGET_CPU];
    if (!target) return;
    if (sameCpu(desiredCores(pod), target)) {
      this.unsized.delete(id);
      return;
    }
    this.unsized.delete(id);
    const cores = parseQuantity(target);
    this.opts.log?.({ event: "template_drift", instance: id, from: desiredCores(pod), cores });
    void this.resizePod(id, cores);
  }

  private podsOf(task: string, variant: string): V1Pod[] {
    return this.pods
      .list()
      .filter((p) => p.metadata?.labels?.[TASK_LABEL] === task && p.metadata?.labels?.[VARIANT_LABEL] === variant);
  }

  private endpoints(): Map<string, Endpoint> {
    const out = new Map<string, Endpoint>();
    for (const s of this.slices.list()) {
      const port = s.ports?.find((p) => p.name === CONTAINER)?.port ?? this.template.port;
      for (const e of s.endpoints ?? []) {
        const pod = e.targetRef?.kind === "Pod" ? e.targetRef.name : undefined;
        const address = e.addresses[0];
        if (!pod || !address) continue;
        out.set(pod, {
          address,
          port,
          ready: e.conditions?.ready === true,
          terminating: e.conditions?.terminating === true,
        });
      }
    }
    return out;
  }

  /** Rebuilds the instance list from the caches; tells listeners when anything they see changed. */
  private refresh(): void {
    const eps = this.endpoints();
    const seen = new Set<string>();
    for (const pod of this.pods.list()) {
      const id = pod.metadata?.name;
      const task = pod.metadata?.labels?.[TASK_LABEL];
      const variant = pod.metadata?.labels?.[VARIANT_LABEL];
      if (!id || !task || !variant || pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") continue;
      seen.add(id);
      let inst = this.list.get(id);
      if (!inst) {
        inst = new PodInstance(id, task, variant);
        this.list.set(id, inst);
      }
      inst.cores = allocatedCores(pod);
      const ep = eps.get(id);
      const address = ep ? `${ep.address}:${ep.port}` : undefined;
      if (inst.client && inst.address !== address && address !== undefined) this.disconnect(inst);
      if (pod.metadata?.deletionTimestamp || ep?.terminating || inst.stopping) inst.state = "draining";
      else if (ep?.ready && inst.client) inst.state = "ready";
      else {
        inst.state = "starting";
        if (ep?.ready && !inst.connecting) this.connect(inst, ep);
      }
    }
    for (const [id, inst] of this.list) {
      if (seen.has(id)) continue;
      // The pod is gone: batches still on its socket finish or fail on their own; then the socket closes.
      inst.state = "stopped";
      this.list.delete(id);
      if (inst.inFlight === 0) this.disconnect(inst);
    }
    for (const check of [...this.checks]) check();
    const sig = [...this.list.values()].map((i) => `${i.id}:${i.state}:${i.cores}`).join(",");
    if (sig !== this.signature) {
      this.signature = sig;
      this.events.emit("change");
    }
  }

  private connect(inst: PodInstance, ep: Endpoint): void {
    inst.connecting = true;
    inst.address = `${ep.address}:${ep.port}`;
    const address = inst.address;
    WorkerClient.connect(ep.address, ep.port, this.opts.workerToken).then(
      (client) => {
        inst.connecting = false;
        if (!this.list.has(inst.id) || inst.address !== address || this.closing) {
          client.close();
          return;
        }
        inst.client = client;
        void client.closed.then(() => {
          if (inst.client !== client) return;
          inst.client = undefined;
          this.opts.log?.({ event: "instance_connection_lost", instance: inst.id, address });
          // Reconnect if the endpoint still claims to be ready (a transient drop), after a pause.
          setTimeout(() => this.refresh(), 500).unref();
          this.refresh();
        });
        this.refresh();
      },
      () => {
        inst.connecting = false;
        setTimeout(() => this.refresh(), 500).unref();
      },
    );
  }

  private disconnect(inst: PodInstance): void {
    const c = inst.client;
    inst.client = undefined;
    c?.close();
  }

  private record(task: string, variant: string, kind: "scaleOut" | "resize", ms: number): void {
    const key = `${task}/${variant}`;
    const m = this.measured.get(key) ?? { scaleOut: [], resize: [] };
    m[kind].push(ms);
    if (m[kind].length > 100) m[kind].shift();
    this.measured.set(key, m);
  }

  /**
   * What this cluster measured for a variant, in a profile's shape: `load_ms` is scale-out to ready (the
   * pod's cold start as the API sees it), `resize_ms` an in-place resize to done. The simulator and the
   * planners take these as they take the local profiler's.
   */
  actuationProfile(task: string, variant: string): { load_ms: ProfileStat; resize_ms: ProfileStat } | undefined {
    const m = this.measured.get(`${task}/${variant}`);
    if (!m) return undefined;
    const stat = (xs: number[]): ProfileStat => ({
      p50: xs.length === 0 ? 0 : median(xs),
      max: xs.length ? Math.max(...xs) : 0,
      samples: [...xs],
    });
    return { load_ms: stat(m.scaleOut), resize_ms: stat(m.resize) };
  }

  // --- helpers ---------------------------------------------------------------------------------------------

  private modelPath(task: string, variant: string): string {
    return this.opts.modelPath?.(task, variant) ?? `models/${task}/${variant}/model.onnx`;
  }

  /** Resolves with the first truthy value `test` returns, re-evaluated on every watch event; throws its errors. */
  private until<T>(what: string, test: () => T | undefined | false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timeoutMs = this.opts.actuationTimeoutMs ?? 120_000;
      const finish = () => {
        this.checks.delete(check);
        clearTimeout(timer);
        clearInterval(poll);
      };
      const check = () => {
        let v: T | undefined | false;
        try {
          v = test();
        } catch (err) {
          finish();
          reject(err as Error);
          return;
        }
        if (v !== undefined && v !== false) {
          finish();
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      // Deadlines (Deferred) and in-flight counts move without watch events.
      const poll = setInterval(check, 50);
      this.checks.add(check);
      check();
    });
  }

  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    this.locks.set(
      key,
      run.catch(() => undefined),
    );
    return run;
  }

  /** Stops watching and closes worker sockets; the Deployments and their pods stay as they are. */
  async shutdown(): Promise<void> {
    this.closing = true;
    await Promise.all([this.pods.stop(), this.slices.stop(), this.deployments.stop()]);
    for (const inst of this.list.values()) this.disconnect(inst);
    this.list.clear();
  }
}
