// The `ocr` labelled evaluation set, rendered by the project itself: seeded text lines and small
// documents drawn with the DejaVu fonts through @napi-rs/canvas (Skia), then degraded — blur,
// Gaussian noise, rotation, low contrast, small type, the odd upside-down line — so that variants of
// different quality read them differently. Every sample carries its lines' text and corner boxes.
// The same seed gives the same images on every machine that has the same fonts.
import { existsSync } from "node:fs";
import path from "node:path";
import { createCanvas, GlobalFonts, type SKRSContext2D } from "@napi-rs/canvas";
import { seededRandom } from "../stats/random.js";
import type { Point, Quad } from "./geometry.js";
import type { RgbaImage } from "./image.js";

/** The evaluation set every recorded ocr accuracy is measured on. */
export const OCR_EVAL_SET = { seed: 15, images: 96 } as const;
/** Calibration images for int8 quantisation: another seed, never the evaluation images. */
export const OCR_CALIBRATION_SET = { seed: 1015, images: 12 } as const;

export interface LabelledLine {
  text: string;
  /** Corners of the text (padded by a tenth of the font size), clockwise from the top-left as read. */
  quad: Quad;
  /** Drawn upside down (the classifier's job). */
  upsideDown: boolean;
}

export interface LabelledImage {
  id: string;
  image: RgbaImage;
  lines: LabelledLine[];
  /** What was done to it, for reading results. */
  tags: string[];
}

const FONT_DIRS = ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts/dejavu"];
const FONT_FILES: Record<string, string> = {
  "DejaVu Sans": "DejaVuSans.ttf",
  "DejaVu Sans Bold": "DejaVuSans-Bold.ttf",
  "DejaVu Serif": "DejaVuSerif.ttf",
  "DejaVu Serif Bold": "DejaVuSerif-Bold.ttf",
  "DejaVu Sans Mono": "DejaVuSansMono.ttf",
};

let fontsReady: string[] | null = null;

/** Registers the DejaVu fonts under private family names; a clear error if they are not installed. */
export function registerFonts(): string[] {
  if (fontsReady) return fontsReady;
  const dir = FONT_DIRS.find((d) => existsSync(path.join(d, "DejaVuSans.ttf")));
  if (!dir)
    throw new Error(
      `the DejaVu fonts are not installed (looked in ${FONT_DIRS.join(", ")}); run 'sudo bash scripts/install-test-tools.sh' (Debian package fonts-dejavu-core)`,
    );
  const families: string[] = [];
  for (const [family, file] of Object.entries(FONT_FILES)) {
    const p = path.join(dir, file);
    if (!existsSync(p)) continue;
    const alias = `sloserve ${family}`;
    GlobalFonts.registerFromPath(p, alias);
    families.push(alias);
  }
  fontsReady = families;
  return families;
}

const WORDS = (
  "the of and to in is was for on are with as his they be at one have this from or had by hot word but what " +
  "some we can out other were all there when up use your how said an each she which do their time if will way " +
  "about many then them write would like so these her long make thing see him two has look more day could go " +
  "come did number sound no most people my over know water than call first who may down side been now find " +
  "invoice total amount due date order account balance payment receipt customer address street city phone " +
  "service model server latency request queue batch cores memory deadline accuracy variant profile station " +
  "Monday Friday March October London Berlin Paris Tokyo Main Street Avenue North South Total Subtotal Tax"
).split(" ");

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const between = (r: Rand, a: number, b: number) => a + (b - a) * r();
const int = (r: Rand, a: number, b: number) => Math.floor(between(r, a, b + 1));

