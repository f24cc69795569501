// The `vision-supernet` task's supernet: a ResNet-50 (bottleneck, torchvision v1.5 layout) at
// 224×224 whose width multiplier (WeightSlice on every layer, stem included, as slimmable
// ResNet-50) and per-stage depth (LayerSelect, as OFA-ResNet) are chosen per batch, with per-subnet
// normalisation (SubnetNorm). Weights are seeded: latency and memory are real, outputs are not.
// Accuracies are declared: interpolated in log-MACs over the published ImageNet top-1 of
// slimmable ResNet-50 (S-ResNet-50, Yu et al., ICLR 2019, github.com/JiahuiYu/slimmable_networks).
import type { SupernetArch } from "./build.js";
import type { ConvSpec, NetWriter, SubnetChoice, SupernetSpace } from "./subnetact.js";

export const VISION_SUPERNET_TASK = "vision-supernet";
export const VISION_SUPERNET_VARIANT = "supernet";

export const WIDTH_MULTIPLIERS = [0.5, 0.75, 1.0] as const;
/** Blocks per stage at each depth level: ResNet-29-, ResNet-35- and ResNet-50-like. */
export const DEPTH_LEVELS: readonly (readonly number[])[] = [
  [2, 2, 3, 2],
  [2, 3, 4, 2],
  [3, 4, 6, 3],
];
const STEM = 64;
const PLANES = [64, 128, 256, 512];
const EXPANSION = 4;

/** Width groups: 0 = stem, 1 + 2s = stage s's bottleneck width, 2 + 2s = stage s's output width. */
const midGroup = (s: number) => 1 + 2 * s;
const outGroup = (s: number) => 2 + 2 * s;

function widthsFor(m: number): number[] {
  const w = [Math.round(STEM * m)];
  for (const p of PLANES) w.push(Math.round(p * m), Math.round(p * m) * EXPANSION);
  return w;
}

function candidates(): SubnetChoice[] {
  const out: SubnetChoice[] = [];
  for (const m of WIDTH_MULTIPLIERS) for (const d of DEPTH_LEVELS) out.push({ widths: widthsFor(m), depths: [...d] });
  return out;
}

export const VISION_SUPERNET_SPACE: SupernetSpace = {
  widthGroups: widthsFor(1).map((max, g) => ({
    name: g === 0 ? "stem" : `stage${(g - 1) >> 1}.${g % 2 === 1 ? "mid" : "out"}`,
    max,
  })),
  stages: PLANES.map((_, s) => ({
    name: `stage${s}`,
    minDepth: Math.min(...DEPTH_LEVELS.map((d) => d[s]!)),
    maxDepth: Math.max(...DEPTH_LEVELS.map((d) => d[s]!)),
  })),
  candidates: candidates(),
};

/** Width multiplier and depth level of a candidate, for names and the accuracy table. */
export function describeVisionCandidate(index: number): { width: number; depths: number[] } {
  const c = VISION_SUPERNET_SPACE.candidates[index]!;
  return { width: c.widths[0]! / STEM, depths: c.depths };
}

