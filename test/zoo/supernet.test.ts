import { readSubnetTable } from "../../src/repository/subnets.js";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { LocalCluster } from "../../src/cluster/local/local-cluster.js";
import { spawnWorker, type WorkerHandle } from "../../src/cluster/local/worker-process.js";
import type { WorkItem } from "../../src/cluster/types.js";
import { Engine, sessionsOpened } from "../../src/engine/engine.js";
import { controlFeeds } from "../../src/engine/subnet-feeds.js";
import { loadRepository, RepositoryError } from "../../src/repository/repository.js";
import { DIGIT_PIXELS, loadDigits } from "../../src/zoo/digits-data.js";
import {
  buildSubnetModel,
  buildSupernetModel,
  readWeightStore,
  weightShapes,
  type SupernetArch,
} from "../../src/zoo/supernet/build.js";
import { DIGITS_SUPERNET_ARCH } from "../../src/zoo/supernet/digits-arch.js";
import { measureSubnetAccuracy } from "../../tools/train/digits-supernet-zoo.js";
import { paretoFront } from "../../src/zoo/supernet/pareto.js";
import { controlsOf, subnetName, type WeightStore } from "../../src/zoo/supernet/subnetact.js";
import { VISION_SUPERNET_ARCH, declaredTop1 } from "../../src/zoo/supernet/vision-arch.js";
import { seededRandom } from "../../src/stats/random.js";

const MODELS = path.resolve("models");
const DIGITS_DIR = path.join(MODELS, "digits-supernet", "supernet");
const VISION_DIR = path.join(MODELS, "vision-supernet", "supernet");
const digits = loadDigits().test;

interface SubnetYaml {
  name: string;
  controls: Record<string, number[]>;
  accuracy: { value: number; source: string; correct?: number; total?: number };
}
const variantYaml = async (dir: string) =>
  YAML.parse(await fs.readFile(path.join(dir, "variant.yaml"), "utf8")) as {
    subnets: SubnetYaml[];
    default_subnet: string;
    accuracy: { value: number };
  };

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

async function probabilities(
  engine: Engine,
  rows: number,
  image: Float32Array,
  controls?: Record<string, number[]>,
): Promise<Float32Array> {
  const [out] = await engine.runBatch([{ rows, inputs: { image } }], controls ? controlFeeds(controls) : {});
  return out!.probabilities!.data as Float32Array;
}

function randomStore(arch: SupernetArch, seed: number): WeightStore {
  const rand = seededRandom(seed);
  const store: WeightStore = new Map();
  for (const [name, dims] of weightShapes(arch)) {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = name.endsWith("norm_scale") ? 0.5 + rand() : (rand() - 0.5) * 0.3;
    store.set(name, { data, dims });
  }
  return store;
}

describe("SubNetAct graph", () => {
  it("gives, for every candidate of the digits space, the outputs of that subnet exported alone (random weights)", async () => {
    const arch = DIGITS_SUPERNET_ARCH;
    const store = randomStore(arch, 11);
    const sup = await Engine.create(buildSupernetModel(arch, store), {
      threads: 1,
      controls: controlFeeds(controlsOf(arch.space, 0)),
    });
    const image = digits.images.slice(0, 3 * DIGIT_PIXELS);
    const seen = new Set<string>();
    for (let i = 0; i < arch.space.candidates.length; i++) {
      const got = await probabilities(sup, 3, image, controlsOf(arch.space, i));
      const lone = await Engine.create(buildSubnetModel(arch, store, i), { threads: 1 });
      expect(maxAbsDiff(got, await probabilities(lone, 3, image)), subnetName(arch.space.candidates[i]!)).toBeLessThan(
        1e-5,
      );
      await lone.close();
      seen.add(Array.from(got.slice(0, 10), (x) => x.toFixed(4)).join());
    }
    // the controls really change the function: every candidate computes something different
    expect(seen.size).toBe(arch.space.candidates.length);
    await sup.close();
  });

  it("keeps only the Pareto front, fastest first", () => {
    const pts = [
      { index: 0, accuracy: 0.9, latencyMs: 1 },
      { index: 1, accuracy: 0.85, latencyMs: 2 }, // slower and worse than 0
      { index: 2, accuracy: 0.95, latencyMs: 3 },
      { index: 3, accuracy: 0.95, latencyMs: 4 }, // as accurate as 2, slower
      { index: 4, accuracy: 0.97, latencyMs: 5 },
    ];
    expect(paretoFront(pts).map((p) => p.index)).toEqual([0, 2, 4]);
  });

  it("declares vision accuracies on the published slimmable ResNet-50 curve", () => {
    expect(declaredTop1(4.1e9)).toBeCloseTo(0.76, 4);
    expect(declaredTop1(1.1e9)).toBeCloseTo(0.721, 4);
    const mid = declaredTop1(Math.sqrt(1.1e9 * 2.3e9));
    expect(mid).toBeGreaterThan(0.721);
    expect(mid).toBeLessThan(0.749);
  });
});

