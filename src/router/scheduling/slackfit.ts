// SuperServe's SlackFit (EXPERIMENTS.md; reconstructed, the paper's text was not available): one
// EDF queue; a profile table of (subnet, batch) → (latency, accuracy) over the Pareto subnets, its
// latency range cut into buckets of a fixed width. When an instance can take a batch, slack =
// deadline of the most urgent request − when that batch would start; among the configurations that
// fit the slack (and the requests queued), take the bucket with the largest latency and, in it, the
// largest batch (ties: the more accurate subnet); run that many requests in EDF order. Much slack
// picks slow, accurate subnets; a burst shrinks the slack and so picks fast subnets with big
// batches, with no load estimator.
//
// The table holds what the profile measured: each (subnet, batch, cores) point's p99, interpolated
// between profiled batch sizes (stats/measured-latency.ts), so a batch size whose time jumps off the
// fitted curve is predicted as it ran. The batch may go to a prefetch slot behind a running batch
// (the router's default two slots per instance): its slack is counted from when the batches ahead of
// it are predicted to end, not from now. It is decided late, shortly before the running batch is
// expected to end (its median), so that it travels to the worker while that batch still runs but
// takes the requests that arrived meanwhile: filled at once, a prefetch slot would take whatever
// single request came first and keep SlackFit from ever seeing a backlog to batch.
//
// Hopeless requests (no configuration meeting their floor finishes within their slack, even alone
// on the fastest subnet) are dropped as 504, as every other policy here does: they are lost
// either way, and running them would take the instance time the requests behind them still need.
// A task that serves late instead runs them at once on the fastest subnet with as large a batch as
// the queue fills, which ends their lateness and the backlog behind them soonest. Floors are checked
// per subnet: a request is never run on a subnet below its floor.
import type { RequestQueue } from "../queue.js";
import type { Request } from "../request.js";
import {
  eligible,
  measuredP99,
  onInstance,
  subnetFloor,
  type InstanceView,
  type NextBatch,
  type PolicyContext,
  type SchedulingPolicy,
  type VariantModel,
} from "./types.js";

/**
 * Bucket width as a fraction of the task's SLO, chosen by the sweep in experiments/superserve
 * (results.md, "Bucket width"): the narrowest width whose attainment is within 1 point of the best
 * on every swept trace. Narrower buckets chase the latency closest to the slack and finish batches
 * at the deadline's edge, where a batch a little slower than its p99 prediction is late (0.02–0.1:
 * 2–4 points less attainment); wider ones favour bigger batches and cost ≤ 0.4 points of accuracy.
 */
export const SLACKFIT_DEFAULT_BUCKET_FRACTION = 0.2;

export interface SlackFitOptions {
  /** Bucket width as a fraction of the task's SLO (default SLACKFIT_DEFAULT_BUCKET_FRACTION). */
  bucketFraction?: number;
  /** Bucket width in ms; wins over `bucketFraction`. */
  bucketMs?: number;
  /**
   * What the table's latencies come from: the profile's measured points (their p99, interpolated;
   * the default) or its p99 fit (the earlier SlackFit, kept to measure the difference).
   */
  predictFrom?: "points" | "fit";
  /**
   * When a prefetch slot is filled: "late" (default), `prefetchLeadFraction` × SLO before the running
   * batch is expected to end; "eager", as soon as the slot is free (as EDF does).
   */
  prefetch?: "late" | "eager";
  /** Lead of a late prefetch as a fraction of the SLO (default SLACKFIT_DEFAULT_PREFETCH_LEAD). */
  prefetchLeadFraction?: number;
}

/**
 * A late prefetch is sent this fraction of the SLO before the running batch is expected to end: 1 ms
 * for the digits supernet (SLO 50 ms), about a batch's trip to its worker on this machine; 10 ms for the
 * vision one, whose inputs are 190 times larger.
 */
export const SLACKFIT_DEFAULT_PREFETCH_LEAD = 0.02;

/** One row of the profile table. */
export interface SlackFitConfig {
  model: VariantModel;
  batch: number;
  latency: number;
}

