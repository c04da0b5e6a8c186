// Create ("#/monitors/new", "?from=<id>" clones), edit ("#/monitors/<id>/edit") and delete a
// monitor. Only the chosen kind's fields show; conditions are edited a row each; "Test now"
// probes the unsaved form (POST /api/monitors/test) and marks each row with its verdict.
// A monitor declared in the config file is shown read-only with the reason. Where remote
// probe workers run (GET /api/locations lists their locations), the locations to check from
// and the quorum are fields too; without any, a monitor's locations are kept as they are.

import {ApiError, api} from "./api.js";
import {announce, badge, errorBox, h, ms} from "./dom.js";
import {Form, ask, buttons, chips, field, gate, hashQuery, multi, readOnlyNote, submit, write} from "./forms.js";
import {KINDS, KIND_FIELDS, conditionsEditor, kindFields, showKind} from "./monitor_kinds.js";

// Spec fields a body must carry on (clone, test) when the form does not draw them (no remote
// locations to choose from): kept as loaded.
const CARRIED = ["locations", "quorum"];
const LOCAL = "local"; // the core itself: always a choice, never listed by /api/locations

export async function mount(root, {id}, ctx) {
  const editing = id != null;
  const from = editing ? null : hashQuery().get("from");
  let item = null;
  let etag = null;
  try {
    if (editing) ({data: item, etag} = await api(`/api/monitors/${encodeURIComponent(id)}`, {meta: true}));
    else if (from) item = await api(`/api/monitors/${encodeURIComponent(from)}`);
  } catch (err) {
    root.append(h("h1", {}, "Monitor"), errorBox(err), h("p", {}, h("a", {href: "#/monitors"}, "Back to the monitors")));
    return null;
  }
  const managed = editing && item.managedBy === "config";
  const [targets, remote] = await Promise.all([hierarchy(), remoteLocations()]);
  const form = new Form("monitor-form", {label: "Monitor"});
  const fid = form.id;
  const f = {};
  const put = (key, spec) => (f[key] = form.add(field(fid, {path: `$.${key}`, value: item?.[key], ...spec})));

  put("name", {label: "Name", required: true, value: from ? `${item.name} (copy)` : item?.name});
  put("kind", {label: "Kind", type: "select", options: KINDS.map((k) => [k, k]), value: item?.kind ?? "http"});
  const kinds = kindFields(fid, item);
  for (const [key, kf] of Object.entries(kinds)) f[key] = form.add(kf);
  put("interval", {label: "Interval (seconds)", type: "number", min: 1, max: 86400, value: item?.interval ?? 60,
    hint: "Time between checks (between expected pings for push)"});
  put("timeout", {label: "Timeout (seconds)", type: "number", min: 0.1, max: 300, step: "any",
    value: item && item.timeout !== defaultTimeout(item) ? item.timeout : null, placeholder: "min(10, 0.8 \u00d7 interval)"});
  put("retries", {label: "Retries before down", type: "number", min: 0, max: 10, integer: true, value: item?.retries ?? 0});
  put("retryInterval", {label: "Retry interval (seconds)", type: "number", min: 1, max: 86400, value: item?.retryInterval ?? 20});
  put("failureThreshold", {label: "Failures before an incident", type: "number", min: 1, max: 100, integer: true,
    value: item?.failureThreshold ?? 1});
  const where = item?.serverId ? `serverId:${item.serverId}` : item?.environmentId ? `environmentId:${item.environmentId}` : "";
  const placed = form.add(field(fid, {path: "$.serverId", label: "Belongs to", type: "select", value: where,
    options: [["", "Nothing (stands alone)"], ...targets], hint: "Maintenance windows and notification routes select on this"}));
  form.fields.set("$.environmentId", placed);
  const tags = form.add(chips(fid, {path: "$.tags", label: "Tags", value: item?.tags ?? []}));
  put("description", {label: "Description", type: "textarea", rows: 2});
  put("enabled", {label: "Enabled (checked on schedule)", type: "checkbox", value: item?.enabled ?? true});
  const placesBox = remote.items.length ? placesFields() : remote.error ? h("p.notice", {role: "note"},
    `Probe locations cannot be listed now (${remote.error.message}); this monitor keeps its locations.`) : null;
  const conditions = conditionsEditor(form, item?.conditions ?? (editing || from ? [] : ["[STATUS] == 200"]), () => f.kind.input.value);

  const kindBox = h("fieldset.kind-fields", {}, h("legend", {}, "What to check"), ...Object.values(kinds).map((k) => k.node));
  const scheduleBox = h("fieldset", {}, h("legend", {}, "Schedule"),
    ...["interval", "timeout", "retries", "retryInterval", "failureThreshold", "enabled"].map((k) => f[k].node));
  const save = h("button.primary", {type: "submit"}, editing ? "Save changes" : "Create monitor");
  const test = h("button", {type: "button", on: {click: testNow}}, "Test now");
  const remove = editing && !managed ? h("button.danger", {type: "button", on: {click: del}}, "Delete monitor") : null;
  const result = h("div.test-result", {"aria-live": "polite"});
  const body = h("fieldset.plain", {disabled: managed || null},
    f.name.node, f.kind.node, kindBox, conditions.node, scheduleBox, placesBox,
    h("fieldset", {}, h("legend", {}, "Place and labels"), placed.node, tags.node, f.description.node));
  form.node.append(form.alert, body, result, buttons(managed ? null : save, test, remove));
  form.node.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!managed) saveForm();
  });
  f.kind.input.addEventListener("change", () => {
    showKind(kinds, f.kind.input.value);
    conditions.drawPalette();
    f.interval.node.hidden = false;
  });
  showKind(kinds, f.kind.input.value);

  const title = editing ? `Edit ${item.name}` : from ? `Clone ${item.name}` : "New monitor";
  const heading = h("h1", {}, title);
  const notes = [h("div", {"data-read-only": ""}, readOnlyNote("monitors"))];
  if (managed) {
    notes.push(h("div.notice.managed", {role: "note"}, h("strong", {}, "Read-only: managed by the config file. "),
      "This monitor is declared in [[monitors]] of the daemon's config file, which re-syncs it on every start and ",
      "reload (SIGHUP); a change made here would be undone, so the API refuses it. Change it in the file, or ",
      h("a", {href: `#/monitors/new?from=${item.id}`}, "clone it"), " into a monitor you can edit here."));
  }
  root.append(h("p.crumbs", {}, h("a", {href: "#/monitors"}, "Monitors"),
    editing ? [" / ", h("a", {href: `#/monitors/${item.id}`}, item.name)] : null, " / ", editing ? "edit" : "new"),
  heading, ...notes, h("div", {"data-write": ""}, form.node));
  const gates = gate(root, ctx);

  /** Locations (local and the listed remote ones, plus any the monitor names whose workers are
   * gone now, so an edit does not drop them) as checkboxes, and the quorum. */
  function placesFields() {
    const live = new Map(remote.items.map((l) => [l.name, l.workers]));
    const chosen = item?.locations ?? [LOCAL];
    const names = [...new Set([LOCAL, ...live.keys(), ...chosen])];
    const text = (n) => n === LOCAL ? `${LOCAL} (this daemon)`
      : live.has(n) ? `${n} (${live.get(n)} worker${live.get(n) === 1 ? "" : "s"})` : `${n} (no worker now)`;
    const where = form.add(multi(fid, {path: "$.locations", label: "Locations", value: chosen,
      options: names.map((n) => [n, text(n)]), hint: "Each location checks the monitor every interval."}));
    where.validate = () => (where.read().length ? null : "Choose at least one location");
    const quorum = put("quorum", {label: "Quorum (failing locations for down)", type: "number", min: 1, max: 16,
      integer: true, placeholder: "a majority", hint: "Down when at least this many locations fail; empty: a majority."});
    const own = quorum.validate;
    quorum.validate = () => own() ?? (quorum.read() > where.read().length ? "At most the number of locations chosen" : null);
    return h("fieldset.locations", {}, h("legend", {}, "Where to check from"), where.node, quorum.node);
  }

  /** The form as a full monitor body (POST and test): empty fields left out. */
  function full() {
    const out = {};
    const kind = f.kind.input.value;
    for (const [path, fl] of form.fields) {
      const key = path.slice(2);
      if (key === "serverId" || key === "environmentId" || fl.node.hidden) continue;
      if (KIND_FIELDS.includes(key) && fl.node.hidden) continue;
      const v = fl.read();
      if (v !== null) out[key] = v;
    }
    const [which, target] = placed.input.value.split(":");
    if (target) out[which] = target;
    for (const key of CARRIED) if (!form.fields.has(`$.${key}`) && item?.[key] != null) out[key] = item[key];
    if (kind === "push" && out.cron) delete out.interval;
    out.conditions = conditions.read();
    return out;
  }

  /** The merge patch for an edit: every drawn field, null for the empty and hidden ones. */
  function patch() {
    const whole = full();
    const out = {};
    for (const path of form.fields.keys()) out[path.slice(2)] = whole[path.slice(2)] ?? null;
    out.conditions = whole.conditions;
    return out;
  }

  async function testNow() {
    if (!form.check()) return;
    test.disabled = true;
    result.replaceChildren(h("p.muted", {}, "Testing\u2026"));
    try {
      const r = await api("/api/monitors/test", {method: "POST", body: full()});
      conditions.verdicts(r.conditions);
      result.replaceChildren(h("div.card.trial", {"data-ok": String(r.ok)},
        h("p", {}, "Test result: ", badge(r.ok ? "up" : "down"), ` ${ms(r.latencyMs)}`, r.message ? ` \u2013 ${r.message}` : ""),
        h("ul.conditions", {}, ...r.conditions.map((c) => h(`li.${c.success ? "pass" : "fail"}`, {},
          c.success ? "\u2714 " : "\u2716 ", h("code", {}, c.condition), ` \u2013 ${c.detail}`))),
        h("p.help", {}, "Nothing was saved or recorded.")));
      announce(`Test finished: ${r.ok ? "up" : "down"}`);
    } catch (err) {
      result.replaceChildren();
      form.showProblem(err);
    } finally {
      test.disabled = false;
    }
  }

  async function saveForm() {
    const done = await submit(form, save, async () => {
      if (!editing) return api("/api/monitors", {method: "POST", body: full(), meta: true});
      return write(`/api/monitors/${item.id}`, {method: "PATCH", body: patch(), etag, loaded: item});
    });
    if (!done) return;
    announce(editing ? "Saved" : "Monitor created");
    location.hash = `#/monitors/${done.data.id}`;
  }

  async function del() {
    if (await ask(`Delete ${item.name}?`, "The monitor and its history are removed for good.",
      [{value: "delete", label: "Delete monitor", danger: true}]) !== "delete") return;
    try {
      await write(`/api/monitors/${item.id}`, {method: "DELETE", etag, loaded: item});
      location.hash = "#/monitors";
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) form.showConflict(() => location.reload());
      else form.showProblem(err);
    }
  }

  return () => gates.stop();
}

function defaultTimeout(m) {
  return Math.round(Math.min(10, 0.8 * (m.interval ?? 60)) * 1000) / 1000;
}

/** Remote probe locations with a live worker: {items, error}; an error leaves them out. */
async function remoteLocations() {
  try {
    return {items: (await api("/api/locations")).items, error: null};
  } catch (err) {
    return {items: [], error: err};
  }
}

/** Environments and servers as ["environmentId:<id>", "Acme / Portal / Production"], ... */
async function hierarchy() {
  const page = await api("/api/clients?limit=500&sort=name&include=projects.environments.servers");
  const out = [];
  for (const c of page.items) for (const p of c.projects) for (const e of p.environments) {
    const path = `${c.name} / ${p.name} / ${e.name}`;
    out.push([`environmentId:${e.id}`, path]);
    for (const s of e.servers) out.push([`serverId:${s.id}`, `${path} / ${s.name}`]);
  }
  return out;
}
