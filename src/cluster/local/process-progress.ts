// Whether a worker process is making progress, read from the kernel: its run state and the CPU time it
// has used. onnxruntime runs a batch on the worker's main thread, so a busy worker cannot answer a ping;
// but a busy one burns CPU, and a hung one (stopped, deadlocked) does not.
import fs from "node:fs/promises";

export interface ProcessSample {
  /** The kernel's one-letter state: R running, S sleeping, T stopped, Z zombie, … */
  state: string;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
}

/** Null when the process is gone or /proc cannot be read (not Linux). */
export async function sampleProcess(pid: number): Promise<ProcessSample | null> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8");
    // pid (comm) state ppid …: comm may hold spaces and parentheses, so split after the last ')'
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0]!, cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

/** A process that ran on the CPU between two samples and is not stopped is alive, however slow. */
export function progressed(before: ProcessSample, after: ProcessSample): boolean {
  return after.state !== "T" && after.state !== "t" && after.state !== "Z" && after.cpuTicks > before.cpuTicks;
}
