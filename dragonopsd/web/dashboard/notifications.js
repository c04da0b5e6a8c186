// Notification channels: each with its kind, the events it hears and where it points (URLs
// masked past the host by the daemon; credentials never leave it). Admins open a channel to
// edit it, create new ones and "Send test" straight from the list.

import {api} from "./api.js";
import {badge, clear, errorBox, h} from "./dom.js";
import {gate, needs} from "./forms.js";
import {testButton} from "./notification_form.js";

export async function mount(root, _params, ctx) {
  const body = h("tbody");
  const problems = h("div");
  root.append(h("h1", {}, "Notifications"),
    h("p.muted", {}, "Channels the daemon tells when a monitor goes down or up, or a certificate nears expiry."),
    needs("admin", "changing channels"),
    h("p", {"data-write": "admin"}, h("a.button", {href: "#/notifications/new"}, "New channel")),
    problems,
    h("div.table-wrap", {}, h("table", {},
      h("caption.sr-only", {}, "Notification channels"),
      h("thead", {}, h("tr", {}, ...["Name", "Kind", "Events", "Target"].map((c) => h("th", {scope: "col"}, c)),
        h("th", {scope: "col", "data-write": "admin"}, "Test"))),
      body)));
  try {
    const r = await api("/api/notifications");
    clear(body).append(...(r.items.length ? r.items.map((c) => h("tr", {"data-channel-id": c.id},
      h("th", {scope: "row"}, h("a", {href: `#/notifications/${c.id}`}, c.name), " ", c.enabled ? null : badge("disabled")),
      h("td", {}, c.kind), h("td", {}, c.events.join(", ")),
      h("td.wrap", {}, target(c)),
      h("td", {"data-write": "admin"}, testButton(c)))) : [h("tr", {}, h("td.muted", {colspan: 5}, "No channels yet."))]));
  } catch (err) {
    problems.replaceChildren(errorBox(err));
  }
  const gates = gate(root, ctx);
  return () => gates.stop();
}

function target(c) {
  if (c.kind === "email") return `${c.config.host}:${c.config.port ?? 587} \u2192 ${(c.config.to ?? []).join(", ")}`;
  if (c.kind === "apprise") return (c.config.urls ?? []).join(" ");
  return c.config.url ?? "";
}
