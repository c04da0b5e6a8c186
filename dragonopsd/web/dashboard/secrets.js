// Secrets: metadata only (key, environment, version, description). Admins may reveal one value
// at a time; it is fetched on demand (and audited by the daemon), shown for 30 seconds, and
// never kept in a variable after it is hidden. Admins also create a secret, rotate its value
// (a new version) and delete it here; the values typed go out once and are never shown back.
// Rotate and delete send If-Match for the row as the list showed it: a change made meanwhile
// (another tab, the CLI) is reported, never overwritten.

import {ApiError, api, query} from "./api.js";
import {announce, clear, copy, errorBox, h, time} from "./dom.js";
import {Form, ask, buttons, conflict, field, gate, needs, shownEtag, submit, write} from "./forms.js";

const REVEAL_SECONDS = 30;

export async function mount(root, _params, ctx) {
  const body = h("tbody");
  const problems = h("div");
  const search = h("input", {type: "search", id: "secret-q", placeholder: "Key contains", autocomplete: "off"});
  const more = h("button", {type: "button", hidden: true}, "Load more");
  const timers = new Set();
  const reveals = new Set(); // Reveal buttons: enabled once the socket says the role is admin
  let cursor = null;

  root.append(h("h1", {}, "Secrets"),
    h("p.muted", {}, "Values are sealed with AES-256-GCM and never listed; admins can reveal one at a time."),
    problems,
    h("form.toolbar", {role: "search", on: {submit: (ev) => {
      ev.preventDefault();
      load();
    }}}, h("label", {for: "secret-q"}, "Search"), search, h("button", {type: "submit"}, "Search")),
    h("div.table-wrap", {}, h("table", {},
      h("caption.sr-only", {}, "Secrets"),
      h("thead", {}, h("tr", {}, ...["Key", "Environment", "Version", "Updated", "Value"].map((c) => h("th", {scope: "col"}, c)),
        h("th", {scope: "col", "data-write": "admin"}, "Change"))),
      body)),
    more);
  const creator = createForm(() => load());
  root.insertBefore(h("details.card.new-secret", {"data-write": "admin"}, h("summary", {}, "New secret"), creator), problems);
  root.insertBefore(needs("admin", "changing secrets"), problems);

  function valueCell(s) {
    const cell = h("td.value-cell");
    const reveal = h("button", {type: "button", "aria-label": `Reveal ${s.key} (${s.env})`}, "Reveal");
    const hiddenText = () => cell.replaceChildren(h("span.muted", {"aria-label": "hidden"}, "\u2022\u2022\u2022\u2022\u2022\u2022"), " ", reveal);
    reveals.add(reveal);
    allow(reveal);
    reveal.addEventListener("click", async () => {
      reveal.disabled = true;
      try {
        const v = await api(`/api/secrets/${s.id}/value`);
        const code = h("code.secret-value", {}, v.value);
        const copyButton = h("button", {type: "button", on: {click: async () => {
          announce((await copy(code.textContent)) ? "Copied" : "Copy failed; select the text instead");
        }}}, "Copy");
        const hide = h("button", {type: "button"}, "Hide");
        const timer = setTimeout(() => hide.click(), REVEAL_SECONDS * 1000);
        timers.add(timer);
        hide.addEventListener("click", () => {
          clearTimeout(timer);
          timers.delete(timer);
          reveal.disabled = false;
          hiddenText();
          reveal.focus();
        });
        cell.replaceChildren(code, " ", copyButton, " ", hide);
        hide.focus();
      } catch (err) {
        reveal.disabled = false;
        cell.append(errorBox(err));
      }
    });
    hiddenText();
    return cell;
  }

  async function load(append = false) {
    try {
      const r = await api(`/api/secrets${query({q: search.value.trim(), limit: 100, cursor: append ? cursor : null})}`);
      problems.replaceChildren();
      if (!append) {
        clear(body);
        reveals.clear();
      }
      body.append(...r.items.map((s) => h("tr", {"data-secret-id": s.id},
        h("th", {scope: "row"}, h("code", {}, s.key), s.description ? h("div.muted", {}, s.description) : null),
        h("td", {}, s.env), h("td", {}, `v${s.version}`), h("td", {}, time(s.updatedAt)), valueCell(s),
        h("td", {"data-write": "admin"}, ...changeButtons(s)))));
      if (!append && !r.items.length) body.append(h("tr", {}, h("td.muted", {colspan: 6}, "No secrets.")));
      gates?.sync();
      cursor = r.nextCursor;
      more.hidden = !cursor;
    } catch (err) {
      problems.replaceChildren(errorBox(err));
    }
  }

  function allow(button) {
    const admin = ctx.can("admin");
    button.disabled = !admin;
    button.title = admin ? "" : "Only admins can reveal values";
  }

  /** Rotate (a new value, a new version) and Delete for one row. */
  function changeButtons(s) {
    const place = h("div.rotate");
    const rotate = h("button", {type: "button", "aria-label": `Rotate ${s.key} (${s.env})`, on: {click: () => {
      const form = new Form(`rotate-${s.id}`, {label: `New value for ${s.key}`});
      const value = form.add(field(form.id, {path: "$.value", label: `New value for ${s.key}`, type: "password",
        required: true, autocomplete: "new-password"}));
      const save = h("button.primary", {type: "submit"}, "Save new value");
      const cancel = h("button", {type: "button", on: {click: () => {
        place.replaceChildren();
        rotate.focus();
      }}}, "Cancel");
      form.node.append(form.alert, value.node, buttons(save, cancel));
      form.node.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const path = `/api/secrets/${s.id}`;
        const done = await submit(form, save, async () => write(path,
          {method: "PATCH", body: {value: value.read()}, etag: await shownEtag(path, s), loaded: s}), {reload: () => load()});
        if (!done) return;
        announce(`${s.key} rotated to version ${done.data.version}`);
        await load();
      });
      place.replaceChildren(form.node);
      value.input.focus();
    }}}, "Rotate");
    const remove = h("button.danger", {type: "button", "aria-label": `Delete ${s.key} (${s.env})`, on: {click: async () => {
      const sure = await ask(`Delete ${s.key} (${s.env})?`, "Monitors and actions that name it stop finding it.",
        [{value: "delete", label: "Delete secret", danger: true}]);
      if (sure !== "delete") return;
      const path = `/api/secrets/${s.id}`;
      try {
        await write(path, {method: "DELETE", etag: await shownEtag(path, s), loaded: s});
        announce(`${s.key} deleted`);
        await load();
      } catch (err) {
        place.replaceChildren(err instanceof ApiError && err.status === 412 ? conflict(() => load()) : errorBox(err));
      }
    }}}, "Delete");
    return [rotate, " ", remove, place];
  }

  let gates = null;
  more.addEventListener("click", () => load(true));
  await load();
  gates = gate(root, ctx);
  const unwatch = ctx.onLive(() => reveals.forEach(allow));
  return () => {
    gates.stop();
    unwatch();
    for (const t of timers) clearTimeout(t);
  };
}

