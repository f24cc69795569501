// A pipeline's stage graph as an SVG: stages in columns by their depth (the longest path from a stage
// with no inputs), an arrow per input, optional stages dashed. Built with DOM calls, never parsed HTML.
const SVG = "http://www.w3.org/2000/svg";
const BOX_W = 120;
const BOX_H = 26;
const GAP_X = 44;
const GAP_Y = 12;
/** Room above the boxes for an edge that skips a column (it arcs over the stages between). */
const ARC = 22;
let drawn = 0;

function el(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Column of each stage: 0 for stages with no inputs, else one more than its deepest input. */
function depths(graph) {
  const byTask = new Map(graph.map((s) => [s.task, s]));
  const depth = new Map();
  const of = (task, seen = new Set()) => {
    if (depth.has(task)) return depth.get(task);
    if (seen.has(task)) return 0; // a cycle is refused by the repository; draw it flat rather than loop
    seen.add(task);
    const inputs = byTask.get(task)?.after ?? [];
    const d = inputs.length === 0 ? 0 : 1 + Math.max(...inputs.map((a) => of(a, seen)));
    depth.set(task, d);
    return d;
  };
  for (const s of graph) of(s.task);
  return depth;
}

/** `graph`: [{ task, after: [task], optional }] as the dashboard's API gives it. */
export function pipelineGraph(name, graph) {
  const depth = depths(graph);
  const columns = [];
  for (const s of graph) (columns[depth.get(s.task)] ??= []).push(s);
  const rows = Math.max(...columns.map((c) => c.length));
  const width = columns.length * BOX_W + (columns.length - 1) * GAP_X + 2;
  const skips = graph.some((s) => s.after.some((a) => depth.get(s.task) - depth.get(a) > 1));
  const top0 = skips ? ARC : 0;
  const height = top0 + rows * BOX_H + (rows - 1) * GAP_Y + 2;
  const at = new Map();
  columns.forEach((col, x) => {
    const top = ((rows - col.length) * (BOX_H + GAP_Y)) / 2;
    col.forEach((s, y) => at.set(s.task, { x: 1 + x * (BOX_W + GAP_X), y: 1 + top0 + top + y * (BOX_H + GAP_Y) }));
  });
  const svg = el("svg", {
    class: "pipeline-graph",
    "data-pipeline": name,
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
  });
  svg.append(el("title", {}, `${name}: ${graph.map((s) => s.task).join(", ")}`));
  const defs = el("defs");
  // an id unique in the document: the same pipeline is drawn on both tabs, and a marker inside a hidden
  // tab would hide the arrow heads of the other
  const markerId = `pipeline-arrow-${++drawn}`;
  const marker = el("marker", {
    id: markerId,
    viewBox: "0 0 8 8",
    refX: 8,
    refY: 4,
    markerWidth: 7,
    markerHeight: 7,
    orient: "auto",
  });
  marker.append(el("path", { d: "M0,0 L8,4 L0,8 z", class: "arrow-head" }));
  defs.append(marker);
  svg.append(defs);
  for (const s of graph)
    for (const from of s.after) {
      const a = at.get(from);
      const b = at.get(s.task);
      if (!a || !b) continue;
      const x1 = a.x + BOX_W;
      const y1 = a.y + BOX_H / 2;
      const x2 = b.x;
      const y2 = b.y + BOX_H / 2;
      const skip = depth.get(s.task) - depth.get(from) > 1;
      // an edge past other columns leaves the top of its box and arcs over them into the top of its target
      const d = skip
        ? `M${a.x + BOX_W / 2},${a.y} C${a.x + BOX_W / 2},${a.y - ARC} ${b.x + BOX_W / 2},${b.y - ARC} ${b.x + BOX_W / 2},${b.y}`
        : `M${x1},${y1} L${x2},${y2}`;
      svg.append(
        el("path", {
          class: "edge",
          "data-from": from,
          "data-to": s.task,
          d,
          fill: "none",
          "marker-end": `url(#${markerId})`,
        }),
      );
    }
  for (const s of graph) {
    const p = at.get(s.task);
    const g = el("g", { class: `stage${s.optional ? " optional" : ""}`, "data-task": s.task });
    g.append(el("rect", { x: p.x, y: p.y, width: BOX_W, height: BOX_H, rx: 4 }));
    g.append(
      el(
        "text",
        { x: p.x + BOX_W / 2, y: p.y + BOX_H / 2 + 4, "text-anchor": "middle" },
        s.task + (s.optional ? "?" : ""),
      ),
    );
    if (s.optional) g.append(el("title", {}, `${s.task} is optional: a request may skip it`));
    svg.append(g);
  }
  return svg;
}
