// The operations list: start one, filter, search; new operations and status changes appear live.
import { api } from "./api.js";
import { h, clear, put, badge, usd, when, field, toast, errorBox } from "./ui.js";

const STATUSES = ["running", "awaiting_approval", "completed", "failed", "cancelled", "rejected"];
const POLL_MS = 2000;
const saved = { status: "", route: "", key: "", since: "", until: "", q: "" };

export function operationsView(root) {
  let timer = null;
  let disposed = false;
  let older = []; // rows of pages loaded with "Older operations"
  let cursor = null;

  const request = h("textarea", { required: true, rows: 3, placeholder: "What should be done?" });
  const routeSel = h("select", {},
    h("option", { value: "" }, "decide automatically"),
    h("option", { value: "fast" }, "fast path"),
    h("option", { value: "plan" }, "plan"));
  const approve = h("input", { type: "checkbox", id: "new-approve" });
  const workspace = h("input", { type: "text", placeholder: "optional, under the server's workspace roots", size: 34 });
  const startError = h("p", { class: "error", role: "alert", hidden: true });
  const form = h("form", { class: "panel", "data-testid": "new-operation", "aria-labelledby": "new-op-title" },
    h("h2", { id: "new-op-title", style: { marginTop: 0 } }, "Start an operation"),
    field("new-request", "Request", request),
    h("div", { class: "row", style: { marginTop: ".5rem" } },
      field("new-route", "Route", routeSel),
      field("new-workspace", "Workspace", workspace),
      h("div", { class: "field" },
        h("label", { for: "new-approve", style: { color: "inherit", fontSize: "inherit" } }, approve, " Approve the plan before it runs")),
      h("button", { type: "submit" }, "Start")),
    startError);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    startError.hidden = true;
    const body = { request: request.value, approve_plan: approve.checked };
    if (routeSel.value) body.route = routeSel.value;
    if (workspace.value.trim()) body.workspace = workspace.value.trim();
    try {
      const accepted = await api("/v1/operations", { method: "POST", body });
      location.hash = `#/operations/${encodeURIComponent(accepted.id)}`;
    } catch (err) {
      startError.textContent = err.message;
      startError.hidden = false;
    }
  });

  const controls = {
    status: h("select", {}, h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s }, s.replace("_", " ")))),
    route: h("select", {}, h("option", { value: "" }, "any"), h("option", { value: "fast" }, "fast"), h("option", { value: "plan" }, "plan")),
    key: h("input", { type: "text", size: 12, placeholder: "key id" }),
    since: h("input", { type: "date" }),
    until: h("input", { type: "date" }),
    q: h("input", { type: "search", placeholder: "text or id", size: 20 }),
  };
  for (const [name, el] of Object.entries(controls)) el.value = saved[name];
  const filters = h("form", { class: "row", role: "search", "aria-label": "Filter operations" },
    field("filter-status", "Status", controls.status),
    field("filter-route", "Route", controls.route),
    field("filter-key", "API key", controls.key),
    field("filter-since", "From", controls.since),
    field("filter-until", "To", controls.until),
    field("filter-q", "Search", controls.q));
  filters.addEventListener("submit", (ev) => ev.preventDefault());
  let typing = null;
  const changed = () => {
    for (const [name, el] of Object.entries(controls)) saved[name] = el.value.trim();
    older = [];
    cursor = null;
    clearTimeout(typing);
    typing = setTimeout(refresh, 250);
  };
  for (const el of Object.values(controls)) {
    el.addEventListener("change", changed);
    if (el.tagName === "INPUT") el.addEventListener("input", changed);
  }

  const body = h("tbody", {});
  const status = h("p", { class: "muted", "aria-live": "polite" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Older operations");
  const table = h("div", { class: "table-wrap" }, h("table", { "aria-label": "Operations" },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Request"), h("th", { scope: "col" }, "Status"),
      h("th", { scope: "col" }, "Route"), h("th", { scope: "col", class: "num opt" }, "Tasks"),
      h("th", { scope: "col", class: "num opt" }, "Cost"), h("th", { scope: "col", class: "opt" }, "Key"),
      h("th", { scope: "col" }, "Started"))),
    body));
  root.append(h("h1", {}, "Operations"), form,
    h("section", { class: "panel", "aria-label": "Operations list" }, filters, status, table, more));

  function query(extra = {}) {
    const q = { limit: 30, ...extra };
    for (const [name, value] of Object.entries(saved)) if (value) q[name] = value;
    return q;
  }

  function row(op) {
    const link = h("a", { href: `#/operations/${encodeURIComponent(op.id)}` }, op.request.length > 160 ? `${op.request.slice(0, 160)}…` : op.request);
    return h("tr", { "data-op-id": op.id },
      h("td", { class: "req" }, link),
      h("td", { "data-field": "status" }, badge(op.status)),
      h("td", { "data-field": "route" }, op.route || "—"),
      h("td", { class: "num opt" }, String(op.tasks ?? 0)),
      h("td", { class: "num opt" }, op.cost_usd === undefined ? "" : usd(op.cost_usd)),
      h("td", { class: "opt" }, op.api_key_id ? h("code", {}, op.api_key_id) : "—"),
      h("td", {}, h("time", { datetime: op.created_at }, when(op.created_at))));
  }

  function draw(items) {
    // Rows are replaced only when they changed, so focus and selection survive a poll.
    const seen = new Set();
    let anchor = null;
    for (const op of items) {
      seen.add(op.id);
      const fresh = row(op);
      const old = body.querySelector(`tr[data-op-id="${CSS.escape(op.id)}"]`);
      if (old && old.textContent === fresh.textContent) {
        if (anchor ? anchor.nextSibling !== old : body.firstChild !== old) body.insertBefore(old, anchor ? anchor.nextSibling : body.firstChild);
        anchor = old;
        continue;
      }
      if (old) old.remove();
      body.insertBefore(fresh, anchor ? anchor.nextSibling : body.firstChild);
      anchor = fresh;
    }
    for (const tr of [...body.children]) if (!seen.has(tr.dataset.opId)) tr.remove();
    status.textContent = items.length ? "" : "No operations match.";
  }

  async function refresh() {
    if (disposed) return;
    clearTimeout(timer);
    try {
      const page = await api("/v1/operations", { query: query() });
      if (disposed) return;
      if (!older.length) cursor = page.next_cursor;
      const first = new Set(page.items.map((o) => o.id));
      draw([...page.items, ...older.filter((o) => !first.has(o.id))]);
      more.hidden = !cursor;
    } catch (err) {
      if (disposed) return;
      put(status, errorBox(err));
    }
    if (!disposed) timer = setTimeout(poll, POLL_MS);
  }

  function poll() {
    if (document.hidden) { timer = setTimeout(poll, POLL_MS); return; }
    refresh();
  }

  more.addEventListener("click", async () => {
    try {
      const page = await api("/v1/operations", { query: query({ cursor }) });
      older = older.concat(page.items);
      cursor = page.next_cursor;
      more.hidden = !cursor;
      refresh();
    } catch (err) {
      toast(err.message, true);
    }
  });

  refresh();
  return {
    dispose() { disposed = true; clearTimeout(timer); clearTimeout(typing); },
  };
}
