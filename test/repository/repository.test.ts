import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadRepository, RepositoryError } from "../../src/repository/repository.js";
import { resolveInside } from "../../src/repository/safe-path.js";
import { ensureVisionZoo } from "../../src/zoo/vision.js";
import { DIGITS_TASK_YAML, tinyDigitsModel, variantYaml } from "../support/tiny-model.js";

const MODELS = path.resolve("models");
const temps: string[] = [];

async function repo(files: Record<string, string | Uint8Array>): Promise<string> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), "sloserve-repo-"));
  temps.push(root);
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await fs.writeFile(path.join(root, rel), content);
  }
  return root;
}

function good(): Record<string, string | Uint8Array> {
  return {
    "digits/task.yaml": DIGITS_TASK_YAML,
    "digits/small/variant.yaml": variantYaml("small"),
    "digits/small/model.onnx": tinyDigitsModel(),
  };
}

async function problemsOf(root: string): Promise<string[]> {
  try {
    await loadRepository(root);
  } catch (err) {
    expect(err).toBeInstanceOf(RepositoryError);
    return (err as RepositoryError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error("expected the repository to be rejected");
}

afterEach(async () => {
  for (const t of temps.splice(0)) await fs.rm(t, { recursive: true, force: true });
});

describe("the bundled zoo", () => {
  beforeAll(async () => {
    await ensureVisionZoo(MODELS);
  });

  it("loads every task and variant, each checked against its task signature", async () => {
    const r = await loadRepository(MODELS);
    expect([...r.tasks.keys()]).toEqual(expect.arrayContaining(["digits", "vision"]));
    const digits = r.tasks.get("digits")!;
    expect(digits.variants.size).toBeGreaterThanOrEqual(5);
    for (const v of digits.variants.values()) {
      expect(v.config.accuracy.source).toBe("measured");
      expect(v.signature.inputs[0]).toEqual({ name: "image", datatype: "FP32", shape: [-1, 1, 28, 28] });
      expect(v.profile, `${v.name} has a committed profile`).toBeDefined();
    }
    const vision = r.tasks.get("vision")!;
    expect([...vision.variants.keys()].sort()).toEqual(["mobilenetv2", "resnet18", "resnet34", "resnet50"]);
    for (const v of vision.variants.values()) expect(v.config.accuracy.source).toBe("declared");
  });
});

describe("a broken repository is rejected with every problem at once", () => {
  it("accepts a well-formed one", async () => {
    const r = await loadRepository(await repo(good()));
    expect(r.tasks.get("digits")!.variants.get("small")!.signature.outputs[0]!.shape).toEqual([-1, 10]);
  });

  it("names a missing model.onnx, variant.yaml and task.yaml", async () => {
    const files = good();
    files["digits/nomodel/variant.yaml"] = variantYaml("nomodel");
    files["digits/noyaml/model.onnx"] = tinyDigitsModel();
    files["other/v1/model.onnx"] = tinyDigitsModel();
    const problems = await problemsOf(await repo(files));
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/digits\/nomodel\/model\.onnx: missing: every variant needs its model\.onnx/),
        expect.stringMatching(/digits\/noyaml\/variant\.yaml: missing: create variant\.yaml/),
        expect.stringMatching(/other\/task\.yaml: missing: create task\.yaml/),
      ]),
    );
    expect(problems).toHaveLength(3);
  });

  it("loads configurations and profiles without model.onnx files for the simulator (profilesOnly)", async () => {
    const files = good();
    delete files["digits/small/model.onnx"];
    const root = await repo(files);
    expect(await problemsOf(root)).toEqual([expect.stringMatching(/small\/model.onnx: missing/)]);
    const r = await loadRepository(root, { profilesOnly: true });
    expect([...r.tasks.get("digits")!.variants.keys()]).toEqual(["small"]);
    // a model that is there is still checked
    const broken = await repo({ ...good(), "digits/small/model.onnx": new Uint8Array([1, 2, 3]) });
    await expect(loadRepository(broken, { profilesOnly: true })).rejects.toThrow(/cannot be read as ONNX/);
  });

  it("rejects a corrupt or truncated ONNX file", async () => {
    const files = good();
    files["digits/garbage/variant.yaml"] = variantYaml("garbage");
    files["digits/garbage/model.onnx"] = new Uint8Array([0xff, 0xff, 0xff, 0x01, 0x02, 0x03]);
    files["digits/cut/variant.yaml"] = variantYaml("cut");
    files["digits/cut/model.onnx"] = tinyDigitsModel().subarray(0, 500);
    const problems = await problemsOf(await repo(files));
    expect(problems.find((p) => p.startsWith("digits/garbage/model.onnx"))).toMatch(/cannot be read as ONNX/);
    expect(problems.find((p) => p.startsWith("digits/cut/model.onnx"))).toMatch(/cannot be read as ONNX/);
  });

  it("rejects signature mismatches: input name, row shape, datatype, extra output", async () => {
    const files = good();
    files["digits/wrongname/variant.yaml"] = variantYaml("wrongname");
    files["digits/wrongname/model.onnx"] = tinyDigitsModel({ inputName: "pixels" });
    files["digits/wrongshape/variant.yaml"] = variantYaml("wrongshape");
    files["digits/wrongshape/model.onnx"] = tinyDigitsModel({ rowShape: [784] });
    files["digits/wrongclasses/variant.yaml"] = variantYaml("wrongclasses");
    files["digits/wrongclasses/model.onnx"] = tinyDigitsModel({ classes: 12 });
    const problems = await problemsOf(await repo(files));
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /wrongname\/model\.onnx: input 'image' of the task is missing from the model \(it has: pixels\)/,
        ),
        expect.stringMatching(/wrongname\/model\.onnx: input 'pixels' is not in the task's signature/),
        expect.stringMatching(
          /wrongshape\/model\.onnx: input 'image' has shape \[-1,784\] in the model but the task needs \[-1,1,28,28\]/,
        ),
        expect.stringMatching(/wrongclasses\/model\.onnx: output 'probabilities' has shape \[-1,12\]/),
      ]),
    );
  });

  it("reports bad YAML syntax and schema errors with the field", async () => {
    const files = good();
    files["digits/badsyntax/variant.yaml"] = "name: badsyntax\naccuracy: [unclosed\n";
    files["digits/badsyntax/model.onnx"] = tinyDigitsModel();
    files["digits/badschema/variant.yaml"] = "name: badschema\naccuracy:\n  value: 1.7\n  source: guessed\n";
    files["digits/badschema/model.onnx"] = tinyDigitsModel();
    const problems = await problemsOf(await repo(files));
    expect(problems.find((p) => p.startsWith("digits/badsyntax/variant.yaml"))).toMatch(/invalid YAML/);
    const schema = problems.find((p) => p.startsWith("digits/badschema/variant.yaml"))!;
    expect(schema).toMatch(/accuracy\.value/);
    expect(schema).toMatch(/accuracy\.source/);
  });

  it("refuses names that could leave the repository: '../', separators, symlinks out", async () => {
    const files = good();
    files["digits/escape/variant.yaml"] = variantYaml("../../etc");
    files["digits/escape/model.onnx"] = tinyDigitsModel();
    files["digits/Bad Name/variant.yaml"] = variantYaml("bad");
    files["digits/Bad Name/model.onnx"] = tinyDigitsModel();
    const root = await repo(files);
    const outside = await repo({ "secret/model.onnx": tinyDigitsModel() });
    await fs.mkdir(path.join(root, "digits/linked"));
    await fs.writeFile(path.join(root, "digits/linked/variant.yaml"), variantYaml("linked"));
    await fs.symlink(path.join(outside, "secret/model.onnx"), path.join(root, "digits/linked/model.onnx"));
    const problems = await problemsOf(root);
    expect(problems.find((p) => p.startsWith("digits/escape/variant.yaml"))).toMatch(
      /name: use 1-64 lowercase letters/,
    );
    expect(problems.find((p) => p.startsWith("digits/Bad Name"))).toMatch(/not a valid name.*rename the folder/);
    expect(problems.find((p) => p.startsWith("digits/linked/model.onnx"))).toMatch(/outside the repository/);
    await expect(loadRepository(root, { tasks: ["../digits"] })).rejects.toThrow(/contains '\.\.'/);
    expect(() => resolveInside(root, "..", "etc")).toThrow(/contains '\.\.'/);
    expect(() => resolveInside(root, "digits/../../x")).toThrow();
    expect(resolveInside(root, "digits", "small")).toBe(path.join(root, "digits", "small"));
  });

  it("says so when the folder does not exist", async () => {
    await expect(loadRepository("/nonexistent/sloserve-models")).rejects.toThrow(/repository folder does not exist/);
  });
});

