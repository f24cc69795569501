// The live page: history from /dashboard/api/history, then one frame per second and every
// autoscaler decision over Server-Sent Events. Charts are redrawn from the frames kept here, so a
// frame costs the same whatever the request rate behind it.
import { chart, fmt, h, markers, palette, tints, uPlot } from "/dashboard/charts.js";
import { pipelineGraph } from "/dashboard/graph.js";

const HISTORY_S = 600;
const state = { targets: new Map(), frames: [], decisions: [], selected: null, windowS: 300, changesOnly: false };
let charts = null;
let mixKeys = "";

export function startLive() {
  const windowSel = document.getElementById("window");
  state.windowS = Number(windowSel.value);
  windowSel.addEventListener("change", () => {
    state.windowS = Number(windowSel.value);
    redraw();
  });
  document.getElementById("changes-only").addEventListener("change", (e) => {
    state.changesOnly = e.target.checked;
    renderDecisions();
  });
  connect();
}

function connect() {
  const status = document.getElementById("status");
  const events = new EventSource("/dashboard/events");
  events.addEventListener("open", async () => {
    status.dataset.state = "live";
    status.textContent = "live";
    // (re)connected: the history fills whatever the page missed while it was away
    const history = await fetch("/dashboard/api/history").then((r) => r.json());
    for (const t of history.targets) state.targets.set(t.name, t);
    const newer = state.frames.filter((f) => f.t > (history.frames.at(-1)?.t ?? 0));
    state.frames = [...history.frames, ...newer];
    const seen = new Set(history.decisions.map((d) => `${d.at}/${d.task}`));
    state.decisions = [...history.decisions, ...state.decisions.filter((d) => !seen.has(`${d.at}/${d.task}`))];
    if (!state.selected || !state.targets.has(state.selected)) state.selected = busiest();
    redraw();
    renderDecisions();
  });
  events.addEventListener("error", () => {
    status.dataset.state = events.readyState === EventSource.CLOSED ? "down" : "connecting";
    status.textContent = events.readyState === EventSource.CLOSED ? "disconnected — reload the page" : "reconnecting…";
  });
  events.addEventListener("frame", (e) => {
    const frame = JSON.parse(e.data);
    state.frames.push(frame);
    if (state.frames.length > HISTORY_S) state.frames.shift();
    for (const name of Object.keys(frame.series))
      if (!state.targets.has(name)) state.targets.set(name, { name, kind: "task", sloMs: null, stages: [name] });
    if (!state.selected) state.selected = busiest();
    status.textContent = `live · ${fmt.time(frame.t)}`;
    status.dataset.t = String(frame.t);
    redraw();
  });
  events.addEventListener("decision", (e) => {
    state.decisions.push(JSON.parse(e.data));
    if (state.decisions.length > 300) state.decisions.shift();
    renderDecisions();
    if (charts) for (const u of Object.values(charts)) u?.redraw(false);
  });
}

/** The target with the most arrivals lately: what an operator opening the page most likely wants. */
function busiest() {
  let best = null;
  let most = -1;
  for (const name of state.targets.keys()) {
    const sum = state.frames.slice(-30).reduce((s, f) => s + (f.series[name]?.rate ?? 0), 0);
    if (sum > most) [best, most] = [name, sum];
  }
  return best;
}

function select(name) {
  state.selected = name;
  redraw();
  renderDecisions();
}

function redraw() {
  renderCards();
  renderCharts();
}

function renderCards() {
  const box = document.getElementById("cards");
  const last = state.frames.at(-1);
  const recent = state.frames.slice(-60);
  box.replaceChildren(
    ...[...state.targets.values()].map((t) => {
      const s = last?.series[t.name];
      let met = 0;
      let finished = 0;
      for (const f of recent) {
        const x = f.series[t.name];
        if (!x || x.attainment == null) continue;
        finished += x.served + x.failed;
        met += x.attainment * (x.served + x.failed);
      }
      const attainment = finished ? met / finished : null;
      const p99Bad = s?.p99 != null && t.sloMs != null && s.p99 > t.sloMs;
      const top = s ? Object.entries(s.mix).sort((a, b) => b[1] - a[1])[0] : undefined;
      const served = s ? s.served : 0;
      return h(
        "div",
        {
          class: `card${t.name === state.selected ? " selected" : ""}`,
          "data-target": t.name,
          onclick: () => select(t.name),
        },
        h("span", { class: "name" }, t.name),
        h("span", { class: "kind" }, t.kind === "pipeline" ? "pipeline" : "task"),
        t.kind === "pipeline" && t.graph ? pipelineGraph(t.name, t.graph) : null,
        h(
          "dl",
          {},
          h("dt", {}, "arrivals"),
          h("dd", { "data-field": "rate" }, `${fmt.num(s?.rate ?? 0)} req/s`),
          h("dt", {}, "p99 / SLO"),
          h("dd", { "data-field": "p99", class: p99Bad ? "bad" : "" }, `${fmt.ms(s?.p99)} / ${t.sloMs ?? "?"} ms`),
          h("dt", {}, "attainment, 1 min"),
          h(
            "dd",
            { "data-field": "attainment", class: attainment != null && attainment < 0.99 ? "bad" : "" },
            fmt.pct(attainment),
          ),
          h("dt", {}, "instances × cores"),
          h(
            "dd",
            { "data-field": "fleet" },
            s ? `${s.instances}${s.starting ? ` (+${s.starting} starting)` : ""} · ${s.cores} cores` : "—",
          ),
          h("dt", {}, "variant mix"),
          h("dd", { "data-field": "mix" }, top && served ? `${top[0]} ${Math.round((100 * top[1]) / served)} %` : "—"),
        ),
      );
    }),
  );
}

