// Gateway: recent requests with their role, model, fallbacks, cache state and latency.
import { api } from "./api.js";
import { h, clear, put, usd, num, when, field, errorBox } from "./ui.js";

const POLL_MS = 3000;

export function gatewayView(root) {
  let disposed = false;
  let timer = null;
  const role = h("input", { type: "text", size: 14, placeholder: "any role" });
  const body = h("tbody", {});
  const note = h("p", { class: "muted", "aria-live": "polite" });
  root.append(h("h1", {}, "Gateway"),
    h("p", { class: "muted" }, "Answers of ", h("code", {}, "/v1/chat/completions"), ", newest first. Point an OpenAI client at ", h("code", {}, `${location.origin}/v1`), "."),
    h("section", { class: "panel", "aria-label": "Gateway requests" },
      h("form", { class: "row", role: "search", "aria-label": "Filter requests", onsubmit: (e) => e.preventDefault() }, field("gw-role", "Role", role)),
      note,
      h("div", { class: "table-wrap" }, h("table", { "aria-label": "Recent gateway requests" },
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "Role"), h("th", { scope: "col" }, "Model"),
          h("th", { scope: "col" }, "Fallbacks"), h("th", { scope: "col" }, "Cache"), h("th", { scope: "col", class: "num" }, "Latency"),
          h("th", { scope: "col", class: "num opt" }, "Tokens"), h("th", { scope: "col", class: "num opt" }, "Cost"), h("th", { scope: "col", class: "opt" }, "Question"))),
        body))));
  const load = async () => {
    clearTimeout(timer);
    try {
      const page = await api("/v1/gateway/requests", { query: { limit: 50, role: role.value.trim() } });
      if (disposed) return;
      clear(body);
      for (const r of page.items) {
        const fallbacks = (r.fallbacks || []).map((f) => `${f.model}${f.error ? ` (${String(f.error).slice(0, 60)})` : ""}`).join(", ");
        body.append(h("tr", { "data-response-id": r.id },
          h("td", {}, h("time", { datetime: r.created_at }, when(r.created_at))),
          h("td", { "data-field": "role" }, r.role),
          h("td", { "data-field": "model" }, r.model || "—", r.auto_tier ? h("span", { class: "muted" }, ` (auto: ${r.auto_tier})`) : null),
          h("td", { "data-field": "fallbacks" }, fallbacks || "—"),
          h("td", { "data-field": "cache" }, r.cache),
          h("td", { class: "num", "data-field": "latency" }, r.latency_ms === null || r.latency_ms === undefined ? "—" : `${Math.round(r.latency_ms)} ms`),
          h("td", { class: "num opt" }, `${num(r.input_tokens)} / ${num(r.output_tokens)}`),
          h("td", { class: "num opt" }, usd(r.cost_usd)),
          h("td", { class: "opt req" }, r.question || "")));
      }
      note.textContent = page.items.length ? "" : "No gateway requests yet.";
    } catch (err) {
      if (!disposed) put(note, errorBox(err));
    }
    if (!disposed) timer = setTimeout(() => (document.hidden ? (timer = setTimeout(load, POLL_MS)) : load()), POLL_MS);
  };
  let typing = null;
  role.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(load, 300); });
  load();
  return { dispose() { disposed = true; clearTimeout(timer); clearTimeout(typing); } };
}