describe("pipelines in a repository", () => {
  const pipeline = (yaml: string) => ({ ...good(), "p/pipeline.yaml": yaml });

  it("loads the bundled ocr DAG with its measured record", async () => {
    const r = await loadRepository(MODELS, { tasks: ["ocr-det", "ocr-cls", "ocr-rec", "ocr"] });
    const ocr = r.pipelines.get("ocr")!;
    expect(ocr.graph.stages.map((s) => [s.task, s.after, s.optional])).toEqual([
      ["ocr-det", [], false],
      ["ocr-cls", ["ocr-det"], true],
      ["ocr-rec", ["ocr-det", "ocr-cls"], false],
    ]);
    expect(ocr.record!.combinations.length).toBeGreaterThanOrEqual(30);
    expect(ocr.record!.fan_out!["ocr-det"]!["ppocrv4-mobile"]!.length).toBe(96);
  });

  it("says what is wrong with a graph: a cycle, an unknown stage, an input nobody makes, an optional stage without glue", async () => {
    expect(
      await problemsOf(
        await repo(
          pipeline("name: p\nslo_ms: 10\nstages:\n  - {task: digits, after: [x]}\n  - {task: x, after: [digits]}\n"),
        ),
      ),
    ).toEqual(expect.arrayContaining([expect.stringMatching(/cycle/), expect.stringMatching(/names task 'x'/)]));
    const two = await repo({
      ...pipeline("name: p\nslo_ms: 10\nstages:\n  - digits\n  - {task: digits2, after: [digits], optional: true}\n"),
      "digits2/task.yaml": DIGITS_TASK_YAML.replace("name: digits", "name: digits2"),
      "digits2/small/variant.yaml": variantYaml("small"),
      "digits2/small/model.onnx": tinyDigitsModel(),
    });
    const problems = await problemsOf(two);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/stage 'digits2' needs input 'image', which stage 'digits' does not produce/),
        expect.stringMatching(/stage 'digits2' is optional, but without glue/),
      ]),
    );
  });

  it("checks a record against the pipeline's stages", async () => {
    const root = await repo({
      ...pipeline("name: p\nslo_ms: 10\nstages:\n  - digits\n  - {task: digits, after: []}\n"),
    });
    expect((await problemsOf(root))[0]).toMatch(/listed twice/);
    const rec = await repo({
      ...good(),
      "digits2/task.yaml": DIGITS_TASK_YAML.replace("name: digits", "name: digits2"),
      "digits2/small/variant.yaml": variantYaml("small"),
      "digits2/small/model.onnx": tinyDigitsModel(),
      "p/pipeline.yaml":
        "name: p\nslo_ms: 10\nglue: ocr\nstages:\n  - digits\n  - {task: digits2, after: [digits], optional: true}\n",
      "p/accuracy.yaml":
        "metric: m\nevaluated_on: e\ncombinations:\n  - {stages: {digits: small, digits2: skip}, value: 0.5}\n  - {stages: {digits: small, zz: small}, value: 0.5}\n",
    });
    expect(await problemsOf(rec)).toEqual([
      "p/accuracy.yaml: combination 2 names 'zz', which is not a stage of 'p'",
      "p/accuracy.yaml: combination 2 does not say which variant of 'digits2' it measured (or 'skip')",
    ]);
  });
});
