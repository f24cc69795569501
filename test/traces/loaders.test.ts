// Each loader on small files written here (always) and on slices of the real traces in
// ../shared/traces (when that folder is present).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { newMeta, type ArrivalTrace } from "../../src/traces/arrival-trace.js";
import {
  azureAggregateSeries,
  azureFunctionSeries,
  loadAzureAggregate,
  loadAzureDurations,
  loadAzureFunctions,
  loadAzureMemory,
} from "../../src/traces/azure-functions.js";
import { loadAzureLlmTrace, parseTimestampMs } from "../../src/traces/azure-llm.js";
import { arrivalsFromCounts, countsFromArrivals } from "../../src/traces/convert.js";
import { poissonArrivals } from "../../src/traces/generators.js";
import { forEachLine, parseNumber } from "../../src/traces/line-reader.js";
import {
  attachBudgets,
  budgetsPerSecond,
  KIB,
  loadBandwidthLog,
  networkTimesMs,
} from "../../src/traces/lte-bandwidth.js";
import { divideCounts } from "../../src/traces/rescale.js";
import { sliceSeries } from "../../src/traces/slice.js";
import { arrivalMeanRate, interArrivalCv2, seriesStats } from "../../src/traces/stats.js";
import {
  IPA_DIVISOR,
  loadTwitterRates,
  loadTwitterTrace,
  PAPER_WINDOWS,
  THEMIS_DIVISORS,
} from "../../src/traces/twitter.js";

