// Actuation on real worker processes: converge() resizes in place, starts and stops, and when the
// core budget is short does what fits and says what it could not.
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { converge } from "../../src/autoscaler/actuator.js";
import { LocalCluster } from "../../src/cluster/local/local-cluster.js";

const MODELS = path.resolve("models");
const cluster = new LocalCluster({
  coreBudget: 2,
  host: "127.0.0.1",
  modelPath: (t, v) => path.join(MODELS, t, v, "model.onnx"),
  log: () => undefined,
});
afterAll(() => cluster.shutdown());

const shape = () =>
  cluster
    .instances()
    .filter((i) => i.state !== "stopped")
    .map((i) => `${i.variant}×${i.cores}`)
    .sort();

describe("converge on the local backend", () => {
  it("starts, resizes in place, reports a short budget, and stops", async () => {
    let r = await converge(cluster, "digits", { instances: [{ variant: "mlp-small", cores: 1 }], reason: "test" });
    expect(r.results.map((x) => [x.action.kind, x.ok])).toEqual([["start", true]]);
    const id = cluster.instances()[0]!.id;

    r = await converge(cluster, "digits", { instances: [{ variant: "mlp-small", cores: 2 }], reason: "test" });
    expect(r.results.map((x) => [x.action.kind, x.ok])).toEqual([["resize", true]]);
    expect(cluster.instances().find((i) => i.id === id)!.cores).toBe(2); // same instance, in place
    expect(r.short).toEqual([]);

    // 2 + 2 cores on a 2-core budget: the resize fits nothing more, the start is reported, not failed
    r = await converge(cluster, "digits", {
      instances: [
        { variant: "mlp-small", cores: 2 },
        { variant: "mlp-small", cores: 2 },
      ],
      reason: "test",
    });
    expect(r.results).toEqual([]);
    expect(r.short).toHaveLength(1);
    expect(r.short[0]).toMatch(/start mlp-small to 2 cores needs 2 more, 0 of 2 free/);
    expect(shape()).toEqual(["mlp-small×2"]);

    // shrinking first frees the cores the start needs
    r = await converge(cluster, "digits", {
      instances: [
        { variant: "mlp-small", cores: 1 },
        { variant: "mlp-small", cores: 1 },
      ],
      reason: "test",
    });
    expect(r.results.map((x) => [x.action.kind, x.ok])).toEqual([
      ["resize", true],
      ["start", true],
    ]);
    expect(shape()).toEqual(["mlp-small×1", "mlp-small×1"]);

    r = await converge(cluster, "digits", { instances: [], reason: "test", scope: "task" });
    expect(r.results.map((x) => [x.action.kind, x.ok])).toEqual([
      ["stop", true],
      ["stop", true],
    ]);
    expect(cluster.coresInUse()).toBe(0);
  });

  it("on a full budget that shares cores, starts a variant's replacement before it stops the one it replaces", async () => {
    const shared = new LocalCluster({
      coreBudget: 1,
      shareCores: true,
      host: "127.0.0.1",
      modelPath: (t, v) => path.join(MODELS, t, v, "model.onnx"),
      log: () => undefined,
    });
    try {
      await converge(shared, "digits", { instances: [{ variant: "mlp-small", cores: 1 }], reason: "test" });
      const r = await converge(shared, "digits", {
        instances: [{ variant: "cnn-small", cores: 1 }],
        reason: "test",
        scope: "task",
      });
      // the start is not held back until the stop has freed the core: it runs first, on a shared core
      expect(r.results.map((x) => [x.action.kind, x.action.variant, x.ok])).toEqual([
        ["start", "cnn-small", true],
        ["stop", "mlp-small", true],
      ]);
      expect(r.short).toEqual([]);
      expect(
        shared
          .instances()
          .filter((i) => i.state !== "stopped")
          .map((i) => i.variant),
      ).toEqual(["cnn-small"]);
    } finally {
      await shared.shutdown();
    }
  });
});
