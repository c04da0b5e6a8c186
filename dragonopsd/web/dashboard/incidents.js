// Incidents: a monitor's (automatic) and manual ones, newest first, with a filter and "load
// more" (keyset cursor); refetched when the "incidents" topic reports anything. Each incident
// shows its updates; operators also get "New incident", "Add update" and "Acknowledge".
// Problems the daemon names a field in (problem+json errors[].field) show beside that field.

import {api, query} from "./api.js";
import {badge, clear, debounce, duration, errorBox, h, time} from "./dom.js";

const STATES = ["investigating", "identified", "monitoring", "resolved"];
const SEVERITIES = ["minor", "major", "critical"];
const TARGET_KINDS = [
  ["monitor", "/api/monitors", "Monitors"],
  ["server", "/api/servers", "Servers"],
  ["environment", "/api/environments", "Environments"],
  ["project", "/api/projects", "Projects"],
  ["client", "/api/clients", "Clients"],
];

/** A labelled control with its own error slot; the daemon's field names map onto it. The
 * parts go straight into the form's grid (one row each), which is how app.css lays forms out. */
function field(id, label, control, help) {
  const error = h("p.error", {id: `${id}-error`, role: "alert", hidden: true});
  control.setAttribute("aria-describedby", [help ? `${id}-help` : null, `${id}-error`].filter(Boolean).join(" "));
  return {
    control, error,
    node: [h("label", {for: id}, label), control, help ? h("p.help", {id: `${id}-help`}, help) : null, error],
  };
}

/** Show a problem beside its fields (errors[].field starts with one of fields' keys), the
 * rest in general; returns the first control that got an error, to focus. */
function showProblem(err, fields, general) {
  for (const f of Object.values(fields)) {
    f.error.hidden = true;
    f.error.textContent = "";
    f.control.removeAttribute("aria-invalid");
  }
  general.replaceChildren();
  let first = null;
  const unplaced = [];
  for (const e of err?.problem?.errors ?? []) {
    const key = Object.keys(fields).find((k) => e.field === k || e.field.startsWith(`${k}[`) || e.field.startsWith(`${k}.`));
    if (!key) {
      unplaced.push(`${e.field}: ${e.message}`);
      continue;
    }
    const f = fields[key];
    f.error.hidden = false;
    f.error.textContent = f.error.textContent ? `${f.error.textContent}; ${e.message}` : e.message;
    f.control.setAttribute("aria-invalid", "true");
    first ??= f.control;
  }
  if (!first || unplaced.length) general.append(errorBox(unplaced.length ? new Error(unplaced.join("; ")) : err));
  return first;
}

function clearProblem(fields, general) {
  showProblem(null, fields, general);
  general.replaceChildren();
}

const options = (values, selected) => values.map((v) => h("option", {value: v, selected: v === selected}, v));

