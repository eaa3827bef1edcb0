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

// liveControls wires the pause button and the interval choice of a live view:
// onChange(paused, seconds) is called at once and on every change.
function liveControls(box, onChange) {
  box.hidden = false;
  const pause = box.querySelector("#pause");
  const interval = box.querySelector("#interval");
  const fire = () => onChange(pause.getAttribute("aria-pressed") === "true", Number(interval.value));
  pause.addEventListener("click", () => {
    const on = pause.getAttribute("aria-pressed") !== "true";
    pause.setAttribute("aria-pressed", String(on));
    pause.textContent = on ? "Resume" : "Pause";
    fire();
  });
  interval.addEventListener("change", fire);
  fire();
}

// swapParts replaces the elements of the page whose ids the fetched HTML
// also has (the server renders them; nothing here builds markup from data).
function swapParts(html, ids) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  for (const id of ids) {
    const fresh = doc.getElementById(id);
    const cur = document.getElementById(id);
    if (fresh && cur) {
      const hidden = cur.hidden;
      cur.replaceWith(fresh);
      fresh.hidden = hidden;
    }
  }
}

function followRun(live) {
  const id = live.dataset.run;
  let after = live.dataset.seq || "0";
  let es = null;
  let paused = false;
  let seconds = 2;
  let dirty = false; // events arrived since the parts were last fetched
  let timer = null;
  const applied = (data) => {
    if (data.seq) after = String(data.seq);
    const at = Date.parse(data.at);
    if (!Number.isNaN(at)) window.zofLatencies.push(Date.now() - at);
    dirty = true;
  };
  // The counts, Results and Timeline are re-rendered by the server at most
  // once per interval while events arrive.
  const refreshParts = async () => {
    if (paused || !dirty) return;
    dirty = false;
    try {
      const u = new URL(window.location.href);
      u.searchParams.set("part", "live");
      u.hash = "";
      const res = await fetch(u, { credentials: "same-origin" });
      if (res.ok) swapParts(await res.text(), ["summary", "results", "timeline"]);
    } catch (e) { dirty = true; /* the next tick tries again */ }
  };
  const open = () => {
    es = new EventSource(`/v1/runs/${encodeURIComponent(id)}/events?after=${encodeURIComponent(after)}&wait=1`);
    // Which limit holds the run (docs/agents.md, Why a run waits): "{}" when nothing does.
    es.addEventListener("wait", (ev) => {
      const w = JSON.parse(ev.data);
      const p = document.querySelector("[data-wait]");
      if (!p) return;
      p.textContent = w.message ? "Waiting: " + w.message : "";
      p.hidden = !w.message;
    });
    es.addEventListener("member.status", (ev) => {
      const d = JSON.parse(ev.data);
      const tr = memberRow(d.member);
      if (tr) {
        tr.querySelector("[data-status]").replaceChildren(tag(d.status));
        if (d.status !== "queued" && d.status !== "initial") tr.querySelector("[data-overlay]").textContent = "";
      }
      applied(d);
    });
    es.addEventListener("member.substate", (ev) => {
      const d = JSON.parse(ev.data);
      const tr = memberRow(d.member);
      if (tr) {
        const f = substates[d.substate];
        tr.querySelector("[data-overlay]").textContent = f ? " " + f(d.position) : "";
      }
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
    for (const type of ["step.status", "log"]) {
      es.addEventListener(type, (ev) => applied(JSON.parse(ev.data)));
    }
    es.addEventListener("end", () => {
      es.close();
      live.textContent = "finished: reloading for the results…";
      window.location.reload();
    });
    es.onerror = () => { live.textContent = "connection lost: reconnecting…"; };
    es.onopen = () => { live.textContent = "following live"; };
  };
  const box = document.getElementById("refresh");
  liveControls(box, (p, s) => {
    paused = p;
    seconds = s;
    clearInterval(timer);
    if (paused) {
      if (es) es.close();
      es = null;
      live.textContent = "paused: nothing updates until you resume";
      return;
    }
    if (!es) { dirty = true; open(); }
    timer = setInterval(refreshParts, seconds * 1000);
  });
}

// tabs shows one section of the run page at a time: the one the address's
// #fragment names or holds (a log line permalink opens its step), else
// Results. Without this script (the static report) every section shows.
function tabs(nav) {
  const links = [...nav.querySelectorAll("a")];
  const sections = links.map((a) => document.getElementById(a.hash.slice(1))).filter(Boolean);
  const show = () => {
    const target = window.location.hash ? document.getElementById(decodeURIComponent(window.location.hash.slice(1))) : null;
    let current = sections[0];
    for (const s of sections) if (target && (s === target || s.contains(target))) current = s;
    for (const s of sections) s.hidden = s !== current;
    for (const a of links) {
      if (a.hash.slice(1) === current.id) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    if (target && target !== current) {
      const d = target.closest("details");
      if (d) d.open = true;
      target.scrollIntoView({ block: "center" });
    }
  };
  window.addEventListener("hashchange", show);
  show();
}

function refreshList(box) {
  let timer = null;
  const tick = async () => {
    try {
      const res = await fetch(window.location.href, { credentials: "same-origin" });
      if (res.ok) swapParts(await res.text(), ["rows"]);
    } catch (e) { /* the next tick tries again */ }
  };
  liveControls(box, (paused, seconds) => {
    clearInterval(timer);
    if (!paused) timer = setInterval(tick, seconds * 1000);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const nav = document.getElementById("tabs");
  if (nav) tabs(nav);
  const live = document.getElementById("live");
  if (live) followRun(live);
  const box = document.getElementById("refresh");
  if (box && !live && document.getElementById("rows")) refreshList(box);
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
