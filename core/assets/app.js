// tasker dashboard. No framework, no build step. Every stored string reaches the
// page through textContent or an attribute set with setAttribute: never as markup.
"use strict";

const S = {
  status: null,          // the latest /api/v1/status payload
  receivedAt: 0,         // Date.now() when it arrived
  serverOffset: 0,       // server time - browser time, in ms
  runDetail: null,
  lastRunFetch: 0,
  lastTimelineFetch: 0,
  lastDagFetch: 0,
  lastMessage: 0,
};

// ------------------------------------------------------------------ helpers

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.setAttribute(k, String(v));
    else if (k === "onclick" || k === "onchange") { e.addEventListener(k.slice(2), v); (e._on = e._on || []).push([k.slice(2), v]); }
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return e;
}

const svgNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

// Live updates build the new view off-page and then change only what differs in
// the page: text nodes whose text is the same stay the same nodes, so a text
// selection (or a hovered tooltip) survives updates. Children marked with
// data-key are matched by key (a run card stays its node when cards move);
// others by position and tag.
function keyOf(n) { return n.nodeType === 1 ? n.getAttribute("data-key") : null; }

function morph(a, b) {
  if (a.nodeType !== b.nodeType || a.nodeName !== b.nodeName || keyOf(a) !== keyOf(b)) {
    a.replaceWith(b);
    return b;
  }
  if (a.nodeType === 3 || a.nodeType === 8) {
    if (a.nodeValue !== b.nodeValue) a.nodeValue = b.nodeValue;
    return a;
  }
  for (const { name, value } of Array.from(b.attributes)) if (a.getAttribute(name) !== value) a.setAttribute(name, value);
  for (const { name } of Array.from(a.attributes)) if (!b.hasAttribute(name)) a.removeAttribute(name);
  // A fresh node's listeners replace the old ones (they may close over new data).
  if (b._on) { for (const [t, f] of a._on || []) a.removeEventListener(t, f); for (const [t, f] of b._on) a.addEventListener(t, f); a._on = b._on; }
  morphChildren(a, b);
  return a;
}

function morphChildren(a, b) {
  const keyed = new Map();
  for (const c of a.childNodes) { const k = keyOf(c); if (k !== null) keyed.set(k, c); }
  const want = Array.from(b.childNodes);
  want.forEach((nb, i) => {
    let cur = a.childNodes[i] || null;
    const k = keyOf(nb);
    if (k !== null && keyed.has(k) && keyed.get(k) !== cur) {
      const found = keyed.get(k);
      keyed.delete(k);
      a.insertBefore(found, cur);
      cur = found;
    }
    if (!cur) a.appendChild(nb);
    else morph(cur, nb);
  });
  while (a.childNodes.length > want.length) a.removeChild(a.lastChild);
}

// Replaces `box`'s children with `nodes`, changing only what differs.
function patch(box, ...nodes) {
  const next = document.createElement(box.nodeName);
  for (const n of nodes.flat()) if (n) next.appendChild(typeof n === "string" ? document.createTextNode(n) : n);
  morphChildren(box, next);
  return box;
}
const $ = (id) => document.getElementById(id);

