// Boot: signed out, show the sign-in form; signed in, open the live connection and route.

import {UNAUTHORIZED, session} from "./api.js";
import {announce, clear} from "./dom.js";
import {Router} from "./router.js";
import {mountSignIn} from "./signin.js";
import {Live} from "./ws.js";

const ROUTES = [
  {path: "/", title: "Overview", load: () => import("./overview.js")},
  {path: "/inventory", title: "Inventory", load: () => import("./inventory.js")},
  {path: "/inventory/:table/:id", title: "Inventory item", load: () => import("./inventory_form.js")},
  {path: "/monitors", title: "Monitors", load: () => import("./monitors.js")},
  {path: "/monitors/new", title: "New monitor", load: () => import("./monitor_form.js")},
  {path: "/monitors/:id/edit", title: "Edit monitor", load: () => import("./monitor_form.js")},
  {path: "/monitors/:id", title: "Monitor", load: () => import("./monitor.js")},
  {path: "/servers/:id", title: "Server", load: () => import("./server.js")},
  {path: "/incidents", title: "Incidents", load: () => import("./incidents.js")},
  {path: "/maintenance", title: "Maintenance", load: () => import("./maintenance.js")},
  {path: "/maintenance/:id", title: "Maintenance window", load: () => import("./maintenance_form.js")},
  {path: "/notifications", title: "Notifications", load: () => import("./notifications.js")},
  {path: "/notifications/:id", title: "Notification channel", load: () => import("./notification_form.js")},
  {path: "/settings", title: "Settings", load: () => import("./settings.js")},
  {path: "/access", title: "Access", load: () => import("./access.js")},
  {path: "/audit", title: "Audit log", load: () => import("./audit.js")},
  {path: "/secrets", title: "Secrets", load: () => import("./secrets.js")},
  {path: "/assistant", title: "Assistant", load: () => import("./assistant.js")},
];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const bar = document.getElementById("session");
const conn = document.getElementById("conn");
const stale = document.getElementById("stale");
let live = null;
let router = null;
const watchers = new Set(); // pages that re-check role-dependent controls when the socket (re)authenticates

function showConnection({state, detail, role}) {
  const words = {
    connecting: ["\u25cb", "Connecting\u2026"],
    live: ["\u25cf", `Live \u00b7 ${role}`],
    offline: ["\u25cb", `Offline, retrying in ${detail} s`],
    refused: ["\u2716", "Live updates refused"],
  }[state];
  conn.dataset.state = state;
  // The stylesheet hides [data-write] controls until this names a role that may use them, so a
  // page drawn before the socket has said who we are never flashes buttons at a viewer.
  if (role) document.body.dataset.role = role;
  // Only after a connection was live: the first connect of a page load is not "stale".
  stale.hidden = state !== "offline" || !live?.connects;
  conn.textContent = `${words[0]} ${words[1]}`;
  if (state === "refused") signOut(detail);
  for (const fn of [...watchers]) fn(state);
}

function signIn(token) {
  session.set(token);
  start();
}

function signOut(reason) {
  session.clear();
  delete document.body.dataset.role;
  live?.stop();
  router?.stop();
  live = router = null;
  nav.hidden = bar.hidden = stale.hidden = true;
  clear(main);
  if (location.hash !== "#/") history.replaceState(null, "", "#/");
  mountSignIn(main, signIn, reason);
  announce(reason ? `Signed out: ${reason}` : "Signed out");
}

function start() {
  nav.hidden = bar.hidden = false;
  live = new Live(session.token, showConnection);
  live.start();
  const ctx = {live, role: () => live?.role, can, onLive};
  router = new Router(main, ROUTES, ctx);
  router.start();
}

/** Call fn(state) on every connection state change; returns the function that stops it. */
function onLive(fn) {
  watchers.add(fn);
  return () => watchers.delete(fn);
}

/** Whether the signed-in role may do something that needs `least` (viewer < operator < admin). */
function can(least) {
  const order = ["viewer", "operator", "admin"];
  const role = live?.role;
  return role != null && order.indexOf(role) >= order.indexOf(least);
}

window.addEventListener(UNAUTHORIZED, (ev) => {
  if (live) signOut(ev.detail ?? "the token was refused");
});
document.getElementById("signout").addEventListener("click", () => signOut());

if (session.token) start();
else {
  clear(main);
  mountSignIn(main, signIn);
}
