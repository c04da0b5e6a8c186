// Overview: inventory counts, the monitor board with live statuses, open incidents, and the
// cores of the deployment (GET /api/cluster: one, without Redis).
// The board starts from GET /api/monitoring and then follows the "monitors" topic; incidents
// follow the "incidents" topic. A reconnect's snapshots resync both.

import {api} from "./api.js";
import {ago, announce, badge, clear, debounce, errorBox, h, ms, section, setBadge} from "./dom.js";

const BOARD_LIMIT = 500; // cards drawn at once; the filter reaches the rest
const ORDER = {down: 0, pending: 1, maintenance: 2, paused: 3, up: 4};

export async function mount(root, _params, ctx) {
  const monitors = new Map(); // monitorId -> state
  const incidents = new Map(); // incidentId -> incident
  const cards = new Map(); // monitorId -> {li, badge, since}
  const stats = h("dl.stats");
  const filter = h("input", {type: "search", id: "board-filter", placeholder: "Filter by name",
    autocomplete: "off", "aria-controls": "board"});
  const board = h("ul.board", {id: "board"});
  const boardNote = h("p.muted", {"aria-live": "polite"});
  const openList = h("ul.incidents");
  const coreList = h("ul.cores", {id: "cores"});
  const problems = h("div");

  root.append(
    h("h1", {}, "Overview"),
    problems,
    section("stats-h", "At a glance", stats),
    section("board-h", "Monitors",
      h("div.toolbar", {}, h("label", {for: "board-filter"}, "Filter"), filter), boardNote, board),
    section("open-h", "Open incidents", openList),
    section("cores-h", "Cores", coreList),
  );

  function renderCores(c) {
    clear(coreList).append(...c.items.map((m) =>
      h("li.core", {"data-node": m.node, "data-status": m.status},
        badge(m.status === "alive" ? "up" : "down"), " ",
        h("span.name", {}, m.node + (m.node === c.self ? " (this core)" : "")), " ",
        h("span.muted", {},
          `${m.status} \u00b7 ${m.ownedMonitors} monitors \u00b7 ${m.version} \u00b7 since ${ago(m.since)}`))));
  }

  function renderStats(s) {
    const m = s.monitors ?? {};
    const items = [
      ["Clients", s.clients], ["Projects", s.projects], ["Environments", s.environments],
      ["Servers", s.servers], ["Health", `${Number(s.health ?? 100).toFixed(1)}%`],
      ["Monitors up", m.up ?? 0], ["Monitors down", m.down ?? 0],
    ];
    clear(stats).append(...items.map(([k, v]) =>
      h(`div.stat${k === "Monitors down" && v > 0 ? ".bad" : ""}`, {}, h("dt", {}, k), h("dd", {}, String(v)))));
  }

  function card(m) {
    const b = badge(m.status);
    const since = h("span.since", {}, `since ${ago(m.since)}`);
    const li = h(`li.monitor-card.s-${m.status}`, {"data-monitor-id": m.monitorId, "data-status": m.status},
      h("a", {href: `#/monitors/${m.monitorId}`},
        h("span.name", {}, m.name), b,
        h("span.meta", {}, `${m.kind}${m.latencyMs != null ? ` \u00b7 ${ms(m.latencyMs)}` : ""}`),
        since));
    cards.set(m.monitorId, {li, badge: b, since});
    return li;
  }

  function renderBoard() {
    cards.clear();
    const needle = filter.value.trim().toLowerCase();
    const all = [...monitors.values()]
      .filter((m) => !needle || m.name.toLowerCase().includes(needle))
      .sort((a, b) => (ORDER[a.status] ?? 5) - (ORDER[b.status] ?? 5) || a.name.localeCompare(b.name));
    clear(board).append(...all.slice(0, BOARD_LIMIT).map(card));
    boardNote.textContent = monitors.size === 0
      ? "No monitors yet: create them with POST /api/monitors or [[monitors]] in the config file."
      : all.length > BOARD_LIMIT ? `Showing ${BOARD_LIMIT} of ${all.length}; filter to see the rest.`
        : `${all.length} of ${monitors.size} monitors`;
  }

  function updateCard(id) {
    const m = monitors.get(id);
    const c = cards.get(id);
    if (!m || !c) return;
    c.li.className = `monitor-card s-${m.status}`;
    c.li.dataset.status = m.status;
    c.badge = setBadge(c.badge, m.status);
    c.since.textContent = `since ${ago(m.since)}`;
  }

  function renderIncidents() {
    const open = [...incidents.values()].sort((a, b) => (b.openedAt > a.openedAt ? 1 : -1));
    clear(openList).append(...(open.length ? open.map((i) =>
      h("li.incident", {"data-incident-id": i.id}, badge("open"), " ",
        h("a", {href: `#/monitors/${i.monitorId}`}, i.monitorName), " ",
        h("span.muted", {}, `opened ${ago(i.openedAt)}`),
        i.cause ? h("span.cause", {}, i.cause) : null))
      : [h("li.muted", {}, "None \u2013 all quiet.")]));
  }

  async function loadStats() {
    try {
      renderStats(await api("/api/stats/dashboard"));
    } catch (err) {
      problems.replaceChildren(errorBox(err));
    }
  }

  async function loadAll() {
    try {
      const [s, b, open, c] = await Promise.all([
        api("/api/stats/dashboard"), api("/api/monitoring"),
        api("/api/incidents?status=open&limit=200"), api("/api/cluster")]);
      problems.replaceChildren();
      renderStats(s);
      renderCores(c);
      monitors.clear();
      for (const m of b.items) monitors.set(m.monitorId, m);
      renderBoard();
      incidents.clear();
      for (const i of open.items) incidents.set(i.id, i);
      renderIncidents();
    } catch (err) {
      problems.replaceChildren(errorBox(err));
    }
  }

  const refreshStats = debounce(loadStats, 500);
  const refreshAll = debounce(loadAll, 500);

  function onFrame(f) {
    const d = f.data;
    switch (f.event) {
      case "monitor.state":
        monitors.set(d.monitorId, {...monitors.get(d.monitorId), ...d});
        if (cards.has(d.monitorId)) updateCard(d.monitorId);
        else refreshAll(); // a monitor this page has not drawn yet
        break;
      case "monitor.status": {
        const m = monitors.get(d.monitorId);
        if (!m) {
          refreshAll();
          break;
        }
        m.status = d.status;
        m.since = d.at;
        updateCard(d.monitorId);
        announce(`${m.name} is ${d.status}`);
        refreshStats();
        break;
      }
      case "incident.open":
        incidents.set(d.id, d);
        renderIncidents();
        break;
      case "incident.opened":
        incidents.set(d.incidentId, {id: d.incidentId, monitorId: d.monitorId,
          monitorName: d.monitorName, openedAt: d.at, cause: d.cause});
        renderIncidents();
        break;
      case "incident.closed":
        incidents.delete(d.incidentId);
        renderIncidents();
        break;
      case "inventory.changed":
        refreshStats();
        break;
    }
  }

  filter.addEventListener("input", debounce(renderBoard, 150));
  await loadAll();
  const unsubscribe = ctx.live.subscribe(["monitors", "incidents", "inventory"], onFrame, loadAll);
  const ticker = setInterval(() => {
    for (const id of cards.keys()) {
      const m = monitors.get(id);
      cards.get(id).since.textContent = `since ${ago(m.since)}`;
    }
  }, 15_000);
  return () => {
    unsubscribe();
    clearInterval(ticker);
    refreshStats.cancel();
    refreshAll.cancel();
  };
}
