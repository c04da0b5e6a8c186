// Settings: runtime key -> JSON value pairs (GET /api/settings for every role). Admins add a
// setting, change a value (typed as JSON, checked in the browser before it is sent) and delete
// one; each row edits in place, sending If-Match for the value as the list showed it, so a
// change made meanwhile is reported ("changed by someone else") instead of overwritten.

import {ApiError, api} from "./api.js";
import {announce, clear, errorBox, h, time} from "./dom.js";
import {Form, ask, buttons, field, gate, needs, shownEtag, submit, write} from "./forms.js";

const KEY = "[a-z][a-z0-9_.\\-]{0,127}";

export async function mount(root, _params, ctx) {
  const list = h("ul.settings");
  const problems = h("div");
  root.append(h("h1", {}, "Settings"),
    h("p.muted", {}, "Values are JSON: a number, a string in quotes, true or false, a list or an object."),
    needs("admin", "changing settings"),
    h("details.card", {"data-write": "admin"}, h("summary", {}, "New setting"), editor(null, load)),
    problems, list);
  let gates = null;

  async function load() {
    try {
      const r = await api("/api/settings");
      problems.replaceChildren();
      clear(list).append(...(r.items.length ? r.items.map((s) => h("li.card.setting", {"data-setting": s.key},
        h("h2", {}, h("code", {}, s.key)), h("pre.json", {}, JSON.stringify(s.value, null, 2)),
        s.updatedAt ? h("p.muted", {}, "Changed ", time(s.updatedAt)) : null,
        h("details", {"data-write": "admin"}, h("summary", {}, `Change ${s.key}`), editor(s, load))))
        : [h("li.muted", {}, "No settings yet.")]));
      gates?.sync();
    } catch (err) {
      problems.replaceChildren(errorBox(err));
    }
  }

  await load();
  gates = gate(root, ctx);
  return () => gates.stop();
}

/** PUT a new setting, create-only: one of that key made meanwhile (or missed in the list) is
 * reported on the key field, as a mistake to correct rather than a conflict to reload. */
async function create(path, body) {
  try {
    return await api(path, {method: "PUT", body, ifNoneMatch: "*"});
  } catch (err) {
    if (err instanceof ApiError && err.status === 412) throw new ApiError(409, err.problem);
    throw err;
  }
}

/** A form that PUTs one setting (setting null: a new one, key typed) and, for an existing one,
 * deletes it. after() reloads the list. */
function editor(setting, after) {
  const form = new Form(setting ? `setting-${setting.key.replace(/[^a-z0-9_-]/g, "-")}` : "setting-new",
    {label: setting ? `Change ${setting.key}` : "New setting"});
  const key = setting ? null : form.add(field(form.id, {path: "$.key", label: "Key", required: true, pattern: KEY,
    patternText: "Lowercase letters, digits, . _ -, starting with a letter", placeholder: "status.banner"}));
  if (key) form.fields.set("key", key);
  const value = form.add(field(form.id, {path: "$.value", label: "Value (JSON)", type: "textarea", required: true, rows: 3,
    value: setting ? JSON.stringify(setting.value, null, 2) : "", check: (v) => {
      try {
        JSON.parse(v);
        return null;
      } catch (err) {
        return `Not JSON: ${err.message}`;
      }
    }}));
  const save = h("button.primary", {type: "submit"}, setting ? "Save" : "Add setting");
  const remove = setting ? h("button.danger", {type: "button", on: {click: async () => {
    const sure = await ask(`Delete ${setting.key}?`, "What reads it falls back to its default.",
      [{value: "delete", label: "Delete setting", danger: true}]);
    if (sure !== "delete") return;
    const path = `/api/settings/${encodeURIComponent(setting.key)}`;
    try {
      await write(path, {method: "DELETE", etag: await shownEtag(path, setting), loaded: setting});
      announce(`${setting.key} deleted`);
      after();
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) form.showConflict(after);
      else form.showProblem(err);
    }
  }}}, "Delete") : null;
  form.node.append(form.alert, key?.node, value.node, buttons(save, remove));
  form.node.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = setting?.key ?? key.read();
    const path = `/api/settings/${encodeURIComponent(name ?? "")}`;
    const body = () => ({value: JSON.parse(value.input.value)}); // once check() said it parses
    const done = await submit(form, save, async () => (setting
      ? write(path, {method: "PUT", body: body(), etag: await shownEtag(path, setting), loaded: setting})
      : create(path, body())), {reload: after});
    if (!done) return;
    announce(`${name} saved`);
    after();
  });
  return form.node;
}