const dir = mkdtempSync(path.join(tmpdir(), "sloserve-traces-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string) => {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
};

describe("line reader", () => {
  it("splits LF and CRLF lines across chunk boundaries, grows for long lines, keeps a last line without newline", () => {
    const long = "x".repeat(50);
    const f = write("lines.txt", `a,b\r\n\r\n${long}\nlast`);
    for (const chunk of [1, 3, 7, 1 << 20]) {
      const lines: string[] = [];
      forEachLine(f, (buf, s, e) => void lines.push(buf.toString("latin1", s, e)), chunk);
      expect(lines).toEqual(["a,b", "", long, "last"]);
    }
    const seen: number[] = [];
    forEachLine(f, (_b, _s, _e, n) => {
      seen.push(n);
      return n < 1;
    });
    expect(seen).toEqual([0, 1]);
  });

  it("parses numbers from bytes like Number() does", () => {
    for (const s of ["0", "42", "-3.5", "51.0638457375333", "1e3", " 7 ", "3.73004886707942", "+2"]) {
      const b = Buffer.from(s);
      expect(parseNumber(b, 0, b.length)).toBe(Number(s));
    }
    for (const s of ["", "abc", "1.2.3", "5x"]) expect(parseNumber(Buffer.from(s), 0, s.length)).toBeNaN();
  });
});

describe("Twitter loader (generated file)", () => {
  it("reads counts and marks long zero runs as gaps", () => {
    const counts = [5, 6, ...new Array(700).fill(0), 7, 0, 0, 8];
    const f = write("tw.txt", counts.join(" ") + " ");
    const s = loadTwitterRates(f);
    expect(Array.from(s.counts)).toEqual(counts);
    expect(s.gaps).toEqual([[2, 702]]);
    expect(s.binMs).toBe(1000);
    expect(seriesStats(s).mean).toBeCloseTo((5 + 6 + 7 + 8) / 6, 12);
    const arr = arrivalsFromCounts(s, { seed: 1 });
    expect(arr.times.length).toBe(26);
    expect(arr.gaps).toEqual([[2000, 702_000]]);
    expect(arrivalMeanRate(arr)).toBeCloseTo(26 / 6, 9);
  });
});

describe("Azure Functions loader (generated files)", () => {
  // Upstream layout: owner/app/function hashes, a Trigger column, minutes named 1…N, CRLF.
  const header = "HashOwner,HashApp,HashFunction,Trigger,1,2,3,4";
  const rows = [
    "o1,a1,aaa111,http,1,0,2,0",
    "o2,a2,bbb222,timer,5,5,5,5",
    "o3,a3,bbb333,queue,0,9,0,0",
    "o4,a4,ccc444,http,0,0,0,0",
    "o5,a5,ddd555,http,3,3,3,3",
  ];
  const file = write("inv.csv", [header, ...rows].join("\r\n") + "\r\n");

  it("selects by hash (or unique prefix), by row, the N busiest, or all", () => {
    const byHash = loadAzureFunctions(file, { hashes: ["bbb333", "aaa"] });
    expect(byHash.functions.map((f) => [f.hash, f.row, f.total])).toEqual([
      ["bbb333", 2, 9],
      ["aaa111", 0, 3],
    ]);
    expect(Array.from(byHash.functions[0]!.counts)).toEqual([0, 9, 0, 0]);
    expect(byHash.rows).toBe(5);
    expect(() => loadAzureFunctions(file, { hashes: ["bbb"] })).toThrow(/matches 2/);
    expect(() => loadAzureFunctions(file, { hashes: ["zzz"] })).toThrow(/matches 0/);
    expect(loadAzureFunctions(file, { rows: [4, 1] }).functions.map((f) => f.hash)).toEqual(["ddd555", "bbb222"]);
    expect(() => loadAzureFunctions(file, { rows: [9] })).toThrow(/no data row 9/);
    expect(loadAzureFunctions(file, { top: 3 }).functions.map((f) => f.hash)).toEqual(["bbb222", "ddd555", "bbb333"]);
    expect(loadAzureFunctions(file).functions.map((f) => f.total)).toEqual([3, 20, 9, 0, 12]);
    expect(() => loadAzureFunctions(file, { top: 1, rows: [0] })).toThrow(/one of/);
  });

  it("reads only a window of minutes, and the busiest within it", () => {
    const w = loadAzureFunctions(file, { top: 2, firstMinute: 1, minutes: 2 });
    expect(w.firstMinute).toBe(1);
    expect(w.minutes).toBe(2);
    expect(w.functions.map((f) => [f.hash, Array.from(f.counts)])).toEqual([
      ["bbb222", [5, 5]],
      ["bbb333", [9, 0]],
    ]);
    expect(() => loadAzureFunctions(file, { firstMinute: 3, minutes: 2 })).toThrow(/outside/);
  });

  it("sums to an aggregate series and spreads minutes into arrivals", () => {
    const agg = azureAggregateSeries(file);
    expect(Array.from(agg.counts)).toEqual([9, 17, 10, 8]);
    expect(agg.binMs).toBe(60_000);
    const t = loadAzureFunctions(file, { hashes: ["bbb222"] });
    const s = azureFunctionSeries(t, t.functions[0]!);
    const arr = arrivalsFromCounts(s, { seed: 4 });
    expect(arr.times.length).toBe(20);
    expect(Array.from(countsFromArrivals(arr, 60_000).counts)).toEqual([5, 5, 5, 5]);
    expect(Array.from(azureFunctionSeries(t, loadAzureFunctions(file).functions).counts)).toEqual([9, 17, 10, 8]);
    const windowed = azureAggregateSeries(file, { firstMinute: 2 });
    expect(Array.from(windowed.counts)).toEqual([10, 8]);
    expect(windowed.meta.offsetS).toBe(120);
  });

  it("reads the aggregate, durations and memory files", () => {
    const aggFile = write("agg.csv", "minute,total_invocations,active_functions\n1,9,3\n2,17,4\n");
    const a = loadAzureAggregate(aggFile);
    expect(Array.from(a.series.counts)).toEqual([9, 17]);
    expect(Array.from(a.activeFunctions)).toEqual([3, 4]);
    const dur = write(
      "dur.csv",
      "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum\r\no1,a1,aaa111,224,1,224.0,224.0\r\n",
    );
    expect(loadAzureDurations(dur).get("aaa111")).toEqual({ Average: 224, Count: 1, Minimum: 224, Maximum: 224 });
    const mem = write("mem.csv", "HashOwner,HashApp,SampleCount,AverageAllocatedMb\no1,a1,900,188\n");
    expect(loadAzureMemory(mem).get("a1")).toEqual({ SampleCount: 900, AverageAllocatedMb: 188 });
  });

  it("breaks ties among the busiest by file order", () => {
    const ties = write(
      "ties.csv",
      "HashFunction,HashOwner,HashApp,minute_1\nf0,f0,f0,4\nf1,f1,f1,7\nf2,f2,f2,4\nf3,f3,f3,7\nf4,f4,f4,4\n",
    );
    expect(loadAzureFunctions(ties, { top: 3 }).functions.map((f) => f.hash)).toEqual(["f1", "f3", "f0"]);
    expect(loadAzureFunctions(ties, { top: 0 }).functions).toEqual([]);
  });

  it("rejects a non-count cell with its position", () => {
    const bad = write("bad.csv", "HashFunction,HashOwner,HashApp,minute_1,minute_2\nh,h,h,1,x\n");
    expect(() => loadAzureFunctions(bad)).toThrow(/row 1, minute 2/);
  });
});

describe("Azure LLM loader (generated file)", () => {
  const f = write(
    "llm.csv",
    "TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 23:59:59.5000000,10,1\r\n2023-11-17 00:00:00.2500000,20,2\r\n2023-11-17 00:00:03.0000001,30,3\r\n",
  );

  it("gives ms since the first request across a date change, with token columns", () => {
    const t = loadAzureLlmTrace(f);
    expect(t.times[0]).toBe(0);
    expect(t.times[1]).toBeCloseTo(750, 6);
    expect(t.times[2]).toBeCloseTo(3500.0001, 6);
    expect(t.durationMs).toBe(4000);
    expect(Array.from(t.columns!.contextTokens!)).toEqual([10, 20, 30]);
    expect(Array.from(t.columns!.generatedTokens!)).toEqual([1, 2, 3]);
    expect(t.meta.startEpochMs).toBe(Date.UTC(2023, 10, 16, 23, 59, 59, 500));
  });

  it("windows by seconds from the first request", () => {
    const t = loadAzureLlmTrace(f, { startS: 0.5, endS: 3 });
    expect(t.times.length).toBe(1);
    expect(t.times[0]).toBeCloseTo(250, 6);
    expect(t.durationMs).toBe(2500);
    expect(t.meta.offsetS).toBe(0.5);
  });

  it("parses timestamps and rejects malformed or unsorted ones", () => {
    const b = Buffer.from("2024-02-29T12:34:56.789");
    expect(parseTimestampMs(b, 0, b.length)).toBe(Date.UTC(2024, 1, 29, 12, 34, 56, 789));
    expect(() =>
      loadAzureLlmTrace(write("bad.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 xx:00:00,1,1\n")),
    ).toThrow(/bad timestamp/);
    expect(() =>
      loadAzureLlmTrace(
        write("uns.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 10:00:01,1,1\n2023-11-16 10:00:00,1,1\n"),
      ),
    ).toThrow(/not sorted/);
  });
});

describe("4G bandwidth log → remaining budgets (generated file)", () => {
  const f = write(
    "bw.log",
    ["1000 725 51.0 3.7 3263799 725", "2000 1725 51.0 3.7 1000000 1000", "3000 2725 51.0 3.7 4253502 1000"].join("\n") +
      "\n",
  );

  it("follows Sponge's rule: budget = int(SLO − payload / int(bytes/ms))", () => {
    const log = loadBandwidthLog(f);
    expect(log.bytesPerMs[0]).toBeCloseTo(3263799 / 725, 9);
    const net = networkTimesMs(log, 200 * KIB);
    expect(net[0]).toBeCloseTo(204_800 / 4501, 9);
    expect(net[1]).toBeCloseTo(204.8, 9);
    expect(Array.from(budgetsPerSecond(log))).toEqual([954, 795, 951]);
    expect(Array.from(budgetsPerSecond(log, { sloMs: 500, payloadBytes: 500 * KIB }))).toEqual([386, -12, 379]);
    expect(budgetsPerSecond(log, { sponge: false })[1]).toBeCloseTo(1000 - 204.8, 9);
  });

  it("gives each request the budget of the second it was sent in, wrapping past the log's end", () => {
    const log = loadBandwidthLog(f);
    const tr: ArrivalTrace = {
      times: Float64Array.from([0, 999, 1000, 2500, 3100, 7000]),
      durationMs: 8000,
      meta: newMeta("t"),
    };
    const withB = attachBudgets(tr, log);
    expect(Array.from(withB.budgetsMs!)).toEqual([954, 954, 795, 951, 954, 795]);
    expect(withB.columns!.networkMs![2]).toBeCloseTo(204.8, 9);
    expect(Array.from(attachBudgets(tr, log, {}, { offsetS: 1 }).budgetsMs!).slice(0, 3)).toEqual([795, 795, 951]);
    expect(() => attachBudgets(tr, log, {}, { wrap: false })).toThrow(/past the 3-s/);
  });
});

const SHARED = path.resolve("../shared/traces");
const real = (p: string) => path.join(SHARED, p);

describe.skipIf(!existsSync(SHARED))("real traces in ../shared/traces", () => {
  it("Twitter: 1,899,061 seconds, 21 daily gaps at 84,661 + k·86,400, the papers' windows", () => {
    const raw = loadTwitterTrace(real("twitter-2021-08/twitter_2021-08_tweets_per_second.txt"));
    const s = loadTwitterRates(real("twitter-2021-08/twitter_2021-08_tweets_per_second.txt"));
    expect(s.counts.length).toBe(1_899_061);
    expect(seriesStats({ ...s, gaps: undefined }).total).toBe(120_774_326);
    expect(s.gaps!.length).toBe(21);
    s.gaps!.forEach(([a, b], k) => {
      expect(Math.abs(a - (84_661 + k * 86_400))).toBeLessThanOrEqual(1);
      expect(b - a).toBeGreaterThanOrEqual(1_739);
      expect(b - a).toBeLessThanOrEqual(1_740);
    });
    const bursty = seriesStats(sliceSeries(s, PAPER_WINDOWS.ipaBursty));
    expect(bursty.bins).toBe(1200);
    expect(bursty.mean).toBeCloseTo(99.8, 1);
    expect(bursty.peak).toBe(274);
    expect(seriesStats(sliceSeries(s, PAPER_WINDOWS.ipaSteadyLow)).mean).toBeCloseTo(43.9, 1);
    const themis = sliceSeries(s, PAPER_WINDOWS.themis);
    expect(themis.meta.offsetS).toBe(1_301_490);
    const video = divideCounts(themis, THEMIS_DIVISORS.video, { minRate: 1 });
    for (const i of [0, 100, 659])
      expect(video.counts[i]).toBe(Math.max(1, Math.floor(raw.counts[1_301_490 + i]! / 4.384)));
    const v = seriesStats(video);
    expect(v.peak).toBeGreaterThan(55);
    expect(v.mean).toBeGreaterThan(25);
    const ipa = divideCounts(sliceSeries(s, PAPER_WINDOWS.ipaBursty), IPA_DIVISOR);
    expect(ipa.counts[0]).toBe(Math.floor(raw.counts[1_301_160]! / 8));
  });

  it("Azure Functions: 675 functions × 1,440 minutes, the busiest, a window, the aggregate", () => {
    const file = real("azure-functions-2019/invocations_per_function_1day_675fn.csv");
    const top = loadAzureFunctions(file, { top: 3 });
    expect(top.rows).toBe(675);
    expect(top.minutes).toBe(1440);
    expect(top.functions.map((f) => [f.hash.slice(0, 12), f.total])).toEqual([
      ["e8e6df2b37d3", 42_994],
      ["09d7799744d8", 32_772],
      ["f9a52e1b84e4", 26_715],
    ]);
    const hour = loadAzureFunctions(file, { hashes: ["e8e6df2b37d3"], firstMinute: 600, minutes: 60 }).functions[0]!;
    expect(Array.from(hour.counts)).toEqual(Array.from(top.functions[0]!.counts.subarray(600, 660)));
    const agg = azureAggregateSeries(file);
    const derived = loadAzureAggregate(real("azure-functions-2019/aggregate_per_minute_675fn.csv"));
    expect(Array.from(agg.counts)).toEqual(Array.from(derived.series.counts));
    const st = seriesStats(agg);
    expect(st.total).toBe(451_082);
    expect(st.peak).toBe(3127); // 52/s, as SOURCE.md says
    expect(st.mean / 60).toBeCloseTo(5.22, 2);
    const arr = arrivalsFromCounts(sliceSeries(agg, { startS: 0, durationS: 3600 }), { seed: 1 });
    expect(arr.times.length).toBe(Array.from(agg.counts.subarray(0, 60)).reduce((a, b) => a + b, 0));
    const d = loadAzureDurations(real("azure-functions-2019/durations_675fn.csv"));
    expect(d.size).toBe(675);
    expect(d.get(top.functions[0]!.hash)!.Average).toBeGreaterThan(0);
    expect(loadAzureMemory(real("azure-functions-2019/memory_675fn.csv")).size).toBeGreaterThan(0);
  });

  it("Azure LLM conv: 19,366 requests over 58.4 min, near-Poisson gaps, token means", () => {
    const t = loadAzureLlmTrace(real("azure-llm-2023/AzureLLMInferenceTrace_conv.csv"));
    expect(t.times.length).toBe(19_366);
    expect(new Date(t.meta.startEpochMs!).toISOString()).toBe("2023-11-16T18:15:46.680Z");
    expect(t.times[t.times.length - 1]! / 60_000).toBeCloseTo(58.36, 1);
    expect(arrivalMeanRate(t)).toBeCloseTo(5.53, 1);
    expect(Math.sqrt(interArrivalCv2(t.times))).toBeCloseTo(1.09, 1);
    const mean = (a: Int32Array) => a.reduce((x, y) => x + y, 0) / a.length;
    expect(Math.round(mean(t.columns!.contextTokens as Int32Array))).toBe(1155);
    expect(Math.round(mean(t.columns!.generatedTokens as Int32Array))).toBe(211);
    const w = loadAzureLlmTrace(real("azure-llm-2023/AzureLLMInferenceTrace_conv.csv"), { startS: 600, endS: 660 });
    const inWindow = t.times.filter((x) => x >= 600_000 && x < 660_000).length;
    expect(w.times.length).toBe(inWindow);
    expect(w.times[0]!).toBeCloseTo(t.times.find((x) => x >= 600_000)! - 600_000, 6);
  });

  it("4G log: 607 seconds, ~3,450 bytes/ms, 200-KB budgets between 525 and 970 ms", () => {
    const log = loadBandwidthLog(real("lte-bandwidth-4g/report_bus_0001.log"));
    expect(log.bytesPerMs.length).toBe(607);
    expect(log.bytesPerMs.reduce((a, b) => a + b, 0) / 607).toBeCloseTo(3450, -1);
    const b = budgetsPerSecond(log);
    expect(Math.min(...b)).toBe(525);
    expect(Math.max(...b)).toBe(970);
    expect(b[0]).toBe(954);
    const tr = attachBudgets(poissonArrivals(15, 600, 3), log);
    expect(tr.budgetsMs!.length).toBe(tr.times.length);
    expect(Math.min(...tr.budgetsMs!)).toBeGreaterThanOrEqual(525);
  });
});