export const VISION_SUPERNET_ARCH: SupernetArch = {
  task: VISION_SUPERNET_TASK,
  variant: VISION_SUPERNET_VARIANT,
  description:
    "ResNet-50 supernet at 224x224: width x{0.5,0.75,1.0} on every layer, stage depths [2-3,2-4,3-6,2-3], per-subnet norm, seeded weights",
  space: VISION_SUPERNET_SPACE,
  input: { name: "image", dims: [3, 224, 224] },
  output: { name: "probabilities", classes: 1000 },
  write(w: NetWriter, image: string): string {
    let x = w.relu(w.convNorm(image, "stem", { input: { channels: 3 }, outGroup: 0, kernel: 7, stride: 2 }));
    x = w.maxPool(x, 3, 2, 1);
    PLANES.forEach((_, s) => {
      x = w.blocks(x, s, (b, h, j) => {
        const first = j === 0;
        const input: ConvSpec["input"] = { group: first ? (s === 0 ? 0 : outGroup(s - 1)) : outGroup(s) };
        const stride = first && s > 0 ? 2 : 1;
        const name = `s${s}.b${j}`;
        let y = b.relu(b.convNorm(h, `${name}.conv1`, { input, outGroup: midGroup(s), kernel: 1 }));
        y = b.relu(
          b.convNorm(y, `${name}.conv2`, { input: { group: midGroup(s) }, outGroup: midGroup(s), kernel: 3, stride }),
        );
        y = b.convNorm(y, `${name}.conv3`, { input: { group: midGroup(s) }, outGroup: outGroup(s), kernel: 1 });
        const shortcut = first ? b.convNorm(h, `${name}.down`, { input, outGroup: outGroup(s), kernel: 1, stride }) : h;
        return b.relu(b.add(y, shortcut));
      });
    });
    return w.dense(w.flatten(w.globalAvgPool(x)), "fc", outGroup(PLANES.length - 1), 1);
  },
};

/** Conv layers (with their norm) of the full supernet: name, input channels, output group, kernel. */
export function visionSupernetConvs(): {
  layer: string;
  cin: number;
  outGroup: number;
  kernel: number;
  residualEnd: boolean;
}[] {
  const max = widthsFor(1);
  const out = [{ layer: "stem", cin: 3, outGroup: 0, kernel: 7, residualEnd: false }];
  PLANES.forEach((_, s) => {
    for (let j = 0; j < VISION_SUPERNET_SPACE.stages[s]!.maxDepth; j++) {
      const cin = j === 0 ? (s === 0 ? max[0]! : max[outGroup(s - 1)]!) : max[outGroup(s)]!;
      const name = `s${s}.b${j}`;
      out.push(
        { layer: `${name}.conv1`, cin, outGroup: midGroup(s), kernel: 1, residualEnd: false },
        { layer: `${name}.conv2`, cin: max[midGroup(s)]!, outGroup: midGroup(s), kernel: 3, residualEnd: false },
        { layer: `${name}.conv3`, cin: max[midGroup(s)]!, outGroup: outGroup(s), kernel: 1, residualEnd: true },
      );
      if (j === 0) out.push({ layer: `${name}.down`, cin, outGroup: outGroup(s), kernel: 1, residualEnd: false });
    }
  });
  return out;
}

/** S-ResNet-50's published ImageNet-1k top-1 at widths 0.25/0.5/0.75/1.0, with their MFLOPs (multiply-adds). */
export const SLIMMABLE_RESNET50_TOP1: readonly { mflops: number; top1: number }[] = [
  { mflops: 278, top1: 0.65 },
  { mflops: 1100, top1: 0.721 },
  { mflops: 2300, top1: 0.749 },
  { mflops: 4100, top1: 0.76 },
];

export const VISION_SUPERNET_ACCURACY_REFERENCE =
  "interpolated in log-MACs between the published ImageNet-1k top-1 of slimmable ResNet-50 (S-ResNet-50, Yu et al., ICLR 2019: 65.0/72.1/74.9/76.0 % at 278M/1.1G/2.3G/4.1G MACs); this build has seeded weights, its outputs are meaningless";

/** Declared top-1 of a subnet of `macs` multiply-accumulates: log-linear between the published points, clamped at the ends. */
export function declaredTop1(macs: number): number {
  const pts = SLIMMABLE_RESNET50_TOP1;
  const x = Math.log(macs / 1e6);
  if (x <= Math.log(pts[0]!.mflops)) return pts[0]!.top1;
  for (let i = 1; i < pts.length; i++) {
    const a = pts[i - 1]!;
    const b = pts[i]!;
    if (x <= Math.log(b.mflops)) {
      const t = (x - Math.log(a.mflops)) / (Math.log(b.mflops) - Math.log(a.mflops));
      return Math.round((a.top1 + t * (b.top1 - a.top1)) * 10000) / 10000;
    }
  }
  return pts[pts.length - 1]!.top1;
}
