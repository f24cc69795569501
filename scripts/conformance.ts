// `npm run conformance [-- --json]`: runs the conformance suite (test/conformance) and reports it
// per client: passed, failed, skipped. With --json, one JSON object; then, always, a last line
// "N passed, M failed". Exits non-zero when a check failed.
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";

const GROUPS: Record<string, string> = {
  "tritonclient-http.test.ts": "tritonclient_http",
  "tritonclient-grpc.test.ts": "tritonclient_grpc",
  "oip-grpcio.test.ts": "oip_grpcio",
  "perf-analyzer.test.ts": "perf_analyzer",
  "triton-metrics.test.ts": "triton_metrics",
};

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
  failures: string[];
}

interface VitestJson {
  testResults: {
    name: string;
    message?: string;
    assertionResults: { title: string; status: string; failureMessages: string[] }[];
  }[];
}

const json = process.argv.includes("--json");
const out = path.join(await fs.mkdtemp(path.join(os.tmpdir(), "sloserve-conformance-run-")), "vitest.json");
const code = await new Promise<number | null>((resolve) => {
  const child = spawn(
    process.execPath,
    [
      path.resolve("node_modules/vitest/vitest.mjs"),
      "run",
      "test/conformance",
      "--reporter=default",
      "--reporter=json",
      `--outputFile.json=${out}`,
    ],
    // the human-readable progress goes to stderr: stdout carries only the summary
    { stdio: ["ignore", process.stderr, process.stderr] },
  );
  child.on("close", resolve);
});

let report: VitestJson;
try {
  report = JSON.parse(await fs.readFile(out, "utf8")) as VitestJson;
} catch {
  console.error(`vitest wrote no report (exit ${code})`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}
await fs.rm(path.dirname(out), { recursive: true, force: true });

const empty = (): Counts => ({ passed: 0, failed: 0, skipped: 0, failures: [] });
const groups: Record<string, Counts> = {};
for (const name of Object.values(GROUPS)) groups[name] = empty();
for (const file of report.testResults) {
  const group = (groups[GROUPS[path.basename(file.name)] ?? path.basename(file.name)] ??= empty());
  if (file.assertionResults.length === 0 && file.message) {
    group.failed += 1;
    group.failures.push(`${path.basename(file.name)}: ${file.message.split("\n")[0]}`);
  }
  for (const t of file.assertionResults) {
    if (t.status === "passed") group.passed += 1;
    else if (t.status === "failed") {
      group.failed += 1;
      group.failures.push(`${t.title}: ${(t.failureMessages[0] ?? "").split("\n")[0]}`);
    } else group.skipped += 1;
  }
}

const total = Object.values(groups).reduce((a, g) => ({ passed: a.passed + g.passed, failed: a.failed + g.failed }), {
  passed: 0,
  failed: 0,
});
if (json) {
  console.log(JSON.stringify(groups));
} else {
  console.log("client              passed  failed  skipped");
  for (const [name, g] of Object.entries(groups)) {
    console.log(
      `${name.padEnd(20)}${String(g.passed).padStart(6)}${String(g.failed).padStart(8)}${String(g.skipped).padStart(9)}`,
    );
    for (const f of g.failures) console.log(`  FAILED ${f}`);
  }
}
console.log(`${total.passed} passed, ${total.failed} failed`);
process.exit(total.failed > 0 || code !== 0 ? 1 : 0);
