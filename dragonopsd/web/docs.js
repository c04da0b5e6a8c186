// Renders /api/openapi.json as a reference page. Every string taken from the document reaches
// the page as a Text node (textContent / append), never as markup, so a hostile description or
// summary cannot inject HTML. No external resources: the page works offline and under a CSP of
// default-src 'self' (no inline script or style; visibility is toggled with `hidden`).

const SPEC_URL = "/api/openapi.json";
const METHODS = ["get", "put", "post", "patch", "delete", "options", "head", "trace"];
const KEYWORDS = ["minLength", "maxLength", "pattern", "minimum", "exclusiveMinimum", "maximum",
  "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "uniqueItems", "minProperties",
  "maxProperties"];

/** h("tag.class", {attr: value}, ...children): strings become Text nodes, never HTML. */
function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const node = document.createElement(name);
  if (classes.length) node.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === true) node.setAttribute(key, "");
    else if (value != null && value !== false) node.setAttribute(key, String(value));
  }
  node.append(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return node;
}

const text = (value) => (typeof value === "string" ? value : JSON.stringify(value));
const list = (value) => (Array.isArray(value) ? value : []);
const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
const refName = (ref) => String(ref).split("/").pop();

/** Resolve a local JSON pointer ("#/components/schemas/Client"); undefined when it dangles. */
function pointer(doc, ref) {
  if (typeof ref !== "string" || !ref.startsWith("#/")) return undefined;
  let node = doc;
  for (const raw of ref.slice(2).split("/")) {
    const key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    if (node === null || typeof node !== "object" || !Object.hasOwn(node, key)) return undefined;
    node = node[key];
  }
  return node;
}

function deref(doc, obj) {
  for (let hops = 0; isObject(obj) && obj.$ref && hops < 20; hops++) obj = pointer(doc, obj.$ref);
  return isObject(obj) ? obj : {};
}

/** A one-line type: "string (uuid)", "array of Client", "string | null", "map of integer". */
function typeText(s) {
  if (!isObject(s)) return "any";
  if (s.$ref) return refName(s.$ref);
  if (Array.isArray(s.anyOf ?? s.oneOf)) return (s.anyOf ?? s.oneOf).map(typeText).join(" | ");
  if (Array.isArray(s.allOf)) return s.allOf.map(typeText).join(" & ");
  if ("const" in s) return `constant ${text(s.const)}`;
  let type = Array.isArray(s.type) ? s.type.join(" | ") : s.type;
  if (!type && Array.isArray(s.enum)) {
    type = [...new Set(s.enum.map((v) => (v === null ? "null" : typeof v)))].join(" | ");
  }
  if (type === "array") return `array of ${typeText(s.items)}`;
  if (type === "object" && isObject(s.additionalProperties)) {
    return `map of ${typeText(s.additionalProperties)}`;
  }
  return s.format ? `${type ?? "any"} (${s.format})` : type ?? "any";
}

/** Validation keywords as readable strings, including those of union members and items. */
function constraints(s, prefix = "") {
  if (!isObject(s) || s.$ref) return [];
  const out = KEYWORDS.filter((k) => k in s).map((k) => `${prefix}${k}: ${text(s[k])}`);
  if (Array.isArray(s.enum)) out.push(`${prefix}one of: ${s.enum.map(text).join(", ")}`);
  for (const sub of [...list(s.anyOf), ...list(s.oneOf), ...list(s.allOf)]) {
    out.push(...constraints(sub, prefix));
  }
  if ("default" in s) out.push(`${prefix}default: ${JSON.stringify(s.default)}`);
  if (isObject(s.items)) out.push(...constraints(s.items, `${prefix}items `));
  if (isObject(s.additionalProperties)) {
    out.push(...constraints(s.additionalProperties, `${prefix}values `));
  }
  return out;
}

function chips(s) {
  const items = constraints(s);
  if (!items.length) return null;
  return h("ul.constraints", { "aria-label": "Constraints" }, items.map((c) => h("li", {}, c)));
}

/** The $refs a property points at directly (itself, its items, union members, map values). */
function refsIn(s, out = new Set()) {
  if (!isObject(s)) return out;
  if (s.$ref) out.add(s.$ref);
  const subs = [s.items, s.additionalProperties, ...list(s.anyOf), ...list(s.oneOf)];
  for (const sub of [...subs, ...list(s.allOf)]) refsIn(sub, out);
  return out;
}

