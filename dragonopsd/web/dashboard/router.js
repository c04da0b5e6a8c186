// Hash router: "#/monitors/<id>" picks a page, mounts it into <main>, and unmounts the last
// one (its cleanup unsubscribes its topics). Hashes that do not start with "#/" (the skip link's
// "#main") are in-page anchors and leave the page alone.

import {clear, errorBox, h} from "./dom.js";

export class Router {
  /** routes: [{path: "/monitors/:id", title, load: () => import("./monitor.js")}]. */
  constructor(root, routes, ctx) {
    this.root = root;
    this.routes = routes.map((r) => ({...r, re: compile(r.path)}));
    this.ctx = ctx;
    this.cleanup = null;
    this.serial = 0;
    this.onHash = () => this.render();
  }

  start() {
    window.addEventListener("hashchange", this.onHash);
    this.render();
  }

  stop() {
    window.removeEventListener("hashchange", this.onHash);
    this.unmount();
  }

  unmount() {
    try {
      this.cleanup?.();
    } catch (err) {
      console.error("page cleanup failed", err);
    }
    this.cleanup = null;
  }

  async render() {
    const hash = location.hash || "#/";
    if (!hash.startsWith("#/")) return;
    const path = hash.slice(1).split("?")[0];
    const serial = ++this.serial;
    this.unmount();
    clear(this.root);
    let route = null;
    let params = {};
    for (const r of this.routes) {
      const m = r.re.exec(path);
      if (m) {
        route = r;
        params = m.groups ?? {};
        break;
      }
    }
    markNav(path);
    if (!route) {
      document.title = "Not found \u00b7 dragonopsd";
      this.root.append(h("h1", {}, "Not found"), h("p", {}, "No page at ", h("code", {}, path), ". ",
        h("a", {href: "#/"}, "Back to the overview"), "."));
      return;
    }
    document.title = `${route.title} \u00b7 dragonopsd`;
    try {
      const page = await route.load();
      if (serial !== this.serial) return; // the user moved on while the module loaded
      const cleanup = await page.mount(this.root, params, this.ctx);
      if (serial !== this.serial) {
        cleanup?.();
        return;
      }
      this.cleanup = cleanup ?? null;
    } catch (err) {
      if (serial !== this.serial) return;
      console.error(err);
      this.root.append(errorBox(err));
    }
    // After an in-app navigation, move focus to the new page's heading so screen readers read
    // it; not on the first page, where focus belongs at the top (the skip link comes first).
    const heading = this.root.querySelector("h1");
    if (heading && serial === this.serial && serial > 1) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({preventScroll: true});
    }
  }
}

function compile(path) {
  const source = path.replace(/:([a-zA-Z]+)/g, "(?<$1>[^/]+)");
  return new RegExp(`^${source}$`);
}

function markNav(path) {
  const section = `/${path.split("/")[1] ?? ""}`;
  for (const link of document.querySelectorAll("#nav a")) {
    const target = link.getAttribute("href").slice(1);
    const current = target === "/" ? path === "/" : section === target || path.startsWith(`${target}/`);
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}
