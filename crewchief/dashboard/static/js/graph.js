// The plan as a dependency graph (SVG): a column per dependency depth, edges from each
// task to the tasks that need it. Nodes carry data-task and data-status for styling.
import { h } from "./ui.js";

const W = 220;
const H = 54;
const GAP_X = 56;
const GAP_Y = 18;

export function layers(tasks) {
  const bySeq = new Map(tasks.map((t) => [t.sequence, t]));
  const depth = new Map();
  const visit = (t, stack = new Set()) => {
    if (depth.has(t.sequence)) return depth.get(t.sequence);
    if (stack.has(t.sequence)) return 0; // a cycle cannot be planned; draw it anyway
    stack.add(t.sequence);
    let d = 0;
    for (const dep of t.depends_on || []) {
      const parent = bySeq.get(dep);
      if (parent) d = Math.max(d, visit(parent, stack) + 1);
    }
    depth.set(t.sequence, d);
    return d;
  };
  tasks.forEach((t) => visit(t));
  return depth;
}

function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

export function planGraph(tasks, { onSelect } = {}) {
  const depth = layers(tasks);
  const columns = [];
  for (const t of [...tasks].sort((a, b) => a.sequence - b.sequence)) {
    const d = depth.get(t.sequence) || 0;
    (columns[d] ||= []).push(t);
  }
  // Each column after the first is ordered by the mean row of its tasks' dependencies, so
  // edges run as straight as they can.
  const row = new Map();
  columns.forEach((col, d) => {
    if (d > 0) {
      const mean = (t) => {
        const rows = (t.depends_on || []).filter((x) => row.has(x)).map((x) => row.get(x));
        return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : 0;
      };
      col.sort((a, b) => mean(a) - mean(b) || a.sequence - b.sequence);
    }
    col.forEach((t, i) => row.set(t.sequence, i));
  });
  const pos = new Map();
  columns.forEach((col, d) => col.forEach((t, i) => pos.set(t.sequence, { x: 8 + d * (W + GAP_X), y: 8 + i * (H + GAP_Y) })));
  const width = 16 + columns.length * (W + GAP_X) - GAP_X;
  // The gap under the last row too: an edge that skips a column may run along it.
  const height = 16 + Math.max(1, ...columns.map((c) => c.length)) * (H + GAP_Y);
  const svg = h("svg:svg", {
    class: "plan-graph", "data-testid": "plan-graph", width, height, viewBox: `0 0 ${width} ${height}`,
    role: "group", "aria-label": `Plan graph: ${tasks.length} tasks`,
  });
  const defs = h("svg:defs", {}, h("svg:marker", { id: "arrow", viewBox: "0 0 8 8", refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto" },
    h("svg:path", { d: "M0,0 L8,4 L0,8 z", fill: "currentColor", class: "muted" })));
  svg.append(defs);
  for (const t of tasks) {
    for (const dep of t.depends_on || []) {
      const a = pos.get(dep);
      const b = pos.get(t.sequence);
      if (!a || !b) continue;
      const x1 = a.x + W; const y1 = a.y + H / 2; const x2 = b.x - 2; const y2 = b.y + H / 2;
      let d;
      if (b.x - a.x <= W + GAP_X) {
        const mid = (x1 + x2) / 2;
        d = `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
      } else {
        // Past the columns in between, along the gap under the row it leaves from: no node
        // sits in a gap, so the edge crosses none.
        const lane = a.y + H + GAP_Y / 2;
        const xa = x1 + GAP_X / 2; const xb = x2 - GAP_X / 2;
        d = `M${x1},${y1} C${xa},${y1} ${x1},${lane} ${xa},${lane} L${xb},${lane} C${x2},${lane} ${xb},${y2} ${x2},${y2}`;
      }
      svg.append(h("svg:path", { class: "edge", d, "marker-end": "url(#arrow)", "data-edge": `${dep}-${t.sequence}` }));
    }
  }
  for (const t of tasks) {
    const p = pos.get(t.sequence);
    const status = t.status || "pending";
    const second = status === "in_progress" ? t.active_form : status.replace("_", " ");
    const label = `Task ${t.sequence}: ${t.description}. ${status.replace("_", " ")}`;
    const node = h("svg:g", {
      class: "node", "data-task": t.sequence, "data-status": status, tabindex: 0, role: "button",
      "aria-label": label, transform: `translate(${p.x},${p.y})`,
    },
    h("svg:title", {}, label),
    h("svg:rect", { width: W, height: H, rx: 8 }),
    h("svg:text", { x: 10, y: 21, "font-weight": 600 }, clip(`${t.sequence}. ${t.description}`, 28)),
    h("svg:text", { x: 10, y: 40 }, clip(second || "", 32)));
    if (onSelect) {
      node.addEventListener("click", () => onSelect(t.sequence));
      node.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); onSelect(t.sequence); }
      });
    }
    svg.append(node);
  }
  return svg;
}
