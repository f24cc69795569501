// One variant's onnxruntime session with `c` intra-op threads, batched execution with results
// split per request, and in-place resize: a new session with another thread count is built from
// the model bytes already in memory and swapped in while the old one finishes what it started.
import ort from "onnxruntime-node";

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** One request's share of a batch: `rows` leading rows of every input, flat row-major data. */
export interface BatchPart {
  rows: number;
  inputs: Record<string, TypedArray>;
}

/** One tensor of one request: flat row-major data, its full shape (rows first) and onnxruntime type. */
export interface RowTensor {
  type: string;
  dims: number[];
  data: TypedArray;
}

/** A request's tensors by name: what it brings to an instance and what it takes back. */
export type Tensors = Record<string, RowTensor>;

export interface TensorSpec {
  name: string;
  type: ort.Tensor.Type;
  /** Shape of one row: the model's shape without its leading (batch) dimension. */
  rowShape: number[];
}

export interface EngineOptions {
  threads: number;
  /** Let idle intra-op threads spin; off by default so idle instances leave their cores to others. */
  spinning?: boolean;
  /**
   * A supernet's control feeds (subnet_width, …; see zoo/supernet/subnetact.ts): not batch inputs,
   * fed with every batch unless `runBatch`'s `extra` overrides them. Absent for ordinary models.
   */
  controls?: Record<string, ort.Tensor>;
}

export interface ResizeResult {
  fromThreads: number;
  toThreads: number;
  /** Wall time to build and warm the new session, i.e. until requests run on the new thread count. */
  ms: number;
}

interface Generation {
  session: ort.InferenceSession;
  threads: number;
  inFlight: number;
  retired: boolean;
}

export class Engine {
  private current: Generation;
  private resizing: Promise<ResizeResult> | null = null;
  /** Batch inputs (the model's inputs less the control inputs). */
  readonly inputs: TensorSpec[];
  readonly outputs: TensorSpec[];

  private constructor(
    private readonly bytes: Uint8Array,
    session: ort.InferenceSession,
    private readonly options: EngineOptions,
  ) {
    this.current = { session, threads: options.threads, inFlight: 0, retired: false };
    const controls = options.controls ?? {};
    this.inputs = specsOf(session.inputMetadata).filter((s) => !(s.name in controls));
    this.outputs = specsOf(session.outputMetadata);
  }

  static async create(bytes: Uint8Array, options: EngineOptions): Promise<Engine> {
    const session = await openSession(bytes, options.threads, options.spinning ?? false);
    return new Engine(bytes, session, options);
  }

  get threads(): number {
    return this.current.threads;
  }

  get modelBytes(): number {
    return this.bytes.byteLength;
  }

