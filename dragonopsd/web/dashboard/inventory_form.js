// Create, edit and delete one inventory item: a client, project (technologies as chips),
// environment or server (sampling source; admins mint the agent token here, shown once with
// the command that starts the agent). "#/inventory/<table>/new?<parentKey>=<id>" creates,
// "#/inventory/<table>/<id>" edits. Deleting asks first; an item that still has children gets
// the daemon's 409 and the choice to delete everything under it (?cascade=true).

import {api} from "./api.js";
import {announce, copy, errorBox, h} from "./dom.js";
import {Form, ask, buttons, chips, field, gate, hashQuery, readOnlyNote, submit, write} from "./forms.js";

const LEVELS = {
  clients: {singular: "client", title: "Client", child: "projects", statuses: ["active", "inactive", "archived"]},
  projects: {singular: "project", title: "Project", parent: "clients", parentKey: "clientId", child: "environments",
    statuses: ["active", "paused", "completed", "archived"]},
  environments: {singular: "environment", title: "Environment", parent: "projects", parentKey: "projectId", child: "servers",
    statuses: ["active", "degraded", "maintenance", "archived"]},
  servers: {singular: "server", title: "Server", parent: "environments", parentKey: "environmentId",
    statuses: ["provisioning", "running", "starting", "stopping", "stopped", "restarting", "unreachable", "maintenance"]},
};
const SAMPLING = [["simulated", "Simulated (demo figures)"], ["local", "This host (/proc)"], ["agent", "Agent on the server"]];
const TECHNOLOGIES = ["Python", "Go", "Node.js", "Java", "PHP", "Ruby", "Rust", ".NET", "React", "Vue", "PostgreSQL",
  "MySQL", "Redis", "Kubernetes", "Docker", "nginx"];

