// The metrics side of "existing Triton tools work unchanged": sloserve's own /metrics passes
// `promtool check metrics`, and the Triton port serves every family and label of Triton's metrics
// documentation that applies to CPU serving, in Triton's units and reason values, so Triton's
// published Grafana dashboards have data in every CPU-serving panel.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startConformanceServer, type ConformanceServer } from "./support.js";

let s: ConformanceServer;
let base: string;

beforeAll(async () => {
  s = await startConformanceServer();
  base = s.server.httpUrl;
});
afterAll(async () => {
  await s?.close();
});

const image = () => Array.from({ length: 784 }, (_, i) => (i % 7) / 7);
async function infer(model: string, parameters: Record<string, unknown> = {}): Promise<number> {
  const body =
    model === "mnist-e2e"
      ? { parameters, inputs: [{ name: "raw", datatype: "UINT8", shape: [1, 28, 28], data: Array(784).fill(3) }] }
      : { parameters, inputs: [{ name: "image", datatype: "FP32", shape: [1, 1, 28, 28], data: image() }] };
  const res = await fetch(`${base}/v2/models/${model}/infer`, { method: "POST", body: JSON.stringify(body) });
  await res.arrayBuffer();
  return res.status;
}

/** Samples of one family as {labels, value}. */
function samples(text: string, family: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split("\n")) {
    const m = new RegExp(`^${family}(?:\\{([^}]*)\\})? (\\S+)$`).exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const kv of (m[1] ?? "").matchAll(/(\w+)="([^"]*)"/g)) labels[kv[1]!] = kv[2]!;
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

const triton = async () => (await fetch(s.server.tritonMetricsUrl)).text();

describe("triton_metrics", () => {
  beforeAll(async () => {
    for (let i = 0; i < 20; i++) expect(await infer("digits")).toBe(200);
    expect(await infer("mnist-e2e")).toBe(200);
    // a 1-µs budget: refused by the scheduler (Triton: REJECTED)
    expect(await infer("digits", { timeout: 1 })).toBe(504);
  });

  it("sloserve's own /metrics passes promtool check metrics", async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    const child = execFile("promtool", ["check", "metrics"]);
    child.stdin!.end(text);
    let out = "";
    child.stdout!.on("data", (b) => (out += b));
    child.stderr!.on("data", (b) => (out += b));
    const code = await new Promise<number | null>((r) => child.on("close", r));
    expect(out.trim(), "promtool (Debian package 'prometheus', installed by scripts/install-test-tools.sh)").toBe("");
    expect(code).toBe(0);
  });

  it("serves every per-model family of Triton's documentation, labelled model and version, in µs", async () => {
    const text = await triton();
    for (const family of [
      "nv_inference_request_success",
      "nv_inference_count",
      "nv_inference_exec_count",
      "nv_inference_request_duration_us",
      "nv_inference_queue_duration_us",
      "nv_inference_compute_input_duration_us",
      "nv_inference_compute_infer_duration_us",
      "nv_inference_compute_output_duration_us",
    ]) {
      expect(text).toMatch(new RegExp(`^# TYPE ${family} counter$`, "m"));
      const digits = samples(text, family).filter((x) => x.labels.model === "digits");
      expect(digits.length, family).toBeGreaterThan(0);
      for (const x of digits) expect(Object.keys(x.labels).sort(), family).toEqual(["model", "version"]);
      expect(
        digits.reduce((a, x) => a + x.value, 0),
        family,
      ).toBeGreaterThan(0);
    }
    // µs: the request durations agree with the statistics' nanoseconds
    const stats = await (await fetch(`${base}/v2/models/digits/versions/mlp-small/stats`)).json();
    const ns = stats.model_stats[0].inference_stats.success.ns as number;
    const us = samples(text, "nv_inference_request_duration_us").find((x) => x.labels.version === "mlp-small")!.value;
    expect(us).toBeGreaterThan((ns / 1000) * 0.95);
    expect(us).toBeLessThan((ns / 1000) * 1.05);
  });

  it("counts failures under Triton's reasons (REJECTED, CANCELED, BACKEND, OTHER)", async () => {
    const failures = samples(await triton(), "nv_inference_request_failure");
    expect(failures.find((x) => x.labels.model === "digits" && x.labels.reason === "REJECTED")?.value).toBeGreaterThan(
      0,
    );
    for (const x of failures) expect(["REJECTED", "CANCELED", "BACKEND", "OTHER"]).toContain(x.labels.reason);
  });

  it("serves Triton's CPU metrics: utilization in 0..1, memory in bytes as /proc/meminfo says", async () => {
    const text = await triton();
    for (const family of ["nv_cpu_utilization", "nv_cpu_memory_total_bytes", "nv_cpu_memory_used_bytes"])
      expect(text).toMatch(new RegExp(`^# TYPE ${family} gauge$`, "m"));
    const busy = Date.now() + 300;
    while (Date.now() < busy); // keep a core busy, so the interval's utilization cannot be 0
    const util = samples(await triton(), "nv_cpu_utilization")[0]!.value;
    expect(util).toBeGreaterThan(0);
    expect(util).toBeLessThanOrEqual(1);
    const total = samples(text, "nv_cpu_memory_total_bytes")[0]!.value;
    const used = samples(text, "nv_cpu_memory_used_bytes")[0]!.value;
    const memTotalKb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]);
    expect(total).toBe(memTotalKb * 1024);
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThan(total);
  });

  it("labels the pending request count with model and version (requests no variant was chosen for yet wait for the latest)", async () => {
    const pending = samples(await triton(), "nv_inference_pending_request_count");
    expect(pending.length).toBeGreaterThan(0);
    for (const x of pending) expect(Object.keys(x.labels).sort()).toEqual(["model", "version"]);
  });

  it("has metric series for pipelines", async () => {
    const success = samples(await triton(), "nv_inference_request_success");
    expect(success.find((x) => x.labels.model === "mnist-e2e")?.value).toBeGreaterThan(0);
  });

  it("counts a failed pipeline request under the pipeline, not its first stage", async () => {
    expect(await infer("mnist-e2e", { timeout: 1 })).toBe(504);
    const failures = samples(await triton(), "nv_inference_request_failure");
    expect(failures.find((x) => x.labels.model === "mnist-e2e")?.value).toBeGreaterThan(0);
    expect(failures.find((x) => x.labels.model === "mnist-prep")).toBeUndefined();
  });

  it("keeps promtool-clean and Triton names apart: no nv_ family on the REST port", async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).not.toMatch(/^nv_/m);
    await promisify(execFile)("promtool", ["--version"]);
  });
});
