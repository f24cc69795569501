// The `digits-supernet` task's supernet: a small residual CNN whose two conv widths (WeightSlice)
// and number of residual blocks (LayerSelect) are chosen per batch, with per-subnet normalisation
// (SubnetNorm). 3 × 3 × 3 = 27 candidate subnets share one copy of the weights.
//
//   image [N,1,28,28]
//   conv3x3(1 → c1) · norm · ReLU · maxpool2        c1 ∈ {8, 12, 16}
//   conv3x3(c1 → c2) · norm · ReLU · maxpool2       c2 ∈ {16, 24, 32}
//   d × residual block at 7×7 (conv3x3 · norm · ReLU · conv3x3 · norm, + x, ReLU)   d ∈ {0, 1, 2}
//   flatten (channel-major, so the first c2 channels are the first 49·c2 rows) · dense(10) · softmax
import type { SupernetArch } from "./build.js";
import type { NetWriter, SubnetChoice, SupernetSpace } from "./subnetact.js";

export const DIGITS_SUPERNET_TASK = "digits-supernet";
export const DIGITS_SUPERNET_VARIANT = "supernet";
export const CONV1_WIDTHS = [8, 12, 16] as const;
export const CONV2_WIDTHS = [16, 24, 32] as const;
export const RES_DEPTHS = [0, 1, 2] as const;
/** Side of the feature map after two 2×2 pools, and the dense rows per conv2 channel. */
export const FINAL_SIDE = 7;

function candidates(): SubnetChoice[] {
  const out: SubnetChoice[] = [];
  for (const c1 of CONV1_WIDTHS)
    for (const c2 of CONV2_WIDTHS) for (const d of RES_DEPTHS) out.push({ widths: [c1, c2], depths: [d] });
  return out;
}

export const DIGITS_SUPERNET_SPACE: SupernetSpace = {
  widthGroups: [
    { name: "conv1", max: Math.max(...CONV1_WIDTHS) },
    { name: "conv2", max: Math.max(...CONV2_WIDTHS) },
  ],
  stages: [{ name: "res", minDepth: Math.min(...RES_DEPTHS), maxDepth: Math.max(...RES_DEPTHS) }],
  candidates: candidates(),
};

export const DIGITS_SUPERNET_ARCH: SupernetArch = {
  task: DIGITS_SUPERNET_TASK,
  variant: DIGITS_SUPERNET_VARIANT,
  description:
    "residual CNN supernet: conv3x3 widths {8,12,16} and {16,24,32}, 0-2 residual blocks at 7x7, per-subnet norm",
  space: DIGITS_SUPERNET_SPACE,
  input: { name: "image", dims: [1, 28, 28] },
  output: { name: "probabilities", classes: 10 },
  write(w: NetWriter, image: string): string {
    let x = w.maxPool(w.relu(w.convNorm(image, "conv1", { input: { channels: 1 }, outGroup: 0, kernel: 3 })), 2, 2);
    x = w.maxPool(w.relu(w.convNorm(x, "conv2", { input: { group: 0 }, outGroup: 1, kernel: 3 })), 2, 2);
    x = w.blocks(x, 0, (b, h, j) => {
      const y = b.relu(b.convNorm(h, `res${j}.conv1`, { input: { group: 1 }, outGroup: 1, kernel: 3 }));
      return b.relu(b.add(h, b.convNorm(y, `res${j}.conv2`, { input: { group: 1 }, outGroup: 1, kernel: 3 })));
    });
    return w.dense(w.flatten(x), "fc", 1, FINAL_SIDE * FINAL_SIDE);
  },
};

/** Conv layers with their norm, in order, with input/output channel groups (-1 = the image's one channel). */
export const DIGITS_SUPERNET_CONVS: readonly { layer: string; inGroup: number; outGroup: number }[] = [
  { layer: "conv1", inGroup: -1, outGroup: 0 },
  { layer: "conv2", inGroup: 0, outGroup: 1 },
  ...Array.from({ length: Math.max(...RES_DEPTHS) }, (_, j) => [
    { layer: `res${j}.conv1`, inGroup: 1, outGroup: 1 },
    { layer: `res${j}.conv2`, inGroup: 1, outGroup: 1 },
  ]).flat(),
];
