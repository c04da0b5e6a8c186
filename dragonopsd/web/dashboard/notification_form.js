// Create ("#/notifications/new"), edit and delete ("#/notifications/<id>") a notification
// channel, with only the chosen kind's fields. Credentials (a signing secret, an SMTP password)
// are write-only: left empty on an edit they stay as stored. URLs come back masked past the
// host; sent back unchanged, the daemon keeps the stored one. "Send test" delivers one test
// event now (POST /api/notifications/{id}/test) and shows what the receiver answered.

import {api} from "./api.js";
import {announce, errorBox, h, ms} from "./dom.js";
import {Form, ask, buttons, chips, field, gate, multi, needs, submit, write} from "./forms.js";

const KINDS = [["webhook", "Webhook (JSON POST)"], ["slack", "Slack"], ["discord", "Discord"], ["teams", "Microsoft Teams"],
  ["mattermost", "Mattermost"], ["email", "Email (SMTP)"], ["apprise", "Apprise URLs"]];
const URL_KINDS = new Set(["webhook", "slack", "discord", "teams", "mattermost"]);
const EVENTS = [["down", "Down"], ["up", "Up (recovered)"], ["certificate", "Certificate expiring"]];
const HTTP_URL = "https?://[^\\s/?#]+([/?#]\\S*)?";

