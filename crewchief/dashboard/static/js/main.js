// The dashboard's shell: the key gate, the hash router and the views.
import { api, auth, ApiError } from "./api.js";
import { h, clear, put, field } from "./ui.js";
import { operationsView } from "./operations.js";
import { operationView } from "./operation.js";
import { usageView } from "./usage.js";
import { gatewayView } from "./gateway.js";
import { feedbackView } from "./feedback.js";

window.__crewchiefMetrics = [];

const main = document.getElementById("main");
const forget = document.getElementById("forget-key");
let current = null; // the view on screen: { dispose() }
let gated = false;

function route() {
  const hash = location.hash.replace(/^#\/?/, "") || "operations";
  const [section, id] = hash.split("/");
  return { section, id: id ? decodeURIComponent(id) : null };
}

function markNav(section) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

let renders = 0;

async function render() {
  if (gated) return;
  if (current && current.dispose) current.dispose();
  current = null;
  const token = ++renders;
  const { section, id } = route();
  markNav(section);
  clear(main);
  // Each view draws into a box of its own: a view still loading when the reader moves on
  // is dropped with its box instead of drawing over the next one.
  const box = h("div", {});
  main.append(box);
  const views = {
    operations: () => (id ? operationView(box, id) : operationsView(box)),
    usage: () => usageView(box),
    gateway: () => gatewayView(box),
    feedback: () => feedbackView(box),
  };
  const view = views[section] || views.operations;
  const titles = { operations: id ? "Operation" : "Operations", usage: "Usage", gateway: "Gateway", feedback: "Feedback" };
  document.title = `${titles[section] || "Operations"} · crewchief`;
  const made = await view();
  if (token !== renders) {
    if (made && made.dispose) made.dispose();
    box.remove();
    return;
  }
  current = made;
  if (window.__crewchiefLoaded === undefined) window.__crewchiefLoaded = performance.now();
}

function showGate(message) {
  gated = true;
  renders += 1; // a view still loading is dropped
  if (current && current.dispose) current.dispose();
  current = null;
  clear(main);
  const input = h("input", { type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const error = h("p", { class: "error", role: "alert", hidden: !message }, message || "");
  const form = h(
    "form",
    { id: "key-form", class: "panel key-gate" },
    h("h1", {}, "Sign in with an API key"),
    h("p", { class: "muted" }, "Keys are made with ", h("code", {}, "crewchief keys create"),
      ". The key stays in this tab (session storage) and is sent only to this server."),
    field("api-key", "API key", input),
    error,
    h("p", {}, h("button", { type: "submit" }, "Use key")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    auth.key = input.value.trim();
    try {
      await api("/v1/operations", { query: { limit: 1 } });
    } catch (err) {
      auth.key = null;
      error.textContent = err instanceof ApiError && err.status === 401
        ? "That key was not accepted. Check it and try again."
        : `The server answered: ${err.message}`;
      error.hidden = false;
      input.focus();
      return;
    }
    gated = false;
    forget.hidden = false;
    render();
  });
  main.append(form);
  input.focus();
}

auth.onUnauthorized = () => {
  if (gated) return;
  const had = Boolean(auth.key);
  auth.key = null;
  forget.hidden = true;
  showGate(had ? "The key was refused (revoked or wrong); enter another." : "");
};

forget.addEventListener("click", () => {
  auth.key = null;
  forget.hidden = true;
  showGate("");
});

window.addEventListener("hashchange", () => { render(); main.focus({ preventScroll: true }); });

async function boot() {
  try {
    await api("/v1/operations", { query: { limit: 1 } });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return; // the gate is showing
    put(main, h("p", { class: "error", role: "alert" }, `The API is not answering: ${err.message}`));
    return;
  }
  forget.hidden = !auth.key;
  render();
}

boot();
