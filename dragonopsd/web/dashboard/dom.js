// DOM helpers shared by every page. Text from the API reaches the page only as Text nodes
// (append / textContent), never as markup, so a monitor or server name cannot inject HTML.
// No inline styles either: the CSP is style-src 'self', so looks come from classes in app.css.

/** h("tag.class", {attr: value, on: {click: fn}}, ...children): strings become Text nodes. */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const svg = name === "svg" || SVG_TAGS.has(name);
  const node = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", name)
    : document.createElement(name);
  if (classes.length) node.setAttribute("class", classes.join(" "));
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (key === "on") {
      for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
    } else if (value === true) node.setAttribute(key, "");
    else if (value != null && value !== false) node.setAttribute(key, String(value));
  }
  node.append(...children.flat(Infinity).filter((c) => c != null && c !== false).map(
    (c) => (typeof c === "number" ? String(c) : c)));
  return node;
}

const SVG_TAGS = new Set(["g", "path", "polyline", "line", "rect", "text", "title", "circle"]);

/** Remove every child of node. */
export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

// Shape + word beside every colour: status is never told by colour alone.
const STATUS = {
  up: ["\u25b2", "Up"],
  down: ["\u25bc", "Down"],
  pending: ["\u25cf", "Pending"],
  maintenance: ["\u25c6", "Maintenance"],
  paused: ["\u2016", "Paused"],
  running: ["\u25b2", "Running"],
  stopped: ["\u25a0", "Stopped"],
  starting: ["\u21bb", "Starting"],
  stopping: ["\u21bb", "Stopping"],
  restarting: ["\u21bb", "Restarting"],
  provisioning: ["\u25cf", "Provisioning"],
  unreachable: ["\u25bc", "Unreachable"],
  queued: ["\u25cf", "Queued"],
  succeeded: ["\u2714", "Succeeded"],
  failed: ["\u2716", "Failed"],
  open: ["\u25bc", "Open"],
  ok: ["\u25b2", "OK"],
  firing: ["\u25bc", "Firing"],
  closed: ["\u2714", "Resolved"],
  active: ["\u25b2", "Active"],
  scheduled: ["\u25f7", "Scheduled"],
  "in-force": ["\u25c6", "In force"],
  disabled: ["\u2016", "Disabled"],
};

/** A status badge: icon + word, coloured by class s-<status>. */
export function badge(status) {
  const [icon, word] = STATUS[status] ?? ["\u25cf", String(status ?? "unknown")];
  return h(`span.badge.s-${String(status).replace(/[^a-z-]/g, "")}`, {"data-status": status},
    h("span.icon", {"aria-hidden": "true"}, icon), " ", word);
}

/** Replace a badge in place (keeps the node where it sits in the layout). */
export function setBadge(node, status) {
  const fresh = badge(status);
  node.replaceWith(fresh);
  return fresh;
}

export const pct = (share, digits = 2) =>
  share == null ? "no data" : `${(Math.floor(share * 10 ** (digits + 2)) / 10 ** digits).toFixed(digits)}%`;
export const ms = (v) => (v == null ? "\u2013" : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`);
export const num = (v, digits = 1) => (v == null ? "\u2013" : Number(v).toFixed(digits));

/** "3 min ago" for an ISO time or Unix seconds. */
export function ago(when) {
  if (when == null) return "never";
  const t = typeof when === "number" ? when * 1000 : Date.parse(when);
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** A <time> element showing local date and time. */
export function time(when) {
  if (when == null) return h("span", {}, "\u2013");
  const d = typeof when === "number" ? new Date(when * 1000) : new Date(when);
  return h("time", {datetime: d.toISOString()}, d.toLocaleString());
}

export function duration(seconds) {
  if (seconds == null) return "ongoing";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** Tell screen readers about something that changed off-focus. */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (region) region.textContent = message;
}

/** A problem (API error) or any error as an alert box. */
export function errorBox(err) {
  return h("p.error", {role: "alert"}, err?.message ?? String(err));
}

/** A titled section with a heading id for aria-labelledby. */
export function section(id, title, ...children) {
  return h("section.card", {"aria-labelledby": id}, h("h2", {id}, title), ...children);
}

/** Copy text to the clipboard; resolves to whether it worked (not over plain http elsewhere). */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** Run fn at most once per wait ms (trailing call kept): refetches after bursts of events. */
export function debounce(fn, wait) {
  let timer = null;
  const run = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
  run.cancel = () => clearTimeout(timer);
  return run;
}
