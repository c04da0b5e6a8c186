// The audit log (admins): every write and every refusal, newest first, filtered by what
// GET /api/audit understands (actor, entity, entity id, method, outcome, client, since, until);
// the filters live in the hash ("#/audit?outcome=denied") so a filtered view can be shared.

import {api, query} from "./api.js";
import {clear, errorBox, h, time} from "./dom.js";
import {Form, buttons, field, gate, hashQuery, needs, submit} from "./forms.js";

const METHODS = [["", "Any"], ["POST", "POST"], ["PUT", "PUT"], ["PATCH", "PATCH"], ["DELETE", "DELETE"], ["GET", "GET"]];
const OUTCOMES = [["", "Any"], ["ok", "ok"], ["denied", "denied"], ["failed", "failed"]];
const TEXT = ["actor", "entity", "entityId", "client"];

export async function mount(root, _params, ctx) {
  const given = hashQuery();
  const form = new Form("audit-filter", {label: "Filter the audit log"});
  const fid = form.id;
  const f = {};
  for (const key of TEXT) {
    f[key] = form.add(field(fid, {path: `$.${key}`, label: {actor: "Actor", entity: "Entity", entityId: "Entity id",
      client: "Client address"}[key], value: given.get(key), placeholder: {entity: "monitors", actor: "token:<id> or a JWT subject"}[key]}));
  }
  f.method = form.add(field(fid, {path: "$.method", label: "Method", type: "select", options: METHODS, value: given.get("method") ?? ""}));
  f.outcome = form.add(field(fid, {path: "$.outcome", label: "Outcome", type: "select", options: OUTCOMES, value: given.get("outcome") ?? ""}));
  f.since = form.add(field(fid, {path: "$.since", label: "Since (your local time)", type: "datetime-local", value: local(given.get("since"))}));
  f.until = form.add(field(fid, {path: "$.until", label: "Until (your local time)", type: "datetime-local", value: local(given.get("until"))}));
  for (const key of ["since", "until"]) form.fields.set(key, f[key]);
  for (const key of TEXT.concat(["method", "outcome"])) form.fields.set(key, f[key]);
  const apply = h("button.primary", {type: "submit"}, "Apply filters");
  const reset = h("button", {type: "button", on: {click: () => {
    location.hash = "#/audit";
  }}}, "Clear");
  form.node.classList.add("filters");
  form.node.append(form.alert, h("div.filter-grid", {}, ...Object.values(f).map((x) => x.node)), buttons(apply, reset));
  const body = h("tbody");
  const more = h("button", {type: "button", hidden: true}, "Load older entries");
  const problems = h("div");
  root.append(h("h1", {}, "Audit log"), needs("admin", "reading the audit log"),
    h("div", {"data-write": "admin"}, h("details.card", {open: true}, h("summary", {}, "Filters"), form.node), problems,
      h("div.table-wrap", {}, h("table", {}, h("caption.sr-only", {}, "Audit entries"),
        h("thead", {}, h("tr", {}, ...["When", "Actor", "Call", "Entity", "Status", "Client"].map((c) => h("th", {scope: "col"}, c)))),
        body)), more));
  let cursor = null;

  function params() {
    const out = {};
    for (const key of TEXT.concat(["method", "outcome"])) out[key] = f[key].read();
    for (const key of ["since", "until"]) out[key] = f[key].input.value ? new Date(f[key].input.value).toISOString() : null;
    return out;
  }

  async function load(append = false) {
    if (!ctx.can("admin")) return;
    const r = await api(`/api/audit${query({...params(), limit: 50, cursor: append ? cursor : null})}`);
    if (!append) clear(body);
    body.append(...r.items.map((e) => h("tr", {"data-outcome": e.outcome},
      h("td", {}, time(e.at)), h("td.wrap", {}, e.actor, e.role ? h("span.muted", {}, ` (${e.role})`) : null),
      h("td.wrap", {}, h("code", {}, `${e.method} ${e.path}`)),
      h("td.wrap", {}, e.entity ?? "\u2013", e.entityId ? h("div.muted", {}, e.entityId) : null),
      h("td", {}, `${e.status} ${e.outcome}`), h("td", {}, e.client ?? "\u2013"))));
    if (!append && !r.items.length) body.append(h("tr", {}, h("td.muted", {colspan: 6}, "No entries match.")));
    cursor = r.nextCursor;
    more.hidden = !cursor;
  }

  form.node.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const done = await submit(form, apply, async () => {
      await load();
      return true;
    });
    if (done) history.replaceState(null, "", `#/audit${query(params())}`);
  });
  more.addEventListener("click", () => load(true).catch((err) => problems.replaceChildren(errorBox(err))));
  const gates = gate(root, ctx);
  const first = () => load().catch((err) => form.showProblem(err));
  await first();
  const unwatch = ctx.onLive(() => {
    if (ctx.can("admin") && !body.childElementCount) first();
  });
  return () => {
    unwatch();
    gates.stop();
  };
}

function local(text) {
  if (!text) return null;
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) return null;
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
