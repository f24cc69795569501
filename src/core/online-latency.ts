// The online latency model: every executed batch's measured compute time corrects, per instance, what the
// profile predicts. Profiles are measured once, on a machine that may since have become slower or faster
// (a noisy neighbour, thermal limits, another CPU model, a pod's quota); planners, scheduling policies and
// the simulator trust them, and a wrong profile makes wrong plans that nothing notices. Here a batch of
// `rows` rows on `cores` cores that took t ms where the profile's median says m gives a residual
// r = ln(t/m). Each instance keeps
//   - its own factor f = e^ℓ, an exponentially weighted mean ℓ of r (weight 1/n at first, then α), and
//   - a factor per (subnet, cores, batch bucket) — buckets of powers of two — where batching or threads
//     deviate from the profile differently at different sizes; a cell is used once it has a few samples,
//   - a two-sided CUSUM on the residuals (stats/change-point.ts): when an instance (or its node) gets slower
//     or faster, the change point moves its factor and every cell at once to the new level, instead of
//     letting the weighted mean crawl there; the change is logged.
// A new instance starts from what its place (node, cores) showed, else from the whole cluster's speed.
// Policies read the correction through the VariantModel they already receive: the task's variants become
// views whose predictions (latency, measured quantiles, the fit planners use) are the profile's times the
// factor in use. A scheduling policy asks for one instance's view (VariantModel.on); the task-level view,
// which planners size new instances with, carries the fleet's factor: the capacity-equivalent mean
// n / Σ 1/f_i of its live instances (so the fleet's total capacity is what the instances really carry).
// Factors are republished only when they move by more than `publishStep`, so caches of predictions
// (SlackFit's tables) are rebuilt when something changed, not after every batch.
import type { TaskModel, VariantModel } from "../router/scheduling/types.js";
import type { LatencyParams } from "../stats/latency-model.js";
import type { LatencyQuantiles } from "../stats/measured-latency.js";
import { quantileSorted } from "../stats/quantile.js";
import { CHANGE_POINT_DEFAULTS, ChangeDetector, type ChangePointOptions } from "../stats/change-point.js";
import type { DriftEvent, LatencyCorrection } from "../autoscaler/types.js";

export interface OnlineLatencyOptions {
  /** Weight of a new batch in a warm factor (the forgetting rate). */
  alpha: number;
  /** Pseudo-samples a new instance's prior counts for. */
  priorWeight: number;
  /** Samples before a (subnet, cores, bucket) cell is used instead of the instance's factor. */
  cellSamples: number;
  /** Samples before change points are looked for (the noise scale is learnt meanwhile). */
  warmSamples: number;
  /** Relative move of a factor before it is republished. */
  publishStep: number;
  changePoint: ChangePointOptions;
  /** Measured times kept per (variant, subnet, cores, batch) for `points()` (0: none, the simulator's default). */
  keepSamples: number;
  /** Batches over which each instance's prediction error is reported. */
  errorWindow: number;
}

export const ONLINE_LATENCY_DEFAULTS: OnlineLatencyOptions = {
  alpha: 0.1,
  priorWeight: 1,
  cellSamples: 3,
  warmSamples: 8,
  publishStep: 0.02,
  changePoint: CHANGE_POINT_DEFAULTS,
  keepSamples: 0,
  errorWindow: 32,
};

/** One instance's correction, for operators (the server's /sloserve/latency-model). */
export interface InstanceCorrection {
  instance: string;
  task: string;
  variant: string;
  place?: string;
  factor: number;
  batches: number;
  /**
   * How its last batches compared with what was predicted for each before it was learnt from: `median` and
   * `p90` of |predicted − measured| / measured (each batch's error, the noise included), and `bias`, the
   * median of measured / predicted − 1 (how far off the model is as a whole: what planning depends on).
   */
  error: { median: number; p90: number; bias: number; batches: number };
  /** Cells in use: subnet, cores, batch range, factor, samples. */
  cells: { subnet?: string; cores: number; batches: string; factor: number; samples: number }[];
}

/** A measured point from serving, in a profile's terms. */
export interface ServedPoint {
  task: string;
  variant: string;
  subnet?: string;
  batch: number;
  cores: number;
  samples: number;
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
}

/** The power-of-two bucket of a batch: 1 → 0, 2 → 1, 3–4 → 2, 5–8 → 3, … */
export function batchBucket(rows: number): number {
  return rows <= 1 ? 0 : 32 - Math.clz32(rows - 1);
}

function bucketRange(b: number): string {
  if (b === 0) return "1";
  const lo = (1 << (b - 1)) + 1;
  const hi = 1 << b;
  return lo === hi ? String(hi) : `${lo}-${hi}`;
}

