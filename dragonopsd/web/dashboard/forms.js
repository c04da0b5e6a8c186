// Shared form code: fields with a label, a hint and an error slot; checks the browser can make
// cheaply (required, number ranges, patterns); the API's problem+json errors[] placed next to
// the field each one names; writes that send If-Match with the ETag the form read, so a change
// made meanwhile by someone else (412) is reported, never overwritten; and a modal confirm.

import {ApiError, api} from "./api.js";
import {announce, h} from "./dom.js";

let serial = 0;

/**
 * A form whose fields are keyed by the JSON path the API names in errors[] ("$.name").
 * fields: path -> {node, input, error, read()}. Rows of editors (conditions) register a
 * handler for a path prefix with onErrors(prefix, fn).
 */
export class Form {
  constructor(id, {label} = {}) {
    this.id = id;
    this.fields = new Map();
    this.prefixes = [];
    this.validators = []; // () => the first element in error, or null (editors of many rows)
    this.alert = h("div.form-alert", {role: "alert", tabindex: "-1"});
    this.node = h("form.form", {id, novalidate: true, "aria-label": label ?? null});
  }

  /** Register a field (from field()); returns it for chaining. */
  add(f) {
    this.fields.set(f.path, f);
    return f;
  }

  /** fn() checks what no single field can (rows of an editor): shows its errors, returns the
   * first element in error or null. */
  validate(fn) {
    this.validators.push(fn);
  }

  /** fn(issue) gets errors whose field starts with prefix (and returns true when it showed it). */
  onErrors(prefix, fn) {
    this.prefixes.push([prefix, fn]);
  }

  clearErrors() {
    this.alert.replaceChildren();
    for (const f of this.fields.values()) setError(f, null);
    for (const [, fn] of this.prefixes) fn(null);
  }

  /** Browser-side checks of every visible field; true when all pass (errors shown otherwise). */
  check() {
    this.clearErrors();
    let first = null;
    for (const f of this.fields.values()) {
      if (f.node.hidden || f.input.matches(":disabled")) continue;
      const message = f.validate();
      if (message) {
        setError(f, message);
        first ??= f.input;
      }
    }
    for (const fn of this.validators) {
      const bad = fn();
      first ??= bad;
    }
    if (first) {
      first.focus();
      announce("Some fields need attention");
    }
    return !first;
  }

  /** Show an API error: each errors[] item beside its field, the rest in the form's alert. */
  showProblem(err) {
    this.clearErrors();
    const loose = [];
    let first = null;
    for (const issue of err?.problem?.errors ?? []) {
      const prefixed = this.prefixes.find(([p]) => issue.field.startsWith(p));
      if (prefixed && prefixed[1](issue)) continue;
      const f = this.lookup(issue.field);
      if (f) {
        setError(f, issue.message);
        first ??= f.input;
      } else loose.push(issue);
    }
    if (!err?.problem?.errors?.length || loose.length) {
      this.alert.replaceChildren(h("p.error", {}, loose.length
        ? loose.map((i) => `${i.field}: ${i.message}`).join("; ")
        : err?.message ?? String(err)));
    }
    (first ?? this.alert).focus?.();
    announce(err?.message ?? "The daemon refused the change");
  }

