// Create ("#/maintenance/new"), edit and delete ("#/maintenance/<id>") a maintenance window:
// one-off (from..until in this browser's local time) or recurring (cron + IANA time zone + how
// long each occurrence lasts). The cron helper previews the next five occurrences from
// GET /api/maintenance/preview, the daemon's own schedule code, so the browser never
// reimplements cron; each is shown in the window's time zone and in this browser's.

import {api, query} from "./api.js";
import {announce, debounce, errorBox, h} from "./dom.js";
import {Form, ask, buttons, field, gate, multi, readOnlyNote, submit, write} from "./forms.js";

const PRESETS = [
  ["", "Pick a common schedule\u2026"],
  ["0 2 * * sun", "Sundays at 02:00"],
  ["0 3 * * *", "Every day at 03:00"],
  ["0 22 * * mon-fri", "Weekdays at 22:00"],
  ["0 4 1 * *", "The 1st of each month at 04:00"],
  ["30 1 * * sat", "Saturdays at 01:30"],
];
const ONE_OFF = ["$.startsAt", "$.endsAt"];
const KEPT = [["environmentIds", "environment(s)"], ["projectIds", "project(s)"], ["clientIds", "client(s)"]];
const RECURRING = ["$.cron", "$.timezone", "$.duration"];

export async function mount(root, {id}, ctx) {
  const creating = id === "new";
  let item = null;
  let etag = null;
  try {
    if (!creating) ({data: item, etag} = await api(`/api/maintenance/${encodeURIComponent(id)}`, {meta: true}));
  } catch (err) {
    root.append(h("h1", {}, "Maintenance window"), errorBox(err), h("p", {}, h("a", {href: "#/maintenance"}, "Back to maintenance")));
    return null;
  }
  const [monitors, servers] = await Promise.all([
    api("/api/monitors?limit=500").then((r) => r.items.map((m) => [m.id, m.name])),
    api("/api/servers?limit=500").then((r) => r.items.map((s) => [s.id, s.name])).catch(() => []),
  ]);
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const here = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const form = new Form("window-form", {label: "Maintenance window"});
  const fid = form.id;
  const f = {};
  const put = (key, spec) => (f[key] = form.add(field(fid, {path: `$.${key}`, value: item?.[key], ...spec})));

  put("name", {label: "Name", required: true});
  put("description", {label: "Description", type: "textarea", rows: 2});
  put("enabled", {label: "Enabled", type: "checkbox", value: item?.enabled ?? true});
  put("kind", {label: "Kind", type: "select", options: [["one-off", "One-off (from \u2026 until)"], ["recurring", "Recurring (cron)"]],
    value: item?.kind ?? "one-off"});
  put("startsAt", {label: "Starts (your local time)", type: "datetime-local", value: local(item?.startsAt), required: true});
  put("endsAt", {label: "Ends (your local time)", type: "datetime-local", value: local(item?.endsAt), required: true,
    check: (v) => (f.startsAt.input.value && v <= f.startsAt.input.value ? "Must be after the start" : null)});
  const preset = h("select", {id: `${fid}-preset`, "aria-label": "Common schedules"}, ...PRESETS.map(([v, t]) => h("option", {value: v}, t)));
  put("cron", {label: "Cron (minute hour day-of-month month day-of-week)", required: true, placeholder: "0 2 * * sun",
    hint: "Five fields, e.g. \u201c0 2 * * sun\u201d: Sundays at 02:00 in the time zone below."});
  put("timezone", {label: "Time zone", value: item?.timezone ?? here, list: `${fid}-zones`,
    hint: "An IANA name such as Europe/Berlin; the cron follows this wall clock, DST included."});
  put("duration", {label: "Each lasts (minutes)", type: "number", min: 1, max: 31 * 1440, integer: true, required: true,
    value: item?.duration ? Math.round(item.duration / 60) : 60});
  const all = put("all", {label: "Covers everything (every monitor)", type: "checkbox", value: item?.scope?.all ?? false});
  form.fields.delete("$.all");
  const scope = {monitorIds: multi(fid, {path: "$.scope.monitorIds", label: "Monitors", options: monitors, value: item?.scope?.monitorIds}),
    serverIds: multi(fid, {path: "$.scope.serverIds", label: "Servers (every monitor on them)", options: servers, value: item?.scope?.serverIds})};
  // Levels this form does not draw (set through the API) are kept as they are, and said.
  const kept = Object.fromEntries(KEPT.map(([k]) => [k, item?.scope?.[k] ?? []]));
  const keptText = KEPT.filter(([k]) => kept[k].length).map(([k, word]) => `${kept[k].length} ${word}`).join(", ");
  const scopeBox = h("fieldset", {}, h("legend", {}, "What it covers"), all.node, scope.monitorIds.node, scope.serverIds.node,
    keptText ? h("p.help", {}, `Also covers ${keptText} (kept as set through the API).`) : null);
  const scopeError = h("p.field-error", {id: `${fid}-scope-error`, hidden: true});
  form.add({path: "$.scope", node: scopeBox, input: all.input, error: scopeError, spec: {}, validate: () => null});
  form.fields.set("$.scope.all", form.fields.get("$.scope"));
  for (const m of Object.values(scope)) form.add(m);
  scopeBox.append(scopeError);

  const previewList = h("ol.preview", {id: `${fid}-preview`});
  const previewNote = h("p.help", {"aria-live": "polite"});
  const cronBox = h("fieldset", {}, h("legend", {}, "Schedule"),
    h("div.field", {}, h("label", {for: preset.id}, "Common schedules"), preset),
    f.cron.node, f.timezone.node, f.duration.node,
    h("datalist", {id: `${fid}-zones`}, ...zones.map((z) => h("option", {value: z}))),
    h("section.cron-preview", {"aria-labelledby": `${fid}-preview-h`},
      h("h2", {id: `${fid}-preview-h`}, "Next five occurrences"), previewNote, previewList));
  const onceBox = h("fieldset", {}, h("legend", {}, "When"), f.startsAt.node, f.endsAt.node);

  const save = h("button.primary", {type: "submit"}, creating ? "Create window" : "Save changes");
  const remove = creating ? null : h("button.danger", {type: "button", on: {click: del}}, "Delete window");
  const done = h("div.saved", {"aria-live": "polite"});
  form.node.append(form.alert, f.name.node, f.kind.node, onceBox, cronBox, scopeBox, f.description.node, f.enabled.node,
    buttons(save, remove));
  form.node.addEventListener("submit", (ev) => {
    ev.preventDefault();
    saveForm();
  });
  const heading = h("h1", {}, creating ? "New maintenance window" : `Window: ${item.name}`);
  root.append(h("p.crumbs", {}, h("a", {href: "#/maintenance"}, "Maintenance"), " / window"), heading,
    h("div", {"data-read-only": ""}, readOnlyNote("maintenance windows")), done, h("div", {"data-write": ""}, form.node));

  let asked = 0; // preview requests sent; only the latest one's answer is drawn
  const refresh = debounce(preview, 300);
  preset.addEventListener("change", () => {
    if (!preset.value) return;
    f.cron.input.value = preset.value;
    preview();
  });
  for (const input of [f.cron.input, f.timezone.input, f.duration.input]) input.addEventListener("input", refresh);
  f.kind.input.addEventListener("change", showKind);
  all.input.addEventListener("change", showScope);
  showKind();
  showScope();
  const gates = gate(root, ctx);

  function showKind() {
    const recurring = f.kind.input.value === "recurring";
    onceBox.hidden = recurring;
    cronBox.hidden = !recurring;
    for (const p of ONE_OFF) form.fields.get(p).node.hidden = recurring;
    for (const p of RECURRING) form.fields.get(p).node.hidden = !recurring;
    if (recurring) preview();
  }

  function showScope() {
    for (const m of Object.values(scope)) m.node.hidden = all.input.checked;
  }

  async function preview() {
    const cron = f.cron.input.value.trim();
    const zone = f.timezone.input.value.trim() || "UTC";
    if (!cron) {
      previewNote.textContent = "Type a cron expression to see when it runs.";
      previewList.replaceChildren();
      return;
    }
    const serial = ++asked;
    const minutes = Number(f.duration.input.value);
    const duration = Number.isInteger(minutes) && minutes > 0 ? minutes * 60 : 0;
    try {
      const r = await api(`/api/maintenance/preview${query({cron, timezone: zone, count: 5, duration})}`);
      if (serial !== asked) return; // a later keystroke already asked again
      f.cron.error.hidden = f.timezone.error.hidden = true;
      previewNote.textContent = r.items.length ? `In ${zone}, and in your time (${here}):` : "It never runs again.";
      previewList.replaceChildren(...r.items.map((o) => h("li", {"data-start": o.start},
        h("time", {datetime: o.start}, wall(o.start, zone)),
        zone === here ? null : h("span.muted", {}, ` (${wall(o.start, here)} yours)`),
        duration ? h("span.muted", {}, ` until ${wall(o.end, zone)}`) : null)));
    } catch (err) {
      if (serial !== asked) return;
      previewList.replaceChildren();
      previewNote.textContent = "No preview: fix the field marked below.";
      const issue = err?.problem?.errors?.[0];
      const target = issue?.field === "timezone" ? f.timezone : issue?.field === "duration" ? f.duration : f.cron;
      target.error.textContent = issue?.message ?? err.message;
      target.error.hidden = false;
    }
  }

  function body() {
    const recurring = f.kind.input.value === "recurring";
    const out = {name: f.name.read(), description: f.description.read(), enabled: f.enabled.read(), kind: f.kind.input.value,
      startsAt: recurring ? null : iso(f.startsAt.input.value), endsAt: recurring ? null : iso(f.endsAt.input.value),
      cron: recurring ? f.cron.read() : null, timezone: recurring ? f.timezone.read() ?? "UTC" : null,
      duration: recurring ? Math.round(f.duration.read() * 60) : null,
      scope: all.input.checked ? {all: true} : {...kept, monitorIds: scope.monitorIds.read(), serverIds: scope.serverIds.read()}};
    // A recurring window's bounds (set through the API) mean nothing to a one-off: drop them.
    if (!recurring && !creating) Object.assign(out, {activeFrom: null, activeUntil: null});
    if (creating) for (const k of Object.keys(out)) if (out[k] === null) delete out[k];
    return out;
  }

  async function saveForm() {
    const result = await submit(form, save, () => (creating
      ? api("/api/maintenance", {method: "POST", body: body(), meta: true})
      : write(`/api/maintenance/${item.id}`, {method: "PATCH", body: body(), etag, loaded: item})));
    if (!result) return;
    if (creating) {
      announce("Maintenance window created");
      location.hash = "#/maintenance";
      return;
    }
    ({data: item, etag} = result);
    heading.textContent = `Window: ${item.name}`;
    done.replaceChildren(h("p.notice.ok", {}, `Saved ${item.name}.`));
    announce("Saved");
  }

  async function del() {
    const sure = await ask(`Delete ${item.name}?`, "Monitors it covers leave maintenance at their next check.",
      [{value: "delete", label: "Delete window", danger: true}]);
    if (sure !== "delete") return;
    try {
      await write(`/api/maintenance/${item.id}`, {method: "DELETE", etag, loaded: item});
    } catch (err) {
      if (err.status === 412) form.showConflict(() => location.reload());
      else form.showProblem(err);
      return;
    }
    announce(`${item.name} deleted`);
    location.hash = "#/maintenance";
  }

  return () => {
    refresh.cancel();
    gates.stop();
  };
}

/** "2027-03-14T01:00:00.000Z" as a datetime-local value in this browser's zone. */
function local(text) {
  if (!text) return null;
  const d = new Date(text);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A datetime-local value (this browser's zone) as ISO 8601 UTC, or null. */
function iso(value) {
  return value ? new Date(value).toISOString() : null;
}

/** An instant as the wall clock of zone shows it ("Sun 14 Mar 2027, 02:00 CET"). */
function wall(text, zone) {
  try {
    return new Intl.DateTimeFormat(undefined, {timeZone: zone, weekday: "short", year: "numeric", month: "short",
      day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short"}).format(new Date(text));
  } catch {
    return text;
  }
}
