// Usage: cost and tokens over time by model, role and key; budgets; routing share.
import { api } from "./api.js";
import { h, clear, put, usd, num, when, field, errorBox } from "./ui.js";

const PERIODS = [["24h", "Last 24 hours"], ["7d", "Last 7 days"], ["30d", "Last 30 days"], ["90d", "Last 90 days"]];
let period = "7d";
let metric = "cost";

export function usageView(root) {
  let disposed = false;
  const select = h("select", {}, PERIODS.map(([v, t]) => h("option", { value: v, selected: v === period }, t)));
  const metricSel = h("select", {}, h("option", { value: "cost", selected: metric === "cost" }, "cost (US$)"), h("option", { value: "tokens", selected: metric === "tokens" }, "tokens"));
  const body = h("div", { "aria-live": "polite" });
  root.append(h("h1", {}, "Usage"),
    h("div", { class: "row panel" }, field("usage-period", "Period", select), field("usage-metric", "Measure", metricSel)),
    body);
  const load = async () => {
    const since = period;
    try {
      const [totals, byDay, byModel, byRole, byKey, stats, budgets] = await Promise.all([
        api("/v1/usage", { query: { since } }),
        api("/v1/usage", { query: { since, group_by: "day" } }),
        api("/v1/usage", { query: { since, group_by: "model" } }),
        api("/v1/usage", { query: { since, group_by: "role" } }),
        api("/v1/usage", { query: { since, group_by: "key" } }),
        api("/v1/operations/stats", { query: { since } }).catch(() => null),
        api("/v1/budgets").catch(() => null),
      ]);
      if (disposed) return;
      const value = (r) => (metric === "cost" ? r.cost_usd : r.input_tokens + r.output_tokens);
      const fmt = (v) => (metric === "cost" ? usd(v) : num(v));
      const t = totals.totals;
      put(body, 
        h("section", { class: "grid", "aria-label": "Totals" },
          stat("Cost", usd(t.cost_usd), t.unpriced_calls ? `${num(t.unpriced_calls)} unpriced calls count $0` : "", "usage-cost"),
          stat("Tokens", num(t.input_tokens + t.output_tokens), `${num(t.input_tokens)} in (${num(t.cached_input_tokens)} cached) · ${num(t.output_tokens)} out`, "usage-tokens"),
          stat("Model calls", num(t.calls), t.failed_calls ? `${num(t.failed_calls)} failed` : "none failed", "usage-calls"),
          stats ? routing(stats) : null),
        h("section", { class: "panel", "aria-labelledby": "over-time" }, h("h2", { id: "over-time", style: { marginTop: 0 } }, `${metric === "cost" ? "Cost" : "Tokens"} by day`),
          dayChart(byDay.rows, value, fmt)),
        h("div", { class: "grid" },
          breakdown("By model", byModel.rows, "model", value, fmt),
          breakdown("By role", byRole.rows, "role", value, fmt, "operations"),
          breakdown("By API key", byKey.rows, "key", value, fmt, "no key")),
        budgets ? budgetPanel(budgets) : null,
        h("p", { class: "muted" }, `Prices as of ${totals.prices_as_of || "—"}; a call's cost is what its provider stated, else its tokens at the price table's prices.`));
    } catch (err) {
      if (!disposed) put(body, errorBox(err));
    }
  };
  select.addEventListener("change", () => { period = select.value; load(); });
  metricSel.addEventListener("change", () => { metric = metricSel.value; load(); });
  load();
  return { dispose() { disposed = true; } };
}

function stat(title, value, note, testid) {
  return h("div", { class: "panel", "data-testid": testid }, h("h2", { style: { marginTop: 0 } }, title),
    h("p", { style: { fontSize: "1.6rem", margin: ".2rem 0" } }, value), note ? h("p", { class: "muted", style: { margin: 0 } }, note) : null);
}

function routing(stats) {
  const fast = stats.by_route.fast || 0;
  const plan = stats.by_route.plan || 0;
  const all = fast + plan;
  const share = all ? Math.round((fast / all) * 100) : 0;
  return h("div", { class: "panel", "data-testid": "routing-share" }, h("h2", { style: { marginTop: 0 } }, "Routing"),
    h("p", { style: { fontSize: "1.6rem", margin: ".2rem 0" } }, all ? `${share}% fast` : "—"),
    h("div", { class: "meter", role: "img", "aria-label": `${fast} fast, ${plan} planned` }, h("span", { style: { width: `${share}%` } })),
    h("p", { class: "muted", style: { margin: ".3rem 0 0" } }, `${num(fast)} fast path · ${num(plan)} planned · ${num(stats.total)} operations`));
}