function duration(secs) {
  if (secs === null || secs === undefined || !isFinite(secs) || secs < 0) return "";
  if (secs < 10) return secs.toFixed(1) + "s";
  const s = Math.round(secs);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, r = s % 60;
  const p2 = (n) => String(n).padStart(2, "0");
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${p2(m)}m`;
  if (m) return `${m}m ${p2(r)}s`;
  return `${r}s`;
}

// Durations on axes and in statistics, where runs may take milliseconds.
function fineDuration(secs) {
  if (secs !== null && secs !== undefined && isFinite(secs) && secs >= 0 && secs < 1) return secs === 0 ? "0s" : Math.round(secs * 1000) + " ms";
  return duration(secs);
}

function count(n) {
  if (n === null || n === undefined) return "";
  const a = Math.abs(n);
  if (a < 10000) return String(n);
  if (a < 1e6) return (n / 1e3).toFixed(1) + "k";
  if (a < 1e9) return (n / 1e6).toFixed(1) + "M";
  return (n / 1e9).toFixed(1) + "G";
}

// Times are shown in the browser's zone, or in UTC when the header's toggle says
// so (remembered in localStorage); tzName() labels them.
function useUtc() { return $("tz-utc") ? $("tz-utc").checked : false; }

function tzName() {
  if (useUtc()) return "UTC";
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || "local"; } catch (e) { return "local"; }
}

function localTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const p = (n) => String(n).padStart(2, "0");
  if (useUtc()) return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function serverNow() { return Date.now() + S.serverOffset; }

function badge(status, lost) {
  const label = lost ? status + " (LOST)" : status;
  return el("span", { class: "badge s-" + (lost ? "LOST" : status), "data-status": status, text: label });
}

function bar(percent, opts) {
  opts = opts || {};
  const p = percent === null || percent === undefined || !isFinite(percent) ? null : Math.max(0, Math.min(100, percent));
  const cls = "bar" + (opts.thin ? " thin" : "") + (opts.status === "COMPLETED" ? " done" : "") + (opts.status === "FAILED" ? " failed" : "");
  const fill = el("div", { class: "fill" });
  fill.style.width = (p === null ? 0 : p) + "%";
  const b = el("div", { class: cls, "data-percent": p === null ? "" : p.toFixed(2), title: opts.title || null }, fill);
  if (!opts.thin) b.appendChild(el("span", { class: "label", text: (p === null ? "–" : Math.floor(p) + "%") + (opts.label ? "  " + opts.label : "") }));
  return b;
}

function items(s) {
  if (!s) return "";
  if (s.items_total !== null && s.items_total !== undefined) return `${count(s.items_complete)}/${count(s.items_total)}`;
  return s.items_complete ? count(s.items_complete) : "";
}

// The core's ETA of a run or subtask, with its 80% interval when it has one.
function etaText(r) {
  if (!r || r.eta_seconds === null || r.eta_seconds === undefined) return "";
  if (r.eta_seconds === 0) return "0s";
  const lo = r.eta_low, hi = r.eta_high;
  if (lo === null || lo === undefined || hi === null || hi === undefined || !(hi > lo)) return duration(r.eta_seconds);
  return `${duration(r.eta_seconds)} (${duration(lo)}–${duration(hi)})`;
}

function bytes(n) {
  if (n === null || n === undefined) return "";
  if (n < 1024) return n + " B";
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return v.toFixed(1) + " " + units[u];
}

// "35% CPU · 1.2 GiB" for the newest sample of a run's process (children included).
function resourcesText(x) {
  if (!x) return "";
  const parts = [];
  if (x.cpu_percent !== null && x.cpu_percent !== undefined) parts.push(Math.round(x.cpu_percent) + "% CPU");
  parts.push(bytes(x.rss_bytes + (x.children_rss_bytes || 0)));
  if (x.children) parts.push(`${x.children} child process${x.children > 1 ? "es" : ""}`);
  return parts.join(" · ");
}

function retentionText(r) {
  const failed = r.keep_failed_days && r.keep_failed_days !== r.days ? ` (failed ${r.keep_failed_days} d)` : "";
  let last = ": not applied yet";
  if (r.last_error) last = ": failing (" + r.last_error + ")";
  else if (r.last_applied) last = `: ${r.deleted_total} run(s) deleted, last applied ${localTime(r.last_applied)}`;
  return `retention ${r.days} d${failed}${last}`;
}

function hostPid(r) {
  if (!r.hostname) return "";
  return r.process_id !== null && r.process_id !== undefined ? `${r.hostname}:${r.process_id}` : r.hostname;
}

function runLink(id, text) {
  if (!id) return "";
  return el("a", { href: "#/run/" + encodeURIComponent(id), "data-run-link": id, text: text || id.slice(0, 13) + "…" });
}

function elapsedCell(r) {
  const attrs = { class: "num elapsed" };
  if (r.start_time && !r.end_time && r.status && ["STARTED", "RUNNING", "PAUSED"].includes(r.status)) attrs["data-start"] = r.start_time;
  return el("td", attrs, duration(r.duration_seconds));
}

// ------------------------------------------------------------------ routing and filters

function route() {
  const h = location.hash.replace(/^#/, "") || "/";
  const [path, query] = h.split("?");
  return { path: path || "/", params: new URLSearchParams(query || "") };
}

function filters() {
  return { stage: $("filter-stage").value, status: $("filter-status").value, host: $("filter-host").value };
}

// The URL is the one truth about filters: the selects show what the URL says
// (applied when their options exist), a change of a select rewrites the URL, and
// the navigation links carry the filters to the other views.
function filterQuery() {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(filters())) if (v) p.set(k, v);
  return p.toString();
}

function setHashParams() {
  const r = route();
  const keep = new URLSearchParams(r.params);
  for (const k of ["stage", "status", "host"]) keep.delete(k);
  const f = new URLSearchParams(filterQuery());
  for (const [k, v] of keep) f.set(k, v);
  const qs = f.toString();
  const next = "#" + r.path + (qs ? "?" + qs : "");
  if (next !== location.hash) history.replaceState(null, "", next);
  navLinks();
}

function navLinks() {
  const qs = filterQuery();
  for (const [id, path] of [["nav-pipeline", "/"], ["nav-timeline", "/timeline"], ["nav-grid", "/grid"], ["nav-history", "/history"]]) {
    if ($(id)) $(id).setAttribute("href", "#" + path + (qs ? "?" + qs : ""));
  }
}

// Sets the selects from the URL: a filter missing there is cleared.
function filtersFromUrl() {
  const r = route();
  S.wantFilters = {};
  for (const k of ["stage", "status", "host"]) {
    const v = r.params.get(k) || "";
    const sel = $("filter-" + k);
    if (Array.from(sel.options).some((o) => o.value === v)) sel.value = v;
    else S.wantFilters[k] = v; // its option arrives with the next status
  }
  navLinks();
}

function keeps(r, f) {
  if (f.stage && r.stage_name !== f.stage) return false;
  if (f.host && r.hostname !== f.host) return false;
  if (f.status) {
    const ok = f.status.split(",").some((s) => {
      if (s === "active") return ["STARTED", "RUNNING", "PAUSED"].includes(r.status);
      if (s === "lost") return !!r.lost;
      return r.status === s;
    });
    if (!ok) return false;
  }
  return true;
}

function fillSelect(sel, values, labels) {
  const cur = sel.value;
  const want = [""].concat(values);
  const have = Array.from(sel.options).map((o) => o.value);
  if (want.length === have.length && want.every((v, i) => v === have[i])) return;
  clear(sel);
  sel.appendChild(el("option", { value: "", text: "all" }));
  values.forEach((v, i) => sel.appendChild(el("option", { value: v, text: labels ? labels[i] : v })));
  sel.value = want.includes(cur) ? cur : "";
}

function syncFilterOptions() {
  const p = S.status;
  if (!p) return;
  const stages = p.stages.map((s) => s.stage_name);
  fillSelect($("filter-stage"), stages);
  const hosts = p.hosts.slice();
  fillSelect($("filter-host"), hosts);
  // Filters given in the URL win once the options exist.
  for (const [k, v] of Object.entries(S.wantFilters || {})) {
    const sel = $("filter-" + k);
    if (Array.from(sel.options).some((o) => o.value === v)) { sel.value = v; delete S.wantFilters[k]; }
  }
}

// ------------------------------------------------------------------ pipeline view

function taskLabel(r) {
  return $("show-scripts").checked && r.script_filename ? r.script_filename : r.task_name;
}

function renderPipeline() {
  const p = S.status;
  if (!p) return;
  const f = filters();
  const stagesBox = $("stages");
  const openState = {};
  stagesBox.querySelectorAll("details.stage").forEach((d) => { openState[d.dataset.stage] = d.open; });
  const stageNodes = [];
  const byStage = new Map();
  for (const v of p.tasks) {
    if (!byStage.has(v.stage_name)) byStage.set(v.stage_name, []);
    byStage.get(v.stage_name).push(v);
  }
  let shown = 0;
  for (const st of p.stages) {
    if (f.stage && st.stage_name !== f.stage) continue;
    const tasks = (byStage.get(st.stage_name) || []).filter((v) => keeps(v, f));
    if (!tasks.length) continue;
    shown++;
    const body = el("tbody");
    for (const v of tasks) body.appendChild(taskRow(v));
    const d = el("details", { class: "stage", "data-stage": st.stage_name, "data-key": "stage:" + st.stage_name },
      el("summary", {},
        el("span", { class: "stage-name", title: st.stage_name, text: st.stage_name }),
        badge(st.status, false),
        bar(st.percent_complete, { status: st.status, label: `${st.tasks_done}/${st.tasks_total} tasks` }),
        st.lost ? el("span", { class: "lost-flag", text: `${st.lost} lost` }) : null),
      el("table", { class: "grid" },
        el("thead", {}, el("tr", {}, ["task", "status", "progress", "current subtask", "items", "elapsed", "ETA", "host:pid", "run"].map((h) => el("th", { text: h })))),
        body));
    // Open while something runs or failed (or as the user left it).
    const auto = st.status === "RUNNING" || st.status === "FAILED" || st.status === "PARTIAL";
    d.open = st.stage_name in openState ? openState[st.stage_name] : auto || p.stages.length <= 4;
    stageNodes.push(d);
  }
  if (!shown) stageNodes.push(el("p", { class: "muted", text: p.tasks.length ? "No task matches the filters." : "No tasks registered yet." }));
  patch(stagesBox, stageNodes);

  const active = p.active.filter((v) => keeps(v, f));
  patch($("active-count"), `(${active.length})`);
  patch($("active"), active.length ? active.map(activeCard) : el("p", { class: "muted", text: "No active runs." }));

  const hosts = new Map();
  for (const v of active) {
    const h = v.hostname || "?";
    const e = hosts.get(h) || { active: 0, lost: 0, beat: null };
    e.active++;
    if (v.lost) e.lost++;
    const b = v.heartbeat_time || v.last_update;
    if (b && (!e.beat || Date.parse(b) > Date.parse(e.beat))) e.beat = b;
    hosts.set(h, e);
  }
  const hostRows = [];
  for (const [h, e] of [...hosts.entries()].sort()) {
    hostRows.push(el("tr", { class: "host-row", "data-host": h, "data-key": "host:" + h },
      el("td", { text: h }),
      el("td", { class: "num", text: e.active }),
      el("td", { class: "num" }, e.lost ? el("span", { class: "lost-flag", text: e.lost }) : "0"),
      el("td", {}, e.beat ? localTime(e.beat) + " (" + duration((serverNow() - Date.parse(e.beat)) / 1000) + " ago)" : "")));
  }
  if (!hosts.size) hostRows.push(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "None." })));
  patch($("hosts").querySelector("tbody"), hostRows);

  // Events of the runs the filters keep: a run's host and status are those of the
  // task's latest run or of the active run it belongs to.
  const runs = new Map();
  for (const v of p.tasks) if (v.run_id) runs.set(v.run_id, v);
  for (const v of p.active) runs.set(v.run_id, v);
  const evs = p.recent_events.filter((e) => keeps(runs.get(e.run_id) || { stage_name: e.stage_name, status: e.new_status }, f)).slice(-20).reverse();
  patch($("events").querySelector("tbody"), evs.map(eventRow));
}

function taskRow(v) {
  const c = v.current;
  const never = !v.run_id;
  const progress = el("td", {},
    never ? "" : bar(v.overall_percent_complete, { status: v.status, label: v.total_subtasks ? `${v.subtasks_completed}/${v.total_subtasks} subtasks` : "" }),
    c ? bar(c.percent_complete, { thin: true, title: `${c.subtask_name}: ${items(c)}` }) : null);
  return el("tr", { class: "task-row", "data-stage": v.stage_name, "data-task": v.task_name, "data-status": v.status, "data-run-id": v.run_id || "", "data-key": "task:" + JSON.stringify([v.stage_name, v.task_name]) },
    el("td", { class: "task-name", title: v.task_name }, taskLink(v.stage_name, v.task_name, taskLabel(v))),
    el("td", {}, badge(v.status, v.lost)),
    progress,
    el("td", { class: "sub" }, c ? `${c.subtask_number}. ${c.subtask_name}` : "", c && c.progress_message ? el("div", { class: "muted", text: c.progress_message }) : null),
    el("td", { class: "num" }, c ? items(c) : ""),
    never ? el("td") : elapsedCell(v),
    el("td", { class: "num", text: etaText(v) }),
    el("td", { text: hostPid(v) }),
    el("td", {}, runLink(v.run_id)));
}

function activeCard(v) {
  const subs = (v.subtasks || []);
  const body = el("tbody");
  for (const s of subs) {
    body.appendChild(el("tr", { class: "subtask-row", "data-subtask": s.subtask_number, "data-items-complete": s.items_complete, "data-status": s.status, "data-key": "sub:" + s.subtask_number },
      el("td", { class: "num", text: s.subtask_number + "." }),
      el("td", { text: s.subtask_name }),
      el("td", {}, badge(s.status, false)),
      el("td", {}, bar(s.percent_complete, { status: s.status })),
      el("td", { class: "num", text: items(s) }),
      el("td", { class: "num", text: s.rate_per_second ? count(Math.round(s.rate_per_second)) + "/s" : "" }),
      el("td", { class: "num", text: etaText(s) }),
      el("td", { class: "muted", text: s.error_message || s.progress_message || "" })));
  }
  return el("div", { class: "run-card" + (v.lost ? " lost" : ""), "data-run-id": v.run_id, "data-stage": v.stage_name, "data-task": v.task_name, "data-key": "run:" + v.run_id },
    el("div", { class: "run-head" },
      el("b", { class: "name", title: `${v.stage_name} / ${v.task_name}`, text: `${v.stage_name} / ${v.task_name}` }),
      badge(v.status, v.lost),
      bar(v.overall_percent_complete, { status: v.status }),
      el("span", { class: "muted" }, "elapsed ", el("span", { class: "elapsed", "data-start": v.start_time, text: duration(v.duration_seconds) })),
      v.eta_seconds !== null && v.eta_seconds !== undefined ? el("span", { class: "eta", text: "ETA " + etaText(v) }) : null,
      v.resources ? el("span", { class: "resources", title: "newest resource sample of the run's process", text: resourcesText(v.resources) }) : null,
      el("span", { class: "muted", text: hostPid(v) }),
      runLink(v.run_id, "details")),
    v.overall_progress_message ? el("div", { class: "muted", text: v.overall_progress_message }) : null,
    v.lost ? el("div", { class: "lost-flag", text: "Lost: the process is gone or its heartbeat is too old (`tasker reap` marks it FAILED)." }) : null,
    subs.length ? el("table", { class: "grid sub" },
      el("thead", {}, el("tr", {}, ["#", "subtask", "status", "progress", "items", "rate", "ETA", "message"].map((h) => el("th", { text: h })))),
      body) : null);
}

function eventRow(e) {
  return el("tr", { class: "event-row", "data-run-id": e.run_id, "data-event-id": e.event_id, "data-key": "ev:" + e.event_id },
    el("td", { text: localTime(e.time) }),
    el("td", {}, `${e.stage_name} / ${e.task_name}`, " ", runLink(e.run_id)),
    el("td", { text: e.subtask_number !== null && e.subtask_number !== undefined ? "#" + e.subtask_number : "" }),
    el("td", {}, e.old_status || "–", " → ", badge(e.new_status, false)),
    el("td", { text: e.message || "" }));
}

// ------------------------------------------------------------------ alerts
// The newest alerts (fired, delivered, pending, given up) under the pipeline,
// from /api/v1/alerts, refreshed with the stream at most every 5 s.

const ALERT_STATE = { delivered: "COMPLETED", pending: "PAUSED", "given up": "FAILED" };

function alertState(a) {
  if (a.delivered_at) return "delivered";
  return a.next_attempt_at ? "pending" : "given up";
}

function alertRow(a) {
  const st = alertState(a);
  return el("tr", { class: "alert-row", "data-alert-id": a.id, "data-key": "al:" + a.id + ":" + st + ":" + a.attempts },
    el("td", { text: localTime(a.fired_at) }),
    el("td", { text: a.rule }),
    el("td", { text: a.kind }),
    el("td", {}, `${a.stage} / ${a.task}`, a.run_id ? " " : "", a.run_id ? runLink(a.run_id) : ""),
    el("td", { text: a.destination }),
    el("td", {}, el("span", { class: "badge s-" + ALERT_STATE[st], text: st })),
    el("td", { text: String(a.attempts) }),
    el("td", { text: a.last_error || "" }));
}

async function loadAlerts() {
  S.lastAlertsFetch = Date.now();
  try {
    const rows = await fetchJson("/api/v1/alerts?limit=20");
    $("alerts-info").textContent = rows.length ? "" : "none recorded";
    patch($("alerts").querySelector("tbody"), rows.map(alertRow));
  } catch (e) {
    $("alerts-info").textContent = "cannot be read: " + e.message;
  }
}

// ------------------------------------------------------------------ run page

async function fetchJson(url) {
  const res = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

async function loadRun(id) {
  S.lastRunFetch = Date.now();
  const box = $("view-run");
  try {
    const d = await fetchJson("/api/v1/runs/" + encodeURIComponent(id));
    S.runDetail = d;
    renderRun(d);
    if (d.run.log_path) loadRunLog(id);
  } catch (err) {
    clear(box).appendChild(el("p", { class: "banner", text: "Cannot load run " + id + ": " + err.message }));
  }
}

function renderRun(d) {
  const r = d.run;
  const box = clear($("view-run"));
  box.appendChild(el("h2", {}, `${r.stage_name} / ${r.task_name} `, badge(r.status, r.lost)));
  box.appendChild(bar(r.overall_percent_complete, { status: r.status, label: r.total_subtasks ? `${r.subtasks_completed}/${r.total_subtasks} subtasks` : "" }));
  if (r.lost) box.appendChild(el("p", { class: "lost-flag", text: "This run looks lost: its process is gone or its heartbeat is too old." }));
  const kv = el("dl", { class: "kv" });
  const add = (k, v) => { if (v !== null && v !== undefined && v !== "") { kv.appendChild(el("dt", { text: k })); kv.appendChild(el("dd", {}, v)); } };
  add("run", r.run_id);
  add("task", taskLink(r.stage_name, r.task_name, "statistics and history of this task"));
  if (r.attempt && r.attempt > 1) add("attempt", el("span", {}, `${r.attempt}, retrying `, runLink(r.retry_of)));
  add("started", localTime(r.start_time));
  add("ended", localTime(r.end_time));
  // A lost run's clock stopped at its last heartbeat: no live counter for it.
  add("duration", el("span", r.end_time || r.lost ? {} : { class: "elapsed", "data-start": r.start_time }, duration(r.duration_seconds)));
  add("ETA", etaText(r) + (r.eta_basis ? ` (from ${{ rate: "this run's rate", history: "past runs", blend: "this run's rate and past runs" }[r.eta_basis]})` : ""));
  add("last update", localTime(r.last_update));
  add("heartbeat", localTime(r.heartbeat_time));
  add("host", r.hostname);
  add("pid", r.process_id);
  add("parent pid", r.parent_pid);
  add("user", r.user_name);
  add("version", r.version);
  add("git commit", r.git_commit ? r.git_commit + (r.git_dirty ? " (with uncommitted changes)" : "") : "");
  add("command line", r.command_line);
  add("runtime", r.runtime);
  add("tasker", r.tasker_version);
  add("script", r.script_path || r.script_filename);
  add("log", r.log_path || r.log_filename);
  add("message", r.overall_progress_message);
  add("metadata", r.metadata ? JSON.stringify(r.metadata) : "");
  box.appendChild(kv);
  if (r.error_message) {
    box.appendChild(el("h2", { text: "Error" }));
    box.appendChild(el("p", { class: "banner", id: "run-error", text: r.error_message }));
  }
  if (r.error_detail) box.appendChild(el("pre", { id: "run-error-detail", text: r.error_detail }));
  if ((d.samples || []).length) {
    box.appendChild(el("h2", { text: "Resources" }));
    const charts = el("div", { class: "charts" });
    charts.appendChild(lineChart("CPU %", d.samples, (x) => x.cpu_percent, (v) => (v < 10 ? v.toFixed(1) : Math.round(v)) + "%", "cpu-chart"));
    charts.appendChild(lineChart("Memory (resident, children included)", d.samples, (x) => x.rss_bytes + (x.children_rss_bytes || 0), bytes, "memory-chart"));
    box.appendChild(charts);
  }
  for (const [dir, title] of [["input", "Inputs"], ["output", "Outputs"]]) {
    const rows = (d.io || []).filter((x) => x.direction === dir);
    if (!rows.length) continue;
    box.appendChild(el("h2", { text: title }));
    const tb = el("tbody");
    for (const x of rows) {
      tb.appendChild(el("tr", { class: "io-row", "data-direction": dir, "data-name": x.name },
        el("td", { text: x.name }),
        el("td", { class: x.path ? "path" : "", text: x.value !== null && x.value !== undefined ? x.value : x.path || "" }),
        el("td", { class: "num", text: bytes(x.size_bytes) }),
        el("td", { text: localTime(x.modified) }),
        el("td", { class: "muted", title: x.sha256 || "", text: x.sha256 ? x.sha256.slice(0, 12) : "" })));
    }
    box.appendChild(el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, ["name", "value or file", "size", "modified", "sha-256"].map((h) => el("th", { text: h })))), tb));
  }
  if (d.subtasks.some((s) => s.start_time)) {
    box.appendChild(el("h2", { text: "Subtasks over time" }));
    box.appendChild(subtaskGantt(d));
  }
  if (r.log_path) {
    box.appendChild(el("h2", { text: "Log" }));
    box.appendChild(el("div", { id: "run-log" }, S.logCache && S.logCache.id === r.run_id ? S.logCache.node : el("p", { class: "muted", text: "Loading the log…" })));
  }
  box.appendChild(el("h2", { text: `Subtasks (${d.subtasks.length})` }));
  const sb = el("tbody");
  for (const s of d.subtasks) {
    const secs = s.start_time ? ((s.end_time ? Date.parse(s.end_time) : serverNow()) - Date.parse(s.start_time)) / 1000 : null;
    sb.appendChild(el("tr", { class: "subtask-row", "data-subtask": s.subtask_number, "data-items-complete": s.items_complete },
      el("td", { class: "num", text: s.subtask_number }),
      el("td", { text: s.subtask_name }),
      el("td", {}, badge(s.status, false)),
      el("td", {}, bar(s.percent_complete, { status: s.status })),
      el("td", { class: "num", text: items(s) }),
      el("td", { class: "num", text: duration(secs) }),
      el("td", { class: "num", text: etaText(s) }),
      el("td", {}, s.error_message ? el("span", { class: "lost-flag", text: s.error_message }) : (s.progress_message || ""))));
  }
  box.appendChild(el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, ["#", "name", "status", "progress", "items", "duration", "ETA", "message / error"].map((h) => el("th", { text: h })))), sb));
  for (const s of d.subtasks.filter((s) => s.error_detail)) {
    box.appendChild(el("h2", { text: `Error detail of subtask ${s.subtask_number}` }));
    box.appendChild(el("pre", { class: "subtask-error-detail", "data-subtask": s.subtask_number, text: s.error_detail }));
  }
  box.appendChild(el("h2", { text: `Events (${d.events.length})` }));
  const eb = el("tbody");
  for (const e of d.events) eb.appendChild(eventRow(e));
  box.appendChild(el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, ["time", "stage / task", "subtask", "change", "message"].map((h) => el("th", { text: h })))), eb));
  box.appendChild(logPanel(r.run_id));
}

// A Gantt chart of one run's subtasks: a row each, from its start to its end (or now).
function subtaskGantt(d) {
  const subs = d.subtasks.filter((s) => s.start_time);
  const now = serverNow();
  const t0 = Math.min(...subs.map((s) => Date.parse(s.start_time)));
  const t1 = Math.max(t0 + 1, ...subs.map((s) => (s.end_time ? Date.parse(s.end_time) : now)));
  const box = el("div", { class: "gantt-sub", id: "subtask-gantt" });
  const width = Math.max(480, Math.min(1200, ($("view-run").clientWidth || 900) - 10));
  const labelW = Math.min(220, width * 0.3), chartW = width - labelW - 10, rowH = 18, top = 20;
  const height = top + subs.length * rowH + 6;
  const x = (t) => labelW + chartW * (t - t0) / (t1 - t0);
  const s = svg("svg", { width, height, role: "img", "aria-label": "subtasks over time", "data-subtasks": subs.length });
  for (const [t, anchor] of [[t0, "start"], [t1, "end"]]) {
    const lab = svg("text", { x: x(t), y: 12, "text-anchor": anchor, "font-size": 11, class: "tl-label" });
    lab.textContent = localTime(new Date(t).toISOString()).slice(11) + " " + tzName();
    s.appendChild(lab);
  }
  subs.forEach((sub, i) => {
    const y = top + i * rowH;
    const lab = svg("text", { x: 4, y: y + rowH * 0.7, "font-size": 11, class: "tl-label" });
    const txt = `${sub.subtask_number}. ${sub.subtask_name}`;
    const max = Math.floor(labelW / 6.5);
    lab.textContent = txt.length > max ? txt.slice(0, max - 1) + "…" : txt;
    const tt = svg("title", {}); tt.textContent = txt; lab.appendChild(tt);
    s.appendChild(lab);
    const a = Date.parse(sub.start_time), b = sub.end_time ? Date.parse(sub.end_time) : now;
    const rect = svg("rect", { class: "sub-bar", x: x(a), y: y + 3, width: Math.max(2, x(b) - x(a)), height: rowH - 6, rx: 2,
      fill: COLORS[sub.status] || "#94a3b8", "data-subtask": sub.subtask_number, "data-status": sub.status });
    const t = svg("title", {});
    t.textContent = `${txt}\n${sub.status}\n${localTime(sub.start_time)} → ${sub.end_time ? localTime(sub.end_time) : "now"} ${tzName()} (${duration((b - a) / 1000)})`;
    rect.appendChild(t);
    s.appendChild(rect);
  });
  box.appendChild(s);
  return box;
}

// The tail of the run's log file, when the server shows logs (`serve --show-logs`).
async function loadRunLog(id) {
  let node;
  try {
    const d = await fetchJson("/api/v1/runs/" + encodeURIComponent(id) + "/log");
    node = el("div", {},
      el("p", { class: "muted", text: `${d.path} · ${bytes(d.size)}` + (d.truncated ? ` · the last ${bytes(d.size - d.from)}` : "") }),
      el("pre", { class: "log-tail", id: "run-log-text", text: d.text }));
  } catch (err) {
    node = el("p", { class: "muted", id: "run-log-off", text: err.message });
  }
  S.logCache = { id, node };
  const box = $("run-log");
  if (box) { clear(box).appendChild(node); const pre = box.querySelector("pre"); if (pre) pre.scrollTop = pre.scrollHeight; }
}

// Grid lines and labels at 0, half and the top of a chart's values.
function valueAxis(s, y, vmax, left, width, label) {
  for (const v of [0, vmax / 2, vmax]) {
    s.appendChild(svg("line", { x1: left, y1: y(v), x2: width - 4, y2: y(v), stroke: "#e2e8f0" }));
    const t = svg("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end", "font-size": 11 });
    t.textContent = label(v);
    s.appendChild(t);
  }
}

// A small line chart of one figure of a run's samples over time (SVG, no library).
function lineChart(title, samples, pick, label, id) {
  const pts = samples.map((x) => [Date.parse(x.time), pick(x)]).filter(([t, v]) => isFinite(t) && v !== null && v !== undefined && isFinite(v));
  const width = 520, height = 140, left = 64, bottom = 20, top = 8;
  const box = el("figure", { class: "chart", id });
  box.appendChild(el("figcaption", { text: title }));
  const s = svg("svg", { width, height, role: "img", "aria-label": title, "data-points": pts.length });
  if (pts.length) {
    const t0 = pts[0][0], t1 = Math.max(pts[pts.length - 1][0], t0 + 1);
    const vmax = Math.max(...pts.map((p) => p[1]), 1e-9);
    const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - 4);
    const y = (v) => top + (1 - v / vmax) * (height - top - bottom);
    valueAxis(s, y, vmax, left, width, label);
    const path = pts.map(([t, v], i) => (i ? "L" : "M") + x(t).toFixed(1) + "," + y(v).toFixed(1)).join(" ");
    s.appendChild(svg("path", { d: path, fill: "none", stroke: "#0284c7", "stroke-width": 1.5 }));
    for (const [t, anchor] of [[t0, "start"], [t1, "end"]]) {
      const lab = svg("text", { x: x(t), y: height - 4, "text-anchor": anchor, "font-size": 11 });
      lab.textContent = localTime(new Date(t).toISOString()).slice(11);
      s.appendChild(lab);
    }
  }
  box.appendChild(s);
  return box;
}

// ------------------------------------------------------------------ timeline

const COLORS = { COMPLETED: "#16a34a", FAILED: "#dc2626", RUNNING: "#0284c7", STARTED: "#0284c7", PAUSED: "#d97706", CANCELLED: "#9333ea", SKIPPED: "#94a3b8", NOT_STARTED: "#94a3b8" };

function timelineWindow() {
  const w = $("tl-window").value;
  if (w === "fit") return { from: "", to: "" };
  if (w === "custom") {
    const from = $("tl-from").value, to = $("tl-to").value;
    return { from: from ? new Date(from).toISOString() : "", to: to ? new Date(to).toISOString() : "" };
  }
  return { from: w, to: "" };
}

// The timeline's state: the page of runs loaded (the server pages them, newest
// first) and the part of its window drawn (zoom and pan work on what is loaded).
const TL = { data: null, offset: 0, view: null, zoomed: false };

async function loadTimeline() {
  S.lastTimelineFetch = Date.now();
  const f = filters();
  const w = timelineWindow();
  // Page size: 2,000 runs, or `limit` in the URL.
  const size = Math.max(1, Math.min(20000, parseInt(route().params.get("limit") || "2000", 10) || 2000));
  const q = new URLSearchParams({ limit: String(size), offset: String(TL.offset) });
  if (w.from) q.set("from", w.from);
  if (w.to) q.set("to", w.to);
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  try {
    const d = await fetchJson("/api/v1/timeline?" + q.toString());
    TL.data = d;
    if (!TL.zoomed) TL.view = [Date.parse(d.from), Date.parse(d.to)];
    renderTimeline();
  } catch (err) {
    clear($("timeline")).appendChild(el("p", { class: "banner", text: "Cannot load the timeline: " + err.message }));
  }
}

function timelinePage(step) {
  TL.offset = Math.max(0, TL.offset + step * (TL.data ? TL.data.limit : 2000));
  TL.zoomed = false;
  loadTimeline();
}

// Zooms by `factor` around the time at fraction `at` of the drawn window.
function timelineZoom(factor, at) {
  if (!TL.view) return;
  const [a, b] = TL.view, span = b - a, c = a + span * (at === undefined ? 0.5 : at);
  const next = Math.max(1000, span * factor);
  TL.view = [c - (c - a) * next / span, c + (b - c) * next / span];
  TL.zoomed = true;
  renderTimeline();
}

function timelinePan(fraction) {
  if (!TL.view) return;
  const span = TL.view[1] - TL.view[0];
  TL.view = [TL.view[0] + span * fraction, TL.view[1] + span * fraction];
  TL.zoomed = true;
  renderTimeline();
}

function renderTimeline() {
  const d = TL.data;
  if (!d) return;
  const box = clear($("timeline"));
  const [from, to] = TL.view;
  const now = Date.parse(d.now);
  const n = d.runs.length;
  const paged = d.offset > 0 || d.more;
  const info = $("tl-info");
  info.textContent = (paged
    ? `runs ${count(n ? d.offset + 1 : 0)}–${count(d.offset + n)} by start, newest first` + (d.more ? "; older runs on the next page" : "; the oldest page")
    : `${count(n)} runs`) + ` · ${localTime(new Date(from).toISOString())} – ${localTime(new Date(to).toISOString())} ${tzName()}`;
  info.setAttribute("data-paged", paged ? "1" : "0");
  info.setAttribute("data-more", d.more ? "1" : "0");
  info.setAttribute("data-offset", d.offset);
  $("tl-newer").disabled = d.offset === 0;
  $("tl-older").disabled = !d.more;
  if (!n) { box.appendChild(el("p", { class: "muted", text: d.offset ? "No older runs." : "No runs in this window." })); return; }
  const rows = [];
  const index = new Map();
  const sorted = d.runs.slice().sort((a, b) =>
    ((a.stage_order ?? 1e15) - (b.stage_order ?? 1e15)) || a.stage_name.localeCompare(b.stage_name) ||
    ((a.task_order ?? 1e15) - (b.task_order ?? 1e15)) || a.task_name.localeCompare(b.task_name));
  for (const r of sorted) {
    const key = JSON.stringify([r.stage_name, r.task_name]);
    if (!index.has(key)) { index.set(key, rows.length); rows.push({ stage: r.stage_name, task: r.task_name, runs: [] }); }
    rows[index.get(key)].runs.push(r);
  }
  const labelW = Math.min(260, Math.max(120, (box.clientWidth || 1000) * 0.25));
  const width = Math.max(480, box.clientWidth || 1000), chartW = width - labelW - 10, rowH = 20, top = 26;
  const height = top + rows.length * rowH + 8;
  const x = (t) => labelW + chartW * (t - from) / Math.max(1, to - from);
  const s = svg("svg", { width, height, role: "img", "aria-label": "Gantt timeline of runs", id: "gantt",
    "data-from": new Date(from).toISOString(), "data-to": new Date(to).toISOString(), "data-runs": n });
  const clip = svg("clipPath", { id: "tl-clip" });
  clip.appendChild(svg("rect", { x: labelW, y: 0, width: chartW + 10, height }));
  s.appendChild(clip);
  for (let i = 0; i <= 6; i++) {
    const t = from + (to - from) * i / 6, xx = x(t);
    s.appendChild(svg("line", { x1: xx, y1: top - 4, x2: xx, y2: height, class: "tl-grid" }));
    const label = svg("text", { x: xx, y: 14, "text-anchor": i === 0 ? "start" : i === 6 ? "end" : "middle" });
    const span = to - from;
    const full = localTime(new Date(t).toISOString());
    label.textContent = span < 2 * 86400e3 ? full.slice(11, span < 600e3 ? 19 : 16) : full.slice(5, 16);
    s.appendChild(label);
  }
  const bars = svg("g", { "clip-path": "url(#tl-clip)" });
  if (now >= from && now <= to) bars.appendChild(svg("line", { x1: x(now), y1: top - 4, x2: x(now), y2: height, class: "tl-now", "stroke-dasharray": "3,3" }));
  let drawn = 0;
  rows.forEach((row, i) => {
    const y = top + i * rowH;
    if (i % 2) s.insertBefore(svg("rect", { x: 0, y, width, height: rowH, class: "tl-stripe" }), s.firstChild.nextSibling);
    const label = svg("text", { x: 4, y: y + rowH * 0.68, "data-stage": row.stage, class: "tl-label" });
    const txt = `${row.stage} / ${row.task}`;
    const maxChars = Math.floor(labelW / 6.5);
    label.textContent = txt.length > maxChars ? txt.slice(0, maxChars - 1) + "…" : txt;
    const tt = svg("title", {}); tt.textContent = txt; label.appendChild(tt);
    s.appendChild(label);
    for (const r of row.runs) {
      if (!r.start_time) continue;
      const t0 = Date.parse(r.start_time), t1 = r.end_time ? Date.parse(r.end_time) : now;
      if (t1 < from || t0 > to) continue; // outside what is drawn (zoomed or panned away)
      drawn++;
      const x0 = x(t0), x1 = Math.max(x0 + 2, x(t1));
      const rect = svg("rect", { class: "tl-bar", x: x0, y: y + 3, width: x1 - x0, height: rowH - 6, rx: 2,
        fill: r.lost ? "#7f1d1d" : (COLORS[r.status] || "#94a3b8"), "data-run-id": r.run_id, "data-stage": r.stage_name, "data-status": r.status });
      const t = svg("title", {});
      t.textContent = `${r.stage_name} / ${r.task_name}\n${r.status}${r.lost ? " (LOST)" : ""}\n${localTime(r.start_time)} → ${r.end_time ? localTime(r.end_time) : "now"} ${tzName()} (${duration(r.duration_seconds)})\nhost ${hostPid(r)}${r.error_message ? "\n" + r.error_message : ""}`;
      rect.appendChild(t);
      rect.addEventListener("click", () => { location.hash = "#/run/" + encodeURIComponent(r.run_id); });
      bars.appendChild(rect);
    }
  });
  s.appendChild(bars);
  s.setAttribute("data-drawn", drawn);
  s.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const rect = s.getBoundingClientRect();
    const at = Math.max(0, Math.min(1, (ev.clientX - rect.left - labelW) / chartW));
    timelineZoom(ev.deltaY < 0 ? 0.8 : 1.25, at);
  }, { passive: false });
  // Drag to pan.
  s.addEventListener("mousedown", (ev) => {
    const x0 = ev.clientX, v0 = TL.view.slice();
    const move = (e) => {
      const dt = (x0 - e.clientX) / chartW * (v0[1] - v0[0]);
      TL.view = [v0[0] + dt, v0[1] + dt];
      TL.zoomed = true;
    };
    const up = () => { window.removeEventListener("mousemove", move); window.removeEventListener("mouseup", up); if (TL.zoomed) renderTimeline(); };
    window.addEventListener("mousemove", move);
    window.addEventListener("mouseup", up);
  });
  box.appendChild(s);
}

// ------------------------------------------------------------------ task page

function taskLink(stage, task, label) {
  return el("a", { href: "#/task/" + encodeURIComponent(stage) + "/" + encodeURIComponent(task), text: label });
}

async function loadTask(stage, task) {
  const box = $("view-task");
  const q = new URLSearchParams({ stage, task });
  try {
    const [stats, runs] = await Promise.all([
      fetchJson("/api/v1/stats?" + q.toString()),
      fetchJson("/api/v1/runs?" + q.toString() + "&limit=200"),
    ]);
    renderTask(stage, task, stats[0] || null, runs);
  } catch (err) {
    clear(box).appendChild(el("p", { class: "banner", text: `Cannot load ${stage} / ${task}: ${err.message}` }));
  }
}

function renderTask(stage, task, st, runs) {
  const box = clear($("view-task"));
  box.appendChild(el("h2", { text: `${stage} / ${task}` }));
  if (!st) {
    box.appendChild(el("p", { class: "muted", text: "This task has no runs yet." }));
    return;
  }
  const kv = el("dl", { class: "kv", id: "task-stats" });
  const add = (k, v) => { if (v !== null && v !== undefined && v !== "") { kv.appendChild(el("dt", { text: k })); kv.appendChild(el("dd", { "data-stat": k }, String(v))); } };
  add("runs", st.runs === st.logical_runs ? st.runs : `${st.logical_runs} (${st.runs} attempts)`);
  add("success rate", st.success_rate === null ? "" : Math.round(st.success_rate * 100) + "%");
  add("completed", st.completed);
  add("failed", st.failed + st.lost ? `${st.failed + st.lost}${st.lost ? ` (${st.lost} lost)` : ""}` : "0");
  add("retried", st.retried ? `${st.retried} (mean ${st.mean_attempts.toFixed(2)} attempts)` : "");
  add("duration p50 / p90 / p95", st.duration_p50 === null ? "" : [st.duration_p50, st.duration_p90, st.duration_p95].map(fineDuration).join(" / "));
  add("longest", fineDuration(st.duration_max));
  add("items per second", st.items_per_second === null ? "" : count(Math.round(st.items_per_second)));
  add("last success", localTime(st.last_success));
  add("last failure", localTime(st.last_failure));
  box.appendChild(kv);
  box.appendChild(el("h2", { text: "Duration of each run" }));
  box.appendChild(trendChart(runs.slice().reverse()));
  box.appendChild(el("h2", { text: `Latest runs (${runs.length})` }));
  const tb = el("tbody");
  for (const r of runs) {
    tb.appendChild(el("tr", { class: "task-run-row", "data-run-id": r.run_id, "data-attempt": r.attempt || 1 },
      el("td", { text: localTime(r.start_time) }),
      el("td", {}, badge(r.status, r.lost)),
      el("td", { class: "num", text: r.attempt && r.attempt > 1 ? "attempt " + r.attempt : "" }),
      el("td", { class: "num", text: duration(r.duration_seconds) }),
      el("td", { text: hostPid(r) }),
      el("td", {}, runLink(r.run_id))));
  }
  box.appendChild(el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, ["started", "status", "attempt", "duration", "host:pid", "run"].map((h) => el("th", { text: h })))), tb));
}

// Each run's duration against its start: completed runs in green, failed in red.
function trendChart(runs) {
  const pts = runs.filter((r) => r.start_time && r.duration_seconds !== null && r.duration_seconds !== undefined && !["STARTED", "RUNNING", "PAUSED"].includes(r.status));
  const width = 640, height = 180, left = 64, bottom = 20, top = 8;
  const s = svg("svg", { width, height, role: "img", "aria-label": "duration of each run", id: "task-trend", "data-points": pts.length });
  if (!pts.length) return s;
  const t0 = Date.parse(pts[0].start_time), t1 = Math.max(Date.parse(pts[pts.length - 1].start_time), t0 + 1);
  const vmax = Math.max(...pts.map((r) => r.duration_seconds), 1e-9);
  const x = (t) => left + (pts.length === 1 ? (width - left) / 2 : ((t - t0) / (t1 - t0)) * (width - left - 8));
  const y = (v) => top + (1 - v / vmax) * (height - top - bottom);
  valueAxis(s, y, vmax, left, width, fineDuration);
  const ok = pts.filter((r) => r.status === "COMPLETED");
  if (ok.length > 1) {
    const d = ok.map((r, i) => (i ? "L" : "M") + x(Date.parse(r.start_time)).toFixed(1) + "," + y(r.duration_seconds).toFixed(1)).join(" ");
    s.appendChild(svg("path", { d, fill: "none", stroke: "#16a34a", "stroke-opacity": 0.5 }));
  }
  for (const r of pts) {
    const c = svg("circle", { cx: x(Date.parse(r.start_time)), cy: y(r.duration_seconds), r: 3, fill: COLORS[r.status] || "#64748b", class: "trend-point", "data-status": r.status, "data-run-id": r.run_id });
    const tt = svg("title", {}); tt.textContent = `${localTime(r.start_time)} ${r.status} ${fineDuration(r.duration_seconds)}`; c.appendChild(tt);
    c.addEventListener("click", () => { location.hash = "#/run/" + encodeURIComponent(r.run_id); });
    s.appendChild(c);
  }
  return s;
}

// ------------------------------------------------------------------ history

// History: its own filters live in the URL next to the shared ones (q, tasks,
// statuses, since, until, sort, dir, offset); the server pages, sorts and filters.
const HIST = { offset: 0, sort: "start", dir: "desc", last: 0, loading: false };

function multi(sel) { return Array.from(sel.selectedOptions).map((o) => o.value); }

function historyQuery() {
  const q = new URLSearchParams({ limit: $("hist-limit").value, offset: String(HIST.offset), sort: HIST.sort, dir: HIST.dir });
  const f = filters();
  if (f.stage) q.set("stage", f.stage);
  if (f.host) q.set("host", f.host);
  const statuses = multi($("hist-statuses"));
  // The shared status filter and History's own: both apply (the server takes one list).
  const shared = f.status ? [f.status] : [];
  const st = shared.length && statuses.length ? statuses.filter((x) => x === f.status) : shared.concat(statuses);
  if (shared.length && statuses.length && !st.length) return null; // nothing can match both
  if (st.length) q.set("status", st.join(","));
  const tasks = multi($("hist-tasks"));
  if (tasks.length) q.set("task", tasks.join(","));
  if ($("hist-q").value.trim()) q.set("q", $("hist-q").value.trim());
  if ($("hist-since").value) q.set("since", new Date($("hist-since").value).toISOString());
  if ($("hist-until").value) q.set("until", new Date($("hist-until").value).toISOString());
  return q;
}

// History's controls to and from the URL.
function historyToUrl() {
  const r = route();
  const p = new URLSearchParams(r.params);
  const set = (k, v) => (v ? p.set(k, v) : p.delete(k));
  set("q", $("hist-q").value.trim());
  set("tasks", multi($("hist-tasks")).join(","));
  set("statuses", multi($("hist-statuses")).join(","));
  set("since", $("hist-since").value);
  set("until", $("hist-until").value);
  set("sort", HIST.sort === "start" ? "" : HIST.sort);
  set("dir", HIST.dir === "desc" ? "" : HIST.dir);
  set("offset", HIST.offset ? String(HIST.offset) : "");
  set("rows", $("hist-limit").value === "100" ? "" : $("hist-limit").value);
  const qs = p.toString();
  history.replaceState(null, "", "#" + r.path + (qs ? "?" + qs : ""));
}

function historyFromUrl() {
  const p = route().params;
  $("hist-q").value = p.get("q") || "";
  const pick = (sel, list) => { for (const o of sel.options) o.selected = list.includes(o.value); };
  pick($("hist-statuses"), (p.get("statuses") || "").split(",").filter(Boolean));
  HIST.wantTasks = (p.get("tasks") || "").split(",").filter(Boolean);
  historyTaskOptions();
  $("hist-since").value = p.get("since") || "";
  $("hist-until").value = p.get("until") || "";
  HIST.sort = p.get("sort") || "start";
  HIST.dir = p.get("dir") || "desc";
  HIST.offset = parseInt(p.get("offset") || "0", 10) || 0;
  const rows = String(Math.max(1, Math.min(20000, parseInt(p.get("rows") || "100", 10) || 100)));
  const lim = $("hist-limit");
  if (!Array.from(lim.options).some((o) => o.value === rows)) lim.appendChild(el("option", { value: rows, text: rows }));
  lim.value = rows;
}

function historyTaskOptions() {
  const sel = $("hist-tasks");
  const keep = new Set(HIST.wantTasks || multi(sel));
  const names = S.status ? [...new Set(S.status.tasks.map((v) => v.task_name))].sort() : [];
  for (const t of keep) if (!names.includes(t)) names.push(t);
  const have = Array.from(sel.options).map((o) => o.value);
  if (names.length !== have.length || names.some((n, i) => n !== have[i])) {
    clear(sel);
    for (const n of names) sel.appendChild(el("option", { value: n, text: n, title: n }));
  }
  for (const o of sel.options) o.selected = keep.has(o.value);
  HIST.wantTasks = null;
}

function historyChanged(resetPage) {
  if (resetPage) HIST.offset = 0;
  historyToUrl();
  loadHistory();
}

async function loadHistory(quiet) {
  if (HIST.loading) return;
  HIST.loading = true;
  HIST.last = Date.now();
  const body = $("history").querySelector("tbody");
  for (const th of $("history").querySelectorAll("th[data-sort]")) {
    th.className = th.dataset.sort === HIST.sort ? "sorted " + HIST.dir : "";
    th.setAttribute("aria-sort", th.dataset.sort === HIST.sort ? (HIST.dir === "asc" ? "ascending" : "descending") : "none");
  }
  try {
    const hq = historyQuery();
    const d = hq ? await fetchJson("/api/v1/history?" + hq.toString()) : { rows: [], offset: 0, more: false, total: 0 };
    const rows = d.rows.map((r) => el("tr", { class: "history-row", "data-stage": r.stage_name, "data-task": r.task_name, "data-status": r.status, "data-run-id": r.run_id, "data-key": "h:" + r.run_id },
      el("td", { text: localTime(r.start_time) }),
      el("td", { class: "name-cell", title: r.stage_name }, el("span", { text: r.stage_name })),
      el("td", { class: "name-cell", title: r.task_name }, el("span", { text: r.task_name })),
      el("td", {}, badge(r.status, r.lost)),
      el("td", { class: "num", text: duration(r.duration_seconds) }),
      el("td", { class: "narrow-hide" }, bar(r.overall_percent_complete, { status: r.status })),
      el("td", { text: hostPid(r) }),
      el("td", {}, runLink(r.run_id))));
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 8, class: "muted", text: "No runs match." })));
    patch(body, rows);
    const n = d.rows.length;
    const info = $("hist-info");
    info.textContent = `rows ${count(n ? d.offset + 1 : 0)}–${count(d.offset + n)}` + (d.total !== null && d.total !== undefined ? ` of ${count(d.total)}` : d.more ? ", more on the next page" : "") + ` · times ${tzName()}`;
    info.setAttribute("data-more", d.more ? "1" : "0");
    $("hist-prev").disabled = d.offset === 0;
    $("hist-next").disabled = !d.more;
  } catch (err) {
    if (!quiet) patch(body, el("tr", {}, el("td", { colspan: 8, class: "banner", text: err.message })));
  } finally {
    HIST.loading = false;
  }
}

// ------------------------------------------------------------------ grid

// Runs × tasks like Airflow's grid: a row per task, a column per run slot (the
// task's newest runs, newest on the right), each cell coloured by status and
// opening its run.
async function loadGrid() {
  const f = filters();
  const q = new URLSearchParams({ per_task: $("grid-limit").value });
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  try {
    const d = await fetchJson("/api/v1/grid?" + q.toString());
    renderGrid(d);
  } catch (err) {
    clear($("grid")).appendChild(el("p", { class: "banner", text: "Cannot load the grid: " + err.message }));
  }
}

function renderGrid(d) {
  const cols = d.per_task;
  const head = el("tr", {}, el("th", { text: "stage / task" }));
  for (let i = cols; i >= 1; i--) head.appendChild(el("th", { class: "grid-col", text: i === 1 ? "latest" : "" }));
  const rows = d.tasks.map((t) => {
    const tr = el("tr", { class: "grid-row", "data-stage": t.stage_name, "data-task": t.task_name, "data-key": "g:" + JSON.stringify([t.stage_name, t.task_name]) },
      el("td", { class: "task-name", title: `${t.stage_name} / ${t.task_name}` }, taskLink(t.stage_name, t.task_name, `${t.stage_name} / ${t.task_name}`)));
    const runs = t.runs.slice().reverse(); // oldest on the left
    for (let i = 0; i < cols - runs.length; i++) tr.appendChild(el("td", { class: "grid-cell empty" }));
    for (const r of runs) {
      const st = r.lost ? "LOST" : r.status;
      tr.appendChild(el("td", { class: "grid-cell" },
        el("a", { class: "cell s-" + st, href: "#/run/" + encodeURIComponent(r.run_id), "data-run-id": r.run_id, "data-status": r.status,
          title: `${t.stage_name} / ${t.task_name}\n${st} · ${localTime(r.start_time)} ${tzName()} · ${duration(r.duration_seconds)}` })));
    }
    return tr;
  });
  const box = $("grid");
  let table = box.querySelector("table");
  if (!table) { table = el("table", { class: "grid runs-grid", id: "runs-grid" }, el("thead"), el("tbody")); clear(box).appendChild(table); }
  patch(table.querySelector("thead"), head);
  patch(table.querySelector("tbody"), rows.length ? rows : [el("tr", {}, el("td", { class: "muted", text: "No runs match." }))]);
  $("grid-info").textContent = `${d.tasks.length} tasks · up to ${cols} runs each from the newest ${count(cols * Math.max(1, d.tasks.length))} runs, oldest left · ${tzName()} · click a cell for its run`;
}

// ------------------------------------------------------------------ DAG page
// The core ranks tasks (`rank`: the longest path from a task without
// dependencies); each rank is a column here. Within a column, tasks are ordered
// by the barycentre of their neighbours in the previous column, then the next,
// a few sweeps each way (the ordering step of Sugiyama's layered drawing; see
// ARCHITECTURE.md for why no layout library is vendored).

const DAG_FILL = { NOT_STARTED: "#ffffff", STARTED: "#90caf9", RUNNING: "#90caf9", PAUSED: "#fff59d",
  COMPLETED: "#a5d6a7", FAILED: "#ef9a9a", SKIPPED: "#e0e0e0", CANCELLED: "#bcaaa4" };
function dagFill(n) { return n.lost ? "#ffcc80" : (DAG_FILL[n.status] || "#ffffff"); }

function dagLayout(d) {
  const cols = [];
  for (const n of d.nodes) (cols[n.rank] = cols[n.rank] || []).push(n);
  for (let i = 0; i < cols.length; i++) cols[i] = cols[i] || [];
  const ups = new Map(), downs = new Map();
  for (const n of d.nodes) { ups.set(n.id, []); downs.set(n.id, []); }
  for (const e of d.edges) {
    if (ups.has(e.to) && downs.has(e.from)) { ups.get(e.to).push(e.from); downs.get(e.from).push(e.to); }
  }
  const pos = new Map();
  cols.forEach((c) => c.forEach((n, i) => pos.set(n.id, i)));
  const sweep = (ranks, neighbours) => {
    for (const r of ranks) {
      const key = new Map(cols[r].map((n, i) => {
        const ns = neighbours.get(n.id);
        return [n.id, ns.length ? ns.reduce((a, m) => a + pos.get(m), 0) / ns.length : i];
      }));
      cols[r].sort((a, b) => key.get(a.id) - key.get(b.id));
      cols[r].forEach((n, i) => pos.set(n.id, i));
    }
  };
  const down = [...Array(cols.length).keys()].slice(1);
  const up = down.map((r) => r - 1).reverse();
  for (let k = 0; k < 4; k++) { sweep(down, ups); sweep(up, downs); }
  return cols;
}

function dagNote(n) {
  if (n.blocked) return "blocked by " + n.blocked_by.join(", ");
  if (n.waiting) return "waiting for " + n.waiting_for.join(", ");
  return "";
}

function renderDag(d) {
  const box = clear($("dag"));
  const blocked = d.nodes.filter((n) => n.blocked).length, waiting = d.nodes.filter((n) => n.waiting).length;
  $("dag-info").textContent = `${d.nodes.length} tasks · ${d.edges.length} dependencies · ${blocked} blocked · ${waiting} waiting`;
  if (!d.nodes.length) { box.appendChild(el("p", { class: "muted", text: "No registered tasks." })); return; }
  const cols = dagLayout(d);
  const W = 210, H = 48, GX = 70, GY = 16, PAD = 12;
  const rows = Math.max(...cols.map((c) => c.length));
  const width = cols.length * (W + GX) - GX + 2 * PAD, height = rows * (H + GY) - GY + 2 * PAD;
  const s = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, id: "dag-svg" });
  const defs = svg("defs", {});
  const marker = svg("marker", { id: "dag-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
  marker.appendChild(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#64748b" }));
  defs.appendChild(marker);
  s.appendChild(defs);
  const at = new Map();
  cols.forEach((c, r) => c.forEach((n, i) => at.set(n.id, { x: PAD + r * (W + GX), y: PAD + i * (H + GY) })));
  for (const e of d.edges) {
    const a = at.get(e.from), b = at.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
    const p = svg("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, class: "dag-edge", "marker-end": "url(#dag-arrow)" });
    p.setAttribute("data-from", e.from);
    p.setAttribute("data-to", e.to);
    s.appendChild(p);
  }
  for (const c of cols) for (const n of c) {
    const { x, y } = at.get(n.id);
    const g = svg("g", { class: "dag-node" + (n.blocked ? " blocked" : n.waiting ? " waiting" : ""), transform: `translate(${x},${y})` });
    g.setAttribute("data-id", n.id);
    g.setAttribute("data-status", n.lost ? "LOST" : n.status);
    const title = svg("title", {});
    const note = dagNote(n);
    title.textContent = n.id + "\n" + (n.lost ? "LOST" : n.status) + (note ? "\n" + note : "") +
      (n.wait_seconds != null ? "\nwaited " + duration(n.wait_seconds) : "");
    g.appendChild(title);
    g.appendChild(svg("rect", { width: W, height: H, rx: 6, fill: dagFill(n) }));
    const name = svg("text", { x: 8, y: 17, class: "dag-name" });
    name.textContent = n.task_name.length > 28 ? n.task_name.slice(0, 27) + "…" : n.task_name;
    g.appendChild(name);
    const pct = ["STARTED", "RUNNING", "PAUSED"].includes(n.status) && n.percent != null ? ` ${Math.round(n.percent)}%` : "";
    const eta = n.eta_seconds != null ? " · ETA " + duration(n.eta_seconds) : "";
    const line = svg("text", { x: 8, y: 33, class: "dag-sub" });
    line.textContent = n.stage_name + " · " + (n.lost ? "LOST" : n.status) + pct + eta;
    g.appendChild(line);
    if (note) {
      const nt = svg("text", { x: 8, y: 44, class: "dag-note" });
      nt.textContent = note.length > 34 ? note.slice(0, 33) + "…" : note;
      g.appendChild(nt);
    }
    g.addEventListener("click", () => {
      location.hash = n.run_id ? "#/run/" + encodeURIComponent(n.run_id)
        : "#/task/" + encodeURIComponent(n.stage_name) + "/" + encodeURIComponent(n.task_name);
    });
    s.appendChild(g);
  }
  box.appendChild(s);
}

async function loadDag() {
  S.lastDagFetch = Date.now();
  try {
    renderDag(await fetchJson("/api/v1/dag"));
  } catch (e) {
    clear($("dag")).appendChild(el("p", { class: "banner", text: "Cannot read the graph: " + e.message }));
  }
}

// ------------------------------------------------------------------ wiring

function show() {
  const r = route();
  filtersFromUrl();
  const views = { "/": "view-pipeline", "/dag": "view-dag", "/timeline": "view-timeline", "/history": "view-history", "/grid": "view-grid" };
  let id = views[r.path];
  if (!id && r.path.startsWith("/run/")) id = "view-run";
  if (!id && r.path.startsWith("/task/")) id = "view-task";
  if (!id) id = "view-pipeline";
  for (const v of ["view-pipeline", "view-dag", "view-timeline", "view-history", "view-grid", "view-run", "view-task"]) $(v).hidden = v !== id;
  $("filters").hidden = id === "view-run" || id === "view-task" || id === "view-dag"; // one run, task or the graph: nothing to filter
  $("nav-pipeline").className = id === "view-pipeline" ? "on" : "";
  $("nav-dag").className = id === "view-dag" ? "on" : "";
  $("nav-timeline").className = id === "view-timeline" ? "on" : "";
  $("nav-history").className = id === "view-history" ? "on" : "";
  $("nav-grid").className = id === "view-grid" ? "on" : "";
  if (id === "view-pipeline") { renderPipeline(); loadAlerts(); }
  if (id === "view-dag") loadDag();
  if (id === "view-timeline") loadTimeline();
  if (id === "view-history") { historyFromUrl(); loadHistory(); }
  if (id === "view-grid") loadGrid();
  if (id === "view-run") {
    clear($("view-run")).appendChild(el("p", { class: "muted", text: "Loading…" }));
    loadRun(decodeURIComponent(r.path.slice(5)));
  }
  if (id === "view-task") {
    clear($("view-task")).appendChild(el("p", { class: "muted", text: "Loading…" }));
    const [stage, task] = r.path.slice(6).split("/").map(decodeURIComponent);
    loadTask(stage, task || "");
  }
}

function onStatus(p) {
  S.status = p;
  S.receivedAt = Date.now();
  S.serverOffset = Date.parse(p.generated_at) - Date.now();
  S.lastMessage = Date.now();
  $("banner").hidden = true;
  $("updated").textContent = "updated " + localTime(p.generated_at) + " " + tzName();
  $("footer").textContent = `${p.database} · ${p.backend} · tasker ${p.version} · last event #${p.last_event_id}` + (p.retention ? " · " + retentionText(p.retention) : "");
  syncFilterOptions();
  const r = route();
  if (r.path === "/" || r.path === "") {
    renderPipeline();
    if (Date.now() - (S.lastAlertsFetch || 0) > 5000) loadAlerts();
  }
  if (r.path.startsWith("/run/") && S.runDetail) {
    const id = decodeURIComponent(r.path.slice(5));
    const active = p.active.some((v) => v.run_id === id);
    const wasActive = ["STARTED", "RUNNING", "PAUSED"].includes(S.runDetail.run.status);
    if ((active || wasActive) && Date.now() - S.lastRunFetch > 900) loadRun(id);
  }
  if (r.path === "/timeline" && $("tl-window").value !== "custom" && Date.now() - S.lastTimelineFetch > 5000) loadTimeline();
  // History and the grid follow new runs too (at most every 3 s; the table is
  // patched, so a selection in it stays).
  if (r.path === "/history") {
    historyTaskOptions();
    if (Date.now() - HIST.last > 3000) loadHistory(true);
  }
  if (r.path === "/grid" && Date.now() - (S.lastGridFetch || 0) > 3000) { S.lastGridFetch = Date.now(); loadGrid(); }
  // The graph follows every change the stream reports, at most once a second.
  if (r.path === "/dag" && Date.now() - S.lastDagFetch > 900) loadDag();
}

