// One operation: route decision, plan graph, timeline, tasks, answer, events; steering.
import { api, EventStream } from "./api.js";
import { h, clear, put, badge, usd, num, when, seconds, toast, errorBox, throttle } from "./ui.js";
import { planGraph } from "./graph.js";

const ENDED = new Set(["completed", "failed", "cancelled", "rejected"]);
const DONE = new Set(["completed", "failed", "cancelled"]);
const TERMINAL = new Set(["operation.completed", "operation.failed", "operation.cancelled", "operation.rejected"]);
const DIFF_LIMIT = 400; // lines of a diff drawn; the rest is counted

export async function operationView(root, id) {
  let op;
  try {
    op = await api(`/v1/operations/${encodeURIComponent(id)}`, { query: { events: true } });
  } catch (err) {
    root.append(h("h1", {}, "Operation"), errorBox(err), h("p", {}, h("a", { href: "#/operations" }, "Back to operations")));
    return { dispose() {} };
  }
  const view = new OperationView(root, op);
  view.start();
  return view;
}

class OperationView {
  constructor(root, op) {
    this.root = root;
    this.op = op;
    this.events = [];
    this.tools = new Map(); // "seq:version" -> tool calls
    this.versions = new Map(); // seq -> version now running
    this.live = new Map(); // seq (or "answer") -> streamed text
    this.panels = new Map(); // seq -> { el, parts }
    this.selected = null;
    this.graphKey = null;
    this.disposed = false;
    this.reviewRound = null;
    this.dirty = new Set(); // tasks to redraw
    this.dirtyAll = true;
    this.routeDirty = true;
    this.drawnStatus = null;
    this.marks = []; // metrics of events not yet on screen
    this.frame = null;
    this.refetch = throttle(() => this.reload(), 600);
    this.build();
    for (const ev of op.events || []) this.record(ev, false);
    this.last = this.events.length ? this.events[this.events.length - 1].seq : 0;
    this.draw();
    this.tick = setInterval(() => { if (this.op.status === "running") this.drawTimeline(); }, 1000);
  }

  start() {
    this.stream = new EventStream(this.op.id, {
      after: this.last,
      onEvent: (ev, receivedAt) => this.onEvent(ev, receivedAt),
      onDelta: (ev) => this.onDelta(ev),
      onStatus: (s, err) => this.onStatus(s, err),
    });
    this.stream.start();
    this.refetch();
  }

  dispose() {
    this.disposed = true;
    clearTimeout(this.watcher);
    if (this.frame) cancelAnimationFrame(this.frame);
    clearInterval(this.tick);
    if (this.stream) this.stream.stop();
  }

  build() {
    const op = this.op;
    this.title = h("h1", { id: "op-title" }, op.request.length > 200 ? `${op.request.slice(0, 200)}…` : op.request);
    this.statusEl = h("span", { "data-testid": "op-status", class: "badge" });
    this.streamEl = h("span", { "data-testid": "stream-status", class: "stream-status muted", role: "status" }, "connecting");
    this.cancelBtn = h("button", { type: "button", class: "danger", "data-testid": "cancel", onclick: () => this.cancel() }, "Cancel");
    this.totals = h("p", { class: "muted", "data-testid": "op-totals" });
    this.routeEl = h("section", { class: "panel", "data-testid": "route-decision", "aria-labelledby": "route-h" });
    this.reviewEl = h("section", { class: "panel", "data-testid": "plan-review", "aria-labelledby": "review-h", hidden: true });
    this.graphEl = h("div", { class: "graph-wrap" });
    this.timelineEl = h("div", { class: "timeline", "data-testid": "timeline", role: "img", "aria-label": "Task timeline" });
    this.tasksEl = h("div", { class: "tasks" });
    this.answerEl = h("div", { "data-testid": "answer" });
    this.feedbackEl = h("div", {});
    this.logEl = h("ol", { class: "events", "data-testid": "event-log", "aria-label": "Events", tabindex: 0 });
    this.planSection = h("section", { class: "panel", "aria-labelledby": "plan-h" },
      h("h2", { id: "plan-h", style: { marginTop: 0 } }, "Plan"), this.graphEl,
      h("h3", {}, "Timeline"), this.timelineEl);
    this.root.append(
      h("p", {}, h("a", { href: "#/operations" }, "← Operations")),
      h("div", { class: "op-head" }, this.title, this.statusEl, this.streamEl, this.cancelBtn),
      this.totals,
      this.reviewEl,
      this.routeEl,
      this.planSection,
      h("section", { "aria-labelledby": "tasks-h" }, h("h2", { id: "tasks-h" }, "Tasks"), this.tasksEl),
      h("section", { class: "panel", "aria-labelledby": "answer-h" }, h("h2", { id: "answer-h", style: { marginTop: 0 } }, "Answer"), this.answerEl, this.feedbackEl),
      h("section", { class: "panel", "aria-labelledby": "events-h" }, h("h2", { id: "events-h", style: { marginTop: 0 } }, "Events"), this.logEl),
    );
  }