describe("the digits supernet of the zoo", () => {
  let bytes: Uint8Array;
  let subnets: SubnetYaml[];
  beforeAll(async () => {
    bytes = new Uint8Array(await fs.readFile(path.join(DIGITS_DIR, "model.onnx")));
    subnets = (await variantYaml(DIGITS_DIR)).subnets;
  });

  it("serves several subnets, whose measured accuracies are those variant.yaml records", async () => {
    expect(subnets.length).toBeGreaterThanOrEqual(3);
    const engine = await Engine.create(bytes, { threads: 1, controls: controlFeeds(subnets[0]!.controls) });
    for (const s of subnets) {
      expect(s.accuracy.source).toBe("measured");
      const got = await measureSubnetAccuracy(engine, s.controls.subnet_index![0]!);
      expect(got, s.name).toEqual({ correct: s.accuracy.correct, total: s.accuracy.total });
    }
    await engine.close();
    // fastest first and each more accurate than the last (a Pareto front)
    for (let i = 1; i < subnets.length; i++)
      expect(subnets[i]!.accuracy.value).toBeGreaterThan(subnets[i - 1]!.accuracy.value);
    expect(subnets[subnets.length - 1]!.accuracy.value).toBeGreaterThan(0.97);
  });

  it("gives for each served subnet the outputs of the same subnet exported on its own", async () => {
    const store = readWeightStore(bytes);
    const image = digits.images.slice(0, 32 * DIGIT_PIXELS);
    const sup = await Engine.create(bytes, { threads: 1, controls: controlFeeds(subnets[0]!.controls) });
    for (const s of subnets) {
      const lone = buildSubnetModel(DIGITS_SUPERNET_ARCH, store, s.controls.subnet_index![0]!);
      expect(lone.byteLength).toBeLessThan(bytes.byteLength);
      const e = await Engine.create(lone, { threads: 1 });
      expect(
        maxAbsDiff(await probabilities(sup, 32, image, s.controls), await probabilities(e, 32, image)),
        s.name,
      ).toBeLessThan(1e-4);
      await e.close();
    }
    await sup.close();
  });

  it("switches subnets between consecutive batches of one engine without creating a session", async () => {
    const sup = await Engine.create(bytes, { threads: 1, controls: controlFeeds(subnets[0]!.controls) });
    const image = digits.images.slice(0, 4 * DIGIT_PIXELS);
    const expected = await Promise.all(
      subnets.map((s) => probabilities(sup, 4, image, s.controls).then((p) => p.slice())),
    );
    // the control feeds reach the graph: the smallest and the largest subnet answer differently
    expect(maxAbsDiff(expected[0]!, expected.at(-1)!)).toBeGreaterThan(1e-4);
    const before = sessionsOpened();
    for (let round = 0; round < 5; round++) {
      for (const [i, s] of subnets.entries())
        expect(maxAbsDiff(await probabilities(sup, 4, image, s.controls), expected[i]!)).toBe(0);
    }
    expect(sessionsOpened()).toBe(before);
    await sup.close();
  });
});

