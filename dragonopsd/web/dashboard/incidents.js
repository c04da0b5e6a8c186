// Incidents: open and closed, newest first, with a filter and "load more" (keyset cursor);
// refetched when the "incidents" topic reports an opening or a recovery.

import {api, query} from "./api.js";
import {badge, clear, debounce, duration, errorBox, h, time} from "./dom.js";

export async function mount(root, _params, ctx) {
  const table = h("tbody");
  const problems = h("div");
  const more = h("button", {type: "button", hidden: true}, "Load more");
  const filter = h("select", {id: "incident-filter"},
    h("option", {value: ""}, "All"), h("option", {value: "open"}, "Open"), h("option", {value: "closed"}, "Resolved"));
  let cursor = null;

  root.append(h("h1", {}, "Incidents"), problems,
    h("div.toolbar", {}, h("label", {for: "incident-filter"}, "Show"), filter),
    h("div.table-wrap", {}, h("table", {},
      h("caption.sr-only", {}, "Incidents, newest first"),
      h("thead", {}, h("tr", {}, ...["Status", "Monitor", "Opened", "Duration", "Cause"].map((c) => h("th", {scope: "col"}, c)))),
      table)),
    more);

  function row(i) {
    return h("tr", {"data-incident-id": i.id},
      h("td", {}, badge(i.closedAt ? "closed" : "open")),
      h("td", {}, h("a", {href: `#/monitors/${i.monitorId}`}, i.monitorName)),
      h("td", {}, time(i.openedAt)),
      h("td", {}, duration(i.durationSeconds)),
      h("td.cause", {}, i.rootCause ? `${i.cause} (root cause: ${i.rootCause})` : i.cause));
  }

  async function load(append = false) {
    try {
      const r = await api(`/api/incidents${query({status: filter.value, limit: 50, cursor: append ? cursor : null})}`);
      problems.replaceChildren();
      if (!append) clear(table);
      table.append(...r.items.map(row));
      if (!append && !r.items.length) table.append(h("tr", {}, h("td.muted", {colspan: 5}, "No incidents.")));
      cursor = r.nextCursor;
      more.hidden = !cursor;
    } catch (err) {
      problems.replaceChildren(errorBox(err));
    }
  }

  filter.addEventListener("change", () => load());
  more.addEventListener("click", () => load(true));
  const reload = debounce(() => load(), 500);
  await load();
  const unsubscribe = ctx.live.subscribe(["incidents"], (f) => {
    if (f.type === "event") reload();
  }, () => load());
  return () => {
    unsubscribe();
    reload.cancel();
  };
}