  // --- events ------------------------------------------------------------------------

  onEvent(ev, receivedAt) {
    if (this.disposed) return;
    this.record(ev, true);
    this.update(ev);
    const mark = { seq: ev.seq, type: ev.type, createdAt: Date.parse(ev.created_at), receivedAt, renderedAt: null };
    window.__crewchiefMetrics.push(mark);
    this.marks.push(mark);
    this.schedule();
    if (ev.type !== "task.tool_called" || ENDED.has(this.op.status)) this.refetch();
  }

  onDelta(ev) {
    const p = ev.payload || {};
    const key = p.task ? p.task : (p.node === "synthesize" || p.node === "fast_path" ? "answer" : null);
    if (key === null || typeof p.text !== "string") return;
    const text = ((this.live.get(key) || "") + p.text).slice(-4000);
    this.live.set(key, text);
    if (key !== "answer") this.dirty.add(key);
    this.schedule();
  }

  onStatus(status, err) {
    if (status === "error") {
      this.streamEl.textContent = `stream error: ${err.message}`;
      return;
    }
    this.streamEl.textContent = status;
    if (status === "ended") this.watch();
  }

  // An ended operation can run again (a rerun or a plan decision from elsewhere): every
  // few seconds while the page is visible, ask the stream for anything after the last
  // event (a 204 when there is nothing) and follow what comes.
  watch() {
    clearTimeout(this.watcher);
    this.watcher = setTimeout(() => {
      if (this.disposed) return;
      if (document.hidden) this.watch();
      else this.stream.restart();
    }, 5000);
  }