/** A variant's table on one core count: its Pareto configurations, fastest first. */
interface ProfileTable {
  configs: SlackFitConfig[];
  /** Least latency in the table: bucket 0 starts here. */
  lo: number;
  /** The subnets (or the variant itself) the table was built from. */
  models: readonly VariantModel[];
  /** What the table's latencies come from, for batches it did not list. */
  predict: (model: VariantModel, rows: number) => number;
  /** A batch's expected (median) time. */
  expect: (model: VariantModel, rows: number) => number;
}

export class SlackFitPolicy implements SchedulingPolicy {
  readonly name = "slackfit";
  readonly order = "deadline" as const;
  readonly switchesSubnets = true;
  /** Per model (a variant, or one instance's corrected view of it) and core count, with the model's revision. */
  private readonly tables = new WeakMap<VariantModel, Map<number, { revision: number; table: ProfileTable }>>();

  constructor(private readonly opts: SlackFitOptions = {}) {
    const w = opts.bucketMs ?? opts.bucketFraction;
    if (w !== undefined && !(w > 0)) throw new Error(`SlackFit bucket width must be positive, got ${w}`);
  }

  bucketWidth(sloMs: number): number {
    return this.opts.bucketMs ?? (this.opts.bucketFraction ?? SLACKFIT_DEFAULT_BUCKET_FRACTION) * sloMs;
  }

  nextBatch(inst: InstanceView, queue: RequestQueue, ctx: PolicyContext): NextBatch {
    const model = ctx.variant(inst.variant);
    if (!model) return { kind: "idle" };
    const v = onInstance(model, inst);
    const start = ctx.startAt(inst);
    if (start > ctx.now && this.opts.prefetch !== "eager") {
      const lead = (this.opts.prefetchLeadFraction ?? SLACKFIT_DEFAULT_PREFETCH_LEAD) * ctx.task.sloMs;
      const until = ctx.expectedStartAt(inst) - lead;
      if (until > ctx.now) return { kind: "wait", until };
    }
    const table = this.table(v, inst.cores);
    const width = this.bucketWidth(ctx.task.sloMs);
    const drop: Request[] = [];
    for (let i = 0; i < queue.length; i++) {
      const head = queue.at(i)!;
      if (!eligible(head, v, true)) continue;
      const floor = floorOf(head, v);
      const available = rowsAvailable(queue, i, v, v.maxBatch);
      const pick = chooseConfig(table, head.deadline - start, available, floor, width);
      if (pick) return batchOf(queue, i, v, pick.model, pick.batch, drop, table);
      if (head.lateOk) return batchOf(queue, i, v, fastestModel(table, floor, head.rows), v.maxBatch, drop, table);
      drop.push(head);
    }
    return { kind: "idle", drop };
  }

  private table(v: VariantModel, cores: number): ProfileTable {
    let byCores = this.tables.get(v);
    if (!byCores) this.tables.set(v, (byCores = new Map()));
    const revision = v.revision ?? 0;
    let t = byCores.get(cores);
    if (!t || t.revision !== revision) {
      const fit = this.opts.predictFrom === "fit";
      t = { revision, table: buildTable(v, cores, fit ? byFit : measuredP99, fit ? byFit : measuredMedian) };
      byCores.set(cores, t);
    }
    return t.table;
  }
}

/** Predicted latency of `rows` rows of a subnet (or variant) on `cores`. */
type Predictor = (model: VariantModel, rows: number, cores: number) => number;

const byFit: Predictor = (m, rows, cores) => m.latency(rows, cores);
/** The measured points' median, else the fit. */
const measuredMedian: Predictor = (m, rows, cores) =>
  m.measured ? m.measured.median(rows, cores) : m.latency(rows, cores);

/**
 * The configuration SlackFit runs: of those within `slack` whose batch the queue can fill and whose
 * accuracy meets `floor`, the bucket with the largest latency, then the largest batch, then the
 * higher accuracy. Undefined when none fits.
 */
export function chooseConfig(
  table: { configs: readonly SlackFitConfig[]; lo: number },
  slack: number,
  availableRows: number,
  floor: number,
  width: number,
): SlackFitConfig | undefined {
  let best: SlackFitConfig | undefined;
  let bestBucket = -1;
  for (const c of table.configs) {
    if (c.latency > slack) break; // fastest first: nothing further fits either
    if (c.batch > availableRows || c.model.accuracy < floor) continue;
    const bucket = Math.floor((c.latency - table.lo) / width);
    if (
      !best ||
      bucket > bestBucket ||
      (bucket === bestBucket &&
        (c.batch > best.batch || (c.batch === best.batch && c.model.accuracy > best.model.accuracy)))
    ) {
      best = c;
      bestBucket = bucket;
    }
  }
  return best;
}

