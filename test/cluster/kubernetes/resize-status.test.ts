// KEP-1287's completion test as the backend reads it from a pod, and the objects it writes.
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { resizePatch, variantObjectName, workerDeployment } from "../../../src/cluster/kubernetes/objects.js";
import { formatCpu, parseQuantity, sameCpu } from "../../../src/cluster/kubernetes/quantity.js";
import { resizeState } from "../../../src/cluster/kubernetes/resize-status.js";

function pod(opts: {
  generation: number;
  observed?: number;
  spec: string;
  allocated: string;
  actual: string;
  conditions?: { type: string; reason?: string; message?: string; observedGeneration?: number }[];
}): V1Pod {
  return {
    metadata: { name: "p", generation: opts.generation },
    spec: { containers: [{ name: "worker", resources: { requests: { cpu: opts.spec }, limits: { cpu: opts.spec } } }] },
    status: {
      observedGeneration: opts.observed,
      conditions: (opts.conditions ?? []).map((c) => ({ status: "True", ...c })),
      containerStatuses: [
        {
          name: "worker",
          image: "",
          imageID: "",
          ready: true,
          restartCount: 0,
          allocatedResources: { cpu: opts.allocated },
          resources: { limits: { cpu: opts.actual }, requests: { cpu: opts.actual } },
        },
      ],
    },
  };
}

describe("resize completion test", () => {
  it("is done only when the node saw the generation, nothing is pending, and allocated and actual match", () => {
    expect(resizeState(pod({ generation: 2, observed: 1, spec: "2", allocated: "1", actual: "1" }), 2, 2).kind).toBe(
      "waiting",
    );
    expect(resizeState(pod({ generation: 2, observed: 2, spec: "2", allocated: "2", actual: "1" }), 2, 2).kind).toBe(
      "waiting",
    );
    expect(
      resizeState(
        pod({
          generation: 2,
          observed: 2,
          spec: "2",
          allocated: "2",
          actual: "2",
          conditions: [{ type: "PodResizeInProgress", observedGeneration: 2 }],
        }),
        2,
        2,
      ).kind,
    ).toBe("waiting");
    expect(
      resizeState(pod({ generation: 2, observed: 2, spec: "2", allocated: "2000m", actual: "2" }), 2, 2).kind,
    ).toBe("done");
  });

  it("reads Infeasible, Deferred and Error verdicts, ignoring those about older generations", () => {
    const pending = (reason: string, observedGeneration: number) =>
      pod({
        generation: 3,
        observed: observedGeneration,
        spec: "3",
        allocated: "1",
        actual: "1",
        conditions: [{ type: "PodResizePending", reason, message: "no room", observedGeneration }],
      });
    expect(resizeState(pending("Infeasible", 3), 3, 3)).toEqual({ kind: "infeasible", message: "no room" });
    expect(resizeState(pending("Deferred", 3), 3, 3)).toEqual({ kind: "deferred", message: "no room" });
    expect(resizeState(pending("Infeasible", 2), 3, 3).kind).toBe("waiting");
    const failed = pod({
      generation: 3,
      observed: 3,
      spec: "3",
      allocated: "3",
      actual: "1",
      conditions: [
        { type: "PodResizeInProgress", reason: "Error", message: "cgroup write failed", observedGeneration: 3 },
      ],
    });
    expect(resizeState(failed, 3, 3)).toEqual({ kind: "error", message: "cgroup write failed" });
    expect(resizeState(undefined, 3, 3).kind).toBe("gone");
  });
});

describe("quantities and objects", () => {
  it("parses and formats CPU quantities the way the API writes them", () => {
    expect(parseQuantity("1500m")).toBe(1.5);
    expect(parseQuantity("2")).toBe(2);
    expect(parseQuantity("512Mi")).toBe(512 * 2 ** 20);
    expect(() => parseQuantity("2 cores")).toThrow(/not a Kubernetes quantity/);
    expect(formatCpu(2)).toBe("2");
    expect(formatCpu(0.25)).toBe("250m");
    expect(sameCpu("1000m", 1)).toBe(true);
  });

  it("writes a Guaranteed, resizable pod template and a resize patch that merges by container name", () => {
    const d = workerDeployment("digits", "cnn-small", 2, 1, {
      image: "sloserve:latest",
      port: 9000,
      memory: "512Mi",
      modelPath: "models/digits/cnn-small/model.onnx",
      unreachableTolerationSeconds: 5,
      tokenSecret: "sloserve-worker-token",
    });
    const c = d.spec!.template.spec!.containers[0]!;
    expect(c.resources!.requests).toEqual(c.resources!.limits);
    expect(c.resizePolicy).toContainEqual({ resourceName: "cpu", restartPolicy: "NotRequired" });
    expect(d.metadata!.annotations!["sloserve.io/target-cpu"]).toBe("2");
    expect(resizePatch(1.5)).toEqual({
      spec: { containers: [{ name: "worker", resources: { requests: { cpu: "1500m" }, limits: { cpu: "1500m" } } }] },
    });
    expect(variantObjectName("vision", "ResNet_18")).toBe("sloserve-vision-resnet-18");
    expect(() => workerDeployment("bad task", "v", 1, 1, { ...d, modelPath: "" } as never)).toThrow(/label value/);
  });
});
