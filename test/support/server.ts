// The real server as whole-system tests start it: the bundled zoo, free ports, quiet logs, a fixed
// deployment unless the test turns an autoscaler on.
import path from "node:path";
import { startServer, type RunningServer, type ServeOptions } from "../../src/server/server.js";

export type TestServerOptions = Partial<ServeOptions> & Pick<ServeOptions, "cores">;

export function startTestServer(opts: TestServerOptions): Promise<RunningServer> {
  return startServer({
    modelsDir: path.resolve("models"),
    httpPort: 0,
    grpcPort: 0,
    metricsPort: 0,
    autoscaler: "none",
    logLevel: "warn",
    // tests count worker processes and cold starts: a warm pool only where a test asks for one
    warmPool: 0,
    ...opts,
  });
}

/** Runs `body` against a fresh server and always closes it. */
export async function withTestServer<T>(opts: TestServerOptions, body: (s: RunningServer) => Promise<T>): Promise<T> {
  const server = await startTestServer(opts);
  try {
    return await body(server);
  } finally {
    await server.close(1000);
  }
}
