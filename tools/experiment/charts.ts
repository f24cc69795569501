// SVG charts of experiment time series, rendered by vega-lite → vega headlessly (no browser, no
// canvas): one panel per measure, one line per policy, shared time axis.
import * as vega from "vega";
import * as vl from "vega-lite";

export interface Panel {
  title: string;
  /** Unit shown on the y axis. */
  unit: string;
  /** One series per policy (or one for a shared measure such as the arrival rate). */
  lines: { name: string; values: ArrayLike<number> }[];
  /** Horizontal reference line (an SLO, a goal). */
  rule?: number;
}

/** Points per line are averaged into at most this many buckets, so a day-long run stays a small SVG. */
const MAX_POINTS = 400;

function downsample(values: ArrayLike<number>): { t: number; v: number }[] {
  const n = values.length;
  const step = Math.max(1, Math.ceil(n / MAX_POINTS));
  const out: { t: number; v: number }[] = [];
  for (let i = 0; i < n; i += step) {
    let sum = 0;
    let k = 0;
    for (let j = i; j < Math.min(n, i + step); j++) {
      const x = values[j]!;
      if (Number.isFinite(x)) {
        sum += x;
        k++;
      }
    }
    if (k > 0) out.push({ t: i, v: sum / k });
  }
  return out;
}

export async function timeSeriesSvg(
  title: string,
  panels: Panel[],
  opts: { width?: number; height?: number; timeUnit?: string } = {},
): Promise<string> {
  const width = opts.width ?? 720;
  const height = opts.height ?? 140;
  const spec: vl.TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title,
    vconcat: panels.map((p) => ({
      width,
      height,
      title: { text: p.title, anchor: "start", fontSize: 12 },
      layer: [
        {
          data: { values: p.lines.flatMap((l) => downsample(l.values).map((d) => ({ ...d, series: l.name }))) },
          mark: { type: "line", strokeWidth: 1.3, interpolate: "linear" },
          encoding: {
            x: { field: "t", type: "quantitative", title: opts.timeUnit ?? "time (s)" },
            y: { field: "v", type: "quantitative", title: p.unit },
            color: { field: "series", type: "nominal", title: null, legend: { orient: "right" } },
          },
        },
        ...(p.rule === undefined
          ? []
          : [
              {
                data: { values: [{ y: p.rule }] },
                mark: { type: "rule" as const, strokeDash: [4, 3], color: "#888" },
                encoding: { y: { field: "y", type: "quantitative" as const } },
              },
            ]),
      ],
    })),
    config: { font: "sans-serif", view: { stroke: "#ddd" } },
  };
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export interface PlaneSeries {
  name: string;
  points: { x: number; y: number; label?: string }[];
  /** Join the points in x order (a trade-off curve) or show them alone. */
  line?: boolean;
}

/** An x–y plane (e.g. SLO attainment against accuracy): curves and single points, labels beside points. */
export async function planeSvg(
  title: string,
  series: PlaneSeries[],
  axes: { x: string; y: string },
  opts: { width?: number; height?: number } = {},
): Promise<string> {
  const values = series.flatMap((s) => s.points.map((p) => ({ x: p.x, y: p.y, label: p.label ?? "", series: s.name })));
  const enc = {
    x: { field: "x", type: "quantitative" as const, title: axes.x, scale: { zero: false } },
    y: { field: "y", type: "quantitative" as const, title: axes.y, scale: { zero: false } },
    color: { field: "series", type: "nominal" as const, title: null, legend: { orient: "right" as const } },
  };
  const lined = new Set(series.filter((s) => s.line).map((s) => s.name));
  const spec: vl.TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title,
    width: opts.width ?? 560,
    height: opts.height ?? 360,
    data: { values },
    layer: [
      {
        transform: [{ filter: { field: "series", oneOf: [...lined] } }],
        mark: { type: "line", strokeWidth: 1.3, point: true },
        encoding: { ...enc, order: { field: "x", type: "quantitative" } },
      },
      {
        transform: [{ filter: { not: { field: "series", oneOf: [...lined] } } }],
        mark: { type: "point", filled: true, size: 70 },
        encoding: { ...enc, shape: { field: "series", type: "nominal", legend: null } },
      },
      {
        mark: { type: "text", align: "left", dx: 5, dy: -5, fontSize: 9 },
        encoding: { x: enc.x, y: enc.y, text: { field: "label", type: "nominal" }, color: enc.color },
      },
    ],
    config: { font: "sans-serif", view: { stroke: "#ddd" } },
  };
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}
