// GET /sloserve/latency-model: what the online latency model has learnt — each instance's factor over its
// profile, the cells it predicts with and its recent prediction error, the fleet factor planners use, the
// change points found, and the measured points (`sloserve profile --update-from-serving` writes them into
// profile.json; nothing on disk changes otherwise).
import type { FastifyInstance } from "fastify";
import type { ServingCore } from "../core/serving-core.js";

export function registerLatencyModel(app: FastifyInstance, core: ServingCore): void {
  app.get("/sloserve/latency-model", () => {
    const m = core.latencyModel;
    if (!m) return { enabled: false, note: "the online latency model is off (serve --online-latency off)" };
    return { enabled: true, fleet: m.fleet(), instances: m.instances(), changes: m.changes(), points: m.points() };
  });
}