  // Draw once per frame, whatever number of events arrived since the last one; `all`
  // redraws every task (after a reread, or a change of the operation's status).
  schedule(all = false) {
    if (all) this.dirtyAll = true;
    if (this.frame || this.disposed) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      if (this.disposed) return;
      this.draw();
      const marks = this.marks;
      this.marks = [];
      if (marks.length) setTimeout(() => { const now = Date.now(); for (const m of marks) m.renderedAt = now; }, 0);
    });
  }

  task(seq) {
    return this.op.tasks.find((t) => t.sequence === seq);
  }

  // What an event adds once: its line in the log, a task's tool calls, the version running.
  record(ev, fresh) {
    this.events.push(ev);
    this.logEl.append(this.logItem(ev));
    if (fresh) this.logEl.scrollTop = this.logEl.scrollHeight;
    const p = ev.payload || {};
    const seq = p.sequence;
    if (ev.type === "task.started") {
      this.versions.set(seq, p.version || 1);
      this.live.delete(seq);
    } else if (ev.type === "task.tool_called") {
      const key = `${seq}:${this.versions.get(seq) || 1}`;
      if (!this.tools.has(key)) this.tools.set(key, []);
      this.tools.get(key).push(p);
      this.dirty.add(seq);
    } else if (ev.type === "task.completed" || ev.type === "task.failed") {
      this.live.delete(seq);
    } else if (TERMINAL.has(ev.type)) {
      this.live.delete("answer");
    }
  }

  // What an event changes in the operation's state. Applying it again is harmless: a
  // reread older than the stream gets the newer events applied on top.
  update(ev) {
    const p = ev.payload || {};
    const op = this.op;
    const seq = p.sequence;
    const task = (s) => {
      const t = this.task(s);
      if (t) this.dirty.add(s);
      return t;
    };
    switch (ev.type) {
      case "operation.started":
      case "operation.resumed":
      case "plan.reviewed":
        op.status = "running";
        break;
      case "route.decided":
        op.route = p.route ?? op.route;
        op.simplicity = { score: p.score ?? op.simplicity.score, tier: p.tier ?? op.simplicity.tier, reasons: p.reasons ?? op.simplicity.reasons };
        this.routeDirty = true;
        break;
      case "plan.generated":
        op.plan_text = p.text;
        op.tasks = (p.tasks || []).map((t) => ({
          sequence: t.id, version: 1, description: t.description, active_form: t.active_form,
          skill: t.skill, depends_on: t.depends_on || [], status: "pending", usage: {}, history: [],
        }));
        this.dirtyAll = true;
        break;
      case "plan.awaiting_approval":
        op.status = "awaiting_approval";
        break;
      case "task.started": {
        // A reread newer than the stream may already hold this run, or a later one.
        const v = p.version || 1;
        const known = this.task(seq);
        if (known && (known.version > v || (known.version === v && DONE.has(known.status)))) break;
        const t = task(seq);
        if (t) Object.assign(t, { status: "in_progress", started_at: ev.created_at, completed_at: null, active_form: p.active_form || t.active_form, version: p.version || t.version });
        break;
      }
      case "task.completed": {
        if (this.stale(seq)) break;
        const t = task(seq);
        if (t) Object.assign(t, { status: "completed", result: p.result, model: p.model, completed_at: ev.created_at, usage: p.usage || t.usage });
        break;
      }
      case "task.failed": {
        if (this.stale(seq)) break;
        const t = task(seq);
        if (t) Object.assign(t, { status: "failed", error: p.error, completed_at: ev.created_at });
        break;
      }
      case "task.rerun":
        if ((this.task(seq)?.version || 0) >= (p.version || 0)) break; // the reread has it
        op.status = "running";
        op.answer = null;
        for (const s of [seq, ...(p.dependents || [])]) {
          const t = task(s);
          if (t) Object.assign(t, { status: "pending", started_at: null, completed_at: null, result: null, error: null });
        }
        break;
      case "operation.completed":
      case "operation.failed":
      case "operation.cancelled":
      case "operation.rejected":
        op.status = p.status || ev.type.split(".")[1];
        op.answer = p.answer ?? op.answer;
        op.error = p.error ?? op.error;
        if (op.status === "cancelled") for (const t of op.tasks) if (!ENDED.has(t.status)) t.status = "cancelled";
        break;
      default:
        break;
    }
  }

  // Whether the task's state on screen is of a later version than the one this event's
  // run was (a reread newer than the stream).
  stale(seq) {
    const t = this.task(seq);
    return Boolean(t && t.version > (this.versions.get(seq) || 1));
  }

  logItem(ev) {
    const p = ev.payload || {};
    let detail = "";
    if (p.sequence) detail += ` task ${p.sequence}`;
    if (ev.type === "task.tool_called") detail += ` ${p.tool || "(note)"}${p.refused ? " refused" : p.ok === false ? " failed" : ""}`;
    if (p.route) detail += ` ${p.route}`;
    if (p.error) detail += ` — ${String(p.error).slice(0, 160)}`;
    return h("li", { "data-seq": ev.seq },
      h("span", { class: "seq" }, String(ev.seq)), ` ${new Date(ev.created_at).toLocaleTimeString()} `,
      h("strong", {}, ev.type), detail);
  }

  async reload() {
    if (this.disposed) return;
    const seen = this.stream ? this.stream.last : this.last;
    try {
      const id = encodeURIComponent(this.op.id);
      const [fresh, usage] = await Promise.all([
        api(`/v1/operations/${id}`),
        api("/v1/usage", { query: { operation_id: this.op.id, group_by: "task" } }).catch(() => null),
      ]);
      if (this.disposed) return;
      if (usage) {
        this.costs = new Map();
        for (const row of usage.rows) if (row.group.task) this.costs.set(Number(row.group.task), row.cost_usd);
      }
      // The read holds every event up to `seen`; the stream may have brought newer ones
      // while it was under way, which the read must not undo.
      Object.assign(this.op, fresh);
      for (const ev of this.events) if (ev.seq > seen) this.update(ev);
      this.routeDirty = true;
      this.schedule(true);
    } catch (err) {
      if (!this.disposed) toast(`Could not refresh the operation: ${err.message}`, true);
    }
  }

  // --- drawing -----------------------------------------------------------------------

  draw() {
    const op = this.op;
    this.statusEl.className = `badge s-${op.status}`;
    this.statusEl.textContent = op.status.replace("_", " ");
    this.cancelBtn.hidden = ENDED.has(op.status);
    const u = op.usage || {};
    this.totals.textContent = `Started ${when(op.created_at)} · ${num(u.input)} input and ${num(u.output)} output tokens · ${usd(op.cost_usd)}`
      + (op.unpriced_calls ? ` (${op.unpriced_calls} unpriced calls)` : "")
      + (op.completed_at ? ` · took ${seconds(Date.parse(op.completed_at) - Date.parse(op.created_at))}` : "");
    if (this.routeDirty) this.drawRoute();
    this.drawReview();
    this.drawGraph();
    this.drawTimeline();
    // A change of status changes every task's buttons (rerun and rating once it ended).
    const all = this.dirtyAll || this.drawnStatus !== op.status;
    for (const t of op.tasks) if (all || this.dirty.has(t.sequence)) this.drawTask(t);
    for (const [seq, panel] of this.panels) if (!this.task(seq)) { panel.el.remove(); this.panels.delete(seq); }
    this.drawAnswer();
    this.dirty.clear();
    this.dirtyAll = false;
    this.routeDirty = false;
    this.drawnStatus = op.status;
  }

  drawRoute() {
    const op = this.op;
    const s = op.simplicity || {};
    put(this.routeEl, 
      h("h2", { id: "route-h", style: { marginTop: 0 } }, "Route"),
      h("dl", { class: "kv" },
        h("dt", {}, "Route"), h("dd", {}, op.route ? `${op.route}${op.route_forced ? " (forced by the request)" : ""}` : "not decided yet"),
        h("dt", {}, "Simplicity score"), h("dd", {}, s.score === null || s.score === undefined ? "—" : `${Number(s.score).toFixed(2)} (1 = simple)`),
        h("dt", {}, "Tier"), h("dd", {}, s.tier || "—"),
        h("dt", {}, "Reasons"), h("dd", {}, s.reasons && s.reasons.length ? h("ul", { style: { margin: 0, paddingLeft: "1.1rem" } }, s.reasons.map((r) => h("li", {}, r))) : "—"),
        op.workspace ? [h("dt", {}, "Workspace"), h("dd", {}, h("code", {}, op.workspace))] : null));
  }

  drawReview() {
    const waiting = this.op.status === "awaiting_approval";
    this.reviewEl.hidden = !waiting;
    if (!waiting) { this.reviewRound = null; return; }
    const round = `${this.op.plan_generated_at}:${this.op.tasks.length}`;
    if (this.reviewRound === round) return; // keep an edit in progress
    this.reviewRound = round;
    const el = clear(this.reviewEl);
    const error = h("p", { class: "error", role: "alert", hidden: true });
    const decide = async (body) => {
      error.hidden = true;
      try {
        await api(`/v1/operations/${encodeURIComponent(this.op.id)}/plan`, { method: "POST", body });
        toast(body.action === "reject" ? "Plan rejected" : body.action === "replan" ? "Sent to the planner" : "Plan approved");
        this.op.status = body.action === "reject" ? "rejected" : "running";
        this.reviewRound = null;
        this.schedule(true);
        this.stream.restart();
        this.refetch();
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      }
    };
    const body = h("div", {});
    const buttons = h("div", { class: "row" },
      h("button", { type: "button", onclick: () => decide({ action: "accept" }) }, "Accept"),
      h("button", { type: "button", class: "secondary", onclick: () => this.editPlan(body, decide) }, "Edit tasks"),
      h("button", { type: "button", class: "secondary", onclick: () => this.replan(body, decide) }, "Replan"),
      h("button", { type: "button", class: "danger", onclick: () => decide({ action: "reject" }) }, "Reject"));
    put(el, h("h2", { id: "review-h", style: { marginTop: 0 } }, "The plan awaits your approval"),
      this.op.plan_text ? h("details", {}, h("summary", {}, "Plan text"), h("pre", {}, this.op.plan_text)) : null,
      buttons, body, error);
  }

  editPlan(container, decide) {
    const rows = this.op.tasks.map((t) => ({ ...t, original: t.description }));
    const list = h("ol", { style: { paddingLeft: 0, listStyle: "none" } });
    const redraw = () => {
      clear(list);
      rows.forEach((t, i) => {
        const input = h("input", { type: "text", name: `task-${i + 1}-description`, value: t.description, style: { width: "100%" }, "aria-label": `Task ${i + 1} description` });
        input.addEventListener("input", () => { t.description = input.value; });
        const deps = (t.depends_on || []).length ? `needs ${t.depends_on.join(", ")}` : "";
        list.append(h("li", { class: "edit-task" }, h("span", {}, `${i + 1}.`), h("div", {}, input, deps ? h("small", { class: "muted" }, deps) : null),
          h("button", { type: "button", class: "secondary", "aria-label": `Remove task ${i + 1}`, onclick: () => {
            const gone = i + 1;
            rows.splice(i, 1);
            for (const r of rows) r.depends_on = (r.depends_on || []).filter((d) => d !== gone).map((d) => (d > gone ? d - 1 : d));
            redraw();
          } }, "Remove")));
      });
    };
    redraw();
    const add = h("button", { type: "button", class: "secondary", onclick: () => {
      rows.push({ description: "", depends_on: [], skill: null, original: null });
      redraw();
      list.querySelector(`input[name=task-${rows.length}-description]`).focus();
    } }, "Add task");
    const run = h("button", { type: "button", onclick: () => decide({
      action: "edit",
      tasks: rows.map((t) => {
        const task = { description: t.description, depends_on: t.depends_on || [], skill: t.skill || null };
        if (t.original === t.description && t.active_form) task.active_form = t.active_form;
        return task;
      }),
    }) }, "Run edited plan");
    put(container, h("h3", {}, "Edit the tasks"), list, h("div", { class: "row" }, add, run));
    const first = list.querySelector("input");
    if (first) first.focus();
  }

  replan(container, decide) {
    const text = h("textarea", { name: "replan-feedback", id: "replan-feedback", required: true });
    put(container, 
      h("label", { for: "replan-feedback" }, "What should the planner change?"), text,
      h("button", { type: "button", onclick: () => decide({ action: "replan", feedback: text.value }) }, "Send feedback"));
    text.focus();
  }

  drawGraph() {
    const tasks = this.op.tasks;
    if (!tasks.length) {
      this.graphKey = null;
      put(this.graphEl, h("p", { class: "muted" }, this.op.route === "fast" ? "Answered on the fast path: no plan." : "No plan yet."));
      return;
    }
    const key = tasks.map((t) => `${t.sequence}:${(t.depends_on || []).join(",")}:${t.description}`).join("|");
    if (key === this.graphKey) {
      for (const t of tasks) {
        const node = this.graphEl.querySelector(`g.node[data-task="${t.sequence}"]`);
        if (!node) continue;
        const status = t.status || "pending";
        if (node.getAttribute("data-status") !== status) {
          node.setAttribute("data-status", status);
          const label = `Task ${t.sequence}: ${t.description}. ${status.replace("_", " ")}`;
          node.setAttribute("aria-label", label);
          node.querySelector("title").textContent = label;
        }
        const second = status === "in_progress" ? t.active_form : status.replace("_", " ");
        const line = node.querySelectorAll("text")[1];
        const text = second.length > 32 ? `${second.slice(0, 31)}…` : second;
        if (line.textContent !== text) line.textContent = text;
      }
      return;
    }
    this.graphKey = key;
    put(this.graphEl, planGraph(tasks, { onSelect: (seq) => this.select(seq) }));
  }

  drawTimeline() {
    const tasks = this.op.tasks.filter((t) => t.started_at);
    const now = Date.now();
    // Rebuilt only when it would look different: while a task runs its bar grows (the
    // clock is part of the key); once every task ended, rereads leave it alone.
    const running = tasks.some((t) => !t.completed_at);
    const key = tasks.map((t) => `${t.sequence}:${t.status}:${t.started_at}:${t.completed_at}`).join("|") + (running ? `@${now}` : "");
    if (key === this.timelineKey) return;
    this.timelineKey = key;
    const el = clear(this.timelineEl);
    if (!tasks.length) {
      el.append(h("p", { class: "muted" }, "No task has started yet."));
      return;
    }
    const t0 = Math.min(...tasks.map((t) => Date.parse(t.started_at)));
    const t1 = Math.max(...tasks.map((t) => (t.completed_at ? Date.parse(t.completed_at) : now)), t0 + 1);
    const span = t1 - t0;
    const lanes = [...tasks].sort((a, b) => a.sequence - b.sequence);
    for (const t of lanes) {
      const start = Date.parse(t.started_at);
      const end = t.completed_at ? Date.parse(t.completed_at) : now;
      const left = ((start - t0) / span) * 100;
      const width = Math.max(((end - start) / span) * 100, 0.4);
      el.append(h("div", { class: "lane" },
        h("span", { class: "who", title: t.description }, `${t.sequence}. ${t.description}`),
        h("div", { class: "track" }, h("div", {
          class: `bar s-${t.status}`, "data-bar": t.sequence, "data-start": start, "data-end": end,
          title: `Task ${t.sequence}: ${seconds(end - start)}`, style: { left: `${left}%`, width: `${width}%`, border: "1px solid currentColor" },
        }))));
    }
    el.setAttribute("aria-label", `Task timeline over ${seconds(span)}: ` + lanes.map((t) => `task ${t.sequence} ${seconds(Date.parse(t.started_at) - t0)} to ${seconds((t.completed_at ? Date.parse(t.completed_at) : now) - t0)}`).join("; "));
    el.append(h("div", { class: "axis", "aria-hidden": "true" }, h("span", {}, "0 s"), h("span", {}, seconds(span / 2)), h("span", {}, seconds(span))));
  }

  select(seq) {
    this.selected = seq;
    for (const [s, panel] of this.panels) panel.el.dataset.selected = String(s === seq);
    const panel = this.panels.get(seq);
    if (panel) {
      panel.el.scrollIntoView({ block: "nearest", behavior: "smooth" });
      panel.el.focus({ preventScroll: true });
    }
  }

  panel(t) {
    let panel = this.panels.get(t.sequence);
    if (panel) return panel;
    const parts = {
      title: h("h3", { id: `task-${t.sequence}-h` }),
      status: h("span", {}),
      meta: h("div", { class: "meta" }),
      body: h("div", {}),
      actions: h("div", { class: "row" }),
      form: h("div", {}),
    };
    const el = h("article", { class: "task", "data-testid": `task-${t.sequence}`, tabindex: -1, "aria-labelledby": `task-${t.sequence}-h` },
      h("header", {}, parts.title, parts.status), parts.meta, parts.body, parts.actions, parts.form);
    panel = { el, parts, formOpen: false };
    this.panels.set(t.sequence, panel);
    // Keep the panels in sequence order.
    const after = [...this.panels.keys()].filter((s) => s > t.sequence).sort((a, b) => a - b)[0];
    this.tasksEl.insertBefore(el, after !== undefined ? this.panels.get(after).el : null);
    return panel;
  }

  drawTask(t) {
    if (!t) return;
    const { parts } = this.panel(t);
    parts.title.textContent = `${t.sequence}. ${t.description}`;
    put(parts.status, badge(t.status), t.version > 1 ? h("span", { class: "muted" }, ` version ${t.version}`) : null);
    const u = t.usage || {};
    const dur = t.started_at && t.completed_at ? seconds(Date.parse(t.completed_at) - Date.parse(t.started_at)) : null;
    const cost = this.taskCost(t.sequence);
    put(parts.meta, 
      h("span", {}, `model: ${t.model || "—"}`),
      h("span", {}, `skill: ${t.skill || "none"}`),
      t.depends_on && t.depends_on.length ? h("span", {}, `needs: ${t.depends_on.join(", ")}`) : null,
      h("span", {}, `tokens: ${num(u.input)} in / ${num(u.output)} out`),
      cost !== null ? h("span", {}, `cost: ${usd(cost)}`) : null,
      dur ? h("span", {}, `took ${dur}`) : null);
    const calls = this.tools.get(`${t.sequence}:${t.version || 1}`) || [];
    const body = clear(parts.body);
    if (t.status === "in_progress") body.append(h("p", { class: "muted" }, t.active_form));
    if (calls.length) {
      body.append(h("details", { open: calls.length <= 6 }, h("summary", {}, plural(calls.filter((c) => c.tool).length, "tool call")),
        h("ul", { class: "tools" }, calls.map((c) => h("li", {},
          c.tool ? h("code", {}, c.tool) : h("em", {}, "note"), c.args ? ` ${c.args}` : "",
          c.refused ? h("strong", {}, " refused") : c.tool && c.ok === false ? h("strong", {}, " failed") : null,
          (c.repairs || []).length ? h("span", { class: "muted" }, ` (${c.repairs.join("; ")})`) : null,
          c.diff ? diffView(c.diff) : null)))));
    }
    const live = this.live.get(t.sequence);
    if (live && t.status === "in_progress") body.append(h("pre", { "aria-label": "Output so far" }, live));
    if (t.result) body.append(h("details", { open: true }, h("summary", {}, "Result"), h("pre", {}, t.result)));
    if (t.error) body.append(h("p", { class: "error" }, t.error));
    if (t.history && t.history.length) {
      body.append(h("details", {}, h("summary", {}, `Earlier versions (${t.history.length})`),
        t.history.map((old) => h("div", {}, h("p", {}, h("strong", {}, `Version ${old.version}`), ` · ${old.status}`), old.result ? h("pre", {}, old.result) : null, old.error ? h("p", { class: "error" }, old.error) : null))));
    }
    const ended = ENDED.has(this.op.status);
    const actions = clear(parts.actions);
    if (ended && this.op.tasks.length) {
      actions.append(h("button", { type: "button", class: "secondary", onclick: () => this.rerunForm(t) }, "Edit and rerun"));
      if (t.status === "completed" || t.status === "failed") actions.append(...rateButtons(`/v1/operations/${encodeURIComponent(this.op.id)}/tasks/${t.sequence}/feedback`, `task ${t.sequence}`));
    }
  }

  taskCost(seq) {
    const c = this.costs ? this.costs.get(seq) : undefined;
    return c === undefined ? null : c;
  }

  rerunForm(t) {
    const panel = this.panels.get(t.sequence);
    const desc = h("textarea", { name: "rerun-description", id: `rerun-${t.sequence}-description` });
    desc.value = t.description;
    const instr = h("textarea", { name: "rerun-instructions", id: `rerun-${t.sequence}-instructions`, placeholder: "Optional: what to do differently" });
    const error = h("p", { class: "error", role: "alert", hidden: true });
    const submit = h("button", { type: "submit" }, "Rerun");
    const form = h("form", { "aria-label": `Rerun task ${t.sequence}` },
      h("label", { for: desc.id }, "Description"), desc,
      h("label", { for: instr.id }, "Extra instructions"), instr,
      h("div", { class: "row" }, submit, h("button", { type: "button", class: "secondary", onclick: () => clear(panel.parts.form) }, "Close")), error);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = {};
      if (desc.value.trim() && desc.value !== t.description) body.description = desc.value;
      if (instr.value.trim()) body.instructions = instr.value;
      submit.disabled = true;
      try {
        const res = await api(`/v1/operations/${encodeURIComponent(this.op.id)}/tasks/${t.sequence}/rerun`, { method: "POST", body });
        toast(`Rerunning task ${res.task}${res.dependents.length ? ` and ${res.dependents.join(", ")}` : ""}`);
        clear(panel.parts.form);
        this.op.status = "running";
        this.schedule(true);
        this.stream.restart();
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
        submit.disabled = false;
      }
    });
    put(panel.parts.form, form);
    desc.focus();
  }

  drawAnswer() {
    const op = this.op;
    const el = clear(this.answerEl);
    const live = this.live.get("answer");
    if (op.answer) el.append(h("pre", {}, op.answer));
    else if (live) el.append(h("pre", { "aria-label": "Answer so far" }, live));
    else if (op.error) el.append(h("p", { class: "error" }, op.error));
    else el.append(h("p", { class: "muted" }, ENDED.has(op.status) ? "No answer." : "Not answered yet."));
    if (op.error && op.answer) el.append(h("p", { class: "error" }, op.error));
    const fb = clear(this.feedbackEl);
    if (ENDED.has(op.status) && op.status !== "rejected") fb.append(h("div", { class: "row" }, rateButtons(`/v1/operations/${encodeURIComponent(op.id)}/feedback`, "the answer", true)));
  }

  async cancel() {
    this.cancelBtn.disabled = true;
    try {
      const op = await api(`/v1/operations/${encodeURIComponent(this.op.id)}/cancel`, { method: "POST" });
      Object.assign(this.op, op);
      this.schedule(true);
    } catch (err) {
      toast(`Could not cancel: ${err.message}`, true);
    } finally {
      this.cancelBtn.disabled = false;
    }
  }
}

