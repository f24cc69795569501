// The dashboard's HTTP surface on the REST server: the page at `/`, its static assets and uPlot
// from node_modules (no bundler, nothing fetched from the network), the history as JSON for a page
// that just opened, the live frames and decisions as Server-Sent Events, and the model repository.
import fs from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";
import type { Repository } from "../repository/repository.js";
import type { LiveAggregator, LiveEvent } from "./live.js";
import { repositoryView } from "./repository-view.js";

const PUBLIC = fileURLToPath(new URL("./public/", import.meta.url));
const UPLOT = path.dirname(createRequire(import.meta.url).resolve("uplot"));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

/** Only these files are served: a request can name nothing else on disk. */
const ASSETS = new Map<string, string>([
  ["app.js", path.join(PUBLIC, "app.js")],
  ["live.js", path.join(PUBLIC, "live.js")],
  ["repository.js", path.join(PUBLIC, "repository.js")],
  ["charts.js", path.join(PUBLIC, "charts.js")],
  ["graph.js", path.join(PUBLIC, "graph.js")],
  ["style.css", path.join(PUBLIC, "style.css")],
  ["uPlot.esm.js", path.join(UPLOT, "uPlot.esm.js")],
  ["uPlot.min.css", path.join(UPLOT, "uPlot.min.css")],
]);

/** A client this far behind (a stalled tab) is dropped rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 4 * 2 ** 20;

export function registerDashboard(
  app: FastifyInstance,
  live: LiveAggregator,
  repo: Repository,
  pipelines: () => unknown[] = () => [],
): void {
  const streams = new Set<ServerResponse>();
  const send = (file: string, reply: FastifyReply) =>
    fs.readFile(file).then((body) =>
      reply
        .type(TYPES[path.extname(file)] ?? "application/octet-stream")
        .header("cache-control", "no-cache")
        .send(body),
    );

  app.get("/", (_req, reply) => send(path.join(PUBLIC, "index.html"), reply));
  app.get("/dashboard", (_req, reply) => reply.redirect("/"));
  app.get<{ Params: { file: string } }>("/dashboard/:file", (req, reply) => {
    const file = ASSETS.get(req.params.file);
    if (!file) return reply.code(404).send({ error: `no dashboard asset '${req.params.file}'` });
    return send(file, reply);
  });
  app.get("/dashboard/api/history", () => live.history());
  app.get("/dashboard/api/repository", () => repositoryView(repo));
  // per pipeline: its graph, per-stage times, rows and skips, measured fan-out, end-to-end figures
  app.get("/dashboard/api/pipelines", () => pipelines());

  // one subscription for all open pages: each event is serialised once, whatever the number of tabs
  live.subscribe((e: LiveEvent) => {
    if (streams.size === 0) return;
    const message = `event: ${e.kind}\ndata: ${JSON.stringify(e.kind === "frame" ? e.frame : e.decision)}\n\n`;
    for (const res of streams) {
      if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy();
      else res.write(message);
    }
  });
  app.get("/dashboard/events", (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.write("retry: 2000\n\n");
    streams.add(res);
    req.raw.on("close", () => streams.delete(res));
  });
  // An event stream never ends by itself; without this, closing the server would wait for every open tab.
  app.addHook("preClose", (done) => {
    for (const res of streams) res.end();
    streams.clear();
    done();
  });
}
