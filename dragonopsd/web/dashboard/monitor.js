// Monitor detail: uptime over 24h/7d/30d, latency p50/p95, the heartbeat bar, incidents and
// "run now"; for a push monitor, its last pings with their bodies and the next expected run.
// Live from "monitors.<id>": heartbeats extend the bar (and refetch the pings), status changes
// refetch the uptime and incidents.

import {api, query} from "./api.js";
import {ago, announce, badge, clear, debounce, duration, errorBox, h, ms, pct, section, setBadge, time} from "./dom.js";
import {LineChart, heartbeatBar} from "./charts.js";
import {ask, gate, write} from "./forms.js";

const RANGES = [
  {label: "1 hour", span: 3600, step: "1m"},
  {label: "24 hours", span: 86400, step: "15m"},
  {label: "7 days", span: 7 * 86400, step: "2h"},
];
const BEATS = 60;
const PINGS = 20;
// Ping kinds shown with the badge words the dashboard already has.
const PING_BADGE = {success: "succeeded", fail: "failed", start: "starting"};

export async function mount(root, {id}, ctx) {
  const base = `/api/monitors/${encodeURIComponent(id)}`;
  const problems = h("div");
  let monitor;
  try {
    monitor = await api(base);
  } catch (err) {
    root.append(h("h1", {}, "Monitor"), errorBox(err), h("p", {}, h("a", {href: "#/"}, "Back to the overview")));
    return null;
  }
  document.title = `${monitor.name} \u00b7 dragonopsd`;
  let statusBadge = badge(monitor.status);
  const since = h("span.muted");
  const uptimes = h("dl.stats");
  const beatsBox = h("div.beats-box");
  const incidentList = h("ul.incidents");
  const runResult = h("div.run-result", {"aria-live": "polite"});
  const push = monitor.kind === "push";
  const pingsBox = h("div.pings-box");
  let beats = [];
  let range = RANGES[0]; // the hour: a new monitor has nothing older to show
  const chart = new LineChart({label: "Latency", unit: " ms", series: [
    {key: "p50Ms", label: "p50", cls: "p50"},
    {key: "p95Ms", label: "p95", cls: "p95", dash: true},
  ]});
  const rangeButtons = RANGES.map((r) => h("button", {type: "button", "aria-pressed": String(r === range),
    on: {click: () => {
      range = r;
      for (const b of rangeButtons) b.setAttribute("aria-pressed", String(b.textContent === r.label));
      loadHistory();
    }}}, r.label));
  const runButton = h("button.primary", {type: "button", "data-write": "", on: {click: runNow}}, "Run check now");
  const enable = () => {
    runButton.disabled = !ctx.can("operator");
    runButton.title = runButton.disabled ? "Needs the operator role" : "";
  };
  enable();
  const managed = monitor.managedBy === "config";
  const pauseButton = h("button", {type: "button", "data-write": "", on: {click: togglePause}});
  const showPause = () => (pauseButton.textContent = monitor.enabled ? "Pause" : "Resume");
  showPause();
  const writes = [
    managed ? null : h("a.button", {href: `#/monitors/${id}/edit`, "data-write": ""}, "Edit"),
    h("a.button", {href: `#/monitors/new?from=${id}`, "data-write": ""}, "Clone"),
    managed ? null : pauseButton,
    managed ? null : h("button.danger", {type: "button", "data-write": "", on: {click: remove}}, "Delete"),
  ];

  root.append(
    h("p.crumbs", {}, h("a", {href: "#/monitors"}, "Monitors"), " / monitor"),
    h("div.title-row", {}, h("h1", {}, monitor.name), statusBadge, since),
    problems,
    h("p.muted", {}, `${monitor.kind} \u00b7 ${target(monitor)} \u00b7 ${schedule(monitor)}`,
      monitor.managedBy === "config" ? " \u00b7 managed by the config file" : ""),
    ...(managed ? [h("p.notice.managed", {role: "note"}, h("strong", {}, "Read-only: managed by the config file. "),
      "It is declared in [[monitors]] of the daemon's config file and re-synced on every start and reload, so it ",
      "is changed there, not here. Clone it for a copy you can edit.")] : []),
    h("div.actions", {}, runButton, ...writes), runResult,
    section("uptime-h", "Uptime", uptimes),
    section("latency-h", "Latency", h("div.toolbar", {role: "group", "aria-label": "Time range"}, rangeButtons), chart.node),
    section("beats-h", "Recent checks", beatsBox),
    ...(push ? [section("pings-h", "Last pings", pingsBox)] : []),
    section("mon-incidents-h", "Incidents", incidentList),
  );

  function setStatus(status, at) {
    statusBadge = setBadge(statusBadge, status);
    if (at) since.textContent = `since ${ago(at)}`;
  }

  async function togglePause() {
    pauseButton.disabled = true;
    try {
      const {data: m, etag} = await api(base, {meta: true});
      ({data: monitor} = await write(base, {method: "PATCH", body: {enabled: !m.enabled}, etag, loaded: m}));
      showPause();
      setStatus(monitor.status);
      announce(monitor.enabled ? "Resumed" : "Paused");
    } catch (err) {
      runResult.replaceChildren(errorBox(err));
    } finally {
      pauseButton.disabled = false;
    }
  }

  async function remove() {
    if (await ask(`Delete ${monitor.name}?`, "The monitor and its history are removed for good.",
      [{value: "delete", label: "Delete monitor", danger: true}]) !== "delete") return;
    try {
      const {data: m, etag} = await api(base, {meta: true});
      await write(base, {method: "DELETE", etag, loaded: m});
      location.hash = "#/monitors";
    } catch (err) {
      runResult.replaceChildren(errorBox(err));
    }
  }

  async function loadUptime() {
    const u = await api(`${base}/uptime?windows=24h,7d,30d`);
    const names = ["24h", "7d", "30d"];
    clear(uptimes).append(...u.windows.map((w, i) => h("div.stat", {},
      h("dt", {}, `Uptime ${names[i]}`),
      h("dd", {}, pct(w.uptime)),
      h("dd.muted", {}, `${w.checks} checks \u00b7 p95 ${ms(w.p95Ms)} \u00b7 ${u.incidents[names[i]] ?? 0} incidents`))));
  }

  async function loadHistory() {
    const until = Date.now() / 1000;
    const h1 = await api(`${base}/history${query({since: until - range.span, until, step: range.step})}`);
    chart.set(h1.points.map((p) => ({at: p.at, p50Ms: p.p50Ms, p95Ms: p.p95Ms})));
  }

  async function loadBeats() {
    const r = await api(`${base}/heartbeats?limit=${BEATS}`);
    beats = r.items.reverse();
    drawBeats();
  }

  function drawBeats() {
    clear(beatsBox).append(beats.length ? heartbeatBar(beats, BEATS) : h("p.muted", {}, "No checks yet."));
  }

  async function loadPings() {
    if (!push) return;
    const r = await api(`${base}/pings?limit=${PINGS}`);
    const o = r.outlook;
    const next = o?.nextExpectedAt
      ? h("p.muted", {}, "Next ping expected ", time(o.nextExpectedAt), ", late after ", time(o.lateAt),
        o.runningSince ? [" \u00b7 a run is going since ", time(o.runningSince)] : null)
      : null;
    const list = r.items.length
      ? h("ul.incidents.pings", {}, ...r.items.map(pingItem))
      : h("p.muted", {}, "No pings yet.");
    clear(pingsBox).append(...(next ? [next, list] : [list]));
  }

  async function loadIncidents() {
    const r = await api(`/api/incidents?monitorId=${encodeURIComponent(id)}&limit=20`);
    clear(incidentList).append(...(r.items.length ? r.items.map((i) => h("li.incident", {},
      badge(i.closedAt ? "closed" : "open"), " ", time(i.openedAt), " ",
      h("span.muted", {}, duration(i.durationSeconds)), i.cause ? h("span.cause", {}, i.cause) : null))
      : [h("li.muted", {}, "No incidents.")]));
  }

  async function runNow() {
    runButton.disabled = true;
    runResult.replaceChildren(h("p.muted", {}, "Checking\u2026"));
    try {
      const r = await api(`${base}/check`, {method: "POST"});
      clear(runResult).append(h("p", {}, "Result: ", badge(r.ok ? "up" : "down"), ` ${ms(r.latencyMs)}`,
        r.message ? ` \u2013 ${r.message}` : ""),
      h("ul.conditions", {}, ...(r.conditions ?? []).map((c) =>
        h("li", {}, c.success ? "\u2714 " : "\u2716 ", h("code", {}, c.condition ?? ""), c.detail ? ` \u2013 ${c.detail}` : ""))));
      announce(`Check finished: ${r.ok ? "up" : "down"}`);
    } catch (err) {
      runResult.replaceChildren(errorBox(err));
    } finally {
      enable();
    }
  }

  async function loadAll() {
    try {
      await Promise.all([loadUptime(), loadHistory(), loadBeats(), loadIncidents(), loadPings()]);
      problems.replaceChildren();
    } catch (err) {
      problems.replaceChildren(errorBox(err));
    }
  }

  const refresh = debounce(() => Promise.all([loadUptime(), loadIncidents()]).catch(() => {}), 800);
  const refreshPings = debounce(() => loadPings().catch(() => {}), 500);
  await loadAll();
  const unsubscribe = ctx.live.subscribe([`monitors.${id}`], (f) => {
    const d = f.data;
    if (f.event === "monitor.state") setStatus(d.status, d.since);
    else if (f.event === "monitor.status") {
      setStatus(d.status, d.at);
      refresh();
    } else if (f.event === "monitor.heartbeat") {
      beats.push({at: Date.parse(d.at) / 1000, status: d.status, latencyMs: d.latencyMs, message: d.message});
      if (beats.length > BEATS) beats.shift();
      drawBeats();
      refreshPings();
    }
  }, loadAll);
  const unwatch = ctx.onLive(enable);
  const gates = gate(root, ctx);
  // History moves a step at a time (a minute at the finest): re-read it as often.
  // The pings too: a /start is no heartbeat, so no event announces it.
  const ticker = setInterval(() => Promise.all([loadHistory(), loadPings()]).catch(() => {}), 60_000);
  return () => {
    unsubscribe();
    unwatch();
    gates.stop();
    clearInterval(ticker);
    refresh.cancel();
    refreshPings.cancel();
    chart.destroy();
  };
}

