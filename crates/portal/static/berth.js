// berth's only script: live workspace states (server-sent events), name checks
// as you type, confirmations and copying. Pages work without it.
"use strict";

// Mirrors model::Name::parse, so that the message matches the server's.
function nameProblem(s, taken) {
  if (s === "") return "";
  if (s.length > 32) return "At most 32 characters.";
  const bad = [...s].find((c) => !/[a-z0-9-]/.test(c));
  if (bad !== undefined) return `Only lowercase letters, digits and hyphens (not “${bad}”).`;
  if (!/^[a-z]/.test(s)) return "Must start with a lowercase letter.";
  if (s.endsWith("-")) return "Must not end with a hyphen.";
  if (taken.includes(s)) return `You already have a workspace named ${s}.`;
  return "";
}

function validateNames() {
  for (const input of document.querySelectorAll("input[data-validate-name]")) {
    const error = document.querySelector(`[data-error-for="${input.name}"]`);
    const taken = (input.dataset.taken || "").split(" ").filter(Boolean);
    const check = () => {
      const problem = nameProblem(input.value, taken);
      input.setCustomValidity(problem);
      input.setAttribute("aria-invalid", problem ? "true" : "false");
      input.closest(".field")?.classList.toggle("invalid", !!problem);
      if (error) error.textContent = problem;
      return problem;
    };
    input.addEventListener("input", check);
    input.form?.addEventListener("submit", (e) => {
      if (check() || input.value === "") {
        if (input.value === "" && error) error.textContent = "Enter a name.";
        e.preventDefault();
        input.focus();
      }
    });
  }
}

const ACTIVE = ["pending", "starting", "running", "paused", "stopping"];

function liveStates() {
  const rows = document.querySelectorAll("[data-live] [data-workspace]");
  if (rows.length === 0) return;
  const byId = new Map();
  for (const row of rows) byId.set(row.dataset.workspace, row);
  const events = new EventSource("/hub/events");
  events.addEventListener("snapshot", (e) => {
    const all = JSON.parse(e.data);
    all.forEach(show);
    // One being deleted when the page was made may be gone already.
    const here = new Set(all.map((s) => s.id));
    for (const [id, row] of byId) {
      if (!here.has(id) && row.dataset.deleting !== undefined) show({ id, state: "deleted", message: "", ready: false, retrying: false });
    }
  });
  events.onmessage = (e) => show(JSON.parse(e.data));
  function show(s) {
    const row = byId.get(s.id);
    if (!row) return;
    const badge = row.querySelector("[data-state]");
    if (badge) {
      badge.textContent = s.state;
      badge.className = `state state-${s.state}`;
    }
    const message = row.querySelector("[data-message]");
    if (message) message.textContent = s.message || "";
    const active = ACTIVE.includes(s.state);
    for (const el of row.querySelectorAll("[data-when]")) {
      el.hidden = (el.dataset.when === "active") !== active;
    }
    // A workspace's own start page shows the next page when it is ready, or
    // when it starts or stops (the page differs for each).
    const starting = ["pending", "starting", "running"].includes(s.state) || s.retrying;
    if (row.dataset.follow !== undefined && (s.ready || (row.dataset.follow === "true") !== starting)) {
      events.close();
      location.reload();
    }
  }
}

// A start page lists the start's steps and the app's first lines of output
// (JupyterHub's progress events) as they come, and opens the app when ready.
function startProgress() {
  const list = document.querySelector("[data-progress]");
  if (!list) return;
  const events = new EventSource(list.dataset.progress);
  events.onmessage = (e) => {
    const event = JSON.parse(e.data);
    const item = document.createElement("li");
    item.textContent = event.message || "";
    if (event.log) item.className = "log";
    if (event.failed) item.className = "failed";
    list.append(item);
    if (event.ready || event.failed) {
      events.close();
      location.reload();
    }
  };
  // A start that ended before the page asked is a 400: the page is stale.
  events.onerror = () => events.close();
}

function confirmations() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  }
}

function copying() {
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.dataset.copy);
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
        button.textContent = "Copied";
      } catch {
        button.textContent = "Press Ctrl+C";
      }
    });
  }
  for (const input of document.querySelectorAll("input[data-select]")) {
    input.addEventListener("focus", () => input.select());
  }
}

document.addEventListener("DOMContentLoaded", () => {
  validateNames();
  liveStates();
  startProgress();
  confirmations();
  copying();
});