/** A named schema as a disclosure; its fields are built on first open, so cycles are harmless. */
function schemaDetails(doc, ref, open = false) {
  const target = pointer(doc, ref);
  const details = h("details.schema", { open },
    h("summary", {}, h("span.schema-name", {}, refName(ref)),
      isObject(target) && target.description
        ? h("span.muted", {}, ` — ${text(target.description)}`) : null));
  const fill = () => {
    if (!details.open || details.dataset.filled) return;
    details.dataset.filled = "1";
    details.append(isObject(target) ? schemaBody(doc, target)
      : h("p.error", {}, `Unresolved reference ${ref}`));
  };
  details.addEventListener("toggle", fill);
  fill();
  return details;
}

function schemaBody(doc, s) {
  const props = isObject(s.properties) ? Object.entries(s.properties) : [];
  if (!props.length) {
    return h("div.fields", {}, h("p", {}, "Type: ", h("span.type", {}, typeText(s))), chips(s),
      [...refsIn(s)].map((ref) => schemaDetails(doc, ref)));
  }
  const required = new Set(list(s.required));
  return h("div.fields", {},
    h("ul", {}, props.map(([name, prop]) => h("li", {},
      h("div.field", {}, h("code.name", {}, name), " ", h("span.type", {}, typeText(prop)),
        required.has(name) ? h("span.req", {}, "required") : h("span.opt", {}, "optional")),
      isObject(prop) && prop.description ? h("p.desc", {}, text(prop.description)) : null,
      chips(prop),
      [...refsIn(prop)].map((ref) => schemaDetails(doc, ref))))),
    s.additionalProperties === false ? h("p.muted", {}, "Other fields are rejected.") : null);
}

/** A schema where a body or response shows it: a named one opens (if asked), else inline. */
const schemaView = (doc, s, open) =>
  (isObject(s) && s.$ref ? schemaDetails(doc, s.$ref, open) : schemaBody(doc, deref(doc, s)));

function content(doc, media, open) {
  return Object.entries(isObject(media) ? media : {}).map(([type, m]) =>
    h("div.media", {}, h("code.ctype", {}, type),
      schemaView(doc, isObject(m) ? m.schema : {}, open)));
}