  /** The visible field a path names, or its nearest parent ("$.headers.X" -> "$.headers"). */
  lookup(path) {
    for (let p = path; p.length > 1; p = p.replace(/(\.[^.[]*|\[\d+\])$/, "")) {
      const f = this.fields.get(p);
      if (f && !f.node.hidden) return f;
      if (!/(\.[^.[]*|\[\d+\])$/.test(p)) break;
    }
    return null;
  }

  /** Show a conflict (412): someone else changed it; offer a reload instead of overwriting. */
  showConflict(reload) {
    this.clearErrors();
    this.alert.replaceChildren(conflict(reload));
  }
}

/** The conflict notice (412) with its Reload button, focused; for forms and lone buttons. */
export function conflict(reload) {
  const button = h("button", {type: "button", on: {click: reload}}, "Reload");
  const node = h("div.error.conflict", {"data-conflict": "true"},
    h("p", {}, h("strong", {}, "Changed by someone else \u2014 reload. "),
      "It was changed after you opened this form, so your edit was not saved (it would have ",
      "overwritten theirs). Reload to see the current version, then make your change again."),
    button);
  queueMicrotask(() => button.focus());
  announce("Changed by someone else; reload");
  return node;
}

function setError(f, message) {
  f.error.textContent = message ?? "";
  f.error.hidden = !message;
  if (message) f.input.setAttribute("aria-invalid", "true");
  else f.input.removeAttribute("aria-invalid");
}

/**
 * One labelled field. spec: {path, label, type: text|number|select|checkbox|textarea|tri,
 * value, required, options: [[value, text]], hint, min, max, step, pattern, patternText,
 * placeholder, list, autocomplete}. read() gives the value as the API wants it (null: empty).
 */
export function field(formId, spec) {
  const id = `${formId}-${spec.path.replace(/^\$\./, "").replace(/[^A-Za-z0-9_-]/g, "-")}`;
  const errorId = `${id}-error`;
  const hintId = `${id}-hint`;
  const described = [spec.hint ? hintId : null, errorId].filter(Boolean).join(" ");
  const common = {id, name: spec.path.slice(2), "aria-describedby": described, required: spec.required || null,
    placeholder: spec.placeholder ?? null, autocomplete: spec.autocomplete ?? "off"};
  let input;
  if (spec.type === "select" || spec.type === "tri") {
    const options = spec.type === "tri" ? [["", spec.defaultText ?? "Default"], ["true", "Yes"], ["false", "No"]] : spec.options;
    input = h("select", common, ...options.map(([v, t]) => h("option", {value: v}, t)));
    input.value = spec.value == null ? "" : String(spec.value);
  } else if (spec.type === "checkbox") {
    input = h("input", {...common, type: "checkbox"});
    input.checked = Boolean(spec.value);
  } else if (spec.type === "textarea") {
    input = h("textarea", {...common, rows: spec.rows ?? 3});
    input.value = spec.value ?? "";
  } else {
    input = h("input", {...common, type: spec.type ?? "text", min: spec.min ?? null, max: spec.max ?? null,
      step: spec.step ?? null, pattern: spec.pattern ?? null, list: spec.list ?? null, inputmode: spec.inputmode ?? null});
    input.value = spec.value ?? "";
  }
  const error = h("p.field-error", {id: errorId, hidden: true});
  const label = h("label", {for: id}, spec.label, spec.required ? h("span.req", {"aria-hidden": "true"}, " *") : null);
  const node = h(`div.field${spec.type === "checkbox" ? ".check" : ""}`, {"data-field": spec.path},
    ...(spec.type === "checkbox" ? [input, label] : [label, input]),
    spec.hint ? h("p.help", {id: hintId}, spec.hint) : null, error);
  const f = {path: spec.path, node, input, error, spec};
  f.read = () => {
    if (spec.type === "checkbox") return input.checked;
    if (spec.type === "tri") return input.value === "" ? null : input.value === "true";
    const raw = input.value.trim();
    if (raw === "") return null;
    if (spec.type === "number") return Number(raw);
    if (spec.numberish && /^\d+(\.\d+)?$/.test(raw)) return Number(raw);
    return raw;
  };
  f.validate = () => {
    if (spec.type === "checkbox" || spec.type === "tri") return null;
    const raw = input.value.trim();
    if (spec.required && raw === "") return "Required";
    if (raw !== "" && spec.type === "number") {
      const v = Number(raw);
      if (!Number.isFinite(v)) return "Expected a number";
      if (spec.min != null && v < spec.min) return `At least ${spec.min}`;
      if (spec.max != null && v > spec.max) return `At most ${spec.max}`;
      if (spec.integer && !Number.isInteger(v)) return "Expected a whole number";
    }
    if (raw !== "" && spec.pattern && !new RegExp(`^(?:${spec.pattern})$`).test(raw)) {
      return spec.patternText ?? "Not in the expected form";
    }
    return spec.check?.(raw) ?? null;
  };
  return f;
}

/**
 * Chips: a text box where Enter or a comma adds the typed value as a chip, each chip with its
 * own remove button (Backspace in an empty box removes the last). read() gives the list.
 */
export function chips(formId, {path, label, value = [], hint, max = 64, suggestions = []}) {
  const id = `${formId}-${path.slice(2)}`;
  const listId = `${id}-list`;
  const items = [...value];
  const list = h("ul.chips", {"aria-label": `${label}: chosen`});
  const input = h("input", {id, type: "text", autocomplete: "off", list: suggestions.length ? listId : null,
    "aria-describedby": `${id}-hint ${id}-error`, placeholder: "Type, then Enter"});
  const error = h("p.field-error", {id: `${id}-error`, hidden: true});
  function draw() {
    list.replaceChildren(...items.map((text, i) => h("li.chip", {},
      h("span", {}, text),
      h("button.chip-x", {type: "button", "aria-label": `Remove ${text}`, on: {click: () => {
        items.splice(i, 1);
        draw();
        input.focus();
        announce(`Removed ${text}`);
      }}}, "\u00d7"))));
  }
  function take() {
    for (const part of input.value.split(",")) {
      const text = part.trim();
      if (text && !items.includes(text) && text.length <= max) items.push(text);
    }
    input.value = "";
    draw();
  }
  input.addEventListener("keydown", (ev) => {
    if ((ev.key === "Enter" || ev.key === ",") && input.value.trim()) {
      ev.preventDefault();
      take();
      announce(`Added; ${items.length} in ${label}`);
    } else if (ev.key === "Enter") {
      ev.preventDefault(); // an empty Enter does not submit the form from the chips box
    } else if (ev.key === "Backspace" && !input.value && items.length) {
      announce(`Removed ${items.pop()}`);
      draw();
    }
  });
  input.addEventListener("blur", take);
  draw();
  const node = h("div.field", {"data-field": path},
    h("label", {for: id}, label), list, input,
    suggestions.length ? h("datalist", {id: listId}, ...suggestions.map((s) => h("option", {value: s}))) : null,
    h("p.help", {id: `${id}-hint`}, hint ?? "Enter or comma adds one; Backspace in the empty box removes the last."),
    error);
  return {path, node, input, error, spec: {}, validate: () => null, read: () => (take(), [...items])};
}

/**
 * A write with If-Match: resolves to {data, etag}. On 412, GETs the item again: when its
 * updatedAt is the one the form read, nobody wrote it (only a derived figure, a status or a
 * count, moved the ETag) and the write is sent once more with the fresh ETag; otherwise the
 * ApiError (status 412) goes to the caller, who shows the conflict.
 */
export async function write(path, {method, body, etag, loaded, query = ""}) {
  try {
    return await api(path + query, {method, body, ifMatch: etag, meta: true});
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 412 || !loaded) throw err;
    const fresh = await api(path, {meta: true});
    if (fresh.data?.updatedAt !== loaded.updatedAt) throw err;
    return await api(path + query, {method, body, ifMatch: fresh.etag, meta: true});
  }
}

/**
 * The ETag of an item as a list showed it (list rows carry none): GET it now, and when its
 * updatedAt is no longer the shown one, someone changed it since the list was drawn: an
 * ApiError 412, as a stale If-Match gets, so the caller shows the conflict. Passing it to
 * write() then closes the gap between this read and the write.
 */
export async function shownEtag(path, shown) {
  const fresh = await api(path, {meta: true});
  if (fresh.data?.updatedAt !== shown.updatedAt) {
    throw new ApiError(412, {status: 412, detail: "changed since the list was loaded"});
  }
  return fresh.etag;
}

/**
 * Run a save: browser checks, then fn() (the write); problems and conflicts land on the form.
 * Resolves to fn's result, or undefined when it did not go through.
 */
export async function submit(form, button, fn, {reload} = {}) {
  if (!form.check()) return undefined;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiError && err.status === 412) form.showConflict(reload ?? (() => location.reload()));
    else form.showProblem(err);
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/**
 * A modal question (native <dialog>: focus moves in, Esc cancels, focus returns after).
 * choices: [{value, label, primary, danger}]. Resolves to the chosen value, or null.
 */
export function ask(title, message, choices) {
  const titleId = `dialog-${++serial}`;
  const dialog = h("dialog.ask-dialog", {"aria-labelledby": titleId},
    h("h2", {id: titleId}, title),
    ...(Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? h("p", {}, m) : m)),
    h("div.actions", {}, ...choices.map((c) => h(`button${c.primary ? ".primary" : ""}${c.danger ? ".danger" : ""}`,
      {type: "button", value: c.value, "data-choice": c.value, on: {click: () => dialog.close(c.value)}}, c.label)),
    h("button", {type: "button", "data-choice": "cancel", on: {click: () => dialog.close("")}}, "Cancel")));
  const back = document.activeElement;
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      dialog.remove();
      back?.focus?.();
      resolve(dialog.returnValue || null);
    });
    dialog.showModal();
    // Cancel first: Enter on a destructive question does nothing harmful by accident.
    dialog.querySelector("button[data-choice=cancel]")?.focus();
  });
}

