// Monitors: the list filtered by name, tag, status, kind and place in the hierarchy, with bulk
// pause / resume / tag / delete over the ticked rows. The API has no bulk endpoint, so a bulk
// action is one GET (for the ETag) and one If-Match write per monitor, a few at a time; each
// refusal (a config-managed monitor, a concurrent change) is reported by name.

import {api} from "./api.js";
import {announce, badge, clear, debounce, errorBox, h} from "./dom.js";
import {ask, gate, write} from "./forms.js";
import {KINDS} from "./monitor_kinds.js";

const STATUSES = ["up", "down", "pending", "maintenance", "paused"];
const PARALLEL = 4;

export async function mount(root, _params, ctx) {
  let monitors = [];
  const places = new Map(); // serverId / environmentId -> [client, project, environment, server?] ids
  const chosen = new Set();
  const problems = h("div");
  const report = h("div.bulk-report", {"aria-live": "polite"});
  const body = h("tbody");
  const count = h("p.muted", {"aria-live": "polite"});
  const q = h("input", {type: "search", id: "mon-q", placeholder: "Name contains", autocomplete: "off"});
  const tag = h("select", {id: "mon-tag"});
  const status = h("select", {id: "mon-status"}, h("option", {value: ""}, "Any status"), ...STATUSES.map((s) => h("option", {value: s}, s)));
  const kind = h("select", {id: "mon-kind"}, h("option", {value: ""}, "Any kind"), ...KINDS.map((k) => h("option", {value: k}, k)));
  const place = h("select", {id: "mon-place"});
  const all = h("input", {type: "checkbox", id: "mon-all", "aria-label": "Select every monitor shown"});
  const tagName = h("input", {type: "text", id: "bulk-tag", placeholder: "tag", autocomplete: "off", size: 10});
  const bulk = h("div.toolbar.bulk", {role: "group", "aria-label": "With the selected monitors", "data-write": ""},
    h("span.muted", {id: "bulk-count"}, "0 selected"),
    h("button", {type: "button", "data-bulk": "pause", on: {click: () => run("pause")}}, "Pause"),
    h("button", {type: "button", "data-bulk": "resume", on: {click: () => run("resume")}}, "Resume"),
    h("label.sr-only", {for: "bulk-tag"}, "Tag to add"), tagName,
    h("button", {type: "button", "data-bulk": "tag", on: {click: () => run("tag")}}, "Add tag"),
    h("button", {type: "button", "data-bulk": "untag", on: {click: () => run("untag")}}, "Remove tag"),
    h("button.danger", {type: "button", "data-bulk": "delete", on: {click: () => run("delete")}}, "Delete"));

  const filters = h("form.toolbar.filters", {role: "search", on: {submit: (ev) => ev.preventDefault()}},
    ...labelled("mon-q", "Name", q), ...labelled("mon-tag", "Tag", tag), ...labelled("mon-status", "Status", status),
    ...labelled("mon-kind", "Kind", kind), ...labelled("mon-place", "Place", place));
  root.append(
    h("div.title-row", {}, h("h1", {}, "Monitors"), h("a.button", {href: "#/monitors/new", "data-write": ""}, "New monitor")),
    problems, filters, bulk, report, count,
    h("div.table-wrap", {}, h("table.monitors", {},
      h("caption.sr-only", {}, "Monitors"),
      h("thead", {}, h("tr", {}, h("th", {scope: "col", "data-write": ""}, all),
        ...["Name", "Status", "Kind", "Tags"].map((c) => h("th", {scope: "col"}, c)))),
      body)));
  const gates = gate(root, ctx);

  function visible() {
    const needle = q.value.trim().toLowerCase();
    return monitors.filter((m) => (!needle || m.name.toLowerCase().includes(needle))
      && (!tag.value || m.tags.includes(tag.value)) && (!status.value || m.status === status.value)
      && (!kind.value || m.kind === kind.value) && (!place.value || placeOf(m).includes(place.value)));
  }

  function placeOf(m) {
    return places.get(m.serverId) ?? places.get(m.environmentId) ?? [];
  }

  function render() {
    const shown = visible();
    for (const id of [...chosen]) if (!shown.some((m) => m.id === id)) chosen.delete(id);
    clear(body).append(...shown.map((m) => {
      const box = h("input", {type: "checkbox", "aria-label": `Select ${m.name}`, "data-monitor-id": m.id});
      box.checked = chosen.has(m.id);
      box.addEventListener("change", () => {
        if (box.checked) chosen.add(m.id);
        else chosen.delete(m.id);
        counted();
      });
      return h("tr", {"data-monitor-id": m.id},
        h("td", {"data-write": ""}, box),
        h("th", {scope: "row"}, h("a", {href: `#/monitors/${m.id}`}, m.name),
          m.managedBy === "config" ? h("span.muted", {title: "Declared in the config file; change it there"}, " (config)") : null),
        h("td", {}, badge(m.status)), h("td", {}, m.kind), h("td", {}, m.tags.join(", ")));
    }));
    if (!shown.length) body.append(h("tr", {}, h("td.muted", {colspan: 5}, monitors.length ? "No monitor matches." : "No monitors yet.")));
    count.textContent = `${shown.length} of ${monitors.length} monitors`;
    counted();
    gates.sync();
  }

  function counted() {
    root.querySelector("#bulk-count").textContent = `${chosen.size} selected`;
    const shown = visible();
    all.checked = shown.length > 0 && shown.every((m) => chosen.has(m.id));
    for (const b of bulk.querySelectorAll("button")) b.disabled = chosen.size === 0;
  }

  all.addEventListener("change", () => {
    for (const m of visible()) if (all.checked) chosen.add(m.id); else chosen.delete(m.id);
    render();
  });
  for (const el of [tag, status, kind, place]) el.addEventListener("change", render);
  q.addEventListener("input", debounce(render, 150));

  async function loadTree() {
    const page = await api("/api/clients?limit=500&sort=name&include=projects.environments.servers");
    const options = [h("option", {value: ""}, "Anywhere")];
    for (const c of page.items) {
      options.push(h("option", {value: c.id}, c.name));
      for (const p of c.projects) {
        options.push(h("option", {value: p.id}, `${c.name} / ${p.name}`));
        for (const e of p.environments) {
          places.set(e.id, [c.id, p.id, e.id]);
          options.push(h("option", {value: e.id}, `${c.name} / ${p.name} / ${e.name}`));
          for (const s of e.servers) {
            places.set(s.id, [c.id, p.id, e.id, s.id]);
            options.push(h("option", {value: s.id}, `\u2003${s.name}`));
          }
        }
      }
    }
    const keep = place.value;
    place.replaceChildren(...options);
    place.value = keep;
  }

  async function load() {
    try {
      const [page] = await Promise.all([api("/api/monitors"), loadTree()]);
      monitors = page.items;
      const keep = tag.value;
      const tags = [...new Set(monitors.flatMap((m) => m.tags))].sort();
      tag.replaceChildren(h("option", {value: ""}, "Any tag"), ...tags.map((t) => h("option", {value: t}, t)));
      tag.value = tags.includes(keep) ? keep : "";
      problems.replaceChildren();
      render();
    } catch (err) {
      problems.replaceChildren(errorBox(err));
    }
  }

  async function run(action) {
    const ids = [...chosen];
    const word = tagName.value.trim();
    if ((action === "tag" || action === "untag") && !word) {
      report.replaceChildren(h("p.error", {}, "Type the tag to add first."));
      tagName.focus();
      return;
    }
    if (action === "delete" && await ask(`Delete ${ids.length} monitors?`,
      "They and their history are removed for good.", [{value: "delete", label: `Delete ${ids.length}`, danger: true}]) !== "delete") return;
    report.replaceChildren(h("p.muted", {}, "Working\u2026"));
    const done = [];
    const failed = [];
    const queue = [...ids];
    const one = async (id) => {
      const path = `/api/monitors/${id}`;
      const {data: m, etag} = await api(path, {meta: true});
      if (action === "delete") return write(path, {method: "DELETE", etag, loaded: m});
      const body = action === "tag" ? {tags: [...new Set([...m.tags, word])]}
        : action === "untag" ? {tags: m.tags.filter((t) => t !== word)} : {enabled: action === "resume"};
      return write(path, {method: "PATCH", body, etag, loaded: m});
    };
    await Promise.all(Array.from({length: PARALLEL}, async () => {
      for (let id = queue.shift(); id; id = queue.shift()) {
        const name = monitors.find((m) => m.id === id)?.name ?? id;
        try {
          await one(id);
          done.push(name);
        } catch (err) {
          failed.push(`${name}: ${err.status === 412 ? "changed by someone else \u2014 reload" : err.message}`);
        }
      }
    }));
    const past = {pause: "paused", resume: "resumed", tag: `tagged ${word}`, untag: `untagged ${word}`, delete: "deleted"}[action];
    report.replaceChildren(h("p.notice", {}, `${done.length} ${past}.`),
      ...(failed.length ? [h("ul.error", {}, ...failed.map((f) => h("li", {}, f)))] : []));
    announce(`${done.length} ${past}${failed.length ? `, ${failed.length} refused` : ""}`);
    if (action === "delete") chosen.clear();
    await load();
  }

  const reload = debounce(load, 500);
  await load();
  const unsubscribe = ctx.live.subscribe(["monitors"], (f) => {
    if (f.event === "monitor.status") {
      const m = monitors.find((x) => x.id === f.data.monitorId);
      if (m) {
        m.status = f.data.status;
        render();
      } else reload();
    }
  }, reload);
  return () => {
    unsubscribe();
    gates.stop();
    reload.cancel();
  };
}

function labelled(id, text, input) {
  return [h("label", {for: id}, text), input];
}
