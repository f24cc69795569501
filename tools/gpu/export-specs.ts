// npm run gpu:specs [-- --check]: writes tools/gpu/subnets.json, the served subnets of the zoo's
// supernets as layer lists (subnet-spec.ts) for profile_subnets.py, which runs where there is a GPU
// and PyTorch but no Node.js. --check fails when the committed file differs from what the
// architectures and the variant.yaml files give now.
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { defaultSubnetOf, VariantConfig } from "../../src/repository/schema.js";
import type { SupernetArch } from "../../src/zoo/supernet/build.js";
import { DIGITS_SUPERNET_ARCH } from "../../src/zoo/supernet/digits-arch.js";
import { VISION_SUPERNET_ARCH } from "../../src/zoo/supernet/vision-arch.js";
import { subnetSpec, type SubnetSpec } from "./subnet-spec.js";

export const SPECS_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), "subnets.json");

export interface SupernetSpecs {
  task: string;
  variant: string;
  input: { name: string; dims: number[] };
  classes: number;
  max_batch: number;
  default_subnet: string;
  subnets: SubnetSpec[];
}

/** Every served subnet (variant.yaml's list) of the zoo's supernets, as layer lists. */
export async function zooSpecs(modelsDir: string): Promise<{ supernets: SupernetSpecs[] }> {
  const archs: SupernetArch[] = [DIGITS_SUPERNET_ARCH, VISION_SUPERNET_ARCH];
  const supernets: SupernetSpecs[] = [];
  for (const arch of archs) {
    // variant.yaml alone: the vision supernet's ONNX file is built on first start and may be absent
    const file = path.resolve(modelsDir, arch.task, arch.variant, "variant.yaml");
    const v = { config: VariantConfig.parse(YAML.parse(await readFile(file, "utf8"))) };
    if (!v.config.subnets) throw new Error(`${file} lists no subnets`);
    supernets.push({
      task: arch.task,
      variant: arch.variant,
      input: arch.input,
      classes: arch.output.classes,
      max_batch: v.config.max_batch,
      default_subnet: defaultSubnetOf(v.config)!.name,
      subnets: v.config.subnets.map((s) => {
        const index = s.controls.subnet_index?.[0];
        if (index === undefined) throw new Error(`${arch.task} subnet ${s.name} has no subnet_index control`);
        return subnetSpec(arch, index, s.name);
      }),
    });
  }
  return { supernets };
}

export const specsText = (specs: unknown) => JSON.stringify(specs) + "\n";

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = specsText(await zooSpecs("models"));
  if (process.argv.includes("--check")) {
    const committed = await readFile(SPECS_FILE, "utf8").catch(() => "");
    if (committed !== text) {
      process.stderr.write(`${SPECS_FILE} is out of date; run 'npm run gpu:specs'\n`);
      process.exit(1);
    }
  } else {
    await writeFile(SPECS_FILE, text);
    process.stderr.write(`wrote ${path.relative(process.cwd(), SPECS_FILE)}\n`);
  }
}