function phrase(r: Rand): string {
  const kind = r();
  if (kind < 0.55) {
    const n = int(r, 1, 4);
    const words = Array.from({ length: n }, () => pick(r, WORDS));
    if (r() < 0.3) words[0] = words[0]![0]!.toUpperCase() + words[0]!.slice(1);
    return words.join(" ") + (r() < 0.2 ? pick(r, [".", ",", ":", "!", "?"]) : "");
  }
  if (kind < 0.7) return `${pick(r, WORDS)} ${int(r, 1, 9999)}`;
  if (kind < 0.8)
    return `${int(r, 2000, 2029)}-${String(int(r, 1, 12)).padStart(2, "0")}-${String(int(r, 1, 28)).padStart(2, "0")}`;
  if (kind < 0.9) return `$${int(r, 1, 999)}.${String(int(r, 0, 99)).padStart(2, "0")}`;
  const letters = "ABCDEFGHJKLMNPRSTUVWXYZ";
  return `${letters[int(r, 0, 22)]}${letters[int(r, 0, 22)]}-${int(r, 100, 99999)}`;
}

interface Style {
  background: number;
  ink: number;
  tags: string[];
}

function style(r: Rand): Style {
  if (r() < 0.2) {
    const background = int(r, 150, 200);
    return { background, ink: background - int(r, 45, 70), tags: ["low-contrast"] };
  }
  return { background: int(r, 225, 255), ink: int(r, 0, 60), tags: [] };
}

const grey = (v: number) => `rgb(${v},${v},${v})`;

interface Drawn {
  text: string;
  x: number;
  y: number;
  size: number;
  font: string;
  upsideDown: boolean;
}

/** The padded text box of a drawn line in canvas coordinates before any rotation. */
function textBox(ctx: SKRSContext2D, d: Drawn): Quad {
  ctx.font = `${d.size}px "${d.font}"`;
  const m = ctx.measureText(d.text);
  const pad = d.size * 0.1;
  const x0 = d.x - m.actualBoundingBoxLeft - pad;
  const x1 = d.x + m.actualBoundingBoxRight + pad;
  const y0 = d.y - m.actualBoundingBoxAscent - pad;
  const y1 = d.y + m.actualBoundingBoxDescent + pad;
  return [
    [x0, y0],
    [x1, y0],
    [x1, y1],
    [x0, y1],
  ];
}

function rotateAbout(p: Point, c: Point, angle: number): Point {
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const dx = p[0] - c[0];
  const dy = p[1] - c[1];
  return [c[0] + dx * cos - dy * sin, c[1] + dx * sin + dy * cos];
}

