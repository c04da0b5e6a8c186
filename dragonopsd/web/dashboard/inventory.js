// Inventory: clients -> projects -> environments -> servers as nested <details> (keyboard and
// screen-reader friendly without any ARIA tree code), each server with live CPU and memory
// sparklines fed by the "servers.*.metrics" topic.

import {api} from "./api.js";
import {badge, clear, debounce, errorBox, h, num} from "./dom.js";
import {sparkline, updateSparkline} from "./charts.js";
import {gate} from "./forms.js";

// The level below each one, for the "Add ..." links (forms in inventory_form.js).
const CHILD = {client: ["projects", "clientId", "project"], project: ["environments", "projectId", "environment"],
  environment: ["servers", "environmentId", "server"]};

const KEEP = 40; // samples per sparkline
const PRELOAD = 60; // servers whose recent history is fetched up front
const PARALLEL = 4;

export async function mount(root, _params, ctx) {
  const buffers = new Map(); // serverId -> {cpu: [], memory: []}
  const rows = new Map(); // serverId -> {cpuSvg, memSvg, cpuText, memText}
  const open = new Set(); // ids of <details> the user opened (kept across refetches)
  const tree = h("div.tree");
  const problems = h("div");
  const summary = h("p.muted", {"aria-live": "polite"});
  root.append(h("div.title-row", {}, h("h1", {}, "Inventory"),
    h("a.button", {href: "#/inventory/clients/new", "data-write": ""}, "New client")), problems, summary, tree);
  const gates = gate(root, ctx);

  function buffer(id) {
    if (!buffers.has(id)) buffers.set(id, {cpu: [], memory: []});
    return buffers.get(id);
  }

  function draw(id) {
    const row = rows.get(id);
    const b = buffers.get(id);
    if (!row || !b) return;
    const cpu = b.cpu.at(-1);
    const mem = b.memory.at(-1);
    updateSparkline(row.cpuSvg, b.cpu, {label: `CPU ${num(cpu)}%`, cls: "cpu"});
    updateSparkline(row.memSvg, b.memory, {label: `Memory ${num(mem)}%`, cls: "memory"});
    row.cpuText.textContent = `${num(cpu)}%`;
    row.memText.textContent = `${num(mem)}%`;
    row.li.dataset.samples = String(b.cpu.length);
  }

  function node(kind, entity, label, children) {
    const d = h(`details.node.${kind}`, {"data-id": entity.id},
      h("summary", {}, h("span.kind", {}, kind), " ", h("span.name", {}, entity.name), " ",
        badge(entity.status), " ", h("span.muted", {}, label)),
      writeLinks(kind, entity),
      children);
    if (open.has(entity.id)) d.open = true;
    d.addEventListener("toggle", () => (d.open ? open.add(entity.id) : open.delete(entity.id)));
    return d;
  }

  function writeLinks(kind, entity) {
    const [table, key, child] = CHILD[kind];
    return h("p.row-actions", {"data-write": ""},
      h("a", {href: `#/inventory/${kind === "client" ? "clients" : `${kind}s`}/${entity.id}`, "aria-label": `Edit ${kind} ${entity.name}`}, "Edit"),
      " \u00b7 ",
      h("a", {href: `#/inventory/${table}/new?${key}=${entity.id}`}, `Add ${child}`));
  }

  function serverRow(s) {
    const cpuSvg = sparkline([], {cls: "cpu"});
    const memSvg = sparkline([], {cls: "memory"});
    const cpuText = h("span.value");
    const memText = h("span.value");
    const li = h("li.server", {"data-server-id": s.id},
      h("a.name", {href: `#/servers/${s.id}`}, s.name), " ", badge(s.status),
      h("span.muted", {}, ` ${s.type}${s.privateIp ? ` \u00b7 ${s.privateIp}` : ""}`),
      h("span.metric", {}, h("span.metric-name", {}, "CPU"), cpuSvg, cpuText),
      h("span.metric", {}, h("span.metric-name", {}, "Mem"), memSvg, memText),
      h("a.row-edit", {href: `#/inventory/servers/${s.id}`, "data-write": "", "aria-label": `Edit server ${s.name}`}, "Edit"));
    rows.set(s.id, {li, cpuSvg, memSvg, cpuText, memText});
    draw(s.id);
    return li;
  }

  function render(clients) {
    rows.clear();
    let servers = 0;
    const items = clients.map((c) => node("client", c, `${c.projects.length} projects`,
      h("ul", {}, ...c.projects.map((p) => h("li", {}, node("project", p, `${p.environments.length} environments`,
        h("ul", {}, ...p.environments.map((e) => h("li", {}, node("environment", e, `${e.servers.length} servers`,
          e.servers.length
            ? h("ul.servers", {}, ...e.servers.map((s) => (servers++, serverRow(s))))
            : h("p.muted", {}, "No servers.")))))))))));
    if (!open.size && servers <= 30) for (const d of items.flatMap((i) => [i, ...i.querySelectorAll("details")])) d.open = true;
    clear(tree).append(...(items.length ? items : [h("p.muted", {}, "No clients yet.")]));
    summary.textContent = `${clients.length} clients, ${servers} servers`;
    gates.sync();
  }

  async function load() {
    try {
      const page = await api("/api/clients?include=projects.environments.servers&limit=500&sort=name");
      problems.replaceChildren();
      render(page.items);
      return page.items;
    } catch (err) {
      problems.replaceChildren(errorBox(err));
      return [];
    }
  }

  async function preload(clients) {
    const ids = clients.flatMap((c) => c.projects.flatMap((p) => p.environments.flatMap(
      (e) => e.servers.map((s) => s.id)))).slice(0, PRELOAD);
    const since = Date.now() / 1000 - 600;
    const work = async () => {
      for (let id = ids.shift(); id; id = ids.shift()) {
        try {
          const m = await api(`/api/servers/${id}/metrics?since=${since}`);
          const b = buffer(id);
          const old = m.points.filter((p) => p.cpu != null);
          b.cpu = [...old.map((p) => p.cpu), ...b.cpu].slice(-KEEP);
          b.memory = [...old.map((p) => p.memory), ...b.memory].slice(-KEEP);
          draw(id);
        } catch {
          // history is a nicety; live samples still arrive
        }
      }
    };
    await Promise.all(Array.from({length: PARALLEL}, work));
  }

  const reload = debounce(load, 400);
  const clients = await load();
  preload(clients);
  const unsubscribe = ctx.live.subscribe(["servers.*.metrics", "inventory"], (f) => {
    if (f.event === "server.metrics") {
      const b = buffer(f.data.serverId);
      b.cpu.push(f.data.cpu);
      b.memory.push(f.data.memory);
      if (b.cpu.length > KEEP) b.cpu.shift();
      if (b.memory.length > KEEP) b.memory.shift();
      draw(f.data.serverId);
    } else if (f.event === "inventory.changed") {
      reload();
    }
  }, load);
  return () => {
    unsubscribe();
    gates.stop();
    reload.cancel();
  };
}
