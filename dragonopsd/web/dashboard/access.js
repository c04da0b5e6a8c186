// Access (admins): API tokens and JWT profiles. A new token is shown once, with a copy button
// (the daemon keeps only its hash); revoking asks first and works at once. Profiles are the JWT
// subjects seen so far: an admin picks each one's role. Agent tokens are made from a server's
// page (they are scoped to it), so they are listed here but not created. A viewer or operator
// token, or profile, may carry a scope (scope_picker.js): the clients and projects it sees.

import {ApiError, api} from "./api.js";
import {announce, clear, copy, errorBox, h, time} from "./dom.js";
import {Form, ask, buttons, conflict, field, gate, needs, shownEtag, submit, write} from "./forms.js";
import {loadInventory, scopePicker, scopeText} from "./scope_picker.js";

const ROLES = [["viewer", "viewer (read only)"], ["operator", "operator (changes monitors, inventory, maintenance)"],
  ["admin", "admin (everything)"]];
const PROFILE_ROLES = [["none", "none (refused)"], ["viewer", "viewer"], ["operator", "operator"], ["admin", "admin"]];

export async function mount(root, _params, ctx) {
  const tokens = h("tbody");
  const profiles = h("tbody");
  const problems = h("div");
  const shown = h("div.new-token", {"aria-live": "polite"});
  const newToken = h("details", {}, h("summary", {}, "New token"));
  const scopeEditor = h("div.scope-editor", {"aria-live": "polite"});
  let inventory = {clients: new Map(), projects: new Map()};
  root.append(h("h1", {}, "Access"), needs("admin", "managing tokens and profiles"),
    h("div", {"data-write": "admin"},
      h("section.card", {"aria-labelledby": "tokens-h"}, h("h2", {id: "tokens-h"}, "API tokens"),
        newToken, shown,
        h("div.table-wrap", {}, h("table", {}, h("caption.sr-only", {}, "API tokens"),
          h("thead", {}, h("tr", {}, ...["Name", "Role", "Scope", "Prefix", "Created", "Expires", "State"].map((c) => h("th", {scope: "col"}, c)))),
          tokens))),
      h("section.card", {"aria-labelledby": "profiles-h"}, h("h2", {id: "profiles-h"}, "Profiles (JWT sign-ins)"),
        h("p.help", {}, "Each person who signed in with a JWT; a new one has no role until an admin gives it one."),
        h("div.table-wrap", {}, h("table", {}, h("caption.sr-only", {}, "Profiles"),
          h("thead", {}, h("tr", {}, ...["Subject", "Email", "Role", "Scope", "Since"].map((c) => h("th", {scope: "col"}, c)))),
          profiles)), scopeEditor)),
    problems);

  function made(r) {
    const code = h("code.secret-value", {}, r.token);
    shown.replaceChildren(h("div.notice", {"data-token-shown": "true"},
      h("p", {}, h("strong", {}, "Shown once: "), `copy the token for ${r.meta.name} now; the daemon keeps only its hash.`),
      h("p", {}, code, " ", h("button", {type: "button", on: {click: async () => {
        announce((await copy(r.token)) ? "Copied" : "Copy failed; select the text instead");
      }}}, "Copy token")),
      h("button", {type: "button", on: {click: () => shown.replaceChildren()}}, "Done, hide it")));
    announce("Token created; shown once");
    load();
  }

  async function revoke(t) {
    const sure = await ask(`Revoke ${t.name}?`, "Anything using it is refused from the next request on.",
      [{value: "revoke", label: "Revoke token", danger: true}]);
    if (sure !== "revoke") return;
    try {
      await api(`/api/tokens/${t.id}`, {method: "DELETE"});
      announce(`${t.name} revoked`);
      await load();
    } catch (err) {
      problems.replaceChildren(errorBox(err));
    }
  }

  // A profile as the list showed it, changed with If-Match: a change made meanwhile (another
  // admin, another tab) is a 412 and the conflict notice, never a silent overwrite.
  async function patchProfile(p, body) {
    const path = `/api/profiles/${encodeURIComponent(p.id)}`;
    const etag = await shownEtag(path, p);
    const {data} = await write(path, {method: "PATCH", body, etag, loaded: p});
    return data;
  }

  function roleCell(p) {
    const id = `profile-role-${p.id.replace(/[^A-Za-z0-9_-]/g, "-")}`;
    const select = h("select", {id, "aria-label": `Role of ${p.email ?? p.id}`}, ...PROFILE_ROLES.map(([v, t]) => h("option", {value: v}, t)));
    select.value = p.role;
    const note = h("span.muted", {"aria-live": "polite"});
    select.addEventListener("change", async () => {
      select.disabled = true;
      try {
        const fresh = await patchProfile(p, {role: select.value});
        Object.assign(p, fresh);  // the row as now stored: the next change's If-Match base
        note.textContent = ` Saved: ${fresh.role}`;
        // Admins are never scoped: their row offers no scope to edit.
        const edit = select.closest("tr")?.querySelector("[data-edit-scope]");
        if (edit) edit.hidden = fresh.role === "admin";
        announce(`${p.email ?? p.id} is now ${fresh.role}`);
      } catch (err) {
        select.value = p.role;
        note.replaceChildren(err instanceof ApiError && err.status === 412 ? conflict(load) : errorBox(err));
      } finally {
        select.disabled = false;
      }
    });
    return h("td", {}, select, note);
  }

  function scopeCell(p) {
    return h("td", {"data-scope": ""}, scopeText(p.scope, inventory), " ",
      h("button", {type: "button", "data-edit-scope": p.id, "aria-label": `Edit the scope of ${p.email ?? p.id}`,
        hidden: p.role === "admin", on: {click: () => editScope(p)}}, "Edit scope"));
  }

  function editScope(p) {
    const form = new Form("profile-scope-form", {label: `Scope of ${p.email ?? p.id}`});
    const picker = form.add(scopePicker(form.id, {inventory, value: p.scope}));
    form.onErrors("$.scope.", picker.showIssue);
    const save = h("button.primary", {type: "submit"}, "Save scope");
    const cancel = h("button", {type: "button", on: {click: () => scopeEditor.replaceChildren()}}, "Cancel");
    form.node.append(h("h3", {}, `Scope of ${p.email ?? p.id}`), form.alert, picker.node, buttons(save, cancel));
    form.node.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = {scope: picker.read()};
      const fresh = await submit(form, save, () => patchProfile(p, body), {reload: load});
      if (!fresh) return;
      scopeEditor.replaceChildren();
      announce(`${p.email ?? p.id} now sees: ${scopeText(fresh.scope, inventory)}`);
      await load();
    });
    scopeEditor.replaceChildren(form.node);
    picker.input.focus();
  }

  async function load() {
    if (!ctx.can("admin")) return; // the lists are admin-only: nothing to fetch for others
    try {
      const [t, p, inv] = await Promise.all([api("/api/tokens"), api("/api/profiles"), loadInventory()]);
      inventory = inv;
      if (!newToken.querySelector("form")) newToken.append(tokenForm(made, inventory));
      problems.replaceChildren();
      clear(tokens).append(...t.items.map((x) => h("tr", {"data-token-id": x.id},
        h("th", {scope: "row"}, x.name), h("td", {}, x.role),
        h("td", {"data-scope": ""}, x.role === "agent" ? "Its one server" : scopeText(x.scope, inventory)),
        h("td", {}, h("code", {}, x.prefix)),
        h("td", {}, time(x.createdAt)), h("td", {}, x.expiresAt ? time(x.expiresAt) : "never"),
        h("td", {}, x.revokedAt ? ["revoked ", time(x.revokedAt)]
          : h("button.danger", {type: "button", "aria-label": `Revoke ${x.name}`, on: {click: () => revoke(x)}}, "Revoke")))));
      if (!t.items.length) tokens.append(h("tr", {}, h("td.muted", {colspan: 7}, "No tokens.")));
      clear(profiles).append(...p.items.map((x) => h("tr", {"data-profile-id": x.id},
        h("th", {scope: "row"}, h("code", {}, x.id)), h("td", {}, x.email ?? "\u2013"), roleCell(x), scopeCell(x),
        h("td", {}, time(x.createdAt)))));
      if (!p.items.length) profiles.append(h("tr", {}, h("td.muted", {colspan: 5}, "Nobody has signed in with a JWT yet.")));
    } catch (err) {
      problems.replaceChildren(errorBox(err));
    }
  }

  const gates = gate(root, ctx);
  await load();
  // The role is known once the live connection authenticates: load then, if not yet loaded.
  const unwatch = ctx.onLive(() => {
    if (ctx.can("admin") && !tokens.childElementCount) load();
  });
  return () => {
    unwatch();
    gates.stop();
  };
}

