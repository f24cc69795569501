// The real server (startServer) in a child process of its own, for tests that drive it with the
// load generator: sharing one event loop with the server would charge the server's work to the
// client's clock and its schedule lag, which is not how the tool is used.
import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { TestServerOptions } from "./server.js";

export interface ServerChild {
  httpUrl: string;
  grpcTarget: string;
  /** The server process (its workers are its children). */
  pid: number;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));

export async function startServerProcess(opts: TestServerOptions): Promise<ServerChild> {
  const child: ChildProcess = fork(path.join(HERE, "server-main.ts"), [JSON.stringify(opts)], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const ready = await new Promise<{ httpUrl: string; grpcPort: number }>((resolve, reject) => {
    child.once("message", (m) => resolve(m as { httpUrl: string; grpcPort: number }));
    child.once("exit", (code) => reject(new Error(`server process exited with ${code} before it was ready`)));
  });
  return {
    httpUrl: ready.httpUrl,
    grpcTarget: `127.0.0.1:${ready.grpcPort}`,
    pid: child.pid!,
    exited,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** Pids of the worker processes `pid` started (its direct children running the worker's entry point). */
export async function workerPids(pid: number): Promise<number[]> {
  const fs = await import("node:fs/promises");
  const out: number[] = [];
  for (const entry of await fs.readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await fs.readFile(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== pid) continue;
      const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.includes("worker/main.ts")) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** Whether `pid` still runs (a zombie waiting to be reaped does not). */
export async function alive(pid: number): Promise<boolean> {
  const fs = await import("node:fs/promises");
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Resident set size of a process, in MB (null when it is gone). */
export async function rssMb(pid: number): Promise<number | null> {
  const fs = await import("node:fs/promises");
  try {
    const status = await fs.readFile(`/proc/${pid}/status`, "utf8");
    const kb = /VmRSS:\s+(\d+) kB/.exec(status);
    return kb ? Number(kb[1]) / 1024 : null;
  } catch {
    return null;
  }
}