export async function mount(root, {id}, ctx) {
  const creating = id === "new";
  let item = null;
  let etag = null;
  try {
    if (!creating) ({data: item, etag} = await api(`/api/notifications/${encodeURIComponent(id)}`, {meta: true}));
  } catch (err) {
    root.append(h("h1", {}, "Notification channel"), errorBox(err), h("p", {}, h("a", {href: "#/notifications"}, "Back to notifications")));
    return null;
  }
  const monitors = await api("/api/monitors?limit=500").then((r) => r.items.map((m) => [m.id, m.name])).catch(() => []);
  const cfg = item?.config ?? {};
  const form = new Form("channel-form", {label: "Notification channel"});
  const fid = form.id;
  const f = {};
  const put = (path, spec) => (f[path] = form.add(field(fid, {path, ...spec})));

  put("$.name", {label: "Name", required: true, value: item?.name});
  put("$.kind", {label: "Kind", type: "select", options: KINDS, value: item?.kind ?? "webhook",
    hint: creating ? null : "The kind cannot change; make a new channel instead."});
  if (!creating) f["$.kind"].input.disabled = true;
  put("$.config.url", {label: "URL", type: "url", required: true, value: cfg.url, pattern: HTTP_URL,
    patternText: "Expected an http:// or https:// URL",
    hint: creating ? "Where the event is POSTed." : "Shown masked; leave it as is to keep the stored URL."});
  put("$.config.secret", {label: "Signing secret (optional)", type: "password", autocomplete: "new-password",
    hint: item?.hasSecret ? "A secret is stored; leave empty to keep it." : "16+ characters: requests then carry an HMAC signature.",
    check: (v) => (v && v.length < 16 ? "At least 16 characters" : null)});
  put("$.config.host", {label: "SMTP host", required: true, value: cfg.host, placeholder: "smtp.example.com"});
  put("$.config.port", {label: "Port", type: "number", min: 1, max: 65535, integer: true, value: cfg.port ?? 587});
  put("$.config.security", {label: "Security", type: "select", value: cfg.security ?? "starttls",
    options: [["starttls", "STARTTLS (587)"], ["tls", "Implicit TLS (465)"], ["none", "None"]]});
  put("$.config.verifyTls", {label: "Verify the server's certificate", type: "checkbox", value: cfg.verifyTls ?? true});
  put("$.config.username", {label: "Username", value: cfg.username, autocomplete: "off"});
  put("$.config.password", {label: "Password", type: "password", autocomplete: "new-password",
    hint: item?.hasSecret && item.kind === "email" ? "A password is stored; leave empty to keep it." : null});
  put("$.config.from", {label: "From", type: "email", required: true, value: cfg.from, placeholder: "dragonops@example.com"});
  f["$.config.to"] = form.add(chips(fid, {path: "$.config.to", label: "To", value: cfg.to ?? []}));
  put("$.config.urls", {label: "Apprise URLs (one a line)", type: "textarea", required: true, value: (cfg.urls ?? []).join("\n"),
    hint: "tgram://, ntfy://, json://\u2026 Shown masked; lines left as they are keep the stored URL."});
  const events = form.add(multi(fid, {path: "$.events", label: "Events", options: EVENTS, value: item?.events ?? ["down", "up", "certificate"]}));
  const all = put("$.scope.all", {label: "Every monitor", type: "checkbox", value: item?.scope?.all ?? true});
  const picked = form.add(multi(fid, {path: "$.scope.monitorIds", label: "Only these monitors", options: monitors, value: item?.scope?.monitorIds}));
  const tags = form.add(chips(fid, {path: "$.scope.tags", label: "\u2026or monitors with these tags", value: item?.scope?.tags ?? []}));
  form.fields.set("$.scope", all);
  put("$.enabled", {label: "Enabled", type: "checkbox", value: item?.enabled ?? true});

  const save = h("button.primary", {type: "submit"}, creating ? "Create channel" : "Save changes");
  const remove = creating ? null : h("button.danger", {type: "button", on: {click: del}}, "Delete channel");
  const done = h("div.saved", {"aria-live": "polite"});
  const config = h("fieldset", {}, h("legend", {}, "Where it goes"),
    ...Object.entries(f).filter(([p]) => p.startsWith("$.config.")).map(([, x]) => x.node));
  const scopeBox = h("fieldset", {}, h("legend", {}, "What it hears about"), events.node, all.node, picked.node, tags.node);
  form.node.append(form.alert, f["$.name"].node, f["$.kind"].node, config, scopeBox, f["$.enabled"].node,
    buttons(save, creating ? null : testButton(item), remove));
  form.node.addEventListener("submit", (ev) => {
    ev.preventDefault();
    saveForm();
  });
  const heading = h("h1", {}, creating ? "New notification channel" : `Channel: ${item.name}`);
  root.append(h("p.crumbs", {}, h("a", {href: "#/notifications"}, "Notifications"), " / channel"), heading,
    needs("admin", "changing channels"), done, h("div", {"data-write": "admin"}, form.node));
  f["$.kind"].input.addEventListener("change", showKind);
  all.input.addEventListener("change", showKind);
  showKind();
  const gates = gate(root, ctx);

  function showKind() {
    const kind = f["$.kind"].input.value;
    const show = {"$.config.url": URL_KINDS.has(kind), "$.config.secret": kind === "webhook", "$.config.urls": kind === "apprise"};
    for (const p of ["host", "port", "security", "verifyTls", "username", "password", "from", "to"]) show[`$.config.${p}`] = kind === "email";
    for (const [p, visible] of Object.entries(show)) f[p].node.hidden = !visible;
    picked.node.hidden = tags.node.hidden = all.input.checked;
  }

  function configBody() {
    const out = {};
    for (const [p, x] of Object.entries(f)) {
      if (!p.startsWith("$.config.") || x.node.hidden) continue;
      const key = p.slice(9);
      let v = x.read();
      if (key === "urls") v = (v ?? "").split("\n").map((s) => s.trim()).filter(Boolean);
      // Write-only credentials: empty means "keep what is stored" on an edit, "none" on a create.
      if ((key === "secret" || key === "password") && v === null) continue;
      if (v === null && creating) continue;
      out[key] = v;
    }
    return out;
  }

  function body() {
    // Levels this form does not draw (serverIds and up, set through the API) are kept.
    const kept = Object.fromEntries(["serverIds", "environmentIds", "projectIds", "clientIds"].map((k) => [k, item?.scope?.[k] ?? []]));
    const scope = all.input.checked ? {all: true} : {...kept, all: false, monitorIds: picked.read(), tags: tags.read()};
    const out = {name: f["$.name"].read(), enabled: f["$.enabled"].read(), events: events.read(), scope, config: configBody()};
    if (creating) out.kind = f["$.kind"].input.value;
    return out;
  }

  async function saveForm() {
    const result = await submit(form, save, () => (creating
      ? api("/api/notifications", {method: "POST", body: body(), meta: true})
      : write(`/api/notifications/${item.id}`, {method: "PATCH", body: body(), etag, loaded: item})));
    if (!result) return;
    if (creating) {
      announce("Channel created");
      location.hash = `#/notifications/${result.data.id}`;
      return;
    }
    ({data: item, etag} = result);
    heading.textContent = `Channel: ${item.name}`;
    done.replaceChildren(h("p.notice.ok", {}, `Saved ${item.name}.`));
    announce("Saved");
  }

  async function del() {
    const sure = await ask(`Delete ${item.name}?`, "Its queued notifications are dropped.",
      [{value: "delete", label: "Delete channel", danger: true}]);
    if (sure !== "delete") return;
    try {
      await write(`/api/notifications/${item.id}`, {method: "DELETE", etag, loaded: item});
    } catch (err) {
      if (err.status === 412) form.showConflict(() => location.reload());
      else form.showProblem(err);
      return;
    }
    announce(`${item.name} deleted`);
    location.hash = "#/notifications";
  }

  return () => gates.stop();
}

/** "Send test" for a saved channel: one test event now, then what the receiver answered. */
export function testButton(channel) {
  const out = h("span.test-delivery", {"aria-live": "polite"});
  const button = h("button", {type: "button", "aria-label": `Send test to ${channel.name}`, on: {click: async () => {
    button.disabled = true;
    out.replaceChildren(" Sending\u2026");
    try {
      const r = await api(`/api/notifications/${channel.id}/test`, {method: "POST"});
      const said = [r.status ? `HTTP ${r.status}` : null, `${r.attempts} attempt${r.attempts === 1 ? "" : "s"}`, ms(r.elapsedMs)]
        .filter(Boolean).join(", ");
      out.replaceChildren(r.ok
        ? h("span.notice.ok", {"data-delivered": "true"}, ` Delivered (${said}).`)
        : h("span.error", {"data-delivered": "false"}, ` Not delivered: ${r.error ?? "refused"} (${said}).`));
      announce(r.ok ? "Test delivered" : "Test not delivered");
    } catch (err) {
      out.replaceChildren(errorBox(err));
    } finally {
      button.disabled = false;
    }
  }}}, "Send test");
  return h("span", {}, button, out);
}