function tokenForm(made, inventory) {
  const form = new Form("token-form", {label: "New token"});
  const fid = form.id;
  const name = form.add(field(fid, {path: "$.name", label: "Name", required: true, placeholder: "ci-deploy",
    check: (v) => (v.length > 100 ? "At most 100 characters" : null)}));
  const role = form.add(field(fid, {path: "$.role", label: "Role", type: "select", options: ROLES, value: "viewer"}));
  const days = form.add(field(fid, {path: "$.expiresDays", label: "Expires after (days)", type: "number", min: 1, max: 3650,
    integer: true, hint: "Empty: never expires."}));
  const scope = form.add(scopePicker(fid, {inventory}));
  form.onErrors("$.scope.", scope.showIssue);
  // Admins stay global: the daemon refuses a scope for them, so the picker goes away.
  const scoped = () => {
    scope.node.hidden = role.read() === "admin";
  };
  role.input.addEventListener("change", scoped);
  scoped();
  const save = h("button.primary", {type: "submit"}, "Create token");
  form.node.append(form.alert, name.node, role.node, scope.node, days.node, buttons(save));
  form.node.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {name: name.read(), role: role.read()};
    if (!scope.node.hidden && scope.read()) body.scope = scope.read();
    if (days.read() != null) body.expiresDays = days.read();
    const r = await submit(form, save, () => api("/api/tokens", {method: "POST", body}));
    if (!r) return;
    name.input.value = "";
    days.input.value = "";
    scope.set(null);
    made(r);
  });
  return form.node;
}
