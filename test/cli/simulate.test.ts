// `sloserve simulate` end to end, as a user runs it: a child process, flags, a table or JSON out.
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = (args: string[]) =>
  promisify(execFile)(process.execPath, ["bin/sloserve.js", "simulate", ...args], { timeout: 60_000 });

describe("sloserve simulate", () => {
  it("replays synthetic arrivals through the product's policies and reports a summary and a series", async () => {
    const csv = path.join(os.tmpdir(), `sloserve-sim-${process.pid}.csv`);
    const { stdout } = await run([
      "--task",
      "digits",
      "--rate",
      "200",
      "--duration",
      "20",
      "--scaling",
      "themis",
      "--json",
      "--series-csv",
      csv,
    ]);
    const s = JSON.parse(stdout);
    expect(s.requests).toBeGreaterThan(3500);
    expect(s.requests).toBeLessThan(4500);
    expect(s.attainmentPct).toBeGreaterThan(95);
    expect(s.meanCores).toBeGreaterThan(0);
    const lines = (await readFile(csv, "utf8")).trim().split("\n");
    expect(lines[0]).toBe("second,arrivals,answered,met,violations,attainmentPct,p50Ms,p99Ms,cores,instances");
    expect(lines.length).toBeGreaterThanOrEqual(21);
  });

  it("takes --start 0, sizes static for the window's peak and prints each policy's configuration", async () => {
    const trace = path.join(os.tmpdir(), `sloserve-sim-${process.pid}.txt`);
    await writeFile(trace, Array.from({ length: 30 }, (_, i) => (i < 20 ? 20 : 80)).join("\n"));
    const args = ["--task", "digits", "--trace", trace, "--format", "twitter", "--start", "0", "--duration", "30"];
    const sized = JSON.parse((await run([...args, "--scaling", "static", "--json"])).stdout);
    expect(sized.requests).toBe(20 * 20 + 10 * 80);
    expect(sized.scaling).toEqual([
      { target: "digits", policy: "static", configuration: expect.stringMatching(/^\d+ × 1 core\(s\), fixed$/) },
    ]);
    const fixed = JSON.parse(
      (await run([...args, "--scaling", "static", "--static-instances", "3", "--static-cores", "2", "--json"])).stdout,
    );
    expect(fixed.scaling[0].configuration).toBe("3 × 2 core(s), fixed");
    expect(fixed.peakCores).toBe(6);
    const kpa = JSON.parse((await run([...args, "--scaling", "kpa", "--json"])).stdout);
    expect(kpa.scaling[0].configuration).toMatch(/containerConcurrency from the profile × target 70 %/);
    await expect(run([...args, "--static-instances", "2"])).rejects.toMatchObject({
      stderr: expect.stringMatching(/add --scaling static/),
    });
  });

  it("says what to fix for a bad invocation", async () => {
    await expect(run(["--rate", "10", "--duration", "5"])).rejects.toMatchObject({
      stderr: expect.stringMatching(/--task or --pipeline/),
    });
    await expect(run(["--task", "nope", "--rate", "10", "--duration", "5"])).rejects.toMatchObject({
      stderr: expect.stringMatching(/no task 'nope'.*have: .*digits/),
    });
  });
});
