// A server's whole process tree read from /proc: its CPU time (user + sys of every process, threads
// included) and its members, so that a peer made of many processes (Ray's GCS, raylet, proxy and
// replica actors, which leave the process group) is measured and stopped as a whole.
import fs from "node:fs";
import os from "node:os";

const TICKS_PER_S = 100; // USER_HZ: 100 on every Linux build Node supports

interface ProcStat {
  pid: number;
  ppid: number;
  cpuTicks: number;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null; // gone between the listing and the read
  }
  // the command name (field 2) may hold spaces and parentheses: fields resume after the last ')'
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { pid, ppid: Number(f[1]), cpuTicks: Number(f[11]) + Number(f[12]) };
}

function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/** The root and all its live descendants. */
export function processTree(root: number): ProcStat[] {
  const stats = allStats();
  const children = new Map<number, ProcStat[]>();
  for (const s of stats) {
    const list = children.get(s.ppid);
    if (list) list.push(s);
    else children.set(s.ppid, [s]);
  }
  const self = stats.find((s) => s.pid === root);
  if (!self) return [];
  const tree = [self];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!.pid) ?? []));
  return tree;
}

/** CPU seconds (user + sys) of a process tree, by pid, so that two readings can be subtracted per process. */
export function treeCpu(root: number): Map<number, number> {
  return new Map(processTree(root).map((s) => [s.pid, s.cpuTicks / TICKS_PER_S]));
}

/** CPU seconds the tree spent between two readings (processes present in the second reading). */
export function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let s = 0;
  for (const [pid, t] of after) s += t - (before.get(pid) ?? 0);
  return s;
}

export function supportsProc(): boolean {
  return os.platform() === "linux" && fs.existsSync("/proc/self/stat");
}

/**
 * SIGTERM the root, give it `graceMs` to take its tree down, then SIGKILL whatever of the tree
 * (as known before the SIGTERM, and as it is now) is still alive.
 */
export async function stopTree(root: number, graceMs: number): Promise<void> {
  const known = new Set(processTree(root).map((s) => s.pid));
  try {
    process.kill(root, "SIGTERM");
  } catch {
    /* already gone */
  }
  const end = Date.now() + graceMs;
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      const st = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      return !/^\d+ \(.*\) Z/.test(st); // a zombie is gone for our purpose
    } catch {
      return false;
    }
  };
  while (Date.now() < end && [...known].some(alive)) {
    for (const s of processTree(root)) known.add(s.pid);
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const pid of known) {
    if (!alive(pid)) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* raced with its exit */
    }
  }
  // a SIGKILL takes effect asynchronously: return once the tree is really gone
  for (let i = 0; i < 50 && [...known].some(alive); i++) await new Promise((r) => setTimeout(r, 20));
}
