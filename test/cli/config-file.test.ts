import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { loadServeFile, mergeServeFile, ServeFile } from "../../src/cli/config-file.js";

const write = (text: string) => {
  const file = path.join(os.tmpdir(), `sloserve-config-${process.pid}-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  return file;
};

describe("serve config file", () => {
  it("applies the file over defaults, keeps flags typed on the command line, and parses deploy like --deploy", () => {
    const file = loadServeFile(
      write(
        "port: 9000\ncores: 1\nautoscaler: kpa\ndeploy: [digits=cnn-small:1, vision=resnet18]\ndecision-interval-ms: 500\n",
      ),
    );
    const defaults = {
      port: 8000,
      cores: 2,
      autoscaler: undefined as string | undefined,
      deploy: undefined as unknown,
      decisionIntervalMs: 1000,
      logLevel: "info",
    };
    const merged = mergeServeFile(
      defaults,
      file,
      (k) => k === "cores",
      (v) => v.split(","),
    );
    expect(merged).toEqual({
      port: 9000,
      cores: 2,
      autoscaler: "kpa",
      deploy: ["digits=cnn-small:1", "vision=resnet18"],
      decisionIntervalMs: 500,
      logLevel: "info",
    });
  });

  it("lists every problem with its key and what is allowed", () => {
    expect(() => loadServeFile(write("prot: 9000\ncores: 0\ndeploy: [digits]\n"))).toThrow(
      /unknown key\(s\) prot; known: models, host, port/,
    );
    expect(() => loadServeFile(write("cores: 0\ndeploy: [digits]\nforecaster: arima\n"))).toThrow(
      /cores: .*\n.*deploy\.0: each entry is task=variant\[:cores\].*\n.*forecaster/s,
    );
    expect(() => loadServeFile(write("port: [1\n"))).toThrow(/config .*yaml/);
  });

  it("takes only keys that are also flags of serve, and every such flag exists", () => {
    const help = execFileSync(process.execPath, ["bin/sloserve.js", "serve", "--help"], { encoding: "utf8" });
    for (const key of Object.keys(ServeFile.shape)) expect(help, `--${key}`).toContain(`--${key} `);
  });
});
