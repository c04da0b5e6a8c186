// What each monitor kind takes (mirrors ALLOWED / REQUIRED in dragonopsd/model/monitor.py),
// the fields drawn for them, and the conditions editor: a row per condition with the
// placeholders and functions offered, each row showing its parse error or its verdict.

import {announce, h} from "./dom.js";
import {field} from "./forms.js";

export const KINDS = ["http", "tcp", "dns", "icmp", "tls", "push", "postgres", "mysql", "redis", "mqtt", "amqp",
  "websocket", "grpc"];
const LOGIN = ["host", "port", "username", "passwordSecret", "tls", "verifyTls"];
export const ALLOWED = {
  http: ["url", "method", "headers", "body", "followRedirects", "verifyTls"],
  tcp: ["host", "port"],
  tls: ["host", "port", "verifyTls"],
  dns: ["host", "recordType", "resolver"],
  icmp: ["host", "packets"],
  push: ["grace", "cron", "timezone", "maxRuntime"],
  postgres: [...LOGIN, "database", "query"],
  mysql: [...LOGIN, "database", "query"],
  redis: LOGIN,
  mqtt: [...LOGIN, "topic", "body"],
  amqp: [...LOGIN, "vhost", "queue"],
  websocket: ["url", "headers", "body", "verifyTls"],
  grpc: ["host", "port", "tls", "service"],
};
export const REQUIRED = {
  http: ["url"], tcp: ["host", "port"], tls: ["host", "port"], dns: ["host"], icmp: ["host"], push: [],
  postgres: ["host", "username"], mysql: ["host", "username"], redis: ["host"], mqtt: ["host"], amqp: ["host"],
  websocket: ["url"], grpc: ["host", "port"],
};
export const KIND_FIELDS = [...new Set(Object.values(ALLOWED).flat())];