function plural(n, what) {
  return `${n} ${what}${n === 1 ? "" : "s"}`;
}

function diffView(diff) {
  const lines = diff.replace(/\n$/, "").split("\n");
  const pre = h("pre", { class: "diff", "aria-label": "Diff" });
  for (const line of lines.slice(0, DIFF_LIMIT)) {
    const cls = line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : line.startsWith("@@") ? "hunk" : null;
    pre.append(cls ? h("span", { class: cls }, line) : `${line}\n`);
  }
  if (lines.length > DIFF_LIMIT) pre.append(`… ${lines.length - DIFF_LIMIT} more lines`);
  return h("details", {}, h("summary", {}, "Diff"), pre);
}

// Thumbs (and a correction for answers) through the feedback endpoints.
function rateButtons(url, what, withCorrection = false) {
  const send = async (thumb) => {
    const body = { thumb };
    if (withCorrection && thumb === "down") {
      const text = correction.value.trim();
      if (text) body.correction = text;
    }
    try {
      await api(url, { method: "POST", body });
      toast(`Rated ${what} ${thumb === "up" ? "good" : "bad"}`);
    } catch (err) {
      toast(`Could not rate: ${err.message}`, true);
    }
  };
  const up = h("button", { type: "button", class: "secondary", "aria-label": `Rate ${what} good`, onclick: () => send("up") }, "Good");
  const down = h("button", { type: "button", class: "secondary", "aria-label": `Rate ${what} bad`, onclick: () => send("down") }, "Bad");
  if (!withCorrection) return [up, down];
  const id = `correction-${Math.random().toString(36).slice(2, 8)}`;
  const correction = h("textarea", { id, rows: 2, placeholder: "Optional: what the answer should have been (sent with Bad)" });
  return [h("div", { class: "field", style: { flex: "1 1 20rem" } }, h("label", { for: id }, "Correction"), correction), up, down];
}
