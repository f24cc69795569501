// `sloserve profile --update-from-serving`: the only way the online latency model's measurements reach the
// profile on disk. A running server keeps the last batch times it measured per (variant, subnet, cores,
// batch) (GET /sloserve/latency-model); each point measured often enough replaces the profile's point at
// that batch and cores (or is added), the fits are refitted on the result, and the profile records which
// points came from serving and when.
import { z } from "zod";
import type { Profile, ProfilePoint } from "../repository/schema.js";
import { fitInfaas, fitLatency } from "../stats/latency-model.js";

export const ServedPointSchema = z.object({
  task: z.string(),
  variant: z.string(),
  subnet: z.string().optional(),
  batch: z.number().int().positive(),
  cores: z.number().int().positive(),
  samples: z.number().int().positive(),
  p50_ms: z.number().positive(),
  p99_ms: z.number().positive(),
  mean_ms: z.number().positive(),
});
export type ServedPointRecord = z.infer<typeof ServedPointSchema>;

const LatencyModelReply = z.union([
  z.object({ enabled: z.literal(true), points: z.array(ServedPointSchema) }).passthrough(),
  z.object({ enabled: z.literal(false), note: z.string() }).passthrough(),
]);

/** The points a running sloserve measured (its /sloserve/latency-model). */
export async function fetchServedPoints(url: string): Promise<ServedPointRecord[]> {
  const at = `${url.replace(/\/$/, "")}/sloserve/latency-model`;
  let res: Response;
  try {
    res = await fetch(at);
  } catch (e) {
    throw new Error(`cannot reach ${at}: ${(e as Error).message}; is 'sloserve serve' running there (--url)?`);
  }
  if (!res.ok) throw new Error(`${at} answered ${res.status}; is that a sloserve server?`);
  const body = LatencyModelReply.safeParse(await res.json());
  if (!body.success) throw new Error(`${at} did not answer with a latency model: ${body.error.issues[0]?.message}`);
  if (!body.data.enabled)
    throw new Error(`the server at ${url} measures nothing: ${(body.data as { note: string }).note}`);
  return (body.data as { points: ServedPointRecord[] }).points;
}

export interface ServedUpdate {
  profile: Profile;
  /** What changed, per point: profile's p50 → served p50. */
  changes: { subnet?: string; batch: number; cores: number; from?: number; to: number; samples: number }[];
}

/**
 * The profile with the served points of its variant that have at least `minSamples` samples in place of its
 * own (same subnet, batch and cores), fits refitted; null when no point qualifies.
 */
export function mergeServedPoints(
  profile: Profile,
  served: readonly ServedPointRecord[],
  opts: { minSamples: number; source: string; defaultSubnet?: string; now?: Date },
): ServedUpdate | null {
  const mine = served.filter(
    (p) => p.task === profile.task && p.variant === profile.variant && p.samples >= opts.minSamples,
  );
  if (mine.length === 0) return null;
  const next: Profile = structuredClone(profile);
  const changes: ServedUpdate["changes"] = [];
  const put = (points: ProfilePoint[], p: ServedPointRecord): number | undefined => {
    const i = points.findIndex((q) => q.batch === p.batch && q.cores === p.cores);
    const point: ProfilePoint = {
      batch: p.batch,
      cores: p.cores,
      p50_ms: p.p50_ms,
      p99_ms: Math.max(p.p99_ms, p.p50_ms),
      mean_ms: p.mean_ms,
      samples: p.samples,
    };
    const before = i >= 0 ? points[i]!.p50_ms : undefined;
    if (i >= 0) points[i] = point;
    else points.push(point);
    points.sort((a, b) => a.cores - b.cores || a.batch - b.batch);
    return before;
  };
  for (const p of mine) {
    const sub = p.subnet;
    if (sub !== undefined && !next.subnets?.[sub]) continue; // a subnet the profile does not know
    const top = sub === undefined || sub === opts.defaultSubnet;
    let from: number | undefined;
    if (top) from = put(next.points, p);
    if (sub !== undefined) from = put(next.subnets![sub]!.points, p) ?? from;
    changes.push({
      ...(sub === undefined ? {} : { subnet: sub }),
      batch: p.batch,
      cores: p.cores,
      from,
      to: p.p50_ms,
      samples: p.samples,
    });
  }
  if (changes.length === 0) return null;
  refit(next);
  next.updated_from_serving = {
    at: (opts.now ?? new Date()).toISOString(),
    source: opts.source,
    points: changes.map((c) => ({
      ...(c.subnet === undefined ? {} : { subnet: c.subnet }),
      batch: c.batch,
      cores: c.cores,
    })),
  };
  return { profile: next, changes };
}

/** Refits every latency model of the profile on its (updated) points; a grid too thin to fit keeps its fit. */
function refit(p: Profile): void {
  const fits = (points: ProfilePoint[], old: Profile["fit"]) => {
    try {
      return {
        fit: { p50: fitLatency(points, "p50"), p99: fitLatency(points, "p99"), mean: fitLatency(points, "mean") },
        infaas: fitInfaas(points, "p99"),
      };
    } catch {
      return { fit: old, infaas: undefined };
    }
  };
  const top = fits(p.points, p.fit);
  p.fit = top.fit;
  if (top.infaas) p.infaas = top.infaas;
  for (const s of Object.values(p.subnets ?? {})) {
    const f = fits(s.points, s.fit);
    s.fit = f.fit;
    if (f.infaas) s.infaas = f.infaas;
  }
}
