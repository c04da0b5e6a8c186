// Sign-in: paste an API token (dro_…) or a Supabase JWT. It is checked with one API call and
// then kept in sessionStorage for this tab only.

import {api} from "./api.js";
import {errorBox, h} from "./dom.js";

export function mountSignIn(root, onSignedIn, reason) {
  document.title = "Sign in \u00b7 dragonopsd";
  const input = h("textarea", {id: "token", name: "token", rows: 3, required: true,
    autocomplete: "off", spellcheck: "false", "aria-describedby": "token-help"});
  const status = h("div", {"aria-live": "assertive"});
  const button = h("button.primary", {type: "submit"}, "Sign in");
  const form = h("form.signin", {on: {submit: async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    status.replaceChildren();
    if (!token) {
      status.append(errorBox("Paste a token first."));
      input.focus();
      return;
    }
    button.disabled = true;
    try {
      await api("/api/stats/dashboard", {token});
      onSignedIn(token);
    } catch (err) {
      status.append(errorBox(err.status === 401 ? `Not accepted: ${err.message}` : err));
      input.focus();
    } finally {
      button.disabled = false;
    }
  }}},
  h("label", {for: "token"}, "API token or Supabase JWT"),
  input,
  h("p.help", {id: "token-help"}, "The daemon wrote an admin token to ", h("code", {}, "admin.token"),
    " in its state directory on first start; ", h("code", {}, "dragonopsd token create"),
    " makes more. It stays in this tab only (sessionStorage) and is sent as a Bearer token."),
  button,
  status);
  root.append(...[h("h1", {}, "Sign in"),
    reason ? h("p.notice", {role: "status"}, `Signed out: ${reason}`) : null,
    form,
    h("p", {}, "Looking for the public status? ", h("a", {href: "/status"}, "Open the status page"), ".")].filter(Boolean));
  input.focus();
}