interface Cell {
  subnet: number;
  cores: number;
  bucket: number;
  log: number;
  n: number;
  /** The factor views read; NaN until the cell has `cellSamples` samples. */
  published: number;
}

interface Base {
  model: VariantModel;
  /** Subnet name → index (1-based; 0 is the variant itself). */
  subnets: Map<string, number>;
  /** Index → the subnet's base model (index 0: the variant). */
  byIndex: VariantModel[];
}

class InstanceBook {
  log: number;
  /** Samples the factor's weight counts (fewer than `seen` after a change point restarts it). */
  n = 0;
  /** Batches learnt from. */
  seen = 0;
  published: number;
  revision = 0;
  readonly cells = new Map<number, Cell>();
  readonly detector: ChangeDetector;
  readonly errors: Float64Array;
  /** measured / predicted of the same batches. */
  readonly ratios: Float64Array;
  errorCount = 0;
  /** Views of this instance by subnet index. */
  readonly views = new Map<number, VariantModel>();

  constructor(
    readonly id: string,
    readonly task: string,
    readonly variant: string,
    readonly place: string | undefined,
    readonly fleet: Fleet,
    prior: number,
    o: OnlineLatencyOptions,
  ) {
    this.log = prior;
    this.published = Math.exp(prior);
    this.detector = new ChangeDetector(o.changePoint);
    this.errors = new Float64Array(o.errorWindow);
    this.ratios = new Float64Array(o.errorWindow);
  }

  cell(subnet: number, cores: number, bucket: number): Cell {
    const key = (subnet * 1024 + cores) * 64 + bucket;
    let c = this.cells.get(key);
    if (!c) {
      c = { subnet, cores, bucket, log: this.log, n: 0, published: Number.NaN };
      this.cells.set(key, c);
    }
    return c;
  }

  /** The factor a view predicts with for this (subnet, rows, cores). */
  factor(subnet: number, rows: number, cores: number): number {
    const c = this.cells.get((subnet * 1024 + cores) * 64 + batchBucket(rows));
    return c !== undefined && c.published === c.published ? c.published : this.published;
  }
}

/** A variant's instances, and the factor the task-level view predicts with. */
interface Fleet {
  books: Set<InstanceBook>;
  factor: number;
  revision: number;
  dirty: boolean;
}

export class OnlineLatencyModel {
  private readonly o: OnlineLatencyOptions;
  private readonly bases = new Map<string, Map<string, Base>>();
  private readonly books = new Map<string, InstanceBook>();
  private readonly fleets = new Map<string, Fleet>();
  /** Cluster-wide and per-place weighted means of the residuals: a new instance's prior. */
  private machine = { log: 0, n: 0 };
  private readonly places = new Map<string, { log: number; n: number }>();
  private readonly drift: DriftEvent[] = [];
  /** Changes not yet reported in a decision, per task. */
  private readonly unreported = new Map<string, DriftEvent[]>();
  private readonly samples = new Map<
    string,
    { ring: Float64Array; count: number; point: Omit<ServedPoint, "samples" | "p50_ms" | "p99_ms" | "mean_ms"> }
  >();

  constructor(
    opts: Partial<OnlineLatencyOptions> = {},
    private readonly placeOf: (instanceId: string) => string | undefined = () => undefined,
    private readonly now: () => number = () => 0,
    private readonly onDrift: (e: DriftEvent) => void = () => undefined,
  ) {
    this.o = {
      ...ONLINE_LATENCY_DEFAULTS,
      ...opts,
      changePoint: { ...ONLINE_LATENCY_DEFAULTS.changePoint, ...opts.changePoint },
    };
  }

  /** The task with its variants replaced by corrected views; batches of it are learnt from from now on. */
  wrap(task: TaskModel): TaskModel {
    const bases = new Map<string, Base>();
    for (const v of task.variants) {
      const subnets = new Map<string, number>();
      const byIndex: VariantModel[] = [v];
      for (const s of v.subnets ?? []) {
        subnets.set(s.subnet!, byIndex.length);
        byIndex.push(s);
      }
      bases.set(v.name, { model: v, subnets, byIndex });
    }
    this.bases.set(task.name, bases);
    return {
      ...task,
      variants: task.variants.map((v) => this.fleetView(task.name, bases.get(v.name)!, 0)),
    };
  }

  /** Forgets a task (unloaded): its instances' books go with it. */
  unregister(task: string): void {
    this.bases.delete(task);
    for (const [id, b] of this.books) if (b.task === task) this.books.delete(id);
    for (const key of this.fleets.keys()) if (key.startsWith(`${task}\t`)) this.fleets.delete(key);
    this.unreported.delete(task);
  }

