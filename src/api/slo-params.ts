// sloserve's request parameters (API.md): the deadline on the server's clock and the accuracy floor.
import { ApiError, type ParamValue } from "./types.js";

export interface SloTerms {
  /** Deadline on the router's clock (ms). */
  deadline: number;
  sloMs: number;
  minAccuracy: number;
  priority: number;
}

function num(params: Record<string, ParamValue>, key: string): number | undefined {
  const v = params[key];
  if (v === undefined) return undefined;
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n))
    throw new ApiError(400, `parameter '${key}' must be a number, got ${JSON.stringify(v)}`);
  return n;
}

/** 2001-09-09 in Unix ms: an absolute time below it is a duration or seconds sent by mistake. */
const UNIX_MS_FLOOR = 1e12;

function unixMs(params: Record<string, ParamValue>, key: string): number | undefined {
  const v = num(params, key);
  if (v !== undefined && v < UNIX_MS_FLOOR)
    throw new ApiError(
      400,
      `parameter '${key}' must be an absolute Unix time in milliseconds (like Date.now() + 50), got ${v}; for a duration use 'slo_ms'`,
    );
  return v;
}

/** A class hint from a header (`sloserve-priority`), read before the body: 0 or absent is the task's default. */
export function priorityHint(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new ApiError(
      400,
      `header 'sloserve-priority' must be a non-negative integer (1 = highest), got ${JSON.stringify(value.slice(0, 40))}`,
    );
  return n === 0 ? undefined : n;
}

/**
 * Precedence: `slo_ms`; else `deadline_unix_ms` (the remaining budget, measured from arrival or
 * from `sent_at_unix_ms` when the client's clock runs ahead of ours); else Triton's `timeout` (µs);
 * else the task's default.
 */
export function sloTerms(
  params: Record<string, ParamValue>,
  defaults: { sloMs: number; minAccuracy: number; priority?: number },
  receivedAtUnixMs: number,
  now: number,
): SloTerms {
  const slo = num(params, "slo_ms");
  const deadlineUnix = unixMs(params, "deadline_unix_ms");
  const sentAt = unixMs(params, "sent_at_unix_ms");
  const timeoutUs = num(params, "timeout");
  const minAccuracy = num(params, "min_accuracy") ?? defaults.minAccuracy;
  const priority = num(params, "priority") ?? 0;
  if (slo !== undefined && slo <= 0) throw new ApiError(400, `parameter 'slo_ms' must be positive, got ${slo}`);
  if (timeoutUs !== undefined && (!Number.isInteger(timeoutUs) || timeoutUs <= 0))
    throw new ApiError(400, `parameter 'timeout' must be a positive integer number of µs (Triton's), got ${timeoutUs}`);
  if (minAccuracy < 0 || minAccuracy > 1)
    throw new ApiError(400, `parameter 'min_accuracy' must be within 0..1 (a fraction, e.g. 0.98), got ${minAccuracy}`);
  if (!Number.isInteger(priority) || priority < 0)
    throw new ApiError(
      400,
      `parameter 'priority' must be a non-negative integer (1 = highest, 0 = default), got ${priority}`,
    );
  if (sentAt !== undefined && deadlineUnix === undefined)
    throw new ApiError(400, "parameter 'sent_at_unix_ms' only makes sense with 'deadline_unix_ms'");
  let budget: number;
  if (slo !== undefined) budget = slo;
  else if (deadlineUnix !== undefined) budget = deadlineUnix - Math.max(receivedAtUnixMs, sentAt ?? receivedAtUnixMs);
  else if (timeoutUs !== undefined) budget = timeoutUs / 1000;
  else budget = defaults.sloMs;
  // Triton's 0 is "the default class": the task's (task.yaml priority), else 1
  return {
    deadline: now + budget,
    sloMs: budget,
    minAccuracy,
    priority: priority === 0 ? (defaults.priority ?? 1) : priority,
  };
}
