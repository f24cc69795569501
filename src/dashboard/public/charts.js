// uPlot helpers shared by both pages: a chart that follows its container's width, a palette, and
// a plugin that marks moments (the autoscaler's plan changes) with dashed vertical lines.
import uPlot from "/dashboard/uPlot.esm.js";

export { uPlot };

export const palette = ["#2f6fde", "#e8762d", "#1a9a5b", "#9b4dca", "#d23c3c", "#0f9fb0", "#b08a00", "#6b7385"];
/** Opaque tints for stacked areas: transparent fills would blend where the stacks overlap. */
export const tints = ["#b9cff4", "#f6cfb1", "#b5e0c9", "#dcc4ee", "#f2bcbc", "#b1e0e6", "#e8dba6", "#d3d6de"];

/** Dashed vertical lines at the unix-second times `times()` returns. */
export function markers(times) {
  return {
    hooks: {
      draw: [
        (u) => {
          const { ctx, bbox } = u;
          const [lo, hi] = [u.scales.x.min, u.scales.x.max];
          ctx.save();
          ctx.strokeStyle = "rgba(47,111,222,.55)";
          ctx.lineWidth = 1.5 * devicePixelRatio;
          ctx.setLineDash([5 * devicePixelRatio, 4 * devicePixelRatio]);
          for (const t of times()) {
            if (t < lo || t > hi) continue;
            const x = Math.round(u.valToPos(t, "x", true));
            ctx.beginPath();
            ctx.moveTo(x, bbox.top);
            ctx.lineTo(x, bbox.top + bbox.height);
            ctx.stroke();
          }
          ctx.restore();
        },
      ],
    },
  };
}

/** A uPlot in `el` that keeps the width of `el`. */
export function chart(el, opts, data) {
  const u = new uPlot({ width: Math.max(200, el.clientWidth), height: opts.height ?? 220, ...opts }, data, el);
  new ResizeObserver(() => {
    const w = Math.max(200, el.clientWidth);
    if (w !== u.width) u.setSize({ width: w, height: u.height });
  }).observe(el);
  return u;
}

export const fmt = {
  num(v, digits = 1) {
    if (v == null || !Number.isFinite(v)) return "—";
    return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(digits);
  },
  ms(v) {
    if (v == null) return "—";
    return v >= 100 ? `${v.toFixed(0)} ms` : v >= 1 ? `${v.toFixed(1)} ms` : `${v.toFixed(2)} ms`;
  },
  pct(v) {
    return v == null ? "—" : `${(100 * v).toFixed(v >= 0.999 || v < 0.1 ? 1 : 2)} %`;
  },
  time(unixMs) {
    return new Date(unixMs).toLocaleTimeString([], { hour12: false });
  },
  bytes(n) {
    return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;
  },
};

/** A DOM element with attributes and children; text is set as text, never parsed as HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}