/** The "New secret" form: key, environment, value (typed once, never shown) and description. */
function createForm(created) {
  const form = new Form("secret-form", {label: "New secret"});
  const fid = form.id;
  const key = form.add(field(fid, {path: "$.key", label: "Key", required: true, placeholder: "DATABASE_URL",
    pattern: "[A-Za-z_][A-Za-z0-9_.-]{0,127}", patternText: "Letters, digits, _ . -, starting with a letter or _"}));
  const env = form.add(field(fid, {path: "$.env", label: "Environment", value: "default",
    pattern: "[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", patternText: "Letters, digits, _ . -"}));
  const value = form.add(field(fid, {path: "$.value", label: "Value", type: "password", required: true, autocomplete: "new-password",
    hint: "Sealed at once; nobody sees it again except an admin who reveals it (audited)."}));
  const description = form.add(field(fid, {path: "$.description", label: "Description"}));
  const save = h("button.primary", {type: "submit"}, "Create secret");
  const done = h("div", {"aria-live": "polite"});
  form.node.append(form.alert, key.node, env.node, value.node, description.node, buttons(save), done);
  form.node.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {key: key.read(), env: env.read() ?? "default", value: value.read()};
    if (description.read()) body.description = description.read();
    const made = await submit(form, save, () => api("/api/secrets", {method: "POST", body}));
    if (!made) return;
    value.input.value = "";
    key.input.value = "";
    description.input.value = "";
    done.replaceChildren(h("p.notice.ok", {}, `Created ${made.key} (${made.env}).`));
    announce("Secret created");
    created();
  });
  return form.node;
}