  /** Keeps the books of these instances only (the others have stopped). */
  retain(live: ReadonlySet<string>): void {
    for (const [id, b] of this.books)
      if (!live.has(id)) {
        this.books.delete(id);
        b.fleet.books.delete(b);
        b.fleet.dirty = true;
      }
  }

  /** Learns from one executed batch on `instance` (which has `cores` cores). */
  observe(
    b: { task: string; variant: string; subnet?: string; instance: string; rows: number; computeMs: number },
    cores: number,
  ): void {
    const base = this.bases.get(b.task)?.get(b.variant);
    if (!base || !(b.computeMs > 0) || !(cores >= 1)) return;
    const si = b.subnet === undefined ? 0 : (base.subnets.get(b.subnet) ?? 0);
    const m = base.byIndex[si]!;
    const expected = m.measured ? m.measured.median(b.rows, cores) : m.latency(b.rows, cores);
    if (!(expected > 0)) return;
    const r = Math.log(b.computeMs / expected);
    const book = this.book(b.instance, b.task, b.variant);
    const cell = book.cell(si, cores, batchBucket(b.rows));
    // the prediction the policies held for this batch, before it is learnt from
    const used = cell.published === cell.published ? cell.published : book.published;
    const slot = book.errorCount++ % book.errors.length;
    book.errors[slot] = Math.abs(used * expected - b.computeMs) / b.computeMs;
    book.ratios[slot] = b.computeMs / (used * expected);
    const o = this.o;
    if (book.n >= o.warmSamples) {
      const cp = book.detector.push(r - (cell.n >= o.cellSamples ? cell.log : book.log), r);
      if (cp) this.changed(book, cp.level, cp.direction, cp.samples);
    }
    book.n++;
    book.seen++;
    book.log += Math.max(o.alpha, 1 / (book.n + o.priorWeight)) * (r - book.log);
    cell.n++;
    cell.log += Math.max(o.alpha, 1 / cell.n) * (r - cell.log);
    this.learnPrior(book.place, r);
    this.publish(book);
    if (o.keepSamples > 0) this.keep(b, cores);
  }

  /** The correction a decision for `task` is made with; the changes since the last call for it. */
  correction(task: string): LatencyCorrection {
    const variants: Record<string, number> = {};
    for (const v of this.bases.get(task)?.keys() ?? []) variants[v] = round(this.fleetFactor(task, v));
    const instances: Record<string, number> = {};
    for (const v of this.bases.get(task)?.keys() ?? [])
      for (const b of this.fleetOf(task, v).books) if (b.n > 0) instances[b.id] = round(b.published);
    const changes = this.unreported.get(task) ?? [];
    this.unreported.delete(task);
    return { variants, instances, changes };
  }

  /** Every instance's correction (the server's /sloserve/latency-model). */
  instances(): InstanceCorrection[] {
    return [...this.books.values()].map((b) => {
      const n = Math.min(b.errorCount, b.errors.length);
      const errs = Float64Array.from(b.errors.subarray(0, n)).sort();
      const ratios = Float64Array.from(b.ratios.subarray(0, n)).sort();
      const base = this.bases.get(b.task)?.get(b.variant);
      return {
        instance: b.id,
        task: b.task,
        variant: b.variant,
        ...(b.place === undefined ? {} : { place: b.place }),
        factor: round(b.published),
        batches: b.seen,
        error: {
          median: quantileSorted(errs, 0.5),
          p90: quantileSorted(errs, 0.9),
          bias: quantileSorted(ratios, 0.5) - 1,
          batches: n,
        },
        cells: [...b.cells.values()]
          .filter((c) => c.published === c.published)
          .map((c) => ({
            ...(c.subnet > 0 && base ? { subnet: base.byIndex[c.subnet]!.subnet } : {}),
            cores: c.cores,
            batches: bucketRange(c.bucket),
            factor: round(c.published),
            samples: c.n,
          })),
      };
    });
  }