describe("a supernet worker", () => {
  let worker: WorkerHandle;
  let subnets: SubnetYaml[];
  let defaultName: string;
  beforeAll(async () => {
    ({ subnets, default_subnet: defaultName } = await variantYaml(DIGITS_DIR));
    const modelPath = path.join(DIGITS_DIR, "model.onnx");
    worker = await spawnWorker({ modelPath, threads: 1, cpus: [], subnets: await readSubnetTable(modelPath) });
  });
  afterAll(async () => {
    await worker?.stop();
  });

  const infer = async (rows: number, subnet?: string): Promise<Float32Array> => {
    const image = digits.images.slice(0, rows * DIGIT_PIXELS);
    const parts = [
      { rows, tensors: [{ name: "image", type: "float32", dims: [rows, 1, 28, 28], bytes: image.byteLength }] },
    ];
    const { header, payload } = await worker.client.call(
      "infer",
      subnet === undefined ? { parts } : { parts, subnet },
      [new Uint8Array(image.buffer)],
    );
    const t = header.parts[0]!.tensors[0]!;
    return new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + t.bytes));
  };

  it("feeds each batch's subnet, switching every batch with no new session, and runs the default subnet when none is named", async () => {
    const sup = await Engine.create(await fs.readFile(path.join(DIGITS_DIR, "model.onnx")), {
      threads: 1,
      controls: controlFeeds(subnets[0]!.controls),
    });
    const image = digits.images.slice(0, 4 * DIGIT_PIXELS);
    const want = new Map<string, Float32Array>();
    for (const s of subnets) want.set(s.name, (await probabilities(sup, 4, image, s.controls)).slice());
    await sup.close();

    const sessions = (await worker.client.call("stats")).header.sessions;
    expect(sessions).toBe(1);
    for (let round = 0; round < 3; round++) {
      for (const s of subnets) expect(maxAbsDiff(await infer(4, s.name), want.get(s.name)!), s.name).toBeLessThan(1e-6);
    }
    expect(maxAbsDiff(await infer(4), want.get(defaultName)!)).toBeLessThan(1e-6);
    expect((await worker.client.call("stats")).header.sessions).toBe(sessions);
    await expect(infer(1, "no-such-subnet")).rejects.toThrow(
      /unknown subnet 'no-such-subnet' \(this supernet serves: /,
    );
  });
});

describe("a supernet instance of the local cluster", () => {
  it("runs a batch on the subnet its BatchWork names", async () => {
    const { subnets } = await variantYaml(DIGITS_DIR);
    const table = await readSubnetTable(path.join(DIGITS_DIR, "model.onnx"));
    const cluster = new LocalCluster({
      coreBudget: 1,
      modelPath: (t, v) => path.join(MODELS, t, v, "model.onnx"),
      subnets: () => table,
      replaceDead: false,
    });
    try {
      const started = await cluster.start("digits-supernet", "supernet", 1);
      expect(started.ok, started.message).toBe(true);
      const inst = cluster.instances()[0]!;
      const image = digits.images.slice(0, 2 * DIGIT_PIXELS);
      const request: WorkItem = {
        rows: 2,
        input: { image: { type: "float32", dims: [2, 1, 28, 28], data: image } },
      };
      const run = (subnet: string) =>
        new Promise<Float32Array>((resolve, reject) =>
          inst.run({ task: "digits-supernet", variant: "supernet", subnet, items: [request] }, (r) =>
            r.ok ? resolve(r.outputs[0]!.probabilities!.data as Float32Array) : reject(new Error(r.message)),
          ),
        );
      const sup = await Engine.create(await fs.readFile(path.join(DIGITS_DIR, "model.onnx")), {
        threads: 1,
        controls: controlFeeds(subnets[0]!.controls),
      });
      for (const s of [subnets[0]!, subnets[subnets.length - 1]!, subnets[0]!]) {
        expect(maxAbsDiff(await run(s.name), await probabilities(sup, 2, image, s.controls)), s.name).toBeLessThan(
          1e-6,
        );
      }
      await sup.close();
    } finally {
      await cluster.shutdown();
    }
  });
});