function connect() {
  const es = new EventSource("/api/v1/stream");
  const conn = $("conn");
  es.addEventListener("open", () => { conn.className = "conn conn-live"; conn.textContent = "live"; });
  es.addEventListener("status", (ev) => {
    conn.className = "conn conn-live"; conn.textContent = "live";
    try { onStatus(JSON.parse(ev.data)); } catch (e) { console.error(e); }
  });
  es.addEventListener("events", () => { S.lastMessage = Date.now(); });
  es.addEventListener("db_error", (ev) => {
    // The server is up but cannot read the database: the badge must not say "live".
    conn.className = "conn conn-down"; conn.textContent = "database unreachable";
    const b = $("banner");
    b.hidden = false;
    let msg = "";
    try { msg = JSON.parse(ev.data).error; } catch (e) { msg = String(ev.data); }
    b.textContent = "The database cannot be read right now: " + msg + " (showing the last data read).";
  });
  es.addEventListener("error", () => {
    conn.className = "conn conn-down";
    conn.textContent = "connection lost, retrying…";
  });
}

function tick() {
  // Elapsed times of active runs move every second without a round trip.
  const now = serverNow();
  document.querySelectorAll("[data-start]").forEach((e) => {
    if (e.tagName === "svg" || e instanceof SVGElement) return;
    const s = Date.parse(e.getAttribute("data-start"));
    if (isFinite(s)) e.textContent = duration((now - s) / 1000);
  });
  if (S.lastMessage && Date.now() - S.lastMessage > 20000) {
    $("conn").className = "conn conn-down";
    $("conn").textContent = "no updates for " + Math.round((Date.now() - S.lastMessage) / 1000) + "s";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["filter-stage", "filter-status", "filter-host"]) {
    $(id).addEventListener("change", () => { setHashParams(); show(); });
  }
  $("show-scripts").addEventListener("change", renderPipeline);
  $("tl-window").addEventListener("change", () => {
    $("tl-custom").hidden = $("tl-window").value !== "custom";
    TL.offset = 0; TL.zoomed = false;
    if ($("tl-window").value !== "custom") loadTimeline();
  });
  $("tl-apply").addEventListener("click", () => { TL.offset = 0; TL.zoomed = false; loadTimeline(); });
  $("tl-zoom-in").addEventListener("click", () => timelineZoom(0.5));
  $("tl-zoom-out").addEventListener("click", () => timelineZoom(2));
  $("tl-left").addEventListener("click", () => timelinePan(-0.25));
  $("tl-right").addEventListener("click", () => timelinePan(0.25));
  $("tl-reset").addEventListener("click", () => { TL.zoomed = false; if (TL.data) { TL.view = [Date.parse(TL.data.from), Date.parse(TL.data.to)]; renderTimeline(); } });
  $("tl-newer").addEventListener("click", () => timelinePage(-1));
  $("tl-older").addEventListener("click", () => timelinePage(1));
  $("hist-limit").addEventListener("change", () => historyChanged(true));
  let typing = 0;
  $("hist-q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => historyChanged(true), 250); });
  for (const id of ["hist-tasks", "hist-statuses", "hist-since", "hist-until"]) $(id).addEventListener("change", () => historyChanged(true));
  $("hist-prev").addEventListener("click", () => { HIST.offset = Math.max(0, HIST.offset - parseInt($("hist-limit").value, 10)); historyChanged(false); });
  $("hist-next").addEventListener("click", () => { HIST.offset += parseInt($("hist-limit").value, 10); historyChanged(false); });
  for (const th of $("history").querySelectorAll("th[data-sort]")) {
    th.addEventListener("click", () => {
      if (HIST.sort === th.dataset.sort) HIST.dir = HIST.dir === "desc" ? "asc" : "desc";
      else { HIST.sort = th.dataset.sort; HIST.dir = th.dataset.sort === "start" || th.dataset.sort === "duration" ? "desc" : "asc"; }
      historyChanged(true);
    });
  }
  $("grid-limit").addEventListener("change", loadGrid);
  try { $("tz-utc").checked = localStorage.getItem("tasker-utc") === "1"; } catch (e) { /* storage off */ }
  $("tz-utc").addEventListener("change", () => {
    try { localStorage.setItem("tasker-utc", $("tz-utc").checked ? "1" : "0"); } catch (e) { /* storage off */ }
    show();
  });
  window.addEventListener("hashchange", show);
  show();
  connect();
  setInterval(tick, 1000);
  setInterval(pollLogs, 1000);
});