/** A notice that the signed-in role cannot change anything here (viewers). */
export function readOnlyNote(what) {
  return h("p.notice.read-only", {}, `Read-only for your role: changing ${what} needs the operator role.`);
}

/** Buttons row for a form: the primary submit first, then the rest. */
export function buttons(...nodes) {
  return h("div.actions.form-actions", {}, ...nodes);
}

/**
 * Show [data-write] controls only to a role that may use them (the attribute's value, default
 * operator); re-checked whenever the live connection (re)authenticates, since that is when the
 * role becomes known. Returns {sync, stop}: call sync after drawing new controls.
 */
export function gate(root, ctx) {
  const sync = () => {
    for (const n of root.querySelectorAll("[data-write]")) n.hidden = !ctx.can(n.dataset.write || "operator");
    for (const n of root.querySelectorAll("[data-read-only]")) n.hidden = ctx.can(n.dataset.readOnly || "operator") || !ctx.role();
  };
  sync();
  const stop = ctx.onLive(sync);
  return {sync, stop};
}

/** The hash's query ("#/x?clientId=1" -> URLSearchParams). */
export function hashQuery() {
  const hash = location.hash;
  const at = hash.indexOf("?");
  return new URLSearchParams(at >= 0 ? hash.slice(at + 1) : "");
}

