// Server detail: live CPU / memory chart (15 minutes of history, then "servers.<id>.metrics"),
// the other figures as text, the resource alert rules in force with their state and recent
// alert incidents (refreshed on "server.alert"), and restart / stop / start with the action's
// progress followed on the "actions" topic.

import {api} from "./api.js";
import {announce, badge, clear, debounce, errorBox, h, num, section, setBadge, time} from "./dom.js";
import {LineChart} from "./charts.js";
import {gate} from "./forms.js";

const SPAN = 900;
const ACTIONS = ["restart", "stop", "start"];
const FINAL = new Set(["succeeded", "failed"]);

export async function mount(root, {id}, ctx) {
  const base = `/api/servers/${encodeURIComponent(id)}`;
  let server;
  try {
    server = await api(base);
  } catch (err) {
    root.append(h("h1", {}, "Server"), errorBox(err), h("p", {}, h("a", {href: "#/inventory"}, "Back to the inventory")));
    return null;
  }
  document.title = `${server.name} \u00b7 dragonopsd`;
  let statusBadge = badge(server.status);
  const figures = h("dl.stats");
  const progress = h("div.action-progress", {"aria-live": "polite"});
  const history = h("ul.actions-list");
  const alertRules = h("ul.alert-rules");
  const alertIncidents = h("ul.alert-incidents");
  const problems = h("div");
  const chart = new LineChart({label: "CPU and memory", unit: "%", max: 100, window: SPAN, series: [
    {key: "cpu", label: "CPU", cls: "cpu"},
    {key: "memory", label: "Memory", cls: "memory", dash: true},
  ]});
  let pending = null; // the action this page started and is following
  const buttons = ACTIONS.map((a) => h(`button${a === "restart" ? ".primary" : ""}`,
    {type: "button", "data-action": a, on: {click: () => act(a)}}, a[0].toUpperCase() + a.slice(1)));

  root.append(
    h("p.crumbs", {}, h("a", {href: "#/inventory"}, "Inventory"), " / server"),
    h("div.title-row", {}, h("h1", {}, server.name), statusBadge),
    h("p.muted", {}, `${server.type}${server.privateIp ? ` \u00b7 ${server.privateIp}` : ""} \u00b7 samples: ${server.sampling}`),
    problems,
    h("div.actions", {role: "group", "aria-label": "Server actions", "data-write": ""}, buttons,
      h("a.button", {href: `#/inventory/servers/${server.id}`}, "Edit")), progress,
    section("live-h", "Live metrics", chart.node, figures),
    section("alerts-h", "Resource alerts", alertRules, alertIncidents),
    section("actions-h", "Recent actions", history),
  );

  function enable() {
    const allowed = ctx.can("operator");
    for (const b of buttons) {
      b.disabled = !allowed || pending != null;
      b.title = allowed ? "" : "Needs the operator role";
    }
  }

  function showFigures(s) {
    if (!s) return;
    clear(figures).append(...[
      ["CPU", `${num(s.cpu)}%`], ["Memory", `${num(s.memory)}%`], ["Load", num(s.load, 2)],
      ["Disk", `${num(s.disk)}%`], ["Net in", rate(s.netIn)], ["Net out", rate(s.netOut)],
    ].map(([k, v]) => h("div.stat", {}, h("dt", {}, k), h("dd", {}, v))));
  }

  function showProgress(a) {
    const done = FINAL.has(a.state);
    progress.replaceChildren(h(`div.progress-box.s-${a.state}`, {"data-action-id": a.id, "data-state": a.state},
      h("p", {}, `${cap(a.action)}: `, badge(a.state), a.error ? ` \u2013 ${a.error}` : ""),
      done ? null : h("progress", {"aria-label": `${a.action} in progress`})));
    if (done) {
      announce(`${cap(a.action)} ${a.state}`);
      pending = null;
      enable();
      loadActions();
      refreshServer();
    }
  }

  async function act(action) {
    pending = action;
    enable();
    try {
      const a = await api(`${base}/actions`, {method: "POST", body: {action}});
      pending = a.id;
      showProgress(a);
    } catch (err) {
      pending = null;
      enable();
      progress.replaceChildren(errorBox(err));
    }
  }

  async function loadActions() {
    try {
      const r = await api(`/api/actions?serverId=${encodeURIComponent(id)}&limit=10`);
      clear(history).append(...(r.items.length ? r.items.map((a) => h("li", {},
        cap(a.action), " ", badge(a.state), " ", time(a.createdAt), h("span.muted", {}, ` by ${a.requestedBy}`),
        a.error ? h("span.cause", {}, a.error) : null)) : [h("li.muted", {}, "No actions yet.")]));
    } catch (err) {
      problems.replaceChildren(errorBox(err));
    }
  }

  async function loadAlerts() {
    const r = await api(`${base}/alerts?limit=5`);
    clear(alertRules).append(...(r.rules.length ? r.rules.map((a) => h("li", {"data-rule-id": a.rule.id, "data-state": a.state},
      a.rule.expression, " ", badge(a.state), a.value != null && a.rule.metric !== "no-samples" ? h("span.muted", {}, ` now ${num(a.value)}`) : null,
      a.since ? h("span.muted", {}, " since ", time(a.since)) : null)) : [h("li.muted", {}, "No alert rules apply to this server.")]));
    clear(alertIncidents).append(...r.incidents.map((i) => h("li", {"data-incident-id": i.id},
      time(i.openedAt), " ", i.ruleName, " ", badge(i.closedAt ? "closed" : "open"), h("span.cause", {}, i.cause),
      i.rootCause ? h("span.muted", {}, ` (${i.rootCause})`) : null)));
  }

  async function loadServer() {
    try {
      server = await api(base);
      statusBadge = setBadge(statusBadge, server.status);
    } catch (err) {
      problems.replaceChildren(errorBox(err));
    }
  }

  async function loadMetrics() {
    const until = Date.now() / 1000;
    const m = await api(`${base}/metrics?since=${until - SPAN}&until=${until}`);
    chart.set(m.points.filter((p) => p.count > 0).map((p) => ({at: p.at, cpu: p.cpu, memory: p.memory})));
    showFigures(m.latest);
  }

  async function loadAll() {
    try {
      await Promise.all([loadMetrics(), loadActions(), loadServer(), loadAlerts()]);
      problems.replaceChildren();
    } catch (err) {
      problems.replaceChildren(errorBox(err));
    }
  }

  const refreshServer = debounce(loadServer, 200);
  const refreshAlerts = debounce(() => loadAlerts().catch((err) => problems.replaceChildren(errorBox(err))), 200);
  enable();
  await loadAll();
  const unsubscribe = ctx.live.subscribe([`servers.${id}.metrics`, "actions", "inventory"], (f) => {
    const d = f.data;
    if (f.event === "server.metrics" && d.serverId === server.id) {
      chart.push({at: d.at, cpu: d.cpu, memory: d.memory});
      showFigures(d);
    } else if (f.event === "server.alert" && d.serverId === server.id) {
      if (f.type === "event") announce(`${d.ruleName}: ${d.state}`);
      refreshAlerts();
    } else if (f.event === "action.updated" && d.serverId === server.id) {
      if (pending === d.id || (f.type === "snapshot" && !FINAL.has(d.state))) {
        pending = FINAL.has(d.state) ? null : d.id;
        showProgress(d);
      }
      enable();
    } else if (f.event === "inventory.changed" && d.id === server.id) {
      refreshServer();
    }
  }, loadAll);
  // The role is known once the socket has authenticated: re-check the buttons then.
  const unwatch = ctx.onLive(enable);
  const gates = gate(root, ctx); // a viewer sees no actions at all
  return () => {
    unsubscribe();
    unwatch();
    gates.stop();
    refreshServer.cancel();
    refreshAlerts.cancel();
    chart.destroy();
  };
}

const cap = (s) => s[0].toUpperCase() + s.slice(1);

function rate(bytes) {
  if (bytes == null) return "\u2013";
  const units = ["B/s", "KB/s", "MB/s", "GB/s"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 10 ? 0 : 1)} ${units[i]}`;
}
