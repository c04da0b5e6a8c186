// Assistant: a prompt goes to POST /api/ai/generate ({prompt} -> {code, language, filename,
// explanation, source, warnings}); the answer shows as a code block with a copy button.

import {api} from "./api.js";
import {announce, clear, copy, errorBox, h} from "./dom.js";

const EXAMPLES = [
  "nginx reverse proxy for the portal with TLS",
  "Dockerfile for a Django app",
  "GitHub Actions workflow that runs pytest",
  "systemd unit for a Node.js service",
];

export async function mount(root, _params, ctx) {
  const prompt = h("textarea", {id: "prompt", rows: 4, maxlength: 4000, required: true,
    "aria-describedby": "prompt-help"});
  const submit = h("button.primary", {type: "submit"}, "Generate");
  const answer = h("div.answer", {"aria-live": "polite"});
  const enable = () => {
    submit.disabled = !ctx.can("operator");
    submit.title = submit.disabled ? "Needs the operator role" : "";
  };

  async function ask(ev) {
    ev.preventDefault();
    const text = prompt.value.trim();
    if (!text) return;
    submit.disabled = true;
    answer.replaceChildren(h("p.muted", {}, "Thinking\u2026"), h("progress", {"aria-label": "Generating"}));
    try {
      render(await api("/api/ai/generate", {method: "POST", body: {prompt: text}}));
    } catch (err) {
      answer.replaceChildren(errorBox(err.status === 404 ? "The assistant is not available on this daemon." : err));
    } finally {
      enable();
    }
  }

  function render(r) {
    const code = h("code", {"data-language": r.language ?? ""}, r.code ?? "");
    const copyButton = h("button", {type: "button", on: {click: async () => {
      const ok = await copy(code.textContent);
      copyButton.textContent = ok ? "Copied" : "Copy failed";
      announce(ok ? "Code copied" : "Copy failed; select the text instead");
      setTimeout(() => (copyButton.textContent = "Copy"), 2000);
    }}}, "Copy");
    clear(answer).append(...[
      r.explanation ? h("p", {}, r.explanation) : null,
      h("figure.code", {},
        h("figcaption", {}, h("span", {}, r.filename || r.language || "code"), copyButton),
        h("pre", {tabindex: "0"}, code)),
      r.warnings?.length ? h("ul.warnings", {}, ...r.warnings.map((w) => h("li", {}, "\u26a0 ", w))) : null,
      h("p.muted", {}, r.source === "llm" ? "Written by the language model" : "From a built-in template",
        r.target ? ` (${r.target})` : "", ". Review before use."),
    ].filter(Boolean));
  }

  root.append(h("h1", {}, "Assistant"),
    h("form.ask", {on: {submit: ask}},
      h("label", {for: "prompt"}, "What do you need?"),
      prompt,
      h("p.help", {id: "prompt-help"}, "Describe a config file, script or pipeline. Secrets are never sent to the model."),
      h("div.examples", {}, h("span.muted", {}, "Try: "), ...EXAMPLES.map((e) =>
        h("button.link", {type: "button", on: {click: () => {
          prompt.value = e;
          prompt.focus();
        }}}, e))),
      submit),
    answer);
  enable();
  return ctx.onLive(enable);
}
