// Scope picker (access.js): the clients and single projects a token or profile is limited to,
// chosen from the inventory lists and shown as chips, each with its own remove button. No chip
// means every client. Admin tokens and profiles are never scoped, so the forms hide the picker
// for them. Errors the API names under $.scope (a client deleted meanwhile) land beside it.

import {api} from "./api.js";
import {announce, h} from "./dom.js";

/** Every client with its projects, by name: {clients: Map(id -> name), projects: Map(id -> {name, client})}. */
export async function loadInventory() {
  const page = await api("/api/clients?limit=500&sort=name&include=projects");
  const clients = new Map();
  const projects = new Map();
  for (const c of page.items) {
    clients.set(c.id, c.name);
    for (const p of c.projects ?? []) projects.set(p.id, {name: p.name, client: c.name});
  }
  return {clients, projects};
}

const clientText = (inv, id) => inv.clients.get(id) ?? `client ${id}`;
const projectText = (inv, id) => {
  const p = inv.projects.get(id);
  return p ? `${p.client} / ${p.name}` : `project ${id}`;
};

/** A scope as the lists show it: "Every client", or client names and "Client / Project". */
export function scopeText(scope, inv) {
  if (!scope) return "Every client";
  return [...(scope.clients ?? []).map((id) => clientText(inv, id)),
    ...(scope.projects ?? []).map((id) => `${projectText(inv, id)} (project)`)].join(", ");
}

/**
 * The picker as a form field keyed "$.scope": a select of clients and projects with an Add
 * button, and the chosen ones as chips. read() gives {clients, projects}, or null for none;
 * showIssue(issue) places an error on "$.scope.clients[2]" by the chip it names (register it
 * with form.onErrors("$.scope.", ...)).
 */
export function scopePicker(formId, {inventory, value = null}) {
  const id = `${formId}-scope`;
  const chosen = []; // [{kind: "clients" | "projects", id}]
  const list = h("ul.chips", {"aria-label": "Scope: chosen clients and projects", "data-scope-chips": ""});
  const error = h("p.field-error", {id: `${id}-error`, hidden: true});
  const input = h("select", {id, "aria-describedby": `${id}-hint ${id}-error`},
    h("option", {value: ""}, "Choose a client or project\u2026"),
    h("optgroup", {label: "Clients"}, ...[...inventory.clients].map(([cid, name]) =>
      h("option", {value: `clients:${cid}`}, name))),
    h("optgroup", {label: "Projects"}, ...[...inventory.projects].map(([pid]) =>
      h("option", {value: `projects:${pid}`}, projectText(inventory, pid)))));
  const text = (c) => (c.kind === "clients" ? `Client: ${clientText(inventory, c.id)}`
    : `Project: ${projectText(inventory, c.id)}`);

  function draw() {
    list.replaceChildren(...chosen.map((c, i) => h("li.chip", {"data-scope-item": `${c.kind}:${c.id}`},
      h("span", {}, text(c)),
      h("button.chip-x", {type: "button", "aria-label": `Remove ${text(c)}`, on: {click: () => {
        chosen.splice(i, 1);
        draw();
        input.focus();
        announce(`Removed ${text(c)}`);
      }}}, "\u00d7"))));
    if (!chosen.length) list.append(h("li.muted", {}, "Every client"));
  }
  function add() {
    const [kind, cid] = input.value.split(":");
    if (!cid) {
      input.focus();
      return;
    }
    if (!chosen.some((c) => c.kind === kind && c.id === cid)) chosen.push({kind, id: cid});
    input.value = "";
    draw();
    announce(`Added ${text({kind, id: cid})}; ${chosen.length} in the scope`);
  }
  function set(scope) {
    chosen.splice(0, chosen.length, ...(scope?.clients ?? []).map((cid) => ({kind: "clients", id: cid})),
      ...(scope?.projects ?? []).map((pid) => ({kind: "projects", id: pid})));
    draw();
  }
  set(value);
  const node = h("div.field.scope-picker", {"data-field": "$.scope"},
    h("label", {for: id}, "Scope (clients and projects)"), list,
    h("div.scope-add", {}, input, h("button", {type: "button", "data-scope-add": "", on: {click: add}}, "Add to scope")),
    h("p.help", {id: `${id}-hint`}, "Empty: every client. A scoped token or person sees only these clients and "
      + "projects; everything else answers as if it did not exist. Admins are never scoped."),
    error);
  const read = () => {
    if (!chosen.length) return null;
    const of = (kind) => chosen.filter((c) => c.kind === kind).map((c) => c.id);
    return {clients: of("clients"), projects: of("projects")};
  };
  // read() sends each kind in chosen order, so the API's index names the chip.
  const showIssue = (issue) => {
    for (const li of list.querySelectorAll("[data-invalid]")) li.removeAttribute("data-invalid");
    error.textContent = "";
    error.hidden = !issue;
    if (!issue) {
      input.removeAttribute("aria-invalid");
      return true;
    }
    const m = /^\$\.scope\.(clients|projects)\[(\d+)\]/.exec(issue.field);
    const named = m ? chosen.filter((c) => c.kind === m[1])[Number(m[2])] : null;
    error.textContent = named ? `${text(named)}: ${issue.message}` : issue.message;
    input.setAttribute("aria-invalid", "true");
    if (named) list.querySelector(`[data-scope-item="${named.kind}:${named.id}"]`)?.setAttribute("data-invalid", "true");
    return true;
  };
  return {path: "$.scope", node, input, error, spec: {}, validate: () => null, read, set, showIssue};
}
