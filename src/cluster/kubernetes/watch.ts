// A list+watch cache that survives the API server going away: client-node's ListWatch stops on an error,
// so this restarts it (a fresh list when the resource version is too old), and says when it is in sync.
import {
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from "@kubernetes/client-node";

export interface ResilientWatchOptions<T extends KubernetesObject> {
  kc: KubeConfig;
  /** Collection path, e.g. /api/v1/namespaces/ns/pods */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  retryMs?: number;
  onEvent: (kind: "add" | "update" | "delete", obj: T) => void;
  onError?: (err: unknown) => void;
}

export class ResilientWatch<T extends KubernetesObject> {
  private readonly lw: ListWatch<T>;
  private stopped = false;
  private retry: NodeJS.Timeout | null = null;
  /** Errors seen (each followed by a restart). */
  errors = 0;
  private syncedResolve!: () => void;
  readonly synced = new Promise<void>((r) => (this.syncedResolve = r));

  constructor(private readonly opts: ResilientWatchOptions<T>) {
    this.lw = new ListWatch<T>(
      opts.path,
      new Watch(opts.kc),
      async () => {
        const list = await opts.list();
        // The cache is filled from this list right after; events for it arrive before `synced` resolves.
        queueMicrotask(() => this.syncedResolve());
        return list;
      },
      false,
      opts.labelSelector,
      opts.fieldSelector,
    );
    this.lw.on("add", (o) => opts.onEvent("add", o));
    this.lw.on("update", (o) => opts.onEvent("update", o));
    this.lw.on("delete", (o) => opts.onEvent("delete", o));
    this.lw.on("error", (err) => {
      this.errors += 1;
      opts.onError?.(err);
      if (this.stopped || this.retry) return;
      this.retry = setTimeout(() => {
        this.retry = null;
        if (!this.stopped) void this.lw.start().catch(() => undefined);
      }, opts.retryMs ?? 500);
    });
  }

  async start(): Promise<void> {
    await this.lw.start();
    await this.synced;
  }

  list(): readonly T[] {
    return this.lw.list();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    await this.lw.stop();
  }
}