function dayChart(rows, value, fmt) {
  if (!rows.length) return h("p", { class: "muted" }, "No model calls in this period.");
  const days = rows.map((r) => ({ day: String(r.group.day), v: value(r) })).sort((a, b) => a.day.localeCompare(b.day));
  if (days.every((d) => d.v === 0)) {
    return h("p", { class: "muted" }, metric === "cost"
      ? "Every call in this period cost $0 (local, fake or unpriced models): measure tokens instead."
      : "No tokens in this period.");
  }
  const max = Math.max(...days.map((d) => d.v));
  const W = 640; const H = 160; const bw = Math.min(48, (W - 20) / days.length - 4);
  const svg = h("svg:svg", { class: "chart", viewBox: `0 0 ${W} ${H + 24}`, role: "img",
    "aria-label": days.map((d) => `${d.day}: ${fmt(d.v)}`).join("; ") });
  days.forEach((d, i) => {
    const bh = Math.max(1, (d.v / max) * H);
    const x = 10 + i * ((W - 20) / days.length);
    svg.append(h("svg:rect", { class: "b", x, y: H - bh, width: bw, height: bh }, h("svg:title", {}, `${d.day}: ${fmt(d.v)}`)));
    if (days.length <= 14 || i % Math.ceil(days.length / 10) === 0) svg.append(h("svg:text", { x, y: H + 16 }, d.day.slice(5)));
  });
  const table = h("details", {}, h("summary", {}, "As a table"), h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Day"), h("th", { scope: "col", class: "num" }, "Value"))),
    h("tbody", {}, days.map((d) => h("tr", {}, h("td", {}, d.day), h("td", { class: "num" }, fmt(d.v)))))));
  return h("div", {}, svg, table);
}

function breakdown(title, rows, group, value, fmt, nullName = "none") {
  const items = rows.map((r) => ({ name: r.group[group] ?? nullName, v: value(r), r })).sort((a, b) => b.v - a.v).slice(0, 12);
  const max = Math.max(...items.map((i) => i.v), 1e-12);
  return h("section", { class: "panel", "aria-label": title, "data-testid": `usage-by-${group}` }, h("h2", { style: { marginTop: 0 } }, title),
    items.length ? h("div", { class: "bars" }, items.map((i) => h("div", { class: "hbar" },
      h("span", { class: "name", title: String(i.name) }, String(i.name)),
      h("div", { "aria-hidden": "true" }, h("div", { class: "fill", style: { width: `${(i.v / max) * 100}%` } })),
      h("span", {}, `${fmt(i.v)} · ${num(i.r.calls)} calls`)))) : h("p", { class: "muted" }, "Nothing yet."));
}

function budgetPanel(report) {
  const counters = report.counters || [];
  const rows = counters.map((c) => {
    const usdUnit = c.unit === "usd";
    const limit = usdUnit ? c.limit_usd : c.limit_count;
    const spent = usdUnit ? c.spent_usd : c.spent_count;
    const held = usdUnit ? c.held_usd : c.held_count;
    const share = limit > 0 ? Math.min(1, (spent + held) / limit) : 1;
    const cls = share >= 1 ? "meter over" : share >= 0.8 ? "meter warn" : "meter";
    const show = (v) => (usdUnit ? usd(v) : num(v));
    const name = `${c.scope} ${c.subject || "(no key)"} · ${c.period}${usdUnit ? "" : ` ${c.unit}`}`;
    return h("div", { class: "field", style: { marginBottom: ".6rem" }, "data-testid": "budget" },
      h("div", {}, h("strong", {}, name), h("span", { class: "muted" }, ` · ${c.enforcement}, ${c.on_exceed} · from ${c.source} · resets ${when(c.resets_at)}`)),
      h("div", { class: cls, role: "meter", "aria-valuemin": 0, "aria-valuemax": limit, "aria-valuenow": Math.min(spent + held, limit), "aria-label": `${name}: ${show(spent)} spent of ${show(limit)}` },
        h("span", { style: { width: `${share * 100}%` } })),
      h("small", {}, `${show(spent)} spent${held ? `, ${show(held)} held by calls under way` : ""} of ${show(limit)} · ${show(usdUnit ? c.remaining_usd : c.remaining_count)} left`));
  });
  return h("section", { class: "panel", "aria-labelledby": "budgets-h" }, h("h2", { id: "budgets-h", style: { marginTop: 0 } }, "Budgets"),
    h("p", { class: "muted" }, report.plan ? `Plan: ${report.plan}` : "No plan."),
    rows.length ? rows : h("p", { class: "muted" }, "No budget limits this key or its owner."));
}
