// The REST API: the key, JSON calls with readable errors, and a resumable event stream.

const KEY = "crewchief.key";

export class ApiError extends Error {
  constructor(status, body) {
    const err = body && body.error ? body.error : null;
    super(err ? err.message : `HTTP ${status}`);
    this.status = status;
    this.code = err ? err.code : null;
    this.details = err ? err.details : null;
  }
}

export const auth = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  },
  onUnauthorized: null,
};

function headers(extra = {}) {
  const out = { Accept: "application/json", ...extra };
  const key = auth.key;
  if (key) out.Authorization = `Bearer ${key}`;
  return out;
}

export async function api(path, { method = "GET", body, query } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (Array.isArray(v)) v.forEach((x) => params.append(k, x));
      else if (v !== undefined && v !== null && v !== "") params.set(k, v);
    }
    const qs = params.toString();
    if (qs) url += `?${qs}`;
  }
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(url, init);
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401 && auth.onUnauthorized) auth.onUnauthorized(err);
    throw err;
  }
  return data;
}

const TERMINAL = new Set([
  "operation.completed", "operation.failed", "operation.cancelled", "operation.rejected",
]);

// Follows GET /v1/operations/{id}/events over fetch (EventSource cannot send the key),
// resuming with Last-Event-ID after a drop: every persisted event is delivered once, in
// order. A rerun or plan decision after the terminal event restarts it (`restart()`).
export class EventStream {
  constructor(operationId, { after = 0, onEvent, onDelta, onStatus }) {
    this.id = operationId;
    this.last = after;
    this.onEvent = onEvent;
    this.onDelta = onDelta || (() => {});
    this.onStatus = onStatus || (() => {});
    this.stopped = false;
    this.running = false;
    this.controller = null;
    this.idleMs = 75000; // five keep-alives at the default 15 s
  }

  start() {
    if (this.running || this.stopped) return;
    this.running = true;
    this.loop().finally(() => { this.running = false; });
  }

  restart() { this.start(); }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
  }

  async loop() {
    let delay = 250;
    while (!this.stopped) {
      let ended = false;
      try {
        ended = await this.once();
        delay = 250;
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof ApiError && err.status !== 503 && err.status !== 429) {
          this.onStatus("error", err);
          return;
        }
      }
      if (ended) { this.onStatus("ended"); return; }
      if (this.stopped) return;
      this.onStatus("reconnecting");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }

  // One connection; true when the operation's terminal event arrived (or nothing is left).
  async once() {
    this.controller = new AbortController();
    const extra = { Accept: "text/event-stream" };
    if (this.last) extra["Last-Event-ID"] = String(this.last);
    const res = await fetch(`/v1/operations/${encodeURIComponent(this.id)}/events`, {
      headers: headers(extra), signal: this.controller.signal, cache: "no-store",
    });
    if (res.status === 204) return true;
    if (!res.ok) {
      let data = null;
      try { data = await res.json(); } catch { data = null; }
      const err = new ApiError(res.status, data);
      if (res.status === 401 && auth.onUnauthorized) auth.onUnauthorized(err);
      throw err;
    }
    this.onStatus("live");
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let terminal = false;
    let idle = null;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => this.controller.abort(), this.idleMs);
    };
    arm();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        arm();
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          if (this.frame(frame)) terminal = true;
        }
      }
    } finally {
      clearTimeout(idle);
    }
    return terminal;
  }

  frame(text) {
    let id = null;
    let type = "message";
    const data = [];
    for (const line of text.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (name === "id") id = value;
      else if (name === "event") type = value;
      else if (name === "data") data.push(value);
    }
    if (!data.length) return false;
    let event;
    try { event = JSON.parse(data.join("\n")); } catch { return false; }
    const receivedAt = Date.now();
    if (id === null) {
      this.onDelta(event);
      return false;
    }
    const seq = Number(id);
    if (!(seq > this.last)) return false; // already delivered before a reconnect
    this.last = seq;
    this.onEvent(event, receivedAt);
    return TERMINAL.has(type);
  }
}
