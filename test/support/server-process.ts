// The real server (startServer) in a child process of its own, for tests that drive it with the
// load generator: sharing one event loop with the server would charge the server's work to the
// client's clock and its schedule lag, which is not how the tool is used.
import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { DeploySpec } from "../../src/server/server.js";

export interface ServerChild {
  httpUrl: string;
  grpcTarget: string;
  stop(): Promise<void>;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));

export async function startServerProcess(opts: { cores: number; deploy: DeploySpec[] }): Promise<ServerChild> {
  const child: ChildProcess = fork(path.join(HERE, "server-main.ts"), [JSON.stringify(opts)], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const ready = await new Promise<{ httpUrl: string; grpcPort: number }>((resolve, reject) => {
    child.once("message", (m) => resolve(m as { httpUrl: string; grpcPort: number }));
    child.once("exit", (code) => reject(new Error(`server process exited with ${code} before it was ready`)));
  });
  return {
    httpUrl: ready.httpUrl,
    grpcTarget: `127.0.0.1:${ready.grpcPort}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