function schedule(m) {
  if (m.kind !== "push") return `every ${m.interval} s`;
  const when = m.cron ? `cron ${m.cron} (${m.timezone ?? "UTC"})` : `every ${m.interval} s`;
  const limit = m.maxRuntime != null ? ` \u00b7 max runtime ${duration(m.maxRuntime)}` : "";
  return `${when} \u00b7 grace ${duration(m.grace ?? 0)}${limit}`;
}

/** One ping: when, what it said, how long its run took, who called, and the body it sent. */
function pingItem(p) {
  const facts = [
    p.exitCode != null ? `exit ${p.exitCode}` : null,
    p.durationSeconds != null ? `ran ${duration(p.durationSeconds)}` : null,
    p.method,
    p.source,
    p.userAgent,
  ].filter((x) => x != null);
  return h("li.ping", {},
    badge(PING_BADGE[p.kind] ?? p.kind), " ", time(p.at), " ", h("span.muted", {}, facts.join(" \u00b7 ")),
    p.message ? h("span.cause", {}, p.message) : null,
    p.body ? h("details", {},
      h("summary", {}, p.truncated ? "Body (first 10 KB)" : `Body (${p.body.length} characters)`),
      h("pre.ping-body", {}, p.body)) : null);
}

function target(m) {
  if (m.url) return m.url;
  if (m.kind === "push") return "push";
  return m.port ? `${m.host}:${m.port}` : m.host ?? "";
}
