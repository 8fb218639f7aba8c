// The live tail: follows /api/live (server-sent events) and prepends new events to the table.
// Every stored value goes into the page through textContent or an attribute, never as HTML.
"use strict";
(function () {
  const MAX_ROWS = 1000;
  const tbody = document.getElementById("live-rows");
  const status = document.getElementById("live-status");
  const pause = document.getElementById("live-pause");
  const sessionFilter = document.getElementById("live-session");
  const agentFilter = document.getElementById("live-agent");
  const count = document.getElementById("live-count");
  const keys = new Set();
  const held = [];
  let paused = false;

  for (const tr of tbody.rows) keys.add(tr.dataset.key);

  function visible(tr) {
    const run = sessionFilter.value.trim();
    const agent = agentFilter.value;
    return (!run || tr.dataset.run.includes(run)) && (!agent || tr.dataset.agent === agent);
  }

  function cell(tr, text, className) {
    const td = tr.insertCell();
    if (className) td.className = className;
    if (text !== undefined) td.textContent = text;
    return td;
  }

  function link(td, href, text, title) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    if (title) a.title = title;
    td.appendChild(a);
  }

  function short(text, keep) {
    return text.length <= keep + 1 ? text : text.slice(0, keep) + "\u2026";
  }

  function row(e) {
    const tr = document.createElement("tr");
    tr.className = e.agent + (e.failed ? " failed" : "");
    tr.dataset.key = e.key;
    tr.dataset.agent = e.agent;
    tr.dataset.run = e.run_id;
    const time = cell(tr, String(e.ts).slice(11, 23), "time");
    time.title = String(e.ts);
    const badge = document.createElement("span");
    badge.className = "badge " + e.agent;
    badge.textContent = e.agent;
    cell(tr).appendChild(badge);
    link(cell(tr), "/session/" + encodeURIComponent(e.run_id), short(e.run_id, 13), e.run_id);
    cell(tr, e.name, "event");
    cell(tr, e.detail, "detail");
    const trace = cell(tr);
    if (e.trace_id) link(trace, "/trace/" + encodeURIComponent(e.trace_id), "trace");
    tr.hidden = !visible(tr);
    return tr;
  }

  function showCount() {
    count.textContent = tbody.rows.length + " events" + (held.length ? ", " + held.length + " held while paused" : "");
  }

  function add(events) {
    const fragment = document.createDocumentFragment();
    for (const e of events) {  // oldest first: each goes above the previous one
      if (keys.has(e.key)) continue;
      keys.add(e.key);
      fragment.insertBefore(row(e), fragment.firstChild);
    }
    tbody.insertBefore(fragment, tbody.firstChild);
    while (tbody.rows.length > MAX_ROWS) {
      const last = tbody.lastElementChild;
      keys.delete(last.dataset.key);
      last.remove();
    }
    showCount();
  }

  function refilter() {
    for (const tr of tbody.rows) tr.hidden = !visible(tr);
  }

  pause.addEventListener("click", function () {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    status.textContent = paused ? "paused" : "live";
    if (!paused) add(held.splice(0));
    showCount();
  });
  sessionFilter.addEventListener("input", refilter);
  agentFilter.addEventListener("change", refilter);

  const source = new EventSource("/api/live");
  source.onopen = function () {
    status.textContent = paused ? "paused" : "live";
    status.className = "status live";
  };
  source.onerror = function () {
    status.textContent = "reconnecting\u2026";
    status.className = "status";
  };
  source.onmessage = function (message) {
    const events = JSON.parse(message.data);
    if (paused) {
      held.push(...events);
      held.splice(0, Math.max(0, held.length - MAX_ROWS));
      showCount();
    } else {
      add(events);
    }
  };
  showCount();
})();