describe("the vision supernet of the zoo", () => {
  it("gives its smallest served subnet's outputs, exported alone, at ResNet-50 scale", async () => {
    const { subnets } = await variantYaml(VISION_DIR);
    expect(subnets.length).toBeGreaterThanOrEqual(3);
    for (const s of subnets) expect(s.accuracy.source).toBe("declared");
    const bytes = new Uint8Array(await fs.readFile(path.join(VISION_DIR, "model.onnx")));
    const smallest = subnets[0]!;
    const lone = buildSubnetModel(VISION_SUPERNET_ARCH, readWeightStore(bytes), smallest.controls.subnet_index![0]!);
    const rand = seededRandom(3);
    const image = Float32Array.from({ length: 3 * 224 * 224 }, () => rand());
    const sup = await Engine.create(bytes, { threads: 2, controls: controlFeeds(smallest.controls) });
    const a = await probabilities(sup, 1, image);
    await sup.close();
    const e = await Engine.create(lone, { threads: 2 });
    const b = await probabilities(e, 1, image);
    await e.close();
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
    expect(lone.byteLength).toBeLessThan(bytes.byteLength / 2);
  });
});

describe("the repository loader", () => {
  const temps: string[] = [];
  afterAll(async () => {
    for (const t of temps) await fs.rm(t, { recursive: true, force: true });
  });

  it("accepts the supernet variants, with their control inputs set aside from the task signature", async () => {
    const repo = await loadRepository(MODELS, { tasks: ["digits-supernet", "vision-supernet"] });
    for (const task of ["digits-supernet", "vision-supernet"]) {
      const v = repo.tasks.get(task)!.variants.get("supernet")!;
      expect(v.config.subnets!.length).toBeGreaterThanOrEqual(3);
      expect(v.signature.inputs.map((i) => i.name).sort()).toEqual([
        "image",
        "subnet_depth",
        "subnet_index",
        "subnet_width",
      ]);
      const profile = v.profile!;
      expect(profile, `${task} has a committed profile`).toBeDefined();
      for (const s of v.config.subnets!)
        expect(profile.subnets?.[s.name]?.points.length, `${task} profiles ${s.name}`).toBeGreaterThan(0);
    }
  });

  async function problemsWith(edit: (yaml: Record<string, unknown>) => void): Promise<string> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), "sloserve-supernet-"));
    temps.push(root);
    await fs.cp(path.join(MODELS, "digits-supernet"), path.join(root, "digits-supernet"), { recursive: true });
    const file = path.join(root, "digits-supernet", "supernet", "variant.yaml");
    const yaml = YAML.parse(await fs.readFile(file, "utf8"));
    edit(yaml);
    await fs.writeFile(file, YAML.stringify(yaml));
    const err = await loadRepository(root).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RepositoryError);
    return (err as RepositoryError).message;
  }

  it("rejects bad subnet lists with a message that says what to fix", async () => {
    type Y = { subnets?: SubnetYaml[]; default_subnet?: string };
    expect(await problemsWith((y) => ((y as Y).subnets![0]!.controls.subnet_width = [8]))).toMatch(
      /subnet '[^']+' gives 1 value\(s\) for control 'subnet_width', but the model takes 2/,
    );
    expect(
      await problemsWith((y) => {
        for (const s of (y as Y).subnets!) s.controls.subnet_scale = [1];
      }),
    ).toMatch(/subnets set control 'subnet_scale', which the model does not take/);
    expect(await problemsWith((y) => ((y as Y).subnets![1]!.name = (y as Y).subnets![0]!.name))).toMatch(
      /subnet '[^']+' is listed twice/,
    );
    expect(await problemsWith((y) => ((y as Y).default_subnet = "nope"))).toMatch(
      /default_subnet: 'nope' is not one of the subnets/,
    );
    expect(await problemsWith((y) => delete (y as Y).subnets![2]!.controls.subnet_depth)).toMatch(
      /every subnet must set the same control inputs/,
    );
    expect(
      await problemsWith((y) => {
        delete (y as Y).subnets;
        delete (y as Y).default_subnet;
      }),
    ).toMatch(/input 'subnet_width' is not in the task's signature \(a supernet's control input\? list the subnets/);
  });
});