  /** Runs raw feeds (already batched) on the current session. */
  async run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    const gen = this.current;
    gen.inFlight += 1;
    try {
      return await gen.session.run(feeds);
    } finally {
      gen.inFlight -= 1;
      if (gen.retired && gen.inFlight === 0) void gen.session.release();
    }
  }

  /**
   * Stacks the parts into one batch tensor per input, runs it once, and splits every output
   * back into per-part slices. `extra` feeds (e.g. a supernet's control inputs) are passed as-is.
   */
  async runBatch(parts: BatchPart[], extra: Record<string, ort.Tensor> = {}): Promise<Tensors[]> {
    const rows = parts.reduce((n, p) => n + p.rows, 0);
    const feeds: Record<string, ort.Tensor> = { ...this.options.controls, ...extra };
    for (const spec of this.inputs) {
      if (spec.name in extra) continue;
      const rowSize = spec.rowShape.reduce((a, b) => a * b, 1);
      const first = parts[0]?.inputs[spec.name];
      if (!first) throw new Error(`batch is missing input '${spec.name}'`);
      if (parts.length === 1 && first.length === rows * rowSize) {
        feeds[spec.name] = new ort.Tensor(spec.type, first as never, [rows, ...spec.rowShape]);
        continue;
      }
      const stacked = allocLike(first, rows * rowSize);
      let offset = 0;
      for (const part of parts) {
        const data = part.inputs[spec.name];
        if (!data || data.length !== part.rows * rowSize) {
          throw new Error(
            `input '${spec.name}' needs ${part.rows * rowSize} values for ${part.rows} row(s), got ${data?.length ?? 0}`,
          );
        }
        (stacked as { set(a: ArrayLike<number | bigint>, o: number): void }).set(
          data as ArrayLike<number | bigint>,
          offset,
        );
        offset += data.length;
      }
      feeds[spec.name] = new ort.Tensor(spec.type, stacked as never, [rows, ...spec.rowShape]);
    }
    const results = await this.run(feeds);
    const out: Tensors[] = parts.map(() => ({}));
    for (const [name, tensor] of Object.entries(results)) {
      const rowDims = tensor.dims.slice(1);
      const rowSize = rowDims.reduce((a, b) => a * b, 1);
      const data = tensor.data as TypedArray;
      let row = 0;
      parts.forEach((part, i) => {
        // one part owns the whole output; several get views of it (no copies either way)
        const slice =
          parts.length === 1 ? data : (data.subarray(row * rowSize, (row + part.rows) * rowSize) as TypedArray);
        out[i]![name] = { type: tensor.type, data: slice, dims: [part.rows, ...rowDims] };
        row += part.rows;
      });
    }
    return out;
  }

  /**
   * In-place vertical scaling. Requests keep running on the old session while the new one is
   * built and warmed; new requests go to the new one from the swap on; the old session is released
   * when its last request finishes. Concurrent resizes are serialised.
   */
  async resize(threads: number, warmup?: () => Record<string, ort.Tensor>): Promise<ResizeResult> {
    while (this.resizing) await this.resizing.catch(() => undefined);
    const job = this.doResize(threads, warmup);
    this.resizing = job;
    try {
      return await job;
    } finally {
      this.resizing = null;
    }
  }

  private async doResize(threads: number, warmup?: () => Record<string, ort.Tensor>): Promise<ResizeResult> {
    const fromThreads = this.current.threads;
    const t0 = performance.now();
    if (threads === fromThreads) return { fromThreads, toThreads: threads, ms: 0 };
    const session = await openSession(this.bytes, threads, this.options.spinning ?? false);
    if (warmup) await session.run(warmup());
    const old = this.current;
    this.current = { session, threads, inFlight: 0, retired: false };
    old.retired = true;
    if (old.inFlight === 0) await old.session.release();
    return { fromThreads, toThreads: threads, ms: performance.now() - t0 };
  }

  async close(): Promise<void> {
    while (this.resizing) await this.resizing.catch(() => undefined);
    this.current.retired = true;
    if (this.current.inFlight === 0) await this.current.session.release();
  }

  /** A batch of zeros with `rows` rows, for warm-up and profiling. */
  zeroFeeds(rows: number): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = { ...this.options.controls };
    for (const spec of this.inputs) {
      const size = rows * spec.rowShape.reduce((a, b) => a * b, 1);
      feeds[spec.name] = new ort.Tensor(spec.type, zerosOf(spec.type, size) as never, [rows, ...spec.rowShape]);
    }
    return feeds;
  }
}

let opened = 0;

/** onnxruntime sessions this process has created: a resize adds one, a subnet switch must not. */
export function sessionsOpened(): number {
  return opened;
}

export async function openSession(
  bytes: Uint8Array,
  threads: number,
  spinning: boolean,
): Promise<ort.InferenceSession> {
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a positive integer, got ${threads}`);
  opened += 1;
  return ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    extra: { session: { intra_op: { allow_spinning: spinning ? "1" : "0" }, inter_op: { allow_spinning: "0" } } },
  });
}

function specsOf(meta: readonly ort.InferenceSession.ValueMetadata[]): TensorSpec[] {
  return meta.map((m) => {
    if (!m.isTensor) throw new Error(`value '${m.name}' is not a tensor; sloserve serves tensor models only`);
    const shape = m.shape.slice(1).map((d) => {
      if (typeof d !== "number" || d < 0)
        throw new Error(`value '${m.name}' has a variable non-batch dimension; only the first may vary`);
      return d;
    });
    return { name: m.name, type: m.type as ort.Tensor.Type, rowShape: shape };
  });
}

function allocLike(like: TypedArray, length: number): TypedArray {
  const Ctor = like.constructor as new (n: number) => TypedArray;
  return new Ctor(length);
}

function zerosOf(type: ort.Tensor.Type, size: number): TypedArray {
  switch (type) {
    case "float32":
      return new Float32Array(size);
    case "float64":
      return new Float64Array(size);
    case "int32":
      return new Int32Array(size);
    case "int64":
      return new BigInt64Array(size);
    case "uint8":
    case "bool":
      return new Uint8Array(size);
    case "int8":
      return new Int8Array(size);
    default:
      throw new Error(`no zero feed for tensor type ${type}`);
  }
}