export async function mount(root, {table, id}, ctx) {
  const level = LEVELS[table];
  if (!level) {
    root.append(h("h1", {}, "Not found"), h("p", {}, "No such inventory level."));
    return null;
  }
  const creating = id === "new";
  const base = `/api/${table}`;
  let item = null;
  let etag = null;
  if (!creating) {
    try {
      ({data: item, etag} = await api(`${base}/${encodeURIComponent(id)}`, {meta: true}));
    } catch (err) {
      root.append(h("h1", {}, level.title), errorBox(err), h("p", {}, h("a", {href: "#/inventory"}, "Back to the inventory")));
      return null;
    }
  }
  const parents = level.parent ? await parentOptions(level.parent) : [];
  const preset = hashQuery().get(level.parentKey);
  const form = new Form(`${level.singular}-form`, {label: `${level.title} details`});
  const fields = [];
  const add = (f) => fields.push(form.add(f));
  const fid = form.id;

  if (level.parent) {
    add(field(fid, {path: `$.${level.parentKey}`, label: LEVELS[level.parent].title, type: "select", required: true,
      options: [["", parents.length ? "Choose\u2026" : `No ${level.parent} yet`], ...parents],
      value: item?.[level.parentKey] ?? preset ?? (parents.length === 1 ? parents[0][0] : "")}));
  }
  add(field(fid, {path: "$.name", label: "Name", required: true, value: item?.name, check: (v) => (v.length > 200 ? "At most 200 characters" : null)}));
  if (table === "servers") {
    add(field(fid, {path: "$.type", label: "Type", value: item?.type ?? "vm", hint: "vm, web, database, cache\u2026"}));
    add(field(fid, {path: "$.privateIp", label: "Private IP", value: item?.privateIp, placeholder: "10.0.0.5",
      check: (v) => (/^[0-9a-fA-F:.]+$/.test(v) && (v.includes(":") || /^(\d{1,3}\.){3}\d{1,3}$/.test(v)) ? null : "Expected an IPv4 or IPv6 address")}));
    add(field(fid, {path: "$.sampling", label: "Sampling source", type: "select", options: SAMPLING, value: item?.sampling ?? "simulated",
      hint: "Where CPU and memory figures come from. Agent: run dragonopsd agent on the server with a token made below."}));
  }
  if (table === "environments") {
    add(field(fid, {path: "$.url", label: "URL", type: "url", value: item?.url, placeholder: "https://app.example.com",
      pattern: "https?://[^\\s/]+(/\\S*)?", patternText: "Expected an http:// or https:// URL"}));
    add(resourcesField(fid, item?.resources));
  }
  add(field(fid, {path: "$.status", label: "Status", type: "select", options: level.statuses.map((s) => [s, s]),
    value: item?.status ?? level.statuses[table === "servers" ? 1 : 0]}));
  if (table === "projects") {
    add(chips(fid, {path: "$.technology", label: "Technologies", value: item?.technology ?? [], suggestions: TECHNOLOGIES}));
  }
  add(chips(fid, {path: "$.tags", label: "Tags", value: item?.tags ?? []}));
  add(field(fid, {path: "$.description", label: "Description", type: "textarea", value: item?.description}));

  const save = h("button.primary", {type: "submit"}, creating ? `Create ${level.singular}` : "Save changes");
  const remove = creating ? null : h("button.danger", {type: "button", on: {click: del}}, `Delete ${level.singular}`);
  const done = h("div.saved", {"aria-live": "polite"});
  const readOnly = h("div", {"data-read-only": ""}, readOnlyNote(`this ${level.singular}`));
  const writeBox = h("div", {"data-write": ""}, form.node);
  form.node.append(form.alert, ...fields.map((f) => f.node), buttons(save, remove));
  form.node.addEventListener("submit", (ev) => {
    ev.preventDefault();
    submitForm();
  });

  const crumbs = h("p.crumbs", {}, h("a", {href: "#/inventory"}, "Inventory"), ` / ${level.singular}`);
  const heading = h("h1", {}, creating ? `New ${level.singular}` : `${level.title}: ${item.name}`);
  const next = h("div.next-steps");
  const agent = table === "servers" && !creating ? agentSection(item) : null;
  root.append(...[crumbs, heading, readOnly, done, writeBox, next, agent].filter(Boolean));
  drawNext();
  const gates = gate(root, ctx);

  function body() {
    const out = {};
    for (const f of fields) {
      const v = f.read();
      if (creating && (v === null || (Array.isArray(v) && !v.length && f.path !== "$.tags"))) continue;
      out[f.path.slice(2)] = v;
    }
    return out;
  }

  async function submitForm() {
    const result = await submit(form, save, async () => {
      if (creating) return api(base, {method: "POST", body: body(), meta: true});
      return write(`${base}/${item.id}`, {method: "PATCH", body: body(), etag, loaded: item});
    });
    if (!result) return;
    if (creating) {
      announce(`${level.title} created`);
      location.hash = `#/inventory/${table}/${result.data.id}?created=1`;
      return;
    }
    ({data: item, etag} = result);
    heading.textContent = `${level.title}: ${item.name}`;
    history.replaceState(null, "", location.hash.split("?")[0]); // the "Created" note is old news
    drawNext();
    done.replaceChildren(h("p.notice.ok", {}, `Saved ${item.name}.`));
    announce("Saved");
  }

  async function del() {
    const sure = await ask(`Delete ${item.name}?`, `The ${level.singular} is removed for good.`,
      [{value: "delete", label: `Delete ${level.singular}`, danger: true}]);
    if (sure !== "delete") return;
    try {
      await write(`${base}/${item.id}`, {method: "DELETE", etag, loaded: item});
    } catch (err) {
      if (err.status !== 409) {
        if (err.status === 412) form.showConflict(() => location.reload());
        else form.showProblem(err);
        return;
      }
      const cascade = await ask(`${item.name} is not empty`, [h("p.error", {"data-children": "true"}, err.message),
        `Deleting it with everything under it also deletes its ${level.child} and their children (monitors lose their place in the hierarchy).`],
      [{value: "cascade", label: "Delete it and everything under it", danger: true}]);
      if (cascade !== "cascade") return;
      try {
        await write(`${base}/${item.id}`, {method: "DELETE", etag, loaded: item, query: "?cascade=true"});
      } catch (again) {
        if (again.status === 412) form.showConflict(() => location.reload());
        else form.showProblem(again);
        return;
      }
    }
    announce(`${item.name} deleted`);
    location.hash = "#/inventory";
  }

  function drawNext() {
    if (creating || !level.child) return;
    const childLevel = LEVELS[level.child];
    next.replaceChildren(h("p", {"data-write": ""},
      hashQuery().get("created") ? h("span.notice.ok", {}, `Created ${item.name}. `) : null,
      h("a.button", {href: `#/inventory/${level.child}/new?${childLevel.parentKey}=${item.id}`}, `Add ${article(childLevel.singular)} ${childLevel.singular}`)));
  }

  function agentSection(server) {
    const out = h("div.agent-token", {"aria-live": "polite"});
    const make = h("button", {type: "button", on: {click: async () => {
      make.disabled = true;
      try {
        const r = await api("/api/tokens", {method: "POST",
          body: {name: `agent ${server.name}`.slice(0, 100), role: "agent", serverId: server.id}});
        const command = `dragonopsd agent --url ${location.origin} --token ${r.token} --server-id ${server.id} --interval 10`;
        const code = h("pre.command", {}, h("code", {}, command));
        out.replaceChildren(
          h("p.notice", {}, h("strong", {}, "Shown once: "), "copy the token now; the daemon keeps only its hash."),
          h("p", {}, "Token: ", h("code.secret-value", {}, r.token)),
          h("p", {}, "Run on the server:"), code,
          h("button", {type: "button", on: {click: async () => announce((await copy(command)) ? "Copied" : "Copy failed; select the text instead")}}, "Copy command"),
          ...(server.sampling === "agent" ? [] : [h("p.help", {}, "Set Sampling source to \u201cAgent on the server\u201d and save, so the daemon takes this server's figures from the agent.")]));
        announce("Agent token created; shown once");
      } catch (err) {
        out.replaceChildren(errorBox(err));
      } finally {
        make.disabled = false;
      }
    }}}, "Create agent token");
    return h("section.card", {"aria-labelledby": "agent-h", "data-write": "admin"},
      h("h2", {id: "agent-h"}, "Agent"),
      h("p.help", {}, "A token of role agent may only push this server's samples. Admins only."),
      make, out);
  }

  return () => gates.stop();
}

