// Maintenance windows: which are in force now, when each next applies, and what it covers.
// Operators get "New window" and an Edit link per window (maintenance_form.js); refreshed every
// minute, since "active now" changes with the clock rather than with an event.

import {api} from "./api.js";
import {badge, clear, duration, errorBox, h, time} from "./dom.js";
import {gate} from "./forms.js";

export async function mount(root, _params, ctx) {
  const list = h("ul.windows");
  const problems = h("div");
  root.append(h("h1", {}, "Maintenance"),
    h("p.muted", {}, "During a window, checks still run but count as maintenance: no incidents, no alerts."),
    h("p", {"data-write": ""}, h("a.button", {href: "#/maintenance/new"}, "New window")),
    problems, list);

  function scope(s) {
    if (s.all) return "everything";
    const parts = [["monitorIds", "monitor"], ["serverIds", "server"], ["environmentIds", "environment"],
      ["projectIds", "project"], ["clientIds", "client"]]
      .filter(([k]) => s[k]?.length).map(([k, word]) => `${s[k].length} ${word}${s[k].length > 1 ? "s" : ""}`);
    return parts.join(", ") || "nothing";
  }

  function when(w) {
    if (w.kind === "one-off") return ["Once, ", time(w.startsAt), " to ", time(w.endsAt)];
    return [`Recurring: `, h("code", {}, w.cron ?? ""), w.timezone ? ` (${w.timezone})` : " (UTC)",
      w.duration ? `, for ${duration(w.duration)} each time` : ""];
  }

  async function load() {
    try {
      const r = await api("/api/maintenance?limit=200");
      problems.replaceChildren();
      clear(list).append(...(r.items.length ? r.items.map((w) => h("li.card.window", {"data-window-id": w.id},
        h("h2", {}, w.name), " ",
        h("a", {href: `#/maintenance/${w.id}`, "data-write": "", "aria-label": `Edit ${w.name}`}, "Edit"), " ",
        badge(!w.enabled ? "disabled" : w.activeNow ? "in-force" : "scheduled"),
        w.description ? h("p", {}, w.description) : null,
        h("p", {}, ...when(w)),
        h("p", {}, "Covers ", scope(w.scope)),
        w.next ? h("p", {}, w.activeNow ? "Ends " : "Next: ", time(w.activeNow ? w.next.end : w.next.start)) : null))
        : [h("li.muted", {}, "No maintenance windows.")]));
      gates?.sync();
    } catch (err) {
      problems.replaceChildren(errorBox(err));
    }
  }

  let gates = null;
  await load();
  gates = gate(root, ctx);
  const timer = setInterval(load, 60_000);
  return () => {
    clearInterval(timer);
    gates.stop();
  };
}
