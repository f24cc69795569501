// The dashboard in a real browser: Debian's chromium driven by playwright-core against a live
// server under load. The live series must show data that arrived over Server-Sent Events (no
// reload), an autoscaler decision must be listed, and the screenshots the README shows are taken here.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { describe, expect, it } from "vitest";
import { startTestServer } from "../support/server.js";
import { float32Bytes, infer } from "../support/oip-client.js";

function findChromium(): string {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv && fs.existsSync(fromEnv)) return fromEnv;
  for (const name of ["chromium", "chromium-browser"]) {
    try {
      return execFileSync("which", [name], { encoding: "utf8" }).trim();
    } catch {
      // try the next name
    }
  }
  throw new Error(
    "chromium not found: the dashboard's browser test needs Debian's chromium. Install it with `sudo scripts/install-test-tools.sh` (apt-get install chromium), or point CHROMIUM_PATH at a Chromium binary.",
  );
}

describe("dashboard", () => {
  it("shows live series and the autoscaler's decisions under load", async () => {
    const executablePath = findChromium();
    const server = await startTestServer({
      cores: 2,
      deploy: [{ task: "digits", variant: "mlp-small", cores: 1 }],
      autoscaler: "themis",
    });
    let browser: Browser | undefined;
    const statuses: Promise<number>[] = [];
    const errors: string[] = [];
    try {
      const image = float32Bytes(new Float32Array(28 * 28).map((_, i) => (i % 7) / 7));
      const send = () =>
        statuses.push(
          infer(
            server.httpUrl,
            "/v2/models/digits/infer",
            [{ name: "image", datatype: "FP32", shape: [1, 1, 28, 28], binary: image }],
            { parameters: { binary_data_output: true } },
          ).then((r) => r.status),
        );
      // open loop: arrivals follow the clock, not the responses; a step up halfway makes the charts move
      const load = async (ms: number, rate: (elapsed: number) => number) => {
        const start = performance.now();
        let sent = 0;
        let due = 0;
        let last = start;
        while (performance.now() - start < ms) {
          const now = performance.now();
          due += ((now - last) / 1000) * rate(now - start);
          last = now;
          for (; sent < Math.floor(due); sent++) send();
          await new Promise((r) => setTimeout(r, 10));
        }
      };
      const loadStart = performance.now();
      const loading = load(12_000, (t) => (t < 6000 ? 50 : 150));

      browser = await chromium.launch({
        executablePath,
        args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
      });
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      page.on("pageerror", (e) => errors.push(e.message));
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      await new Promise((r) => setTimeout(r, 2000));
      await page.goto(server.httpUrl + "/");
      await page.waitForSelector('#status[data-state="live"]', { timeout: 10_000 });
      const firstFrame = Number(await page.getAttribute("#status", "data-t", { timeout: 10_000 }).catch(() => "0"));

      // the rate chart's latest point and the task's card both show the arrivals
      await page.waitForFunction(
        () => Number((document.getElementById("chart-rate") as HTMLElement).dataset.latest) > 0,
        undefined,
        { timeout: 10_000 },
      );
      const cardRate = await page.textContent('[data-target="digits"] [data-field="rate"]');
      expect(Number.parseFloat(cardRate ?? "")).toBeGreaterThan(0);
      await page.waitForFunction(
        () => Number((document.getElementById("chart-latency") as HTMLElement).dataset.latest) > 0,
        undefined,
        { timeout: 5000 },
      );
      expect(Number(await page.getAttribute("#chart-fleet", "data-latest"))).toBeGreaterThanOrEqual(1);
      // …and keep coming over the event stream while the page stays put
      await page.waitForFunction((t0) => Number(document.getElementById("status")!.dataset.t) > t0 + 2000, firstFrame, {
        timeout: 10_000,
      });
      expect(await page.locator(".chart canvas").count()).toBeGreaterThanOrEqual(5);

      await page.waitForSelector('#decisions tbody tr[data-task="digits"]', { timeout: 10_000 });
      const decision = await page.textContent("#decisions tbody tr");
      expect(decision).toContain("themis");

      // near the end of the load, while it still runs: the charts show the step, the cards the high rate
      await new Promise((r) => setTimeout(r, Math.max(0, loadStart + 11_000 - performance.now())));
      fs.mkdirSync("docs", { recursive: true });
      await page.screenshot({ path: "docs/dashboard.png", fullPage: true });
      await loading;

      await page.click('nav a[data-tab="repository"]');
      await page.waitForSelector('#repository tr[data-variant="mlp-small"]', { timeout: 10_000 });
      await page.waitForFunction(() => document.querySelectorAll("#repository .chart canvas").length > 0, undefined, {
        timeout: 5000,
      });
      expect(await page.textContent('#repository tr[data-variant="mlp-small"]')).toContain("measured");
      // the ocr pipeline's graph: the recogniser waits for the detector and the optional classifier
      const graph = await page.$eval('#repository svg.pipeline-graph[data-pipeline="ocr"]', (svg) => ({
        stages: [...svg.querySelectorAll("g.stage")].map((g) => g.getAttribute("data-task")),
        optional: [...svg.querySelectorAll("g.stage.optional")].map((g) => g.getAttribute("data-task")),
        edges: [...svg.querySelectorAll("path.edge")].map(
          (l) => `${l.getAttribute("data-from")}>${l.getAttribute("data-to")}`,
        ),
      }));
      expect(graph.stages).toEqual(["ocr-det", "ocr-cls", "ocr-rec"]);
      expect(graph.optional).toEqual(["ocr-cls"]);
      expect(graph.edges.sort()).toEqual(["ocr-cls>ocr-rec", "ocr-det>ocr-cls", "ocr-det>ocr-rec"]);
      await page.screenshot({ path: "docs/dashboard-repository.png", fullPage: true });
      expect(errors).toEqual([]);

      // a shared 2-core machine also running chromium may miss a deadline; the dashboard is what is tested here
      const codes = await Promise.all(statuses);
      expect(codes.filter((c) => c === 200).length).toBeGreaterThan(0.9 * codes.length);
    } catch (err) {
      // a failed wait says only what it waited for; the page's own errors usually say why
      if (errors.length > 0) (err as Error).message += `\npage errors:\n${errors.join("\n")}`;
      throw err;
    } finally {
      await browser?.close();
      await Promise.allSettled(statuses);
      await server.close(5000);
    }
  }, 120_000);
});