// ------------------------------------------------------------------ run logs
// The run page's log panel: the newest lines, then every new line (from any
// process or host) polled by id once a second, with a level filter; and the
// items that failed or were skipped. One panel per run, kept across re-renders
// of the page. Lines are text nodes: markup and control characters in a log
// line are shown as they are, never interpreted.

const LOG_KEEP = 2000; // lines kept on the page

function logPanel(runId) {
  if (S.logs && S.logs.runId === runId) { refreshItems(); return S.logs.panel; }
  const level = el("select", { id: "log-level", "aria-label": "least important level shown" });
  for (const [v, label] of [["", "all levels"], ["info", "info and above"], ["warn", "warnings and errors"], ["error", "errors"]]) {
    level.appendChild(el("option", { value: v, text: label }));
  }
  const lines = el("div", { id: "run-log", class: "log", role: "log" });
  const items = el("div", { id: "run-items" });
  const panel = el("section", { id: "log-panel" },
    el("h2", {}, "Log ", level, " ", el("span", { id: "log-count", class: "muted" })),
    lines, items);
  S.logs = { runId, panel, lines, items, lastId: null, busy: false, level: "" };
  level.addEventListener("change", () => {
    S.logs.level = level.value;
    S.logs.lastId = null;
    clear(S.logs.lines);
    pollLogs();
  });
  pollLogs();
  refreshItems();
  return panel;
}

