// A pod's CPU allocation as its worker sees it: the cgroup v2 `cpu.max` quota ("<quota> <period>", or
// "max <period>" when unlimited). An in-place resize rewrites that file but no thread count, so the worker
// polls it and rebuilds its onnxruntime session with as many intra-op threads as whole cores it now has.
import fs from "node:fs/promises";

export const CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max";

/** Cores the quota allows (fractional), or null when the cgroup sets no limit. */
export function parseCpuMax(text: string): number | null {
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === "max") return null;
  const q = Number(quota);
  const p = Number(period ?? "100000");
  if (!Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0)
    throw new Error(`cannot read a CPU quota from cpu.max contents '${text.trim()}'`);
  return q / p;
}

/** Intra-op threads for a CPU allocation: whole cores, at least one (a 1.5-core pod runs 1 thread unthrottled). */
export function threadsFor(cores: number): number {
  return Math.max(1, Math.floor(cores + 1e-9));
}

export async function readCpuLimit(file = CGROUP_CPU_MAX): Promise<number | null> {
  return parseCpuMax(await fs.readFile(file, "utf8"));
}

/**
 * Calls `onChange(threads)` whenever the thread count the cgroup's quota allows changes. Polling, because
 * cgroupfs raises no inotify events for quota writes. Returns a stop function.
 */
export function followCpuLimit(
  onChange: (threads: number, cores: number | null) => void | Promise<void>,
  opts: { file?: string; intervalMs?: number; initialThreads: number; unlimitedThreads: number },
): () => void {
  let last = opts.initialThreads;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    readCpuLimit(opts.file)
      .then(async (cores) => {
        const threads = cores === null ? opts.unlimitedThreads : threadsFor(cores);
        if (threads !== last) {
          last = threads;
          await onChange(threads, cores);
        }
      })
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, opts.intervalMs ?? 500);
  timer.unref();
  return () => clearInterval(timer);
}
