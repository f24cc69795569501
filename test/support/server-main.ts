// Child-process entry of server-process.ts: startServer on the real zoo, report the ports over
// IPC, drain and exit on SIGTERM.
import { startTestServer, type TestServerOptions } from "./server.js";

const opts = JSON.parse(process.argv[2]!) as TestServerOptions;
const server = await startTestServer(opts);
process.send!({ httpUrl: server.httpUrl, grpcPort: server.grpcPort });
process.once("SIGTERM", () => void server.close(1000).then(() => process.exit(0)));
process.once("disconnect", () => void server.close(1000).then(() => process.exit(0)));