/** Every (Pareto subnet, batch) of a variant on `cores`, fastest first; an ordinary variant is its own one subnet. */
export function buildTable(
  v: VariantModel,
  cores: number,
  predict: Predictor = measuredP99,
  expect: Predictor = measuredMedian,
): ProfileTable {
  const models = v.subnets?.length ? paretoSubnets(v.subnets, v.maxBatch, cores, predict) : [v];
  const configs: SlackFitConfig[] = [];
  for (const m of models)
    for (let b = 1; b <= v.maxBatch; b++) configs.push({ model: m, batch: b, latency: predict(m, b, cores) });
  configs.sort((a, b) => a.latency - b.latency || b.batch - a.batch || b.model.accuracy - a.model.accuracy);
  return {
    configs,
    lo: configs[0]!.latency,
    models,
    predict: (m, rows) => predict(m, rows, cores),
    expect: (m, rows) => expect(m, rows, cores),
  };
}

/**
 * Subnets no other subnet beats on accuracy and latency at every batch size. variant.yaml already
 * lists a Pareto front, but measured on one batch size and core count; the other points can disagree.
 */
export function paretoSubnets(
  subnets: readonly VariantModel[],
  maxBatch: number,
  cores: number,
  predict: Predictor = measuredP99,
): VariantModel[] {
  const lat = subnets.map((s) => Array.from({ length: maxBatch }, (_, b) => predict(s, b + 1, cores)));
  return subnets.filter(
    (s, i) =>
      !subnets.some((o, j) => {
        if (j === i || o.accuracy < s.accuracy) return false;
        const noSlower = lat[j]!.every((l, b) => l <= lat[i]![b]!);
        const strictly = o.accuracy > s.accuracy || lat[j]!.some((l, b) => l < lat[i]![b]!);
        return noSlower && strictly;
      }),
  );
}

/** The least subnet accuracy a request accepts; an ordinary variant has passed `eligible` already. */
function floorOf(r: Request, v: VariantModel): number {
  return v.subnets?.length ? subnetFloor(r, v.subnets) : Number.NEGATIVE_INFINITY;
}

/** Rows of requests from `from` on that the variant may serve, counted up to `cap`. */
function rowsAvailable(queue: RequestQueue, from: number, v: VariantModel, cap: number): number {
  let rows = 0;
  for (let i = from; i < queue.length && rows < cap; i++) {
    const r = queue.at(i)!;
    if (eligible(r, v, true)) rows += r.rows;
  }
  return Math.min(rows, cap);
}

/** The fastest model meeting `floor` for `rows` rows (the most accurate when none meets it: a pin). */
function fastestModel(table: ProfileTable, floor: number, rows: number): VariantModel {
  const ok = table.models.filter((m) => m.accuracy >= floor);
  const pool = ok.length > 0 ? ok : table.models;
  return pool.reduce((a, b) => (table.predict(b, rows) < table.predict(a, rows) ? b : a));
}

/** Up to `batch` rows from `from` on, in EDF order, of requests whose floor `model` meets. */
function batchOf(
  queue: RequestQueue,
  from: number,
  v: VariantModel,
  model: VariantModel,
  batch: number,
  drop: Request[],
  table: ProfileTable,
): NextBatch {
  const take: Request[] = [];
  let rows = 0;
  for (let i = from; i < queue.length && rows < batch; i++) {
    const r = queue.at(i)!;
    if (!eligible(r, v, true) || floorOf(r, v) > model.accuracy) continue;
    if (take.length > 0 && rows + r.rows > batch) break;
    take.push(r);
    rows += r.rows;
  }
  return {
    kind: "batch",
    choice: {
      variant: v.name,
      subnet: model.subnet,
      take,
      drop,
      predictedMs: table.predict(model, rows),
      expectedMs: table.expect(model, rows),
    },
  };
}