async function pollLogs() {
  const L = S.logs;
  if (!L || L.busy || !document.body.contains(L.panel)) return;
  L.busy = true;
  try {
    const q = new URLSearchParams();
    if (L.level) q.set("level", L.level);
    if (L.lastId === null) q.set("limit", "500"); else { q.set("after", String(L.lastId)); q.set("limit", "1000"); }
    const rows = await fetchJson("/api/v1/runs/" + encodeURIComponent(L.runId) + "/logs?" + q);
    if (S.logs !== L) return;
    if (L.lastId === null && !rows.length) {
      clear(L.lines).appendChild(el("p", { class: "muted", id: "log-empty", text: "No log lines yet." }));
    }
    if (rows.length) {
      const empty = $("log-empty");
      if (empty) empty.remove();
      const atEnd = L.lines.scrollTop + L.lines.clientHeight >= L.lines.scrollHeight - 4;
      for (const x of rows) L.lines.appendChild(logLine(x));
      while (L.lines.childNodes.length > LOG_KEEP) L.lines.removeChild(L.lines.firstChild);
      L.lastId = rows[rows.length - 1].log_id;
      if (atEnd) L.lines.scrollTop = L.lines.scrollHeight;
    } else if (L.lastId === null) {
      L.lastId = 0;
    }
    $("log-count").textContent = L.lines.querySelectorAll(".log-line").length + " lines shown";
  } catch (err) {
    $("log-count").textContent = "cannot read the log: " + err.message;
  } finally {
    L.busy = false;
  }
}

