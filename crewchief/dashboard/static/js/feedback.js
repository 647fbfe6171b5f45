// Feedback: ratings and corrections of operations, tasks and gateway answers, and the summary.
import { api } from "./api.js";
import { h, clear, put, when, field, errorBox } from "./ui.js";

const GROUPS = ["route", "model", "role", "skill", "tier", "kind"];
let by = "route";

export function feedbackView(root) {
  let disposed = false;
  const bySel = h("select", {}, GROUPS.map((g) => h("option", { value: g, selected: g === by }, g)));
  const summary = h("div", { "aria-live": "polite" });
  const list = h("div", {});
  root.append(h("h1", {}, "Feedback"),
    h("section", { class: "panel", "aria-labelledby": "fb-sum" }, h("h2", { id: "fb-sum", style: { marginTop: 0 } }, "Satisfaction"),
      h("div", { class: "row" }, field("fb-by", "Group by", bySel)), summary),
    h("section", { class: "panel", "aria-labelledby": "fb-list" }, h("h2", { id: "fb-list", style: { marginTop: 0 } }, "Ratings"), list));
  const pct = (v) => (v === null || v === undefined ? "—" : `${Math.round(v * 100)}%`);
  const load = async () => {
    try {
      const [sum, items] = await Promise.all([api("/v1/feedback/summary", { query: { by } }), api("/v1/feedback", { query: { limit: 100 } })]);
      if (disposed) return;
      const s = sum.simplicity || {};
      put(summary, 
        h("p", {}, `${sum.totals.count} ratings · ${pct(sum.totals.positive_share)} positive · ${sum.totals.corrections} corrections`),
        h("div", { class: "table-wrap" }, h("table", { "aria-label": `Ratings by ${by}` },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, by), h("th", { scope: "col", class: "num" }, "Ratings"), h("th", { scope: "col", class: "num" }, "Mean"), h("th", { scope: "col", class: "num" }, "Positive"), h("th", { scope: "col", class: "num" }, "Corrections"))),
          h("tbody", {}, sum.rows.map((r) => h("tr", {}, h("td", {}, r.group ?? "—"), h("td", { class: "num" }, String(r.count)), h("td", { class: "num" }, r.mean_score === null ? "—" : r.mean_score.toFixed(2)), h("td", { class: "num" }, pct(r.positive_share)), h("td", { class: "num" }, String(r.corrections))))))),
        h("p", { class: "muted" }, `Fast path ${pct(s.by_path && s.by_path.fast.positive_share)} positive (${s.by_path ? s.by_path.fast.count : 0}) · planned ${pct(s.by_path && s.by_path.planned.positive_share)} positive (${s.by_path ? s.by_path.planned.count : 0})`
          + (s.correlation === null || s.correlation === undefined ? "" : ` · correlation with the simplicity score r = ${s.correlation.toFixed(2)}`)));
      put(list, items.length ? h("div", { class: "table-wrap" }, h("table", { "aria-label": "Ratings" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "Of"), h("th", { scope: "col" }, "Rating"), h("th", { scope: "col" }, "Model"), h("th", { scope: "col" }, "Correction or comment"))),
        h("tbody", {}, items.map((f) => h("tr", { "data-feedback-id": f.id },
          h("td", {}, when(f.updated_at || f.created_at)),
          h("td", {}, target(f)),
          h("td", {}, f.thumb ? (f.thumb === "up" ? "good (thumb up)" : "bad (thumb down)") : `${f.stars} of 5 stars`),
          h("td", {}, f.model || "—"),
          h("td", { class: "req" }, f.correction ? h("pre", {}, f.correction) : f.comment || "")))))) : h("p", { class: "muted" }, "No ratings yet. Rate an operation's answer or a task on its page."));
    } catch (err) {
      if (!disposed) put(summary, errorBox(err));
    }
  };
  bySel.addEventListener("change", () => { by = bySel.value; load(); });
  load();
  return { dispose() { disposed = true; } };
}

function target(f) {
  if (f.target === "response") return h("span", {}, "gateway answer ", h("code", {}, f.response_id));
  const link = h("a", { href: `#/operations/${encodeURIComponent(f.operation_id)}` }, f.operation_id.slice(0, 8));
  return f.target === "task" ? h("span", {}, `task ${f.task} v${f.task_version} of `, link) : h("span", {}, "operation ", link);
}
