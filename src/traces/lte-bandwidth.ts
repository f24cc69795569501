// The 4G/LTE bandwidth log Sponge replays (shared/traces/lte-bandwidth-4g, see its SOURCE.md): one
// line per second, `unix_time_ms elapsed_ms latitude longitude bytes_received duration_ms`.
// Sponge turns it into dynamic SLOs: a request sent in second i first spends payload/bandwidth_i
// crossing the mobile network, and only the rest of its SLO is left for inference. The authors'
// code (saeid93/sponge, `slas_workload_generator`) takes KB as 1024 bytes, truncates the bandwidth
// to whole bytes/ms and the budget to whole ms; `sponge: true` (the default) does the same.
import { derivedMeta, type ArrivalTrace } from "./arrival-trace.js";
import { forEachLine, parseNumber } from "./line-reader.js";

export interface BandwidthLog {
  file: string;
  unixMs: Float64Array;
  elapsedMs: Float64Array;
  latitude: Float64Array;
  longitude: Float64Array;
  bytes: Float64Array;
  durationMs: Float64Array;
  /** bytes_received / duration_ms of each line. */
  bytesPerMs: Float64Array;
}

export function loadBandwidthLog(file: string): BandwidthLog {
  const cols: number[][] = [[], [], [], [], [], []];
  forEachLine(file, (buf, start, end, lineNo) => {
    let field = 0;
    let i = start;
    while (i < end) {
      while (i < end && (buf[i] === 32 || buf[i] === 9)) i++;
      if (i === end) break;
      const fs = i;
      while (i < end && buf[i] !== 32 && buf[i] !== 9) i++;
      if (field < 6) cols[field]!.push(parseNumber(buf, fs, i));
      field++;
    }
    if (field === 0) return;
    if (field < 6) throw new Error(`${file}: line ${lineNo + 1} has ${field} fields, expected 6`);
  });
  const [unixMs, elapsedMs, latitude, longitude, bytes, durationMs] = cols.map((c) => Float64Array.from(c)) as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  const bytesPerMs = new Float64Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    if (!(bytes[i]! >= 0 && durationMs[i]! > 0))
      throw new Error(`${file}: line ${i + 1}: bad bytes ${bytes[i]} or duration ${durationMs[i]}`);
    bytesPerMs[i] = bytes[i]! / durationMs[i]!;
  }
  return { file, unixMs, elapsedMs, latitude, longitude, bytes, durationMs, bytesPerMs };
}

export const KIB = 1024;

export interface BudgetRule {
  /** End-to-end SLO in ms (the paper: 1000). */
  sloMs?: number;
  /** Request payload in bytes (the paper: 200 KB = 200·1024 bytes). */
  payloadBytes?: number;
  /** Reproduce the authors' integer truncations (default true). */
  sponge?: boolean;
}

/** Network (upload) time of the payload in each second of the log, ms. */
export function networkTimesMs(log: BandwidthLog, payloadBytes = 200 * KIB, sponge = true): Float64Array {
  const out = new Float64Array(log.bytesPerMs.length);
  for (let i = 0; i < out.length; i++) {
    const bw = sponge ? Math.trunc(log.bytesPerMs[i]!) : log.bytesPerMs[i]!;
    out[i] = bw > 0 ? payloadBytes / bw : Infinity;
  }
  return out;
}

/** Remaining budget (SLO − network time) for a request sent in each second of the log, ms. May be negative. */
export function budgetsPerSecond(log: BandwidthLog, rule: BudgetRule = {}): Float64Array {
  const slo = rule.sloMs ?? 1000;
  const sponge = rule.sponge ?? true;
  const net = networkTimesMs(log, rule.payloadBytes ?? 200 * KIB, sponge);
  return net.map((n) => (sponge ? Math.trunc(slo - n) : slo - n));
}

export interface AttachOptions {
  /** Log second that time 0 of the trace maps to (default 0). */
  offsetS?: number;
  /** Past the log's end: start over from its beginning (default) or throw. */
  wrap?: boolean;
}

/**
 * The trace with each request's budget (and, as column `networkMs`, its network time) taken from
 * the log second it was sent in.
 */
export function attachBudgets(
  trace: ArrivalTrace,
  log: BandwidthLog,
  rule: BudgetRule = {},
  opts: AttachOptions = {},
): ArrivalTrace {
  const sponge = rule.sponge ?? true;
  const perSecond = budgetsPerSecond(log, rule);
  const net = networkTimesMs(log, rule.payloadBytes ?? 200 * KIB, sponge);
  const offset = opts.offsetS ?? 0;
  const wrap = opts.wrap ?? true;
  const n = perSecond.length;
  if (n === 0) throw new Error(`${log.file}: empty bandwidth log`);
  const budgets = new Float64Array(trace.times.length);
  const networkMs = new Float64Array(trace.times.length);
  for (let i = 0; i < budgets.length; i++) {
    let s = Math.floor(trace.times[i]! / 1000) + offset;
    if (s >= n || s < 0) {
      if (!wrap)
        throw new Error(
          `request at ${trace.times[i]} ms falls past the ${n}-s bandwidth log (offset ${offset} s); pass wrap: true`,
        );
      s = ((s % n) + n) % n;
    }
    budgets[i] = perSecond[s]!;
    networkMs[i] = net[s]!;
  }
  const payload = rule.payloadBytes ?? 200 * KIB;
  return {
    ...trace,
    budgetsMs: budgets,
    columns: { ...(trace.columns ?? {}), networkMs },
    meta: derivedMeta(
      trace.meta,
      `budgets: SLO ${rule.sloMs ?? 1000} ms − ${payload} B upload over ${log.file}${offset ? ` from second ${offset}` : ""}`,
    ),
  };
}
