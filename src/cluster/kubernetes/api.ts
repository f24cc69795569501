// The API calls the backend makes, each counted: the benchmark reports requests per actuation, and a
// watch event (pushed by the server) is not a request.
import {
  ApiException,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from "@kubernetes/client-node";

export const MERGE = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
export const STRATEGIC = setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch);

export class KubeApi {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly discovery: DiscoveryV1Api;
  readonly coordination: CoordinationV1Api;
  /** API requests made so far, by verb and resource ("patch pods/resize"). */
  readonly counts = new Map<string, number>();

  constructor(readonly kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.discovery = kc.makeApiClient(DiscoveryV1Api);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
  }

  get total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }

  /** Runs one API request, counted under `what`. */
  call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.counts.set(what, (this.counts.get(what) ?? 0) + 1);
    return fn();
  }
}

/** HTTP status of a failed API call (0 when the server was not reached). */
export function statusOf(err: unknown): number {
  return err instanceof ApiException ? err.code : 0;
}

/** The Status message the API server sent, or the error's own. */
export function messageOf(err: unknown): string {
  if (err instanceof ApiException) {
    try {
      const body = typeof err.body === "string" ? JSON.parse(err.body) : err.body;
      if (body?.message) return `${body.message} (HTTP ${err.code})`;
    } catch {
      // not JSON: fall through
    }
    return `HTTP ${err.code}: ${String(err.body).slice(0, 300)}`;
  }
  return (err as Error).message ?? String(err);
}
