// The model repository page: per task, its variants with accuracy and where that number comes
// from, and each variant's profile: measured latency points over batch size per core count, with
// the fitted l(b,c) = α·b/c + β·b + γ/c + ζ drawn through them.
import { chart, fmt, h, palette, uPlot } from "/dashboard/charts.js";
import { pipelineGraph } from "/dashboard/graph.js";

let view = null;
let statSelect = null;

export async function showRepository() {
  if (!statSelect) {
    statSelect = document.getElementById("profile-stat");
    statSelect.addEventListener("change", render);
  }
  view = await fetch("/dashboard/api/repository").then((r) => r.json());
  render();
}

function render() {
  const box = document.getElementById("repository");
  box.replaceChildren(...view.tasks.map(taskBlock), view.pipelines.length ? pipelinesBlock(view.pipelines) : "");
  for (const t of view.tasks)
    for (const v of t.variants)
      if (v.profile) profileChart(document.getElementById(`profile-${t.name}-${v.name}`), v, statSelect.value);
}

function taskBlock(t) {
  return h(
    "section",
    { class: "task-block panel" },
    h("h3", {}, t.name),
    h(
      "div",
      { class: "hint" },
      `${t.description} — SLO ${t.sloMs} ms, accuracy floor ${fmt.pct(t.minAccuracy)}, scheduling ${t.scheduling}, scaling ${t.scaling}`,
    ),
    h(
      "table",
      { class: "variants" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...[
            "variant",
            "architecture",
            "parameters",
            "size",
            "max batch",
            "accuracy",
            "source",
            "cold start",
            "resize",
            "fit error (p99, median)",
          ].map((c) => h("th", {}, c)),
        ),
      ),
      h(
        "tbody",
        {},
        ...t.variants.map((v) =>
          h(
            "tr",
            { "data-variant": v.name },
            h("td", { title: v.description }, v.name),
            h("td", {}, v.architecture ?? "—"),
            h("td", { class: "num" }, v.parameters == null ? "—" : v.parameters.toLocaleString()),
            h("td", { class: "num" }, fmt.bytes(v.modelBytes)),
            h("td", { class: "num" }, v.maxBatch),
            h("td", { class: "num" }, fmt.pct(v.accuracy.value)),
            h(
              "td",
              {},
              h("span", { class: `badge ${v.accuracy.source}` }, v.accuracy.source),
              " ",
              h("span", { class: "hint" }, accuracyNote(v.accuracy)),
            ),
            h("td", { class: "num" }, v.profile ? fmt.ms(v.profile.loadMs) : "not profiled"),
            h("td", { class: "num" }, v.profile ? fmt.ms(v.profile.resizeMs) : "—"),
            h("td", { class: "num" }, v.profile ? fmt.pct(v.profile.fit.p99.median_rel_error) : "—"),
          ),
        ),
      ),
    ),
    h(
      "div",
      { class: "profiles" },
      ...t.variants
        .filter((v) => v.profile)
        .map((v) =>
          h(
            "figure",
            {},
            h("figcaption", { title: v.profile.machine }, `${v.name}: latency (ms) over batch size, per core count`),
            h("div", { id: `profile-${t.name}-${v.name}`, class: "chart" }),
          ),
        ),
    ),
  );
}

function accuracyNote(a) {
  if (a.source === "measured") return `${a.evaluated_on}${a.total ? ` (${a.correct}/${a.total})` : ""}`;
  return a.reference ?? "";
}

function pipelinesBlock(pipelines) {
  return h(
    "section",
    { class: "task-block panel" },
    h("h3", {}, "Pipelines"),
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", {}, "pipeline"),
          h("th", {}, "stages"),
          h("th", {}, "end-to-end SLO"),
          h("th", {}, "accuracy floor"),
          h("th", {}, "description"),
        ),
      ),
      h(
        "tbody",
        {},
        ...pipelines.map((p) =>
          h(
            "tr",
            {},
            h("td", {}, p.name),
            h("td", {}, p.graph ? pipelineGraph(p.name, p.graph) : p.stages.join(" → ")),
            h("td", { class: "num" }, `${p.sloMs} ms`),
            h("td", { class: "num" }, fmt.pct(p.minAccuracy)),
            h("td", {}, p.description),
          ),
        ),
      ),
    ),
  );
}

/** x: the measured batch sizes plus a fine geometric grid for the fitted curves; both log scale. */
function profileChart(el, v, stat) {
  const pts = v.profile.points;
  const fit = v.profile.fit[stat];
  const coresList = [...new Set(pts.map((p) => p.cores))].sort((a, b) => a - b);
  const maxB = Math.max(...pts.map((p) => p.batch));
  const grid = new Set(pts.map((p) => p.batch));
  for (let b = 1; b <= maxB; b *= 1.15) grid.add(Number(b.toFixed(3)));
  grid.add(maxB);
  const x = [...grid].sort((a, b) => a - b);
  const l = (b, c) => fit.alpha * (b / c) + fit.beta * b + fit.gamma / c + fit.zeta;
  const series = [{ label: "batch" }];
  const data = [x];
  coresList.forEach((c, k) => {
    const color = palette[k % palette.length];
    const cores = `${c} core${c > 1 ? "s" : ""}`;
    const measured = new Map(pts.filter((p) => p.cores === c).map((p) => [p.batch, p[stat]]));
    series.push({
      label: `${cores} measured`,
      stroke: color,
      paths: () => null,
      points: { show: true, size: 7, fill: color },
    });
    data.push(x.map((b) => measured.get(b) ?? null));
    // a fit can dip to zero or below between measured points; only the part with a meaning is drawn
    series.push({ label: `${cores} fit`, stroke: color, width: 1.5, dash: [4, 3], points: { show: false } });
    data.push(x.map((b) => (l(b, c) > 0 ? l(b, c) : null)));
  });
  // the measured points set the scale, so that a fit's excursions cannot squash them
  const values = pts.map((p) => p[stat]).filter((y) => y > 0);
  const [lo, hi] = uPlot.rangeLog(Math.min(...values), Math.max(...values), 10, true);
  const compact = (_u, ticks) =>
    ticks.map((t) =>
      t == null ? "" : t >= 1000 ? `${t / 1000}k` : t >= 1 ? String(t) : String(Number(t.toPrecision(1))),
    );
  chart(
    el,
    {
      height: 240,
      series,
      legend: { live: false },
      scales: { x: { time: false, distr: 3, log: 2 }, y: { distr: 3, range: () => [lo, hi] } },
      axes: [{ label: "batch" }, { values: compact, size: 48 }],
    },
    data,
  );
}
