// CPU affinity for a whole process (all its threads), so that an instance's onnxruntime threads
// run only on the cores the allocator gave it. Linux `taskset`; elsewhere pinning is skipped.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export async function pinProcess(pid: number, cpus: number[]): Promise<boolean> {
  if (process.platform !== "linux" || cpus.length === 0) return false;
  try {
    await run("taskset", ["-a", "-p", "-c", cpus.join(","), String(pid)]);
    return true;
  } catch {
    return false;
  }
}
