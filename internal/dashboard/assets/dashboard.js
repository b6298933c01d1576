// The dashboard of a domination worker: the live feed (/ws), shadow events
// per minute (/api/shadow) and the status report (/status), all from the
// page's own origin. Everything the page shows is written with textContent
// or SVG attributes, never parsed as HTML.
"use strict";

(() => {
  const HISTORY = 500;            // windows the feed sends first
  const MAX_WINDOWS = 5000;       // windows kept in the page (pruned 500 at a time)
  const CHART_WINDOWS = 40;       // windows per account in the chart
  const CHART_ACCOUNTS = 8;       // accounts in the chart: the busiest
  const SHADOW_EVERY_MS = 10000;  // dashboard.ShadowRefresh
  const STATUS_EVERY_MS = 5000;   // the worker refreshes /status every 5 s
  const TOKEN_KEY = "domination.token";
  const SVG = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    ws: null,
    retry: 1000,
    filter: null,                 // account id, or null for all
    windows: new Map(),           // "account|store|from" -> count
    accounts: new Set(),
    colours: new Map(),           // account -> colour index
    dirty: false,
  };

  // ---- tokens -------------------------------------------------------------

  function headers() {
    return state.token ? { Authorization: "Bearer " + state.token } : {};
  }

  function askToken(why) {
    $("token-form").hidden = false;
    document.body.dataset.auth = "needed";
    if (why) say(why, true);
  }

  $("token-button").addEventListener("click", () => {
    $("token-form").hidden = !$("token-form").hidden;
  });
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.token = $("token").value.trim();
    $("token").value = "";
    if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
    $("token-form").hidden = true;
    delete document.body.dataset.auth;
    say("");
    reconnect();
    pollStatus();
    pollShadow();
  });
  $("token-clear").addEventListener("click", () => {
    state.token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    reconnect();
  });

  function say(text, isError) {
    const m = $("message");
    m.textContent = text;
    m.hidden = !text;
    m.classList.toggle("error", !!isError);
  }

  // ---- the live feed ------------------------------------------------------

  function feedState(s) {
    const el = $("feed-state");
    el.textContent = "feed: " + s;
    el.className = "pill " + s;
    document.body.dataset.feed = s;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let url = scheme + "//" + location.host + "/ws?history=" + HISTORY;
    if (state.token) url += "&access_token=" + encodeURIComponent(state.token);
    const ws = new WebSocket(url);
    state.ws = ws;
    feedState("connecting");
    ws.onopen = () => {
      state.retry = 1000;
      feedState("open");
      if (state.filter !== null) sendFilter();
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m.type === "error") { say("feed: " + m.error, true); return; }
      if (typeof m.ts_to !== "number") return;
      addWindow(m);
    };
    ws.onclose = (ev) => {
      if (state.ws !== ws) return; // replaced on purpose
      feedState("closed");
      if (ev.code === 4403) {
        say("feed: " + (ev.reason || "this token does not cover that account") + "; showing every account it covers", true);
        state.filter = null;
        $("account").value = "";
        clearWindows();
      }
      setTimeout(() => { if (state.ws === ws) connect(); }, state.retry);
      state.retry = Math.min(state.retry * 2, 10000);
    };
  }

  function reconnect() {
    const old = state.ws;
    state.ws = null;
    if (old) old.close();
    clearWindows();
    connect();
  }

  function sendFilter() {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return;
    const filter = state.filter === null ? {} : { account: state.filter };
    state.ws.send(JSON.stringify({ type: "setFilter", filter }));
  }

  $("account").addEventListener("change", () => {
    const v = $("account").value;
    state.filter = v === "" ? null : Number(v);
    document.body.dataset.filter = v;
    clearWindows();  // the feed sends the history again for the new filter
    sendFilter();
  });

  function storeKey(store) { return store === null ? "\u0000" : store; }

  function addWindow(m) {
    if (state.filter !== null && m.account_id !== state.filter) return; // sent before the filter applied
    const key = m.account_id + "|" + storeKey(m.store_id) + "|" + m.ts_from;
    state.windows.set(key, { account: m.account_id, store: m.store_id, from: m.ts_from, to: m.ts_to, count: m.count });
    if (!state.accounts.has(m.account_id)) {
      state.accounts.add(m.account_id);
      accountOptions();
    }
    if (state.windows.size > MAX_WINDOWS + 500) {
      const oldest = [...state.windows.entries()].sort((a, b) => a[1].from - b[1].from);
      for (const [k] of oldest.slice(0, state.windows.size - MAX_WINDOWS)) state.windows.delete(k);
    }
    changed();
  }

  function clearWindows() {
    state.windows.clear();
    changed();
  }

  function accountOptions() {
    const sel = $("account");
    const have = new Set([...sel.options].map((o) => o.value));
    for (const a of [...state.accounts].sort((x, y) => x - y)) {
      if (have.has(String(a))) continue;
      const o = document.createElement("option");
      o.value = String(a);
      o.textContent = String(a);
      const after = [...sel.options].find((x) => x.value !== "" && Number(x.value) > a);
      sel.insertBefore(o, after || null);
    }
  }

  function colour(account) {
    if (!state.colours.has(account)) state.colours.set(account, state.colours.size % 8);
    return "c" + state.colours.get(account);
  }

  function changed() {
    if (state.dirty) return;
    state.dirty = true;
    setTimeout(() => { state.dirty = false; renderVisitors(); }, 100);
  }

  function renderVisitors() {
    // The table: the latest window of each (account, store).
    const latest = new Map();
    for (const w of state.windows.values()) {
      const k = w.account + "|" + storeKey(w.store);
      const cur = latest.get(k);
      if (!cur || w.from > cur.from) latest.set(k, w);
    }
    const rows = [...latest.values()].sort((a, b) =>
      a.account - b.account || (a.store === null) - (b.store === null) || String(a.store).localeCompare(String(b.store)));
    const body = $("visitors-table").tBodies[0];
    body.replaceChildren(...rows.map((w) => {
      const tr = document.createElement("tr");
      tr.dataset.account = w.account;
      if (w.store === null) tr.dataset.nullStore = "1"; else tr.dataset.store = w.store;
      tr.dataset.from = w.from;
      tr.append(cell(String(w.account)), cell(w.store === null ? "(none)" : w.store),
        cell(clock(w.from) + "–" + clock(w.to)), cell(String(w.count), "num"));
      return tr;
    }));
    $("visitors-note").dataset.windows = String(state.windows.size);
    $("visitors-note").textContent = rows.length ? state.windows.size + " windows received" +
      (state.filter === null ? "" : " for account " + state.filter) : "no window yet";

    // The chart: visitors per window, summed over stores, one line per account.
    const byAccount = new Map();
    for (const w of state.windows.values()) {
      let m = byAccount.get(w.account);
      if (!m) byAccount.set(w.account, (m = new Map()));
      m.set(w.from, (m.get(w.from) || 0) + w.count);
    }
    const starts = [...new Set([...state.windows.values()].map((w) => w.from))].sort((a, b) => a - b).slice(-CHART_WINDOWS);
    const total = (a) => starts.reduce((n, s) => n + (byAccount.get(a).get(s) || 0), 0);
    const shown = [...byAccount.keys()].sort((a, b) => total(b) - total(a) || a - b).slice(0, CHART_ACCOUNTS);
    const series = shown.sort((a, b) => a - b).map((a) => ({
      name: "account " + a, cls: colour(a), points: starts.map((s) => [s, byAccount.get(a).get(s) || 0]),
    }));
    lineChart($("visitors-chart"), starts, series);
    legend($("visitors-legend"), series.map((s) => [s.cls, s.name]));
    if (byAccount.size > shown.length) {
      const more = document.createElement("span");
      more.textContent = "(the busiest " + shown.length + " of " + byAccount.size + " accounts)";
      $("visitors-legend").append(more);
    }
  }

  // ---- shadow events ------------------------------------------------------

  async function pollShadow() {
    try {
      const res = await fetch("/api/shadow?since=1h&by=minute", { headers: headers(), cache: "no-store" });
      if (res.status === 401) { askToken("Enter a token to see the data."); return; }
      const body = await res.json();
      if (!res.ok) { $("shadow-updated").textContent = "error: " + (body.error || res.status); return; }
      renderShadow(body);
    } catch (err) {
      $("shadow-updated").textContent = "cannot reach the worker: " + err.message;
    }
  }

  function renderShadow(r) {
    const cls = new Map(r.types.map((t, i) => [t, "c" + i]));
    const body = $("shadow-totals").tBodies[0];
    let total = 0;
    body.replaceChildren(...r.types.map((t) => {
      const tr = document.createElement("tr");
      tr.dataset.type = t;
      const name = cell(t);
      name.prepend(swatch(cls.get(t)));
      total += r.totals[t] || 0;
      tr.append(name, cell(String(r.totals[t] || 0), "num"));
      return tr;
    }));
    const all = document.createElement("tr");
    all.dataset.type = "total";
    all.append(cell("total"), cell(String(total), "num"));
    body.append(all);
    $("shadow-updated").textContent = "updated " + clock(Date.now() / 1000) + " UTC";
    document.body.dataset.shadowAt = String(Date.now());

    // Stacked bars, one per minute from since to now.
    const svg = $("shadow-chart");
    const start = Date.parse(r.since) / 1000;
    const step = r.by === "hour" ? 3600 : 60;
    const n = Math.max(1, Math.floor((Date.now() / 1000 - start) / step) + 1);
    const at = new Map(r.buckets.map((b) => [Math.round(Date.parse(b.at) / 1000), b.counts]));
    let max = 0;
    for (const b of r.buckets) max = Math.max(max, r.types.reduce((s, t) => s + (b.counts[t] || 0), 0));
    const g = frame(svg, max, [start, start + (n - 1) * step]);
    if (!max) { empty(svg, "no shadow events in the last hour"); return; }
    const bw = g.w / n;
    for (let i = 0; i < n; i++) {
      const counts = at.get(start + i * step);
      if (!counts) continue;
      let y = g.y0;
      for (const t of r.types) {
        const v = counts[t] || 0;
        if (!v) continue;
        const h = (v / max) * g.h;
        y -= h;
        const rect = el("rect", { x: g.x0 + i * bw + bw * 0.1, y, width: Math.max(bw * 0.8, 1), height: h, class: cls.get(t) });
        const tip = el("title", {});
        tip.textContent = clock(start + i * step) + " " + t + ": " + v;
        rect.append(tip);
        svg.append(rect);
      }
    }
  }

  // ---- health -------------------------------------------------------------

  async function pollStatus() {
    try {
      const res = await fetch("/status", { headers: headers(), cache: "no-store" });
      if (res.status === 401) { askToken("Enter a token to see the data."); return; }
      if (res.status === 403) { say("this token's scope does not cover /status", true); return; }
      const body = await res.json();
      if (!res.ok) { $("health-summary").textContent = body.error || "no status yet"; return; }
      renderHealth(body);
    } catch (err) {
      $("health-updated").textContent = "cannot reach the worker: " + err.message;
    }
  }

  function renderHealth(r) {
    const stalled = r.stages.filter((s) => s.stalled);
    const sum = $("health-summary");
    sum.classList.toggle("stalled", stalled.length > 0);
    sum.textContent = stalled.length
      ? "Stalled: " + stalled.map(describe).join("; ")
      : "No stage is stalled" + (r.ready ? (r.ready.ready ? "; worker ready" : "; worker not ready: " + r.ready.reason) : "");
    if (r.error) sum.textContent += " (latest refresh failed: " + r.error + ")";
    document.body.dataset.stalled = stalled.map((s) => s.name).join(",");

    $("stages").tBodies[0].replaceChildren(...r.stages.map((s) => {
      const tr = document.createElement("tr");
      tr.dataset.stage = s.name;
      if (s.stalled) tr.classList.add("stalled");
      const parts = (s.partitions || []).map((p) => p.partition + ":" + p.lag).join(" ");
      let st = "ok", cls = "ok";
      if (s.stalled && s.stall) { st = "STALLED " + where(s); cls = ""; }
      else if ((s.partitions || []).some((p) => p.waiting_since)) { st = "catching up"; cls = ""; }
      if (s.problem) { st += " (" + s.problem + ")"; cls = ""; }
      tr.append(cell(s.name), cell(String(s.lag), "num"), cell(parts || "-"), cell(st, cls));
      return tr;
    }));

    $("stores").tBodies[0].replaceChildren(...r.stages.filter((s) => s.store).map((s) => {
      const tr = document.createElement("tr");
      tr.dataset.table = s.store.table;
      tr.append(cell(s.store.table), cell(String(s.store.rows), "num"),
        cell(Math.round(s.store.freshness_seconds) + " s", "num"), cell(String(s.store.errors_rows), "num"));
      return tr;
    }));

    const dl = [];
    for (const d of r.dead_letters || []) {
      const reasons = Object.keys(d.by_reason || {}).sort();
      if (!reasons.length) dl.push([d.topic, d.exists ? "-" : "(no topic yet)", 0]);
      for (const k of reasons) dl.push([d.topic, k, d.by_reason[k]]);
    }
    $("dead-letters").tBodies[0].replaceChildren(...dl.map(([topic, reason, n]) => {
      const tr = document.createElement("tr");
      tr.dataset.topic = topic;
      tr.dataset.reason = reason;
      tr.append(cell(topic), cell(reason), cell(String(n), "num"));
      return tr;
    }));
    $("health-updated").textContent = "report of " + clock(Date.parse(r.at) / 1000) + " UTC";
  }

  function where(s) {
    return "at partition " + s.stall.partition + " offset " + s.stall.offset + " since " + clock(Date.parse(s.stall.since) / 1000) + " UTC";
  }

  function describe(s) {
    return s.name + (s.store ? " (table " + s.store.table + ")" : "") + " " + (s.stall ? where(s) : "") + ", lag " + s.lag;
  }

  // ---- drawing ------------------------------------------------------------

  function el(name, attrs) {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function swatch(cls) {
    const s = document.createElement("span");
    s.className = "swatch " + cls;
    return s;
  }

  function legend(box, items) {
    box.replaceChildren(...items.map(([cls, name]) => {
      const span = document.createElement("span");
      span.append(swatch(cls), name);
      return span;
    }));
  }

  // frame clears svg and draws the axes with the largest value and the
  // first and last times; it returns the plot area.
  function frame(svg, max, [t0, t1]) {
    svg.replaceChildren();
    const g = { x0: 50, y0: 160, w: 540, h: 145 };
    svg.append(el("line", { x1: g.x0, y1: g.y0, x2: g.x0 + g.w, y2: g.y0, class: "axis" }));
    svg.append(el("line", { x1: g.x0, y1: g.y0, x2: g.x0, y2: g.y0 - g.h, class: "axis" }));
    const label = (x, y, text, anchor) => {
      const t = el("text", { x, y, "text-anchor": anchor });
      t.textContent = text;
      svg.append(t);
    };
    label(g.x0 - 4, g.y0 - g.h + 4, String(max), "end");
    label(g.x0 - 4, g.y0 + 4, "0", "end");
    if (t1 >= t0) {
      label(g.x0, g.y0 + 15, clock(t0), "start");
      label(g.x0 + g.w, g.y0 + 15, clock(t1), "end");
    }
    return g;
  }

  function empty(svg, text) {
    const t = el("text", { x: 300, y: 90, "text-anchor": "middle", class: "empty" });
    t.textContent = text;
    svg.append(t);
  }

  function lineChart(svg, starts, series) {
    let max = 0;
    for (const s of series) for (const [, v] of s.points) max = Math.max(max, v);
    const g = frame(svg, max, [starts[0], starts[starts.length - 1]]);
    if (!starts.length) { empty(svg, "no window yet"); return; }
    const x = (i) => g.x0 + (starts.length === 1 ? g.w / 2 : (i / (starts.length - 1)) * g.w);
    const y = (v) => g.y0 - (max ? (v / max) * g.h : 0);
    for (const s of series) {
      const pts = s.points.map(([, v], i) => x(i).toFixed(1) + "," + y(v).toFixed(1)).join(" ");
      svg.append(el("polyline", { points: pts, class: "series " + s.cls }));
      for (const [i, [, v]] of s.points.entries()) {
        const dot = el("circle", { cx: x(i), cy: y(v), r: 2.5, class: s.cls });
        const tip = el("title", {});
        tip.textContent = s.name + " " + clock(starts[i]) + ": " + v;
        dot.append(tip);
        svg.append(dot);
      }
    }
  }

  function clock(unixSeconds) {
    return new Date(unixSeconds * 1000).toISOString().slice(11, 19);
  }

  // ---- start --------------------------------------------------------------

  renderVisitors();
  connect();
  pollShadow();
  pollStatus();
  setInterval(pollShadow, SHADOW_EVERY_MS);
  setInterval(pollStatus, STATUS_EVERY_MS);
})();