  /** The fleet factor per task and variant. */
  fleet(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [task, vs] of this.bases) {
      out[task] = {};
      for (const v of vs.keys()) out[task]![v] = round(this.fleetFactor(task, v));
    }
    return out;
  }

  /** An instance's factor over the profile (undefined before its first batch): lower is faster. */
  speedOf(instance: string): number | undefined {
    const b = this.books.get(instance);
    return b && b.n > 0 ? b.published : undefined;
  }

  /** Every change point so far (the last 200). */
  changes(): readonly DriftEvent[] {
    return this.drift;
  }

  /** The measured times kept (keepSamples > 0) as profile points: what `sloserve profile --update-from-serving` writes. */
  points(): ServedPoint[] {
    const out: ServedPoint[] = [];
    for (const s of this.samples.values()) {
      const n = Math.min(s.count, s.ring.length);
      const sorted = Float64Array.from(s.ring.subarray(0, n)).sort();
      let sum = 0;
      for (const x of sorted) sum += x;
      out.push({
        ...s.point,
        samples: n,
        p50_ms: quantileSorted(sorted, 0.5),
        p99_ms: quantileSorted(sorted, 0.99),
        mean_ms: sum / n,
      });
    }
    return out.sort(
      (a, b) =>
        a.task.localeCompare(b.task) ||
        a.variant.localeCompare(b.variant) ||
        (a.subnet ?? "").localeCompare(b.subnet ?? "") ||
        a.cores - b.cores ||
        a.batch - b.batch,
    );
  }

  private keep(
    b: { task: string; variant: string; subnet?: string; rows: number; computeMs: number },
    cores: number,
  ): void {
    const key = `${b.task}\t${b.variant}\t${b.subnet ?? ""}\t${cores}\t${b.rows}`;
    let s = this.samples.get(key);
    if (!s) {
      s = {
        ring: new Float64Array(this.o.keepSamples),
        count: 0,
        point: {
          task: b.task,
          variant: b.variant,
          ...(b.subnet === undefined ? {} : { subnet: b.subnet }),
          batch: b.rows,
          cores,
        },
      };
      this.samples.set(key, s);
    }
    s.ring[s.count++ % s.ring.length] = b.computeMs;
  }

  private book(id: string, task: string, variant: string): InstanceBook {
    let b = this.books.get(id);
    if (!b || b.task !== task || b.variant !== variant) {
      if (b) b.fleet.books.delete(b);
      const place = this.placeOf(id);
      const fleet = this.fleetOf(task, variant);
      b = new InstanceBook(id, task, variant, place, fleet, this.prior(place), this.o);
      this.books.set(id, b);
      fleet.books.add(b);
      fleet.dirty = true;
    }
    return b;
  }

  /**
   * A new instance's log factor: the mean of the instances now at its place, else what that place showed
   * last, else the mean of every instance now, else what the cluster showed last; 0 (the profile) before all.
   */
  private prior(place: string | undefined): number {
    let here = 0;
    let hereN = 0;
    let all = 0;
    let allN = 0;
    for (const b of this.books.values()) {
      if (b.n === 0) continue;
      all += b.log;
      allN++;
      if (place !== undefined && b.place === place) {
        here += b.log;
        hereN++;
      }
    }
    if (hereN > 0) return here / hereN;
    const p = place === undefined ? undefined : this.places.get(place);
    if (p && p.n > 0) return p.log;
    if (allN > 0) return all / allN;
    return this.machine.n > 0 ? this.machine.log : 0;
  }

  private learnPrior(place: string | undefined, r: number): void {
    const w = (n: number) => Math.max(this.o.alpha, 1 / n);
    this.machine.n++;
    this.machine.log += w(this.machine.n) * (r - this.machine.log);
    if (place === undefined) return;
    let p = this.places.get(place);
    if (!p) this.places.set(place, (p = { log: r, n: 0 }));
    p.n++;
    p.log += w(p.n) * (r - p.log);
  }

  /** A change point: the instance and all its cells move to the new level at once. */
  private changed(book: InstanceBook, level: number, direction: "slower" | "faster", samples: number): void {
    const from = Math.exp(book.log);
    const shift = level - book.log;
    book.log = level;
    book.n = Math.min(book.n, samples);
    for (const c of book.cells.values()) {
      c.log += shift;
      c.n = Math.min(c.n, 1);
    }
    const e: DriftEvent = {
      at: this.now(),
      task: book.task,
      variant: book.variant,
      instance: book.id,
      ...(book.place === undefined ? {} : { place: book.place }),
      direction,
      from: round(from),
      to: round(Math.exp(level)),
      samples,
    };
    this.drift.push(e);
    if (this.drift.length > 200) this.drift.shift();
    const list = this.unreported.get(book.task) ?? [];
    list.push(e);
    if (list.length > 20) list.shift();
    this.unreported.set(book.task, list);
    this.onDrift(e);
  }

  /** Republishes the factors that moved by more than publishStep. */
  private publish(book: InstanceBook): void {
    const step = Math.log1p(this.o.publishStep);
    let changed = false;
    if (Math.abs(book.log - Math.log(book.published)) > step || book.n === 1) {
      book.published = Math.exp(book.log);
      changed = true;
    }
    for (const c of book.cells.values()) {
      if (c.n < this.o.cellSamples) {
        if (c.published === c.published) {
          c.published = Number.NaN;
          changed = true;
        }
        continue;
      }
      if (c.published !== c.published || Math.abs(c.log - Math.log(c.published)) > step) {
        c.published = Math.exp(c.log);
        changed = true;
      }
    }
    if (changed) {
      book.revision++;
      book.fleet.dirty = true;
    }
  }

  private fleetOf(task: string, variant: string): Fleet {
    const key = `${task}\t${variant}`;
    let f = this.fleets.get(key);
    if (!f) this.fleets.set(key, (f = { books: new Set(), factor: 1, revision: 0, dirty: true }));
    return f;
  }

  private fleetFactor(task: string, variant: string): number {
    return this.fleetFactorOf(this.fleetOf(task, variant));
  }

  /** n / Σ 1/f_i over the variant's instances that have served; the cluster's prior when none has. */
  private fleetFactorOf(f: Fleet): number {
    if (!f.dirty) return f.factor;
    f.dirty = false;
    let n = 0;
    let inv = 0;
    for (const b of f.books)
      if (b.n > 0) {
        n++;
        inv += 1 / b.published;
      }
    const next = n > 0 ? n / inv : Math.exp(this.prior(undefined));
    if (Math.abs(Math.log(next / f.factor)) > Math.log1p(this.o.publishStep) || f.revision === 0) {
      f.factor = next;
      f.revision++;
    }
    return f.factor;
  }

  /** The task-level view of a variant (subnet index 0) or of one of its subnets. */
  private fleetView(task: string, base: Base, si: number): VariantModel {
    const m = base.byIndex[si]!;
    const fleet = this.fleetOf(task, base.model.name);
    const factor = () => (fleet.dirty ? this.fleetFactorOf(fleet) : fleet.factor);
    const subnets =
      si === 0 && base.model.subnets ? base.model.subnets.map((_, k) => this.fleetView(task, base, k + 1)) : undefined;
    const self = this;
    return view(m, {
      factor,
      fitFactor: factor,
      revision: () => (factor(), fleet.revision),
      subnets,
      on: (id) => self.instanceView(task, base, si, id),
    });
  }

  /** One instance's view of a variant or subnet. */
  private instanceView(task: string, base: Base, si: number, id: string): VariantModel {
    const book = this.book(id, task, base.model.name);
    const cached = book.views.get(si);
    if (cached) return cached;
    const m = base.byIndex[si]!;
    const subnets =
      si === 0 && base.model.subnets
        ? base.model.subnets.map((_, k) => this.instanceView(task, base, k + 1, id))
        : undefined;
    const self = this;
    const v = view(m, {
      factor: (rows, cores) => book.factor(si, rows, cores),
      fitFactor: () => book.published,
      revision: () => book.revision,
      subnets,
      on: (other) => (other === id ? v : self.instanceView(task, base, si, other)),
    });
    book.views.set(si, v);
    return v;
  }
}

