// Child-process entry of server-process.ts: startServer on the real zoo, report the ports over
// IPC, drain and exit on SIGTERM.
import { startTestServer } from "./server.js";

const opts = JSON.parse(process.argv[2]!) as {
  cores: number;
  deploy: { task: string; variant: string; cores: number }[];
};
const server = await startTestServer({
  cores: opts.cores,
  deploy: opts.deploy,
});
process.send!({ httpUrl: server.httpUrl, grpcPort: server.grpcPort });
process.once("SIGTERM", () => void server.close(1000).then(() => process.exit(0)));
process.once("disconnect", () => void server.close(1000).then(() => process.exit(0)));
