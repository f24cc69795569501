// Leader election on a coordination.k8s.io Lease, so that of several gateway replicas exactly one control
// loop actuates. The holder renews the Lease; the others watch it and take it over once it has not been
// renewed for a whole lease duration, measured on their own clock from when they last saw it change (the
// holder's clock may differ). Writes carry the resourceVersion they read, so two takers cannot both win.
import os from "node:os";
import { EventEmitter } from "node:events";
import type { KubeConfig, V1Lease } from "@kubernetes/client-node";
import { KubeApi, messageOf, statusOf } from "./api.js";

export interface LeaderElectorOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Lease name (default sloserve-gateway). */
  name?: string;
  /** Who this replica is (default host name and pid). */
  identity?: string;
  /** How long a Lease holds without renewal (default 5000 ms; whole seconds on the wire). */
  leaseDurationMs?: number;
  /** A leader that has not renewed for this long stops acting as one (default 3500 ms). */
  renewDeadlineMs?: number;
  /** How often to renew or try to acquire (default 1000 ms). */
  retryPeriodMs?: number;
  log?: (event: Record<string, unknown>) => void;
}

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(d = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class LeaderElector {
  readonly api: KubeApi;
  readonly identity: string;
  private readonly name: string;
  private readonly durationMs: number;
  private readonly events = new EventEmitter();
  private leader = false;
  private lease: V1Lease | null = null;
  /** The holder and renew time last seen, and when (local clock) they were seen to change. */
  private observed = { key: "", at: 0 };
  private lastRenew = 0;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.api = new KubeApi(opts.kubeConfig);
    this.identity = opts.identity ?? `${os.hostname()}-${process.pid}`;
    this.name = opts.name ?? "sloserve-gateway";
    this.durationMs = opts.leaseDurationMs ?? 5000;
  }

  isLeader(): boolean {
    return this.leader;
  }

  /** Holder of the Lease as last read (undefined before the first read). */
  holder(): string | undefined {
    return this.lease?.spec?.holderIdentity ?? undefined;
  }

  onChange(listener: (leader: boolean) => void): void {
    this.events.on("change", listener);
  }

  /** Makes a first attempt, then keeps trying or renewing every retry period. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.tick();
    this.timer = setInterval(() => {
      this.ticking = this.ticking.then(() => this.tick());
    }, this.opts.retryPeriodMs ?? 1000);
  }

  /** Stops; a leader hands the Lease back at once (expired), so a follower need not wait it out. */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
    if (this.leader && opts.release !== false && this.lease) {
      const body: V1Lease = {
        ...this.lease,
        spec: { ...this.lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime() as never },
      };
      await this.api
        .call("update leases", () =>
          this.api.coordination.replaceNamespacedLease({ name: this.name, namespace: this.opts.namespace, body }),
        )
        .catch(() => undefined);
    }
    this.setLeader(false, "stopped");
  }

  private setLeader(leader: boolean, why: string): void {
    if (leader === this.leader) return;
    this.leader = leader;
    this.opts.log?.({
      event: leader ? "leader_elected" : "leader_lost",
      identity: this.identity,
      lease: this.name,
      why,
    });
    this.events.emit("change", leader);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const now = performance.now();
    try {
      if (this.leader && this.lease) {
        const holder = this.lease.spec?.holderIdentity ?? "";
        if (holder === this.identity) {
          await this.write(this.renewed(this.lease, false));
          this.lastRenew = performance.now();
          return;
        }
        this.setLeader(false, `the lease is held by ${holder || "nobody"} now`);
      }
      const lease = await this.read();
      if (!lease) {
        await this.create();
        return;
      }
      const spec = lease.spec ?? {};
      const key = `${spec.holderIdentity ?? ""}@${String(spec.renewTime ?? "")}`;
      if (key !== this.observed.key) this.observed = { key, at: now };
      const heldBy = spec.holderIdentity ?? "";
      const durationMs = (spec.leaseDurationSeconds ?? this.durationMs / 1000) * 1000;
      if (heldBy === this.identity) {
        // Ours from before (e.g. a renew whose answer was lost): carry on renewing.
        await this.write(this.renewed(lease, false));
        this.lastRenew = performance.now();
        this.setLeader(true, "renewed");
        return;
      }
      if (heldBy !== "" && now - this.observed.at < durationMs) return;
      await this.write(this.renewed(lease, true));
      this.lastRenew = performance.now();
      this.setLeader(true, heldBy ? `lease of ${heldBy} expired` : "lease free");
    } catch (err) {
      if (this.leader) {
        // A conflict means someone else wrote the Lease: re-read it next time instead of blindly renewing.
        if (statusOf(err) === 409) this.lease = null;
        if (performance.now() - this.lastRenew > (this.opts.renewDeadlineMs ?? 3500))
          this.setLeader(false, `could not renew for ${this.opts.renewDeadlineMs ?? 3500} ms: ${messageOf(err)}`);
      }
    } finally {
      if (this.leader && !this.lease) this.lease = await this.read().catch(() => null);
    }
  }

  private renewed(lease: V1Lease, acquire: boolean): V1Lease {
    const now = microTime();
    const spec = lease.spec ?? {};
    return {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.max(1, Math.ceil(this.durationMs / 1000)),
        renewTime: now as never,
        ...(acquire
          ? {
              acquireTime: now as never,
              leaseTransitions: (spec.leaseTransitions ?? 0) + (spec.holderIdentity ? 1 : 0),
            }
          : {}),
      },
    };
  }

  private async read(): Promise<V1Lease | null> {
    try {
      const lease = await this.api.call("get leases", () =>
        this.api.coordination.readNamespacedLease({ name: this.name, namespace: this.opts.namespace }),
      );
      this.lease = lease;
      return lease;
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  private async write(body: V1Lease): Promise<void> {
    this.lease = await this.api.call("update leases", () =>
      this.api.coordination.replaceNamespacedLease({ name: this.name, namespace: this.opts.namespace, body }),
    );
  }

  private async create(): Promise<void> {
    const now = microTime();
    try {
      this.lease = await this.api.call("create leases", () =>
        this.api.coordination.createNamespacedLease({
          namespace: this.opts.namespace,
          body: {
            metadata: { name: this.name },
            spec: {
              holderIdentity: this.identity,
              leaseDurationSeconds: Math.max(1, Math.ceil(this.durationMs / 1000)),
              acquireTime: now as never,
              renewTime: now as never,
              leaseTransitions: 0,
            },
          },
        }),
      );
      this.lastRenew = performance.now();
      this.setLeader(true, "created the lease");
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
    }
  }
}