function windowFrames() {
  const last = state.frames.at(-1);
  if (!last) return [];
  const from = last.t - state.windowS * 1000;
  return state.frames.filter((f) => f.t > from);
}

function changeTimes() {
  const stages = new Set(state.targets.get(state.selected)?.stages ?? []);
  return state.decisions.filter((d) => d.changes.length > 0 && stages.has(d.task)).map((d) => d.at / 1000);
}

/** Whole seconds and up: a wide chart would otherwise tick every half second. */
const timeAxis = { incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600] };
const timeAxes = [timeAxis, {}];

const line = (label, color, extra = {}) => ({ label, stroke: color, width: 1.5, points: { show: false }, ...extra });

function makeCharts() {
  const mark = markers(changeTimes);
  const empty = (n) => Array.from({ length: n }, () => []);
  const stepped = uPlot.paths.stepped({ align: 1 });
  return {
    rate: chart(
      document.getElementById("chart-rate"),
      {
        plugins: [mark],
        axes: timeAxes,
        series: [
          {},
          line("arrivals", palette[0], { fill: "rgba(47,111,222,.08)" }),
          line("served", palette[2]),
          line("failed", palette[4]),
        ],
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, (max ?? 1) * 1.1)] } },
      },
      empty(4),
    ),
    latency: chart(
      document.getElementById("chart-latency"),
      {
        plugins: [mark],
        series: [
          {},
          line("p50", palette[0]),
          line("p99", palette[1]),
          line("SLO", palette[4], { dash: [6, 4], width: 2 }),
        ],
        scales: {
          y: {
            distr: 3,
            range: (_u, min, max) => (min > 0 && max > 0 ? uPlot.rangeLog(min, max, 10, true) : [0.1, 100]),
          },
        },
        axes: [
          timeAxis,
          { values: (_u, ticks) => ticks.map((v) => (v == null ? "" : v >= 1 ? String(v) : v.toPrecision(1))) },
        ],
      },
      empty(4),
    ),
    attainment: chart(
      document.getElementById("chart-attainment"),
      {
        plugins: [mark],
        axes: timeAxes,
        series: [{}, line("attainment %", palette[2], { fill: "rgba(26,154,91,.08)" })],
        scales: {
          y: { range: (_u, min) => [min == null ? 0 : Math.max(0, Math.min(90, Math.floor(min / 10) * 10)), 100] },
        },
      },
      empty(2),
    ),
    fleet: chart(
      document.getElementById("chart-fleet"),
      {
        plugins: [mark],
        axes: timeAxes,
        series: [
          {},
          line("instances", palette[3], { paths: stepped }),
          line("cores", palette[1], { paths: stepped, fill: "rgba(232,118,45,.08)" }),
        ],
        scales: { y: { range: (_u, _min, max) => [0, Math.max(2, (max ?? 1) + 1)] } },
      },
      empty(3),
    ),
    mix: null,
  };
}

/** Stacked areas: series k is the sum of variants k… (widest first, so narrower ones paint over it). */
function mixChart(keys, mark) {
  const el = document.getElementById("chart-mix");
  el.replaceChildren();
  const series = [{}];
  for (let k = 0; k < keys.length; k++) {
    series.push({
      label: keys[k],
      stroke: palette[k % palette.length],
      fill: tints[k % tints.length],
      width: 1,
      points: { show: false },
      // the legend shows a variant's own rate, not the stacked sum
      value: (u, _v, si, i) => (i == null ? "—" : fmt.num(u._raw?.[si]?.[i] ?? null)),
    });
  }
  return chart(
    el,
    {
      plugins: [mark],
      axes: timeAxes,
      series,
      scales: { y: { range: (_u, _min, max) => [0, Math.max(1, (max ?? 1) * 1.1)] } },
    },
    [[], ...keys.map(() => [])],
  );
}