/** Renders one sample: a single line (most) or a small document of several lines. */
function renderSample(r: Rand, fonts: string[], index: number): LabelledImage {
  const doc = r() < 0.35;
  const st = style(r);
  const tags = [doc ? "document" : "line", ...st.tags];
  const small = r() < 0.25;
  if (small) tags.push("small");
  const sizeOf = () => (small ? int(r, 8, 12) : doc ? int(r, 14, 30) : int(r, 16, 44));
  const scratch = createCanvas(8, 8).getContext("2d");
  const drawn: Drawn[] = [];
  let width: number;
  let height: number;
  if (!doc) {
    const d: Drawn = { text: phrase(r), x: 0, y: 0, size: sizeOf(), font: pick(r, fonts), upsideDown: r() < 0.12 };
    scratch.font = `${d.size}px "${d.font}"`;
    const m = scratch.measureText(d.text);
    const marginX = int(r, 6, 40);
    const marginY = int(r, 6, 30);
    d.x = marginX + m.actualBoundingBoxLeft;
    d.y = marginY + m.actualBoundingBoxAscent;
    width = Math.ceil(m.actualBoundingBoxLeft + m.actualBoundingBoxRight + 2 * marginX);
    height = Math.ceil(m.actualBoundingBoxAscent + m.actualBoundingBoxDescent + 2 * marginY);
    drawn.push(d);
  } else {
    width = int(r, 360, 640);
    height = int(r, 240, 480);
    let y = int(r, 10, 30);
    for (;;) {
      const size = sizeOf();
      const text = phrase(r);
      const font = pick(r, fonts);
      scratch.font = `${size}px "${font}"`;
      const m = scratch.measureText(text);
      const w = m.actualBoundingBoxLeft + m.actualBoundingBoxRight;
      const lineY = y + m.actualBoundingBoxAscent;
      if (lineY + m.actualBoundingBoxDescent + 10 > height) break;
      if (w + 20 < width) {
        const x = int(r, 10, Math.max(10, Math.floor(width - w - 10)));
        drawn.push({ text, x: x + m.actualBoundingBoxLeft, y: lineY, size, font, upsideDown: false });
      }
      y = lineY + m.actualBoundingBoxDescent + int(r, Math.ceil(size * 0.6), Math.ceil(size * 2));
    }
  }
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = grey(st.background);
  ctx.fillRect(0, 0, width, height);
  const rotate = r() < 0.35;
  const angle = rotate ? (between(r, -1, 1) * (doc ? 3 : 6) * Math.PI) / 180 : 0;
  if (rotate) tags.push("rotated");
  const centre: Point = [width / 2, height / 2];
  const lines: LabelledLine[] = [];
  ctx.fillStyle = grey(st.ink);
  for (const d of drawn) {
    const box = textBox(ctx, d);
    ctx.save();
    ctx.translate(centre[0], centre[1]);
    ctx.rotate(angle);
    ctx.translate(-centre[0], -centre[1]);
    if (d.upsideDown) {
      const cx = (box[0][0] + box[1][0]) / 2;
      const cy = (box[0][1] + box[2][1]) / 2;
      ctx.translate(cx, cy);
      ctx.rotate(Math.PI);
      ctx.translate(-cx, -cy);
    }
    ctx.font = `${d.size}px "${d.font}"`;
    ctx.fillText(d.text, d.x, d.y);
    ctx.restore();
    let quad = box.map((p) => rotateAbout(p, centre, angle)) as Quad;
    if (d.upsideDown) quad = [quad[2], quad[3], quad[0], quad[1]];
    lines.push({ text: d.text, quad, upsideDown: d.upsideDown });
  }
  if (drawn.some((d) => d.upsideDown)) tags.push("upside-down");
  let out = canvas;
  if (r() < 0.3) {
    const sigma = between(r, 0.6, small ? 1 : 1.6);
    tags.push("blur");
    const blurred = createCanvas(width, height);
    const bctx = blurred.getContext("2d");
    bctx.fillStyle = grey(st.background);
    bctx.fillRect(0, 0, width, height);
    bctx.filter = `blur(${sigma.toFixed(2)}px)`;
    bctx.drawImage(canvas, 0, 0);
    out = blurred;
  }
  const data = out.getContext("2d").getImageData(0, 0, width, height).data;
  if (r() < 0.3) {
    tags.push("noise");
    const sigma = between(r, 4, 18);
    for (let i = 0; i < data.length; i += 4) {
      // Box–Muller from the seeded stream: the same noise on every machine
      const n = Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r()) * sigma;
      data[i] = data[i]! + n;
      data[i + 1] = data[i + 1]! + n;
      data[i + 2] = data[i + 2]! + n;
    }
  }
  return {
    id: `s${String(index).padStart(4, "0")}`,
    image: { width, height, data: new Uint8ClampedArray(data) },
    lines,
    tags,
  };
}

const cache = new Map<string, LabelledImage[]>();

/** `count` samples of the stream seeded by `seed` (the first n of a longer set are the same n images). */
export function renderEvalSet(seed: number, count: number): LabelledImage[] {
  const key = `${seed}:${count}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const fonts = registerFonts();
  const out: LabelledImage[] = [];
  for (let i = 0; i < count; i++) out.push(renderSample(seededRandom(seed * 100_003 + i), fonts, i));
  cache.set(key, out);
  return out;
}

export function ocrEvalSet(count: number = OCR_EVAL_SET.images): LabelledImage[] {
  return renderEvalSet(OCR_EVAL_SET.seed, count);
}

export function ocrCalibrationSet(): LabelledImage[] {
  return renderEvalSet(OCR_CALIBRATION_SET.seed, OCR_CALIBRATION_SET.images);
}

export function describeEvalSet(count: number): string {
  return `sloserve's rendered ocr set (seed ${OCR_EVAL_SET.seed}, ${count} images: DejaVu text lines and documents with blur, noise, rotation, low contrast, small type, upside-down lines), through onnxruntime`;
}
