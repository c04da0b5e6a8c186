// Secrets: metadata only (key, environment, version, description). Admins may reveal one value
// at a time; it is fetched on demand (and audited by the daemon), shown for 30 seconds, and
// never kept in a variable after it is hidden.

import {api, query} from "./api.js";
import {announce, clear, copy, errorBox, h, time} from "./dom.js";

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
      h("thead", {}, h("tr", {}, ...["Key", "Environment", "Version", "Updated", "Value"].map((c) => h("th", {scope: "col"}, c)))),
      body)),
    more);

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
        h("td", {}, s.env), h("td", {}, `v${s.version}`), h("td", {}, time(s.updatedAt)), valueCell(s))));
      if (!append && !r.items.length) body.append(h("tr", {}, h("td.muted", {colspan: 5}, "No secrets.")));
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

  more.addEventListener("click", () => load(true));
  await load();
  const unwatch = ctx.onLive(() => reveals.forEach(allow));
  return () => {
    unwatch();
    for (const t of timers) clearTimeout(t);
  };
}
