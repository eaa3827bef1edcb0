// Zof CI console: live updates of the run page over the run's event stream,
// refresh of the runs list, and keyboard shortcuts. No framework, no build.
// Untrusted text (ids, names, reasons) only ever goes into textContent.
"use strict";

const labels = {
  initial: ["○", "Initial"], queued: ["◷", "Queued"], running: ["▶", "Running"],
  passed: ["✔", "Passed"], failed: ["✖", "Failed"], cancelled: ["⊘", "Cancelled"],
  blocked: ["⛔", "Failed (Blocked)"],
};
const substates = {
  queued: () => "Execution queued",
  queue_position: (p) => `In queue (position ${p})`,
  waiting_for_preceding: () => "Waiting for preceding tests",
  analysing: () => "Analysing test steps",
  starting: () => "Starting",
};

function tag(status) {
  const [icon, label] = labels[status] || ["?", status];
  const span = document.createElement("span");
  span.className = "tag s-" + status;
  const i = document.createElement("span");
  i.className = "icon";
  i.setAttribute("aria-hidden", "true");
  i.textContent = icon;
  span.append(i, label);
  return span;
}

function memberRow(id) {
  for (const tr of document.querySelectorAll("tr[data-member]")) {
    if (tr.dataset.member === id) return tr;
  }
  return null;
}

// window.zofLatencies collects, per applied event, the milliseconds from the
// event's time at the server to the DOM being updated (the browser test reads it).
window.zofLatencies = [];

function followRun(live) {
  const id = live.dataset.run;
  const after = live.dataset.seq || "0";
  const es = new EventSource(`/v1/runs/${encodeURIComponent(id)}/events?after=${encodeURIComponent(after)}`);
  const applied = (data) => {
    const at = Date.parse(data.at);
    if (!Number.isNaN(at)) window.zofLatencies.push(Date.now() - at);
  };
  es.addEventListener("member.status", (ev) => {
    const d = JSON.parse(ev.data);
    const tr = memberRow(d.member);
    if (!tr) return;
    tr.querySelector("[data-status]").replaceChildren(tag(d.status));
    if (d.status !== "queued" && d.status !== "initial") tr.querySelector("[data-overlay]").textContent = "";
    applied(d);
  });
  es.addEventListener("member.substate", (ev) => {
    const d = JSON.parse(ev.data);
    const tr = memberRow(d.member);
    if (!tr) return;
    const f = substates[d.substate];
    tr.querySelector("[data-overlay]").textContent = f ? " " + f(d.position) : "";
    applied(d);
  });
  es.addEventListener("run.substate", (ev) => {
    const d = JSON.parse(ev.data);
    const o = document.querySelector('[data-overlay="run"]');
    const f = substates[d.substate];
    if (o) o.textContent = f ? f(d.position) : "";
    applied(d);
  });
  es.addEventListener("run.status", (ev) => {
    const d = JSON.parse(ev.data);
    applied(d);
    live.textContent = "status: " + (labels[d.status] || [0, d.status])[1];
  });
  es.addEventListener("end", () => {
    es.close();
    live.textContent = "finished: reloading for the results…";
    window.location.reload();
  });
  es.onerror = () => { live.textContent = "connection lost: reconnecting…"; };
  es.onopen = () => { live.textContent = "following live"; };
}

function refreshList(box) {
  box.hidden = false;
  const pause = document.getElementById("pause");
  const interval = document.getElementById("interval");
  let timer = null;
  const tick = async () => {
    try {
      const res = await fetch(window.location.href, { credentials: "same-origin" });
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const rows = doc.getElementById("rows");
      const cur = document.getElementById("rows");
      if (rows && cur) cur.replaceChildren(...rows.childNodes);
    } catch (e) { /* the next tick tries again */ }
  };
  const start = () => {
    clearInterval(timer);
    if (pause.getAttribute("aria-pressed") === "true") return;
    timer = setInterval(tick, Number(interval.value) * 1000);
  };
  pause.addEventListener("click", () => {
    const on = pause.getAttribute("aria-pressed") !== "true";
    pause.setAttribute("aria-pressed", String(on));
    pause.textContent = on ? "Resume" : "Pause";
    start();
  });
  interval.addEventListener("change", start);
  start();
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (live) followRun(live);
  const box = document.getElementById("refresh");
  if (box && document.getElementById("rows")) refreshList(box);
  const rerun = document.getElementById("rerun-form");
  if (rerun) {
    document.addEventListener("keydown", (e) => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "p") {
        e.preventDefault();
        if (window.confirm("Rerun this run? A new run goes to the back of the queue.")) rerun.submit();
      }
    });
  }
});