function renderCharts() {
  const name = state.selected;
  if (!name) return;
  const target = state.targets.get(name);
  document.getElementById("selected-title").textContent = `${name} ${target?.kind === "pipeline" ? "(pipeline)" : ""}`;
  charts ??= makeCharts();
  const frames = windowFrames();
  const x = frames.map((f) => f.t / 1000);
  const s = frames.map((f) => f.series[name]);
  const col = (get) => s.map((v) => (v ? get(v) : null));
  charts.rate.setData([x, col((v) => v.rate), col((v) => v.served), col((v) => v.failed)]);
  charts.latency.setData([x, col((v) => v.p50), col((v) => v.p99), x.map(() => target?.sloMs ?? null)]);
  charts.attainment.setData([x, col((v) => (v.attainment == null ? null : 100 * v.attainment))]);
  charts.fleet.setData([x, col((v) => v.instances), col((v) => v.cores)]);
  // the latest values as attributes: what a browser test (or a curious operator) can read without the canvas
  const latest = s.at(-1);
  document.getElementById("chart-rate").dataset.latest = String(latest?.rate ?? "");
  document.getElementById("chart-latency").dataset.latest = String(latest?.p99 ?? "");
  document.getElementById("chart-fleet").dataset.latest = String(latest?.cores ?? "");

  const totals = new Map();
  for (const v of s) for (const [k, n] of Object.entries(v?.mix ?? {})) totals.set(k, (totals.get(k) ?? 0) + n);
  const keys = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a));
  const signature = `${name}|${keys.join(",")}`;
  if (signature !== mixKeys || !charts.mix) {
    charts.mix?.destroy();
    charts.mix = mixChart(keys, markers(changeTimes));
    mixKeys = signature;
  }
  const raw = [x, ...keys.map((k) => col((v) => v.mix[k] ?? 0))];
  const stacked = [
    x,
    ...keys.map((_k, j) => x.map((_t, i) => (s[i] ? raw.slice(1 + j).reduce((sum, r) => sum + (r[i] ?? 0), 0) : null))),
  ];
  charts.mix._raw = raw;
  charts.mix.setData(stacked);
  for (const u of Object.values(charts)) showLatest(u);
}

/** Unless the pointer is over a chart, its legend shows the latest second. */
function showLatest(u) {
  const n = u.data[0].length;
  if (n > 0 && !(u.cursor.left >= 0)) u.setLegend({ idx: n - 1 });
}

/** Consecutive decisions that kept the same plan collapse into one row with a count. */
function renderDecisions() {
  const stages = new Set(state.targets.get(state.selected)?.stages ?? []);
  const rows = [];
  const list = state.decisions
    .filter((d) => stages.has(d.task) && (!state.changesOnly || d.changes.length > 0))
    .sort((a, b) => a.at - b.at);
  for (const d of list) {
    const prev = rows.at(-1);
    if (
      prev &&
      d.changes.length === 0 &&
      prev.d.changes.length === 0 &&
      prev.d.task === d.task &&
      prev.d.mode === d.mode &&
      prev.d.after.join() === d.after.join()
    ) {
      prev.repeat += 1;
      prev.d = d;
    } else rows.push({ d, repeat: 1 });
  }
  const shown = rows.slice(-100).reverse();
  document.getElementById("decision-count").textContent =
    `${list.length} decisions${shown.length < rows.length ? `, latest ${shown.length} rows` : ""}`;
  document
    .querySelector("#decisions tbody")
    .replaceChildren(
      ...shown.map(({ d, repeat }) =>
        h(
          "tr",
          { class: d.actuation?.failed.length ? "failed" : d.changes.length ? "changed" : "", "data-task": d.task },
          h(
            "td",
            { class: "num" },
            fmt.time(d.at),
            repeat > 1
              ? h("span", { class: "repeat", title: "consecutive decisions that kept this plan" }, `×${repeat}`)
              : null,
          ),
          h("td", {}, d.task),
          h("td", {}, `${d.policy} · ${d.mode}`),
          h(
            "td",
            { class: "num" },
            `${fmt.num(d.rateNow)} req/s, forecast ${fmt.num(d.ratePred)}; queue ${d.queueLength}; ${d.misses} missed`,
          ),
          h("td", {}, `${d.before.join(" ") || "none"} → ${d.after.join(" ") || "none"}`),
          h("td", {}, d.changes.join("; ") || "—"),
          h("td", {}, d.reason),
          h("td", { class: "num" }, `${d.solverMs.toFixed(2)} ms`),
          h(
            "td",
            { class: "num" },
            d.actuation
              ? `${fmt.ms(d.actuation.ms)}${d.actuation.failed.length ? ` — failed: ${d.actuation.failed.join("; ")}` : ""}`
              : "—",
          ),
        ),
      ),
    );
}
