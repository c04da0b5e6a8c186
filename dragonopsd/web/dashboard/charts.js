// Hand-drawn SVG charts: a sparkline, a time-series line chart and a heartbeat bar. No library:
// a few dozen lines of SVG are smaller than any vendored chart and need no CSS exceptions.
// Colours come from classes in app.css; series also differ by dash pattern and each chart has
// a text alternative, so nothing depends on colour alone.

import {clear, h, ms} from "./dom.js";

/** A sparkline of values (0..max) as an <svg role="img"> labelled with the latest value. */
export function sparkline(values, {max = 100, width = 96, height = 24, label = "", cls = ""} = {}) {
  const svg = h("svg.spark", {viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": label, focusable: "false"});
  updateSparkline(svg, values, {max, width, height, label, cls});
  return svg;
}

export function updateSparkline(svg, values, {max = 100, width = 96, height = 24, label = "", cls = ""} = {}) {
  clear(svg);
  svg.setAttribute("aria-label", label);
  svg.append(h("title", {}, label));
  const pts = values.filter((v) => v != null);
  if (pts.length < 2) return;
  const step = width / Math.max(1, values.length - 1);
  const y = (v) => (height - 1 - (Math.min(max, Math.max(0, v)) / max) * (height - 2)).toFixed(1);
  const coords = values.map((v, i) => (v == null ? null : `${(i * step).toFixed(1)},${y(v)}`))
    .filter(Boolean).join(" ");
  svg.append(h("polyline", {class: `line ${cls}`, points: coords}));
}

/**
 * A time-series chart. series: [{key, label, cls, dash}]; points: [{at (Unix s), [key]: value}].
 * Redraws to its container's width (ResizeObserver), so it fits a 360 px screen.
 */
export class LineChart {
  constructor({series, label, unit = "", max = null, height = 200, window = null}) {
    this.series = series;
    this.label = label;
    this.unit = unit;
    this.max = max;
    this.height = height;
    this.window = window; // seconds kept when points are pushed live
    this.points = [];
    this.node = h("figure.chart", {},
      h("div.plot"),
      h("figcaption", {}, h("span.chart-title", {}, label), " ",
        ...series.map((s) => h(`span.key.${s.cls}${s.dash ? ".dashed" : ""}`, {},
          h("span.swatch", {"aria-hidden": "true"}), s.label))),
      h("p.sr-only.chart-summary", {"aria-live": "off"}));
    this.plot = this.node.querySelector(".plot");
    this.summary = this.node.querySelector(".chart-summary");
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this.plot);
  }

  destroy() {
    this.resize.disconnect();
  }

  set(points) {
    this.points = points.slice().sort((a, b) => a.at - b.at);
    this.draw();
  }

  push(point) {
    this.points.push(point);
    if (this.window) {
      const oldest = point.at - this.window;
      while (this.points.length && this.points[0].at < oldest) this.points.shift();
    }
    this.draw();
  }

  get count() {
    return this.points.length;
  }

  draw() {
    const width = Math.max(240, Math.round(this.plot.clientWidth || 600));
    const height = this.height;
    const pad = {l: 44, r: 8, t: 8, b: 22};
    const svg = h("svg", {viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
      "aria-label": this.describe(), focusable: "false"});
    const pts = this.points;
    const values = pts.flatMap((p) => this.series.map((s) => p[s.key])).filter((v) => v != null);
    const top = this.max ?? niceMax(Math.max(1, ...values));
    const t0 = pts.length ? pts[0].at : Date.now() / 1000 - 60;
    const t1 = pts.length > 1 ? pts[pts.length - 1].at : t0 + 60;
    const x = (t) => pad.l + ((t - t0) / Math.max(1e-9, t1 - t0)) * (width - pad.l - pad.r);
    const y = (v) => pad.t + (1 - Math.min(top, Math.max(0, v)) / top) * (height - pad.t - pad.b);
    for (const frac of [0, 0.5, 1]) {
      const v = top * frac;
      svg.append(h("line.grid", {x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v)}),
        h("text.axis", {x: pad.l - 4, y: y(v) + 4, "text-anchor": "end"}, `${fmt(v)}${this.unit}`));
    }
    svg.append(h("text.axis", {x: pad.l, y: height - 4}, clock(t0, t1 - t0)),
      h("text.axis", {x: width - pad.r, y: height - 4, "text-anchor": "end"}, clock(t1, t1 - t0)));
    for (const s of this.series) {
      // Gaps (null) split the line instead of drawing a false slope across them.
      let run = [];
      const flush = () => {
        if (run.length > 1) {
          svg.append(h("polyline", {class: `line ${s.cls}${s.dash ? " dashed" : ""}`, points: run.join(" ")}));
        } else if (run.length === 1) {
          const [cx, cy] = run[0].split(",");
          svg.append(h("circle", {class: `dot ${s.cls}`, cx, cy, r: 2}));
        }
        run = [];
      };
      for (const p of pts) {
        if (p[s.key] == null) flush();
        else run.push(`${x(p.at).toFixed(1)},${y(p[s.key]).toFixed(1)}`);
      }
      flush();
    }
    clear(this.plot).append(svg);
    this.plot.dataset.points = String(pts.length);
    this.summary.textContent = this.describe();
  }

  describe() {
    const last = this.points[this.points.length - 1];
    if (!last) return `${this.label}: no data yet`;
    const parts = this.series.map((s) => `${s.label} ${last[s.key] == null ? "no data" : fmt(last[s.key]) + this.unit}`);
    return `${this.label}, ${this.points.length} points; latest ${parts.join(", ")}`;
  }
}

function niceMax(v) {
  const mag = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * mag) return m * mag;
  return 10 * mag;
}

const fmt = (v) => (v === 0 ? "0" : v >= 10 ? Math.round(v).toString() : v.toFixed(1));

/** An axis time label, as precise as the span needs: seconds for minutes, the date for days. */
function clock(t, span) {
  const d = new Date(t * 1000);
  if (span > 20 * 3600) return d.toLocaleString([], {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"});
  if (span < 600) return d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"});
  return d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
}

/**
 * Heartbeat bar: one block per check, oldest left. Status is in the class (colour), the block's
 * height (down is short) and its title; the whole bar has a text summary.
 */
export function heartbeatBar(beats, limit = 50) {
  const shown = beats.slice(-limit);
  const down = shown.filter((b) => b.status === "down").length;
  const bar = h("ol.beats", {role: "img",
    "aria-label": `Last ${shown.length} checks: ${shown.length - down} up or pending, ${down} down`});
  for (const b of shown) {
    const when = new Date(b.at * 1000).toLocaleTimeString();
    bar.append(h(`li.beat.s-${b.status}`, {title: `${when}: ${b.status}${b.latencyMs != null ? `, ${ms(b.latencyMs)}` : ""}${b.message ? ` \u2013 ${b.message}` : ""}`}));
  }
  return bar;
}
