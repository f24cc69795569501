// Child-process entry of server-process.ts: startServer on the real zoo, report the ports over
// IPC, drain and exit on SIGTERM.
import path from "node:path";
import { startServer } from "../../src/server/server.js";

const opts = JSON.parse(process.argv[2]!) as {
  cores: number;
  deploy: { task: string; variant: string; cores: number }[];
};
const server = await startServer({
  modelsDir: path.resolve("models"),
  httpPort: 0,
  grpcPort: 0,
  metricsPort: 0,
  cores: opts.cores,
  deploy: opts.deploy,
  autoscaler: "none",
  logLevel: "warn",
});
process.send!({ httpUrl: server.httpUrl, grpcPort: server.grpcPort });
process.once("SIGTERM", () => void server.close(1000).then(() => process.exit(0)));
process.once("disconnect", () => void server.close(1000).then(() => process.exit(0)));