const article = (word) => ("aeiou".includes(word[0]) ? "an" : "a");

/** [[id, "Acme / Portal / Production"], ...] for the level above, walking the tree once. */
async function parentOptions(table) {
  const include = {clients: "", projects: "&include=projects", environments: "&include=projects.environments"}[table];
  const page = await api(`/api/clients?limit=500&sort=name${include}`);
  const out = [];
  for (const c of page.items) {
    if (table === "clients") out.push([c.id, c.name]);
    for (const p of c.projects ?? []) {
      if (table === "projects") out.push([p.id, `${c.name} / ${p.name}`]);
      for (const e of p.environments ?? []) out.push([e.id, `${c.name} / ${p.name} / ${e.name}`]);
    }
  }
  return out;
}

// An environment's resources (database names, bucket URLs, cluster sizes...): a JSON object of
// at most 100 keys, typed as JSON and checked here before the API sees it.
function resourcesField(fid, value) {
  const f = field(fid, {path: "$.resources", label: "Resources (JSON object)", type: "textarea", rows: 4,
    value: value && Object.keys(value).length ? JSON.stringify(value, null, 2) : "",
    placeholder: '{"database": "orders", "replicas": 2}',
    hint: "Anything the team keeps about this environment, as key: value pairs. Empty for none.",
    check: (v) => {
      if (v === "") return null;
      let parsed;
      try {
        parsed = JSON.parse(v);
      } catch (err) {
        return `Not JSON: ${err.message}`;
      }
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return "Expected a JSON object: {\"key\": value}";
      return Object.keys(parsed).length > 100 ? "At most 100 keys" : null;
    }});
  const text = f.read;
  f.read = () => {
    const raw = text();
    return raw === null ? {} : JSON.parse(raw);
  };
  return f;
}