/**
 * A checkbox per option in a scrolling fieldset, for choosing several ids (monitors, servers).
 * options: [[value, text]]; read() gives the checked values.
 */
export function multi(formId, {path, label, options, value = [], hint}) {
  const id = `${formId}-${path.slice(2).replace(/[^A-Za-z0-9_-]/g, "-")}`;
  const chosen = new Set(value.map(String));
  const boxes = options.map(([v, text], i) => {
    const box = h("input", {type: "checkbox", id: `${id}-${i}`, value: v});
    box.checked = chosen.has(String(v));
    return h("li.check", {}, box, h("label", {for: `${id}-${i}`}, text));
  });
  const error = h("p.field-error", {id: `${id}-error`, hidden: true});
  const input = h("fieldset.multi", {id, "aria-describedby": `${id}-error`},
    h("legend", {}, label), hint ? h("p.help", {}, hint) : null,
    options.length ? h("ul.multi-list", {}, ...boxes) : h("p.muted", {}, "None yet."));
  const node = h("div.field", {"data-field": path}, input, error);
  const read = () => boxes.map((li) => li.firstChild).filter((b) => b.checked).map((b) => b.value);
  return {path, node, input, error, spec: {}, validate: () => null, read};
}

/** Text that reports the role a section needs ("Admins only"), shown to roles below it. */
export function needs(role, what) {
  return h("p.notice.read-only", {"data-read-only": role}, `Read-only for your role: ${what} needs the ${role} role.`);
}