function logLine(x) {
  const who = (x.hostname || "") + (x.process_id ? ":" + x.process_id : "");
  return el("div", { class: "log-line lv-" + x.level + (x.dropped_lines ? " log-marker" : ""), "data-log-id": x.log_id, "data-level": x.level },
    el("span", { class: "log-time muted", text: localTime(x.time) }), " ",
    el("span", { class: "log-level", text: x.level.toUpperCase() }), " ",
    el("span", { class: "log-who muted", text: who + (x.subtask_number ? " #" + x.subtask_number : "") }), " ",
    el("span", { class: "log-msg", text: x.message }));
}

async function refreshItems() {
  const L = S.logs;
  if (!L) return;
  try {
    const d = await fetchJson("/api/v1/runs/" + encodeURIComponent(L.runId) + "/items?outcome=failed");
    if (S.logs !== L) return;
    clear(L.items);
    const failed = d.counts.filter((c) => c.outcome === "failed");
    if (!failed.length) return;
    const total = failed.reduce((n, c) => n + c.total, 0);
    L.items.appendChild(el("h2", { text: `Failed items (${total})` }));
    const tb = el("tbody");
    for (const x of d.items) {
      tb.appendChild(el("tr", { class: "failed-item", "data-subtask": x.subtask_number },
        el("td", { class: "num", text: x.subtask_number }),
        el("td", { class: "item-key", text: x.item_key }),
        el("td", { class: "item-reason", text: x.reason || "" }),
        el("td", { text: localTime(x.time) })));
    }
    L.items.appendChild(el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, ["subtask", "item", "error", "time"].map((h) => el("th", { text: h })))), tb));
    for (const c of failed.filter((c) => c.kept < c.total)) {
      L.items.appendChild(el("p", { class: "muted", text: `subtask ${c.subtask_number}: ${c.total} failed, the first ${c.kept} listed` }));
    }
  } catch (err) {
    clear(L.items).appendChild(el("p", { class: "muted", text: "cannot read failed items: " + err.message }));
  }
}