interface ViewOf {
  factor: (rows: number, cores: number) => number;
  fitFactor: () => number;
  revision: () => number;
  subnets: VariantModel[] | undefined;
  on: (instanceId: string) => VariantModel;
}

/** `m` with every prediction multiplied by the factor in use. */
function view(m: VariantModel, w: ViewOf): VariantModel {
  const measured: LatencyQuantiles | undefined = m.measured
    ? {
        median: (rows, cores) => m.measured!.median(rows, cores) * w.factor(rows, cores),
        p99: (rows, cores) => m.measured!.p99(rows, cores) * w.factor(rows, cores),
      }
    : undefined;
  const v: VariantModel = {
    name: m.name,
    accuracy: m.accuracy,
    maxBatch: m.maxBatch,
    loadMs: m.loadMs,
    ...(m.warmLoadMs === undefined ? {} : { warmLoadMs: m.warmLoadMs }),
    ...(m.memGb === undefined ? {} : { memGb: m.memGb }),
    ...(m.subnet === undefined ? {} : { subnet: m.subnet }),
    latency: (rows, cores) => m.latency(rows, cores) * w.factor(rows, cores),
    get fit(): LatencyParams {
      return scaled(m.fit, w.fitFactor());
    },
    get revision(): number {
      return w.revision();
    },
    ...(measured ? { measured } : {}),
    ...(w.subnets ? { subnets: w.subnets } : {}),
    on: w.on,
  };
  return v;
}

function scaled(f: LatencyParams, k: number): LatencyParams {
  return { alpha: f.alpha * k, beta: f.beta * k, gamma: f.gamma * k, zeta: f.zeta * k };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