function parameters(doc, params) {
  if (!params.length) return null;
  return h("section", {}, h("h3", {}, "Parameters"),
    h("table", {},
      h("thead", {}, h("tr", {},
        ["Name", "In", "Type", "Description"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, params.map((p) => h("tr", {},
        h("td", {}, h("code", {}, text(p.name ?? "")),
          p.required ? h("span.req", {}, "required") : null),
        h("td", {}, text(p.in ?? "")),
        h("td", {}, h("span.type", {}, typeText(p.schema)), chips(p.schema)),
        h("td", {}, text(p.description ?? "")))))));
}

function responses(doc, op) {
  const codes = Object.entries(isObject(op.responses) ? op.responses : {});
  const item = ([code, raw]) => {
    const r = deref(doc, raw);
    const kind = /^[1-5]/.test(code) ? `s${code[0]}` : "sx";
    return h("li", {},
      h("div", {}, h(`span.status.${kind}`, {}, code), " ", text(r.description ?? "")),
      content(doc, r.content, kind === "s2"));
  };
  return h("section", {}, h("h3", {}, "Responses"), h("ul.responses", {}, codes.map(item)));
}

function operation(doc, path, method, op, shared, tag) {
  const params = [...shared, ...list(op.parameters)].map((p) => deref(doc, p));
  const body = op.requestBody ? deref(doc, op.requestBody) : null;
  const role = text(op["x-role"] ?? "not stated");
  const details = h("details.op", { id: `op-${op.operationId ?? `${method}-${path}`}` },
    h("summary", {},
      h(`span.method.m-${method}`, {}, method.toUpperCase()),
      h("code.path", {}, path),
      h("span.summary", {}, text(op.summary ?? "")),
      h("span.role", {}, `role: ${role}`)),
    h("div.op-body", {},
      op.description ? h("p.desc", {}, text(op.description)) : null,
      h("dl.facts", {}, h("dt", {}, "Least role"), h("dd", {}, role),
        h("dt", {}, "Auth"), h("dd", {}, list(op.security).length ? "bearer token" : "none"),
        op.operationId
          ? [h("dt", {}, "Operation"), h("dd", {}, h("code", {}, text(op.operationId)))] : null),
      parameters(doc, params),
      body ? h("section", {},
        h("h3", {}, "Request body", body.required ? h("span.req", {}, "required") : null),
        content(doc, body.content, true)) : null,
      responses(doc, op)));
  details.dataset.search = [method, path, op.summary, op.operationId, role, tag]
    .join(" ").toLowerCase();
  return details;
}

function render(doc) {
  const info = isObject(doc.info) ? doc.info : {};
  document.title = `${text(info.title ?? "API")} reference`;
  document.getElementById("title").textContent = text(info.title ?? "API");
  document.getElementById("version").textContent =
    `version ${text(info.version ?? "?")} · OpenAPI ${text(doc.openapi ?? "?")}`;
  document.getElementById("description").textContent = text(info.description ?? "");

  const groups = new Map(list(doc.tags).map((t) => [text(t.name), []]));
  for (const [path, item] of Object.entries(isObject(doc.paths) ? doc.paths : {})) {
    for (const method of METHODS.filter((m) => isObject(item?.[m]))) {
      const tag = text(list(item[method].tags)[0] ?? "Other");
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push(operation(doc, path, method, item[method], list(item.parameters), tag));
    }
  }
  const main = document.getElementById("endpoints");
  const toc = document.getElementById("toc");
  main.replaceChildren();
  [...groups].filter(([, ops]) => ops.length).forEach(([tag, ops], i) => {
    main.append(h("section.tag", { id: `tag-${i}`, "aria-labelledby": `tag-${i}-h` },
      h("h2", { id: `tag-${i}-h` }, tag), ops));
    const label = h("a", { href: `#tag-${i}` }, tag, h("span.muted", {}, ` (${ops.length})`));
    toc.append(h("li", {}, label));
  });
  const schemas = isObject(doc.components?.schemas) ? Object.keys(doc.components.schemas) : [];
  if (schemas.length) {
    const ref = (name) => `#/components/schemas/${name.replaceAll("~", "~0").replaceAll("/", "~1")}`;
    main.append(h("section.tag", { id: "schemas", "aria-labelledby": "schemas-h" },
      h("h2", { id: "schemas-h" }, "Schemas"),
      schemas.map((name) => schemaDetails(doc, ref(name)))));
    toc.append(h("li", {}, h("a", { href: "#schemas" }, "Schemas")));
  }
  setUpFilter(main);
  const hash = decodeURIComponent(location.hash.slice(1));
  const target = hash && document.getElementById(hash);
  if (target instanceof HTMLDetailsElement) {
    target.open = true;
    target.scrollIntoView();
  }
}

function setUpFilter(main) {
  const input = document.getElementById("filter");
  const count = document.getElementById("count");
  const ops = [...main.querySelectorAll("details.op")];
  const apply = () => {
    const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const op of ops) {
      op.hidden = !words.every((w) => op.dataset.search.includes(w));
      if (!op.hidden) shown++;
    }
    for (const section of main.querySelectorAll("section.tag:not(#schemas)")) {
      section.hidden = !section.querySelector("details.op:not([hidden])");
    }
    count.textContent = `${shown} of ${ops.length} endpoints`;
  };
  input.addEventListener("input", apply);
  input.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    input.value = "";
    apply();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "/" || e.target instanceof HTMLInputElement) return;
    e.preventDefault();
    input.focus();
  });
  const setAll = (open) => ops.filter((op) => !op.hidden).forEach((op) => { op.open = open; });
  document.getElementById("expand").addEventListener("click", () => setAll(true));
  document.getElementById("collapse").addEventListener("click", () => setAll(false));
  apply();
}

try {
  const resp = await fetch(SPEC_URL, { headers: { Accept: "application/json" } });
  if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
  render(await resp.json());
} catch (err) {
  document.getElementById("endpoints").replaceChildren(
    h("p.error", { role: "alert" }, `Could not load ${SPEC_URL}: ${err.message}`));
}