const QUERY = ["CONNECTED", "RESULT", "ROWS", "RESPONSE_TIME"];
export const PLACEHOLDERS = {
  http: ["STATUS", "BODY", "RESPONSE_TIME", "CERTIFICATE_EXPIRATION", "IP", "CONNECTED"],
  tcp: ["CONNECTED", "RESPONSE_TIME", "IP"],
  tls: ["CONNECTED", "CERTIFICATE_EXPIRATION", "RESPONSE_TIME", "IP"],
  dns: ["DNS_RCODE", "IP", "RESPONSE_TIME"],
  icmp: ["CONNECTED", "PACKET_LOSS", "RESPONSE_TIME", "IP"],
  push: [],
  postgres: QUERY, mysql: QUERY,
  redis: ["CONNECTED", "INFO", "RESULT", "RESPONSE_TIME"],
  mqtt: ["CONNECTED", "BODY", "RESPONSE_TIME"],
  amqp: ["CONNECTED", "QUEUE_MESSAGES", "QUEUE_CONSUMERS", "RESPONSE_TIME"],
  websocket: ["CONNECTED", "BODY", "RESPONSE_TIME"],
  grpc: ["GRPC_STATUS", "CONNECTED", "RESPONSE_TIME"],
};
const FUNCTIONS = [
  ["len()", "len([BODY]) > 0", "length of [BODY], [IP], [DNS_RCODE] or [RESULT]"],
  ["has()", "has([BODY].data) == true", "whether a JSON path exists"],
  ["any()", "[STATUS] == any(200, 204)", "equal to one of several values"],
  ["pat()", "[BODY] == pat(*ok*)", "matches a * and ? pattern"],
];
const EXAMPLES = ["[STATUS] == 200", "[STATUS] < 400", "[RESPONSE_TIME] < 500", "[BODY].status == ok",
  "[CERTIFICATE_EXPIRATION] > 72h", "[CONNECTED] == true", "[DNS_RCODE] == NOERROR", "[PACKET_LOSS] < 20",
  "[GRPC_STATUS] == SERVING", "[ROWS] > 0", ...FUNCTIONS.map((f) => f[1])];

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const RECORDS = ["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "SRV", "PTR", "CAA"];

/** The kind-specific fields of a monitor form, all built up front; show() picks a kind's. */
export function kindFields(formId, m) {
  const v = (k) => m?.[k];
  const specs = {
    url: {label: "URL", type: "url", placeholder: "https://example.com/health", hint: "http(s):// for HTTP, ws(s):// for websocket"},
    method: {label: "Method", type: "select", options: [["", "Default (GET)"], ...METHODS.map((x) => [x, x])]},
    headers: {label: "Headers", type: "textarea", rows: 2, placeholder: "Authorization: Bearer ${secret:API_TOKEN}",
      hint: "One Name: value per line; ${secret:NAME} reads a secret at probe time."},
    body: {label: "Body", type: "textarea", rows: 2},
    followRedirects: {label: "Follow redirects", type: "tri"},
    verifyTls: {label: "Verify TLS certificate", type: "tri"},
    host: {label: "Host", placeholder: "db.internal or 10.0.0.5", pattern: "[A-Za-z0-9._:\\-\\[\\]]+", patternText: "A host name or IP address"},
    port: {label: "Port", type: "number", min: 1, max: 65535, integer: true, inputmode: "numeric"},
    recordType: {label: "Record type", type: "select", options: [["", "Default (A)"], ...RECORDS.map((x) => [x, x])]},
    resolver: {label: "Resolver", placeholder: "1.1.1.1 or 1.1.1.1:53", hint: "Default: the system's"},
    packets: {label: "Packets", type: "number", min: 1, max: 10, integer: true},
    grace: {label: "Grace", numberish: true, placeholder: "60 or 5m", hint: "How late a ping may come (seconds or 30s, 5m, 1h)"},
    cron: {label: "Cron schedule", placeholder: "30 2 * * *", hint: "Instead of an interval: when pings are expected"},
    timezone: {label: "Time zone", placeholder: "UTC"},
    maxRuntime: {label: "Max runtime", numberish: true, placeholder: "1h", hint: "A run announced by /start is down after this"},
    username: {label: "Username", autocomplete: "off"},
    passwordSecret: {label: "Password secret", placeholder: "DB_PASSWORD or production/DB_PASSWORD",
      hint: "The name of a secret (Secrets page) holding the password; never the password itself"},
    tls: {label: "Use TLS", type: "tri"},
    database: {label: "Database"},
    query: {label: "Query", type: "textarea", rows: 2, placeholder: "SELECT 1"},
    topic: {label: "Topic"},
    vhost: {label: "Virtual host", placeholder: "/"},
    queue: {label: "Queue"},
    service: {label: "gRPC service", hint: "Empty: the whole server's health"},
  };
  const out = {};
  for (const [key, spec] of Object.entries(specs)) {
    let value = v(key);
    if (key === "headers" && value) value = Object.entries(value).map(([n, x]) => `${n}: ${x}`).join("\n");
    out[key] = field(formId, {path: `$.${key}`, value, ...spec});
    if (key === "headers") out[key].read = () => readHeaders(out[key].input.value);
  }
  out.headers.validate = () => (readHeaders(out.headers.input.value) === undefined ? "Each line: Name: value" : null);
  return out;
}

function readHeaders(text) {
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  if (!lines.length) return null;
  const out = {};
  for (const line of lines) {
    const at = line.indexOf(":");
    if (at < 1) return undefined;
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

/** Show the fields kind takes (required ones marked), hide the others. */
export function showKind(fields, kind) {
  for (const [key, f] of Object.entries(fields)) {
    const used = ALLOWED[kind].includes(key);
    const required = REQUIRED[kind].includes(key);
    f.node.hidden = !used;
    f.spec.required = required;
    f.input.required = required;
    f.node.querySelector(".req")?.remove();
    if (required) f.node.querySelector("label").append(h("span.req", {"aria-hidden": "true"}, " *"));
  }
  if (fields.url) {
    const ws = kind === "websocket";
    fields.url.spec.pattern = ws ? "wss?://[^\\s/]+(/\\S*)?" : "https?://[^\\s/]+(/\\S*)?";
    fields.url.spec.patternText = ws ? "Expected a ws:// or wss:// URL" : "Expected an http:// or https:// URL";
  }
}

/**
 * The conditions editor. Registers itself with the form for "$.conditions" errors; read()
 * gives the list; verdicts(results) shows a test's per-row outcome.
 */
export function conditionsEditor(form, initial, getKind) {
  const rows = [];
  const list = h("ol.conditions-rows");
  const editorError = h("p.field-error", {hidden: true, id: `${form.id}-conditions-error`});
  const palette = h("div.palette", {role: "group", "aria-label": "Insert into the condition"});
  const listId = `${form.id}-condition-examples`;
  let lastInput = null;

  function addRow(text = "", focus = false) {
    const n = rows.length + 1;
    const id = `${form.id}-condition-${n}-${Math.random().toString(36).slice(2, 7)}`;
    const input = h("input.condition", {id, type: "text", value: text, list: listId, autocomplete: "off", spellcheck: "false",
      "aria-describedby": `${id}-out`, placeholder: "[STATUS] == 200"});
    input.value = text;
    const out = h("p.condition-out", {id: `${id}-out`, "aria-live": "polite"});
    const label = h("label.sr-only", {for: id});
    const remove = h("button.chip-x", {type: "button"}, "\u00d7");
    const row = {input, out, label, remove, node: h("li.condition-row", {}, label, input, remove, out)};
    remove.addEventListener("click", () => {
      rows.splice(rows.indexOf(row), 1);
      row.node.remove();
      relabel();
      (rows.at(-1)?.input ?? add).focus();
      announce("Condition removed");
    });
    input.addEventListener("focus", () => (lastInput = input));
    input.addEventListener("input", () => setOut(row, null));
    rows.push(row);
    list.append(row.node);
    relabel();
    if (focus) input.focus();
    return row;
  }

  function relabel() {
    rows.forEach((r, i) => {
      r.label.textContent = `Condition ${i + 1}`;
      r.remove.setAttribute("aria-label", `Remove condition ${i + 1}`);
      r.node.dataset.index = String(i);
    });
  }

  function setOut(row, state, text = "") {
    row.node.dataset.state = state ?? "";
    row.out.textContent = text;
    if (state === "error") row.input.setAttribute("aria-invalid", "true");
    else row.input.removeAttribute("aria-invalid");
  }

  function insert(text) {
    const input = lastInput && rows.some((r) => r.input === lastInput) ? lastInput : addRow().input;
    const at = input.selectionStart ?? input.value.length;
    input.value = input.value.slice(0, at) + text + input.value.slice(input.selectionEnd ?? at);
    input.focus();
    input.setSelectionRange(at + text.length, at + text.length);
  }

  function drawPalette() {
    const kind = getKind();
    palette.replaceChildren(...PLACEHOLDERS[kind].map((p) => h("button.token", {type: "button",
      "aria-label": `Insert [${p}]`, on: {click: () => insert(`[${p}]`)}}, `[${p}]`)),
    ...FUNCTIONS.map(([name, example, what]) => h("button.token", {type: "button", title: `${what}: ${example}`,
      "aria-label": `Insert ${name}: ${what}`, on: {click: () => insert(name.replace("()", "("))}}, name)));
  }

  const add = h("button", {type: "button", on: {click: () => addRow("", true)}}, "Add condition");
  for (const text of initial) addRow(text);
  drawPalette();
  form.onErrors("$.conditions", (issue) => {
    if (issue === null) {
      rows.forEach((r) => setOut(r, null));
      editorError.hidden = true;
      return true;
    }
    const m = /^\$\.conditions\[(\d+)\]$/.exec(issue.field);
    const row = m ? rows.filter((r) => r.input.value.trim())[Number(m[1])] : null;
    if (row) {
      setOut(row, "error", issue.message);
      row.input.focus();
    } else {
      editorError.textContent = issue.message;
      editorError.hidden = false;
    }
    return true;
  });

  // Cheap checks before any request; the daemon's parser has the last word (and its errors
  // land on the same rows).
  form.validate(() => {
    let first = null;
    for (const r of rows) {
      const text = r.input.value.trim();
      const why = !text ? null
        : !/(==|!=|<=|>=|<|>)/.test(text) ? "A condition compares two sides, e.g. [STATUS] == 200"
          : !/\[[A-Z_]+\]/.test(text) ? "Name a placeholder such as [STATUS]"
            : text.length > 500 ? "At most 500 characters" : null;
      if (why) {
        setOut(r, "error", why);
        first ??= r.input;
      }
    }
    return first;
  });

  const node = h("fieldset.conditions", {"data-field": "$.conditions"},
    h("legend", {}, "Conditions"),
    h("p.help", {}, "All must hold for the monitor to be up. None: the kind's default. Placeholders and functions:"),
    palette, list, add, editorError,
    h("datalist", {id: listId}, ...EXAMPLES.map((e) => h("option", {value: e}))));
  return {
    node,
    drawPalette,
    read: () => rows.map((r) => r.input.value.trim()).filter(Boolean),
    /** results: [{condition, success, detail}] in the order of the filled rows. */
    verdicts(results) {
      const filled = rows.filter((r) => r.input.value.trim());
      filled.forEach((r, i) => {
        const res = results[i];
        if (res) setOut(r, res.success ? "pass" : "fail", `${res.success ? "\u2714 holds" : "\u2716 fails"}: ${res.detail}`);
      });
    },
  };
}