export async function mount(root, _params, ctx) {
  const table = h("tbody");
  const problems = h("div");
  const more = h("button", {type: "button", hidden: true}, "Load more");
  const filter = h("select", {id: "incident-filter"},
    h("option", {value: ""}, "All"), h("option", {value: "open"}, "Open"), h("option", {value: "closed"}, "Resolved"));
  const operatorOnly = new Set(); // controls shown only once the socket says the role may write
  const openDetails = new Set(); // incident ids whose details stay open across reloads
  let cursor = null;

  // ---------------------------------------------------------------- New incident
  const title = field("incident-title", "Title", h("input", {id: "incident-title", name: "title", required: true, maxlength: 200, autocomplete: "off"}));
  const severity = field("incident-severity", "Severity", h("select", {id: "incident-severity", name: "severity"}, ...options(SEVERITIES, "major")));
  const targets = field("incident-targets", "Affects", h("select", {id: "incident-targets", name: "targets", multiple: true, size: 6}),
    "Pick one or more monitors, servers, environments, projects or clients (Ctrl/Cmd-click for several).");
  const message = field("incident-message", "First update (optional)", h("textarea", {id: "incident-message", name: "message", rows: 3, maxlength: 5000}));
  const createFields = {"$.title": title, "$.severity": severity, "$.targets": targets, "$.message": message};
  const createGeneral = h("div", {"aria-live": "assertive"});
  const createButton = h("button.primary", {type: "submit"}, "Open incident");
  const createForm = h("form.signin", {id: "new-incident", "aria-label": "New incident", novalidate: true, on: {submit: async (ev) => {
    ev.preventDefault();
    createButton.disabled = true;
    const body = {
      title: title.control.value.trim(),
      severity: severity.control.value,
      targets: [...targets.control.selectedOptions].map((o) => {
        const [kind, id] = o.value.split(":");
        return {kind, id};
      }),
    };
    if (message.control.value.trim()) body.message = message.control.value.trim();
    try {
      const made = await api("/api/incidents", {method: "POST", body});
      clearProblem(createFields, createGeneral);
      createForm.reset();
      openDetails.add(made.id);
      createGeneral.append(h("p.notice", {role: "status"}, `Incident opened: ${made.title}`));
      await load();
    } catch (err) {
      showProblem(err, createFields, createGeneral)?.focus();
    } finally {
      createButton.disabled = false;
    }
  }}}, title.node, severity.node, targets.node, message.node, createButton, createGeneral);
  const creator = h("details.card", {id: "incident-create", hidden: true}, h("summary", {}, "New incident"), createForm);
  operatorOnly.add(creator);

  async function loadTargets() {
    const select = targets.control;
    const lists = await Promise.all(TARGET_KINDS.map(([, path]) => api(`${path}?limit=200`).catch(() => ({items: []}))));
    select.replaceChildren(...TARGET_KINDS.map(([kind, , label], i) => h("optgroup", {label},
      ...lists[i].items.map((item) => h("option", {value: `${kind}:${item.id}`}, item.name)))));
  }

  root.append(h("h1", {}, "Incidents"), problems, creator,
    h("div.toolbar", {}, h("label", {for: "incident-filter"}, "Show"), filter),
    h("div.table-wrap", {}, h("table", {},
      h("caption.sr-only", {}, "Incidents, newest first"),
      h("thead", {}, h("tr", {}, ...["Status", "Incident", "Opened", "Duration", "Cause or state", "Acknowledged"].map((c) => h("th", {scope: "col"}, c)))),
      table)),
    more);

  // ---------------------------------------------------------------- one incident
  function subject(i) {
    if (i.kind === "manual") return [h("strong", {}, i.title), ` (${i.severity})`];
    return h("a", {href: `#/monitors/${i.monitorId}`}, i.monitorName);
  }

  function cause(i) {
    if (i.kind === "manual") return i.state;
    return i.rootCause ? `${i.cause} (root cause: ${i.rootCause})` : i.cause;
  }

  function updateList(i) {
    if (!i.updates?.length) return h("p.muted", {}, "No updates yet.");
    return h("ol.updates", {"aria-label": "Updates, oldest first"}, ...i.updates.map((u) => h("li.update", {},
      h("strong", {}, u.state), " \u00b7 ", time(u.at), " \u00b7 ", u.author, h("div", {}, u.message))));
  }

  function updateForm(i) {
    const id = `update-${i.id}`;
    const state = field(`${id}-state`, "State", h("select", {id: `${id}-state`, name: "state"},
      ...options(STATES, i.kind === "manual" ? i.state : "identified")));
    const text = field(`${id}-message`, "Message", h("textarea", {id: `${id}-message`, name: "message", rows: 2, maxlength: 5000}));
    const fields = {"$.state": state, "$.message": text};
    const general = h("div", {"aria-live": "assertive"});
    const submit = h("button", {type: "submit"}, "Add update");
    return h("form.signin.add-update", {"aria-label": "Add update", novalidate: true, on: {submit: async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      try {
        await api(`/api/incidents/${i.id}/updates`, {method: "POST", body: {state: state.control.value, message: text.control.value.trim()}});
        openDetails.add(i.id);
        await load();
      } catch (err) {
        showProblem(err, fields, general)?.focus();
        submit.disabled = false;
      }
    }}}, state.node, text.node, submit, general);
  }

  function ackButton(i) {
    const status = h("div", {"aria-live": "assertive"});
    const button = h("button.ack", {type: "button", on: {click: async () => {
      button.disabled = true;
      try {
        await api(`/api/incidents/${i.id}/acknowledge`, {method: "POST"});
        openDetails.add(i.id);
        await load();
      } catch (err) {
        status.replaceChildren(errorBox(err));
        button.disabled = false;
      }
    }}}, "Acknowledge");
    return h("div", {}, button, status);
  }

  function rows(i) {
    const acked = i.acknowledgedBy ? [i.acknowledgedBy, " \u00b7 ", time(i.acknowledgedAt)] : (i.closedAt ? "\u2013" : "not yet");
    const summary = h("tr", {"data-incident-id": i.id, "data-kind": i.kind},
      h("td", {}, badge(i.closedAt ? "closed" : "open")),
      h("td", {}, subject(i)),
      h("td", {}, time(i.openedAt)),
      h("td", {}, duration(i.durationSeconds)),
      h("td.cause", {}, cause(i)),
      h("td.acked", {}, acked));
    const actions = h("div.incident-actions", {hidden: true}, updateForm(i), !i.closedAt && !i.acknowledgedBy ? ackButton(i) : null);
    operatorOnly.add(actions);
    const details = h("details.incident-detail", {open: openDetails.has(i.id), on: {toggle: () => {
      if (details.open) openDetails.add(i.id);
      else openDetails.delete(i.id);
    }}}, h("summary", {}, `Updates (${i.updates?.length ?? 0})`), updateList(i), actions);
    return [summary, h("tr.detail-row", {"data-detail-for": i.id}, h("td", {colspan: 6}, details))];
  }

  // ---------------------------------------------------------------- list
  async function load(append = false) {
    try {
      const r = await api(`/api/incidents${query({status: filter.value, limit: 50, cursor: append ? cursor : null})}`);
      problems.replaceChildren();
      if (!append) {
        clear(table);
        for (const node of operatorOnly) if (node !== creator) operatorOnly.delete(node);
      }
      table.append(...r.items.flatMap(rows));
      if (!append && !r.items.length) table.append(h("tr", {}, h("td.muted", {colspan: 6}, "No incidents.")));
      cursor = r.nextCursor;
      more.hidden = !cursor;
      allow();
    } catch (err) {
      problems.replaceChildren(errorBox(err));
    }
  }

  let targetsLoaded = false;
  function allow() {
    const may = ctx.can("operator");
    for (const node of operatorOnly) node.hidden = !may;
    if (may && !targetsLoaded) {
      targetsLoaded = true;
      loadTargets().catch((err) => createGeneral.replaceChildren(errorBox(err)));
    }
  }

  filter.addEventListener("change", () => load());
  more.addEventListener("click", () => load(true));
  const reload = debounce(() => load(), 500);
  await load();
  const unwatch = ctx.onLive(allow);
  const unsubscribe = ctx.live.subscribe(["incidents"], (f) => {
    if (f.type === "event") reload();
  }, () => load());
  return () => {
    unwatch();
    unsubscribe();
    reload.cancel();
  };
}
