// The Styx dashboard: a single page over the v3 API and the dashboard's reads under /ui/data (docs/dashboard.md).
// Plain JavaScript, no build step, no external assets. Pages are chosen by the URL fragment (#/workflows,
// #/workflows/c/w, #/instances/c/w/p, #/active, #/backfills, #/backfills/id, #/resources).
"use strict";

const API = "/api/v3";
const UI_DATA = "/ui/data";
// How often live pages poll: the pages that follow running work, and the heavier workflow pages.
const LIVE_MILLIS = 3000;
const SLOW_LIVE_MILLIS = 10000;
const TOKEN_KEY = "styx-id-token";
// States that hold resource permits (styx_actors.model.State.consumes_resources).
const CONSUMING_STATES = new Set(["PREPARE", "SUBMITTING", "SUBMITTED", "RUNNING"]);
const FINAL_STATES = new Set(["DONE", "ERROR"]);
// Execution statuses after which an execution produces no more output.
const FINAL_STATUSES = new Set(["SUCCESS", "FAILED", "MISSING_DEPS", "TIMEOUT", "HALTED"]);
// The workflow page's "latest N instances" choices, and how many instances a start/stop range shows at most.
const INSTANCE_COUNTS = [24, 48, 96, 168];
const RANGE_LIMIT = 500;
const RECENT_RUNS = 10;

// ---------------------------------------------------------------------------------------------------------
// DOM and formatting helpers. Text always goes in as text nodes, never as HTML.

function appendChildren(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "className") node.className = value;
    else if (name === "style") Object.assign(node.style, value); // through the CSSOM: allowed by the page's CSP
    else node.setAttribute(name, value === true ? "" : value);
  }
  appendChildren(node, children);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name === "className" ? "class" : name, value);
  }
  appendChildren(node, children);
  return node;
}

function replace(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined));
}

// Live pages redraw only what changed, so a poll neither rebuilds (and flickers) unchanged parts nor loses the
// hover, focus or text selection in them. `drawn` remembers what each container shows.
const drawn = new WeakMap();

// Calls draw(data) unless `node` already shows this data.
function drawIfChanged(node, data, draw) {
  const signature = JSON.stringify(data);
  if (drawn.get(node) === signature) return;
  drawn.set(node, signature);
  draw(data);
}

// Shows one child per item in `container`, keeping the node of every item that did not change.
function drawKeyed(container, items, keyOf, render) {
  const previous = drawn.get(container);
  const kept = previous instanceof Map ? previous : new Map();
  const next = new Map();
  const nodes = items.map((item) => {
    const key = keyOf(item);
    const signature = JSON.stringify(item);
    const old = kept.get(key);
    const node = old && old.signature === signature ? old.node : render(item);
    next.set(key, { signature, node });
    return node;
  });
  drawn.set(container, next);
  placeChildren(container, nodes);
}

// Makes `nodes` the children of `container`, touching the DOM only when they are not already, in order.
function placeChildren(container, nodes) {
  const unchanged = nodes.length === container.children.length && nodes.every((node, i) => container.children[i] === node);
  if (!unchanged) container.replaceChildren(...nodes);
}

// Items that show a time running on (a running instance's duration) change with the clock too.
function withClock(item, ticking) {
  return ticking ? { ...item, clock: Math.floor(Date.now() / 1000) } : item;
}

// A table body: keyed rows, or one row saying why it is empty.
function drawRows(body, items, keyOf, render, columns, emptyText) {
  if (items.length === 0) drawIfChanged(body, emptyText, () => replace(body, emptyRow(columns, emptyText)));
  else drawKeyed(body, items, keyOf, render);
}

function formatTime(value) {
  if (value === null || value === undefined) return "—";
  const date = new Date(value);
  return isNaN(date) ? String(value) : date.toISOString().replace(".000Z", "Z");
}

function formatDuration(millis) {
  if (millis === null || millis === undefined) return "—";
  if (millis < 1000) return `${Math.max(0, Math.round(millis))} ms`;
  const seconds = millis / 1000;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

// "3 min ago" or "in 2 h", with the exact instant in a tooltip.
function relativeTime(value) {
  if (value === null || value === undefined) return h("span", { className: "muted" }, "—");
  const millis = new Date(value).getTime();
  const distance = formatDuration(Math.abs(Date.now() - millis)).replace(/ \d+ (s|min|h)$/, "");
  return h("time", { datetime: formatTime(value), title: formatTime(value) }, millis <= Date.now() ? `${distance} ago` : `in ${distance}`);
}

const enc = encodeURIComponent;

function instanceHref(componentId, workflowId, parameter) {
  return `#/instances/${enc(componentId)}/${enc(workflowId)}/${enc(parameter)}`;
}

function workflowHref(componentId, workflowId) {
  return `#/workflows/${enc(componentId)}/${enc(workflowId)}`;
}

// Colour classes. A RunState: FAILED and TERMINATED are on their way to a retry (or to ERROR), and QUEUED after
// a try waits out its retry delay, so they are "retrying", not failed; WAITING and UNKNOWN are backfill
// partitions not triggered yet / not replayable.
function stateClass(state, tries = 0) {
  switch (state) {
    case "DONE": return "done";
    case "ERROR": return "failed";
    case "FAILED": case "TERMINATED": return "retrying";
    case "QUEUED": return tries > 0 ? "retrying" : "queued";
    case "NEW": return "queued";
    case "WAITING": case "UNKNOWN": return "waiting";
    default: return "running";
  }
}

// An execution status (the instance's history).
function statusClass(status) {
  switch (status) {
    case "SUCCESS": return "done";
    case "SUBMITTED": case "STARTED": return "running";
    default: return "failed";
  }
}

function badge(text, cls) {
  return h("span", { className: `badge s-${cls}` }, text);
}

const stateBadge = (state, tries = 0) => badge(state, stateClass(state, tries));

function emptyRow(columns, text) {
  return h("tr", {}, h("td", { colspan: columns, className: "empty" }, text));
}

function headerRow(...columns) {
  return h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c))));
}

function errorBox(error) {
  return h("div", { className: "error", role: "alert" }, describeError(error));
}

// ---------------------------------------------------------------------------------------------------------
// The API client: errors carry the API's {"code","message"}; changes carry the token when one is saved.

class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function describeError(error) {
  if (!(error instanceof ApiError)) return `Could not reach the API: ${error.message}`;
  if (error.code === 401) {
    return `Not authorized (401): ${error.message}. Paste a valid Google ID token in the box at the top and try again.`;
  }
  return `Error ${error.code}: ${error.message}`;
}

async function request(method, url, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (method !== "GET" && token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (networkError) {
    throw new Error(networkError.message);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!response.ok) {
    const message = data && typeof data === "object" && data.message ? data.message : text || response.statusText;
    throw new ApiError(response.status, message);
  }
  return data;
}

const api = (method, path, body) => request(method, API + path, body);
const uiData = (path) => request("GET", UI_DATA + path);

// Runs an action from a button or form: disables the control meanwhile, shows the outcome in `outlet`.
async function act(control, outlet, action, successText) {
  control.disabled = true;
  replace(outlet);
  try {
    const result = await action();
    if (successText) replace(outlet, h("div", { className: "ok", role: "status" }, successText(result)));
    return result;
  } catch (error) {
    replace(outlet, errorBox(error));
    return undefined;
  } finally {
    control.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Page lifecycle: one page at a time. A page's `refresh` runs now and, on live pages, again `interval` ms
// after the previous run finished (never two at once). Polling pauses while the tab is hidden and resumes,
// with an immediate refresh, when it is shown again; navigating away stops it.

let currentPage = { run: null, timer: null, paused: false };

function startPage(refresh, interval) {
  clearTimeout(currentPage.timer);
  const page = { run: null, timer: null, paused: false };
  currentPage = page;
  const isCurrent = () => page === currentPage;
  page.run = async () => {
    page.timer = null;
    if (!isCurrent()) return;
    await refresh(isCurrent);
    if (!interval || !isCurrent()) return;
    showLiveStatus(`Live: refreshed every ${interval / 1000} s, last at ${new Date().toISOString().slice(11, 19)}Z.`);
    if (document.hidden) pausePage(page);
    else page.timer = setTimeout(page.run, interval);
  };
  page.run();
}

function pausePage(page) {
  clearTimeout(page.timer);
  page.timer = null;
  page.paused = true;
  showLiveStatus("Paused while this tab is hidden.");
}

function showLiveStatus(text) {
  const status = document.getElementById("live-status");
  if (status) status.textContent = text;
}

document.addEventListener("visibilitychange", () => {
  const page = currentPage;
  if (document.hidden && page.timer !== null) pausePage(page);
  else if (!document.hidden && page.paused) {
    page.paused = false;
    page.run();
  }
});

// `live`: the page polls, and says so under its title.
function setPage(title, live, ...content) {
  document.title = `${title} · Styx`;
  const main = document.getElementById("main");
  replace(main, h("h1", {}, title), live ? h("p", { id: "live-status", className: "live muted" }, "Live.") : null, ...content);
}

// Loads data into `target`, showing the API's error there when the load fails (once, not on every poll).
const shownErrors = new WeakMap();

async function load(target, isCurrent, loader, renderer) {
  let data;
  try {
    data = await loader();
  } catch (error) {
    if (!isCurrent() || shownErrors.get(target) === describeError(error)) return;
    shownErrors.set(target, describeError(error));
    drawn.delete(target); // what it showed before is gone: the next data draws again
    replace(target, errorBox(error));
    return;
  }
  if (!isCurrent()) return;
  shownErrors.delete(target);
  renderer(data);
}

// ---------------------------------------------------------------------------------------------------------
// Runs: one instance's latest trigger as /ui/data summarises it (api/dashboard/runs.py)

function isActiveRun(run) {
  return !FINAL_STATES.has(run.state);
}

// How long the latest execution ran (so far, while it runs); null when none started.
function runDuration(run) {
  if (run.started_at === null) return null;
  const end = run.ended_at !== null ? run.ended_at : isActiveRun(run) ? Date.now() : run.updated_at;
  return end - run.started_at;
}

// From the trigger to the latest execution's start: queueing, earlier tries and their retry delays.
function runWait(run) {
  return run.started_at !== null && run.triggered_at !== null ? run.started_at - run.triggered_at : null;
}

function runFacts(run) {
  const duration = runDuration(run);
  return [
    run.state,
    duration === null ? "not started" : `${isActiveRun(run) && run.ended_at === null ? "running for" : "ran"} ${formatDuration(duration)}`,
    `${run.tries} ${run.tries === 1 ? "try" : "tries"}`,
    `triggered ${formatTime(run.triggered_at)}`,
    run.message,
  ].filter(Boolean);
}

// A small square per run (the workflow list), oldest first.
function runSquares(componentId, workflowId, runs) {
  return h("span", { className: "squares", role: "list", "aria-label": "Recent instances, oldest first" },
    runs.map((run) => h("a", {
      className: `square s-${stateClass(run.state, run.tries)}`, role: "listitem", href: instanceHref(componentId, workflowId, run.parameter),
      title: `${run.parameter}: ${runFacts(run).join(", ")}`, "aria-label": `${run.parameter}: ${run.state}`,
      "data-parameter": run.parameter, "data-state": run.state,
    })));
}

function legend(classes) {
  return h("div", { className: "legend", "aria-hidden": "true" },
    classes.map((cls) => h("span", {}, h("span", { className: `swatch s-${cls}` }), cls)));
}

// ---------------------------------------------------------------------------------------------------------
// Workflows: every workflow with its state, latest instance, recent instances and next trigger

function workflowsPage() {
  const component = h("select", { id: "component-filter" }, h("option", { value: "" }, "All components"));
  const search = h("input", { id: "workflow-search", type: "search", placeholder: "id, component, image…" });
  const body = h("tbody", {});
  const table = h("table", { id: "workflows" },
    headerRow("Workflow", "Schedule", "State", "Latest instance", "Recent instances", "Next natural trigger"), body);
  const holder = h("div", {}, table);
  const count = h("p", { className: "muted", id: "workflow-count" });
  let rows = [];
  let runsError = null;
  const runsByWorkflow = new Map();
  const draw = () => {
    const wanted = search.value.trim().toLowerCase();
    const shown = rows.filter(({ workflow }) =>
      (!component.value || workflow.component_id === component.value) &&
      (!wanted || [workflow.component_id, workflow.workflow_id, workflow.configuration.docker_image || ""]
        .some((text) => text.toLowerCase().includes(wanted))));
    replace(count, `${shown.length} of ${rows.length} workflows`, runsError ? ` (recent instances: ${runsError})` : "");
    // `minute`: the rows say "3 min ago", so they are redrawn once a minute even when nothing else changed.
    const minute = Math.floor(Date.now() / 60000);
    const items = shown.map(({ workflow, state }) => ({ workflow, state, minute, runs: runsByWorkflow.get(`${workflow.component_id}/${workflow.workflow_id}`) }));
    drawRows(body, items, ({ workflow }) => `${workflow.component_id}/${workflow.workflow_id}`, workflowRow, 6,
      rows.length === 0
        ? "No workflows yet. Create one with `styx workflow create <component> -f <file>` (docs/cli.md) or POST /api/v3/workflows/{component}."
        : "No workflow matches the filter.");
  };
  component.addEventListener("change", draw);
  search.addEventListener("input", draw);
  setPage("Workflows", true,
    h("div", { className: "toolbar" }, h("label", {}, "Component", component), h("label", {}, "Search", search), count),
    holder);
  startPage(async (isCurrent) => {
    await load(holder, isCurrent, () => api("GET", "/workflows?full=true"), (data) => {
      rows = data.sort((a, b) => `${a.workflow.component_id}/${a.workflow.workflow_id}`.localeCompare(`${b.workflow.component_id}/${b.workflow.workflow_id}`));
      const components = [...new Set(rows.map(({ workflow }) => workflow.component_id))].sort();
      drawIfChanged(component, components, () => {
        const chosen = component.value;
        replace(component, h("option", { value: "" }, "All components"), components.map((c) => h("option", { value: c, selected: c === chosen }, c)));
      });
      if (holder.firstChild !== table) replace(holder, table);
      draw();
    });
    // The recent instances come a page of workflows at a time (each page is a bounded read).
    runsError = null;
    for (let offset = 0; offset !== null && isCurrent();) {
      try {
        const page = await uiData(`/recent-runs?offset=${offset}&runs=${RECENT_RUNS}`);
        for (const { component_id: c, workflow_id: w, runs } of page.workflows) runsByWorkflow.set(`${c}/${w}`, runs);
        offset = page.next_offset;
      } catch (error) {
        runsError = describeError(error); // the table still shows the workflows; the next poll tries again
        break;
      }
    }
    if (isCurrent()) draw();
  }, SLOW_LIVE_MILLIS);
}

function workflowRow({ workflow, state, runs }) {
  const c = workflow.component_id;
  const w = workflow.workflow_id;
  const enabled = state.enabled === "true";
  const latest = runs && runs.length ? runs[runs.length - 1] : null;
  return h("tr", { "data-workflow": `${c}/${w}` },
    h("td", {}, h("a", { href: workflowHref(c, w) }, w), h("div", { className: "muted small" }, c, " · ", workflow.configuration.docker_image || "no image")),
    h("td", {}, workflow.configuration.schedule),
    h("td", { className: "workflow-state" }, enabled ? badge("enabled", "enabled") : badge("disabled", "disabled")),
    h("td", { className: "latest-run" }, runs === undefined ? h("span", { className: "muted" }, "…")
      : latest === null ? h("span", { className: "muted" }, "never triggered")
        : [stateBadge(latest.state, latest.tries), " ", h("a", { href: instanceHref(c, w, latest.parameter) }, latest.parameter),
          h("div", { className: "muted small" }, relativeTime(latest.updated_at))]),
    h("td", { className: "recent-runs" }, runs ? runSquares(c, w, runs) : null),
    h("td", { className: "next-trigger" }, enabled ? nextTrigger(state) : h("span", { className: "muted" }, "none while disabled")));
}

// A natural trigger fires at the offset trigger instant for the period that starts at the natural trigger
// instant (a daily workflow runs 2024-01-01 at 2024-01-02T00:00Z).
function nextTrigger(state) {
  return [relativeTime(state.next_natural_offset_trigger),
    h("div", { className: "muted small" }, "period ", formatTime(state.next_natural_trigger))];
}

// ---------------------------------------------------------------------------------------------------------
// One workflow: state, the instance grid and run durations (live), trigger and backfill forms, configuration

function parseEnv(text) {
  const env = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf("=");
    if (at <= 0) throw new Error(`environment line "${line}" is not KEY=VALUE`);
    env[line.slice(0, at)] = line.slice(at + 1);
  }
  return env;
}

function workflowPage(componentId, workflowId) {
  const path = `/workflows/${enc(componentId)}/${enc(workflowId)}`;
  const content = h("div", {});
  setPage(`${componentId} / ${workflowId}`, true, content);
  let instances = null;
  // The configuration and forms load once; the instances are live.
  startPage(async (isCurrent) => {
    if (instances === null) {
      await load(content, isCurrent, () => api("GET", `${path}/full`), ({ workflow, state }) => {
        instances = instancesView(componentId, workflowId);
        replace(content, workflowDetails(componentId, workflowId, path, workflow, state, instances));
      });
    }
    if (instances !== null) await instances.refresh(isCurrent);
  }, SLOW_LIVE_MILLIS);
}

function workflowDetails(componentId, workflowId, path, workflow, state, instances) {
  const config = workflow.configuration;
  const stateSection = h("section", { className: "card" });
  // Redrawn from the state the API answered, so the button always flips the latest known state.
  const drawState = (current) => {
    const enabled = current.enabled === "true";
    const outlet = h("div", {});
    const toggle = h("button", { type: "button", id: "toggle-enabled", className: enabled ? "secondary" : "" }, enabled ? "Disable" : "Enable");
    toggle.addEventListener("click", async () => {
      const changed = await act(toggle, outlet, () => api("PATCH", `${path}/state`, { enabled: !enabled }));
      if (changed) drawState(changed).focus();
    });
    replace(stateSection, h("h2", {}, "State"),
      h("dl", { className: "props" },
        h("dt", {}, "Enabled"), h("dd", {}, h("span", { id: "workflow-enabled", className: `badge s-${enabled ? "enabled" : "disabled"}` }, enabled ? "true" : "false")),
        h("dt", {}, "Next natural trigger"), h("dd", { id: "workflow-next-trigger" }, enabled
          ? [formatTime(current.next_natural_offset_trigger), " (", relativeTime(current.next_natural_offset_trigger), ") for the period ", formatTime(current.next_natural_trigger)]
          : "none while disabled"),
        h("dt", {}, "Schedule"), h("dd", {}, config.schedule, config.offset ? ` offset ${config.offset}` : "")),
      h("p", {}, toggle), outlet);
    return toggle;
  };
  drawState(state);

  return [
    stateSection,
    instances.section,
    instances.chart,
    triggerForm(componentId, workflowId, () => instances.refresh(() => true)),
    backfillForm(componentId, workflowId),
    h("section", { className: "card" }, h("h2", {}, "Configuration"),
      h("dl", { className: "props" },
        ...[["Docker image", config.docker_image], ["Docker args", config.docker_args ? config.docker_args.join(" ") : null],
          ["Resources", (config.resources || []).join(", ")], ["Service account", config.service_account],
          ["Running timeout", config.running_timeout], ["Commit", config.commit_sha], ["Deployed", formatTime(config.deployment_time)]]
          .flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value === null || value === undefined || value === "" ? "—" : value)])),
      h("details", {}, h("summary", {}, "Full configuration (JSON)"), h("pre", {}, JSON.stringify(config, null, 2)))),
  ];
}

// The grid of instances (oldest first) and the chart of their durations, from one read.
function instancesView(componentId, workflowId) {
  const count = h("select", { id: "grid-limit" }, INSTANCE_COUNTS.map((n) => h("option", { value: n, selected: n === 48 }, `latest ${n}`)));
  const start = h("input", { id: "grid-start", placeholder: "start parameter, e.g. 2024-01-01" });
  const stop = h("input", { id: "grid-stop", placeholder: "stop (exclusive, optional)" });
  const cells = h("div", { id: "instance-grid", className: "grid", role: "list", "aria-label": "Instances, oldest first" });
  const summary = h("p", { className: "muted", id: "grid-summary" });
  const section = h("section", { className: "card" }, h("h2", {}, "Instances"),
    h("div", { className: "toolbar" }, h("label", {}, "Show", count), h("label", {}, "Or from", start), h("label", {}, "to", stop)),
    legend(["done", "failed", "retrying", "running", "queued"]), cells, summary);
  const plot = h("div", { id: "duration-chart" });
  const chart = h("section", { className: "card" }, h("h2", {}, "Run durations"), plot);
  const query = () => start.value.trim()
    ? `start=${enc(start.value.trim())}${stop.value.trim() ? `&stop=${enc(stop.value.trim())}` : ""}&limit=${RANGE_LIMIT}`
    : `limit=${count.value}`;
  const refresh = async (isCurrent) => {
    try {
      const { runs } = await uiData(`/runs/${enc(componentId)}/${enc(workflowId)}?${query()}`);
      if (!isCurrent()) return;
      if (runs.length === 0) {
        drawIfChanged(cells, "empty", () => replace(cells, h("p", { className: "empty" }, start.value.trim()
          ? "No instances in this range."
          : "No instances yet: trigger one below, start a backfill, or enable the workflow.")));
      } else {
        drawKeyed(cells, runs.map((run) => withClock(run, isActiveRun(run))), (run) => run.parameter, (run) => gridCell(componentId, workflowId, run));
      }
      replace(summary, runs.length === 0 ? "" : `${runs.length} instance${runs.length === 1 ? "" : "s"}, ${runs[0].parameter} to ${runs[runs.length - 1].parameter}` +
        (start.value.trim() ? " (range)" : ", the latest that exist"));
      drawIfChanged(plot, withClock({ runs }, runs.some(isActiveRun)), () => replace(plot, durationChart(componentId, workflowId, runs)));
    } catch (error) {
      if (isCurrent()) replace(cells, errorBox(error));
    }
  };
  const redraw = () => refresh(() => true);
  for (const control of [count, start, stop]) control.addEventListener("change", redraw);
  return { section, chart, refresh };
}

function gridCell(componentId, workflowId, run) {
  const facts = runFacts(run);
  return h("a", {
    className: `cell s-${stateClass(run.state, run.tries)}`, role: "listitem", href: instanceHref(componentId, workflowId, run.parameter),
    "aria-label": `${run.parameter}: ${facts.join(", ")}`, "data-parameter": run.parameter, "data-state": run.state,
  },
  h("span", { className: "cell-label" }, run.parameter),
  h("span", { className: "tip", "aria-hidden": "true" }, h("strong", {}, run.parameter), facts.map((fact) => h("span", {}, fact))));
}

// A stacked bar per instance (oldest first, the grid's order): the latest execution's run time on top of the
// wait before it. Built with DOM calls; scaled to the longest, with three labelled gridlines.
function durationChart(componentId, workflowId, runs) {
  const timed = runs.filter((run) => runDuration(run) !== null);
  if (timed.length === 0) return h("p", { className: "empty" }, "No instance has run yet.");
  const width = 960;
  const height = 220;
  const left = 70;
  const bottom = 36;
  const top = 12;
  const plotHeight = height - top - bottom;
  const longest = Math.max(...timed.map((run) => (runWait(run) || 0) + runDuration(run)));
  const scaleMax = niceCeiling(longest);
  const y = (millis) => top + plotHeight - (plotHeight * millis) / scaleMax;
  const slot = (width - left - 10) / runs.length;
  const barWidth = Math.max(2, Math.min(28, slot * 0.7));
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, className: "chart", role: "img",
    "aria-label": `Run durations of ${timed.length} instances; the longest took ${formatDuration(longest)}`,
  });
  for (const fraction of [0, 0.5, 1]) {
    const value = scaleMax * fraction;
    chart.append(svg("line", { x1: left, x2: width - 10, y1: y(value), y2: y(value), className: "gridline" }),
      svg("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end", className: "axis" }, formatDuration(value)));
  }
  runs.forEach((run, index) => {
    const duration = runDuration(run);
    if (duration === null) return;
    const wait = runWait(run) || 0;
    const x = left + index * slot + (slot - barWidth) / 2;
    chart.append(svg("a", { href: instanceHref(componentId, workflowId, run.parameter), "data-parameter": run.parameter },
      svg("title", {}, `${run.parameter}: ${run.state}, ran ${formatDuration(duration)}` + (wait ? `, waited ${formatDuration(wait)} before` : "")),
      svg("rect", { x, width: barWidth, y: y(wait), height: y(0) - y(wait), className: "bar-wait" }),
      svg("rect", { x, width: barWidth, y: y(wait + duration), height: Math.max(1, y(wait) - y(wait + duration)), className: `bar-run s-${stateClass(run.state, run.tries)}` })));
  });
  const labelled = runs.length > 2 ? [0, Math.floor((runs.length - 1) / 2), runs.length - 1] : runs.map((_, i) => i);
  for (const index of labelled) {
    chart.append(svg("text", { x: left + (index + 0.5) * slot, y: height - 12, "text-anchor": "middle", className: "axis" }, runs[index].parameter));
  }
  return [chart, h("div", { className: "legend" },
    h("span", {}, h("span", { className: "swatch s-done" }), "the latest execution's run time (coloured by state)"),
    h("span", {}, h("span", { className: "swatch wait" }), "waiting before it: queue, earlier tries, retry delays"))];
}

// The smallest 1, 2 or 5 × 10^k (in the unit the value reads best in) at or above `millis`.
function niceCeiling(millis) {
  const unit = millis >= 3_600_000 ? 3_600_000 : millis >= 60_000 ? 60_000 : 1000;
  const value = Math.max(millis / unit, 1e-3);
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 5, 10].find((n) => n * power >= value);
  return step * power * unit;
}

function triggerForm(componentId, workflowId, onTriggered) {
  const parameter = h("input", { id: "trigger-parameter", required: true, placeholder: "e.g. 2024-01-01 or 2024-01-01T13" });
  const env = h("textarea", { id: "trigger-env", rows: 2, cols: 30, placeholder: "KEY=VALUE per line (optional)" });
  const allowFuture = h("input", { id: "trigger-allow-future", type: "checkbox" });
  const submit = h("button", { type: "submit", id: "trigger-submit" }, "Trigger");
  const outlet = h("div", {});
  const form = h("form", { className: "stack", "aria-label": "Trigger an instance" },
    h("label", {}, "Parameter", parameter), h("label", {}, "Environment", env),
    h("label", { className: "inline" }, allowFuture, "allow future"), submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = parameter.value.trim();
    const triggered = await act(submit, outlet, () => {
      const body = { workflow_id: { component_id: componentId, id: workflowId }, parameter: value, trigger_parameters: { env: parseEnv(env.value) } };
      return api("POST", `/scheduler/trigger${allowFuture.checked ? "?allowFuture=true" : ""}`, body);
    }, (result) => ["Triggered ", h("code", {}, result.trigger_id), ": ",
      h("a", { id: "triggered-instance", href: instanceHref(componentId, workflowId, result.parameter) }, `open instance ${result.parameter}`)]);
    if (triggered) onTriggered();
  });
  return h("section", { className: "card" }, h("h2", {}, "Trigger an instance"), form, outlet);
}

function backfillForm(componentId, workflowId) {
  const start = h("input", { id: "backfill-start", required: true, placeholder: "2024-01-01T00:00:00Z" });
  const end = h("input", { id: "backfill-end", required: true, placeholder: "2024-01-05T00:00:00Z (exclusive)" });
  const concurrency = h("input", { id: "backfill-concurrency", type: "number", min: 1, value: 1, required: true });
  const description = h("input", { id: "backfill-description", placeholder: "optional" });
  const reverse = h("input", { id: "backfill-reverse", type: "checkbox" });
  const submit = h("button", { type: "submit", id: "backfill-submit" }, "Start backfill");
  const outlet = h("div", {});
  const form = h("form", { className: "stack", "aria-label": "Start a backfill" },
    h("label", {}, "Start", start), h("label", {}, "End", end), h("label", {}, "Concurrency", concurrency),
    h("label", {}, "Description", description), h("label", { className: "inline" }, reverse, "newest first"), submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const created = await act(submit, outlet, () => api("POST", "/backfills", {
      component: componentId, workflow: workflowId, start: start.value.trim(), end: end.value.trim(),
      concurrency: Number(concurrency.value), reverse: reverse.checked, description: description.value.trim() || null,
    }));
    if (created) location.hash = `#/backfills/${enc(created.id)}`;
  });
  return h("section", { className: "card" }, h("h2", {}, "Start a backfill"), form, outlet);
}

// ---------------------------------------------------------------------------------------------------------
// One instance: current state, retry/halt, triggers with their executions, each execution's output, the
// event timeline (live)

function describeEvent(event) {
  const details = Object.entries(event)
    .filter(([key]) => key !== "@type" && key !== "workflow_instance")
    .map(([key, value]) => `${key}=${typeof value === "object" ? JSON.stringify(value) : value}`);
  return [h("strong", {}, event["@type"]), details.length ? h("span", { className: "muted" }, " ", details.join(" ")) : null];
}

// The outcome of an instance that is not active: its last execution's status (SUCCESS: the instance is DONE).
function finishedState(history) {
  const trigger = history.triggers[history.triggers.length - 1];
  const execution = trigger && trigger.executions[trigger.executions.length - 1];
  const status = execution && execution.statuses[execution.statuses.length - 1];
  if (!status) return trigger && trigger.complete ? "DONE" : "UNKNOWN";
  return status.status === "SUCCESS" ? "DONE" : status.status;
}

function instancePage(componentId, workflowId, parameter) {
  const instancePath = `/workflows/${enc(componentId)}/${enc(workflowId)}/instances/${enc(parameter)}`;
  const current = h("section", { className: "card", id: "instance-state" });
  const triggers = h("section", { className: "card", id: "instance-triggers" });
  const output = executionOutputs(componentId, workflowId, parameter);
  const timeline = h("section", { className: "card", id: "instance-events" });
  const outlet = h("div", {});
  const target = `${componentId}/${workflowId}/${parameter}`;
  const command = (name) => {
    const button = h("button", { type: "button", id: `instance-${name}`, className: name === "halt" ? "danger" : "" }, name === "halt" ? "Halt" : "Retry now");
    button.addEventListener("click", () => act(button, outlet, () => api("POST", `/scheduler/${name}`, { workflow_instance: target }),
      () => `${name === "halt" ? "Halt" : "Retry"} sent for ${target}.`));
    return button;
  };
  const retry = command("retry");
  const halt = command("halt");
  const buttons = h("p", {}, retry, " ", halt);
  setPage(`${componentId} / ${workflowId} / ${parameter}`, true,
    h("p", {}, h("a", { href: workflowHref(componentId, workflowId) }, `← workflow ${componentId}/${workflowId}`)),
    current, outlet, triggers, output.section, timeline);
  startPage(async (isCurrent) => {
    const history = await api("GET", instancePath).catch((error) => error);
    await Promise.all([
      load(current, isCurrent, () => api("GET", `/status/activeStates?component=${enc(componentId)}&workflow=${enc(workflowId)}`), (data) => {
        const state = data.active_states.find((s) => s.workflow_instance.parameter === parameter);
        retry.disabled = halt.disabled = !state;
        const known = history instanceof Error ? null : history;
        drawIfChanged(current, [state, known && finishedState(known)], () => {
          if (!state) {
            const finalState = known ? finishedState(known) : null;
            replace(current, h("h2", {}, "Current state"),
              h("p", { id: "instance-current" }, finalState ? ["Finished: ", stateBadge(finalState)] : "Not active and never triggered."), buttons);
            return;
          }
          const stateData = state.state_data;
          const messages = stateData.messages || [];
          const last = messages[messages.length - 1];
          replace(current, h("h2", {}, "Current state"),
            h("dl", { className: "props" },
              h("dt", {}, "State"), h("dd", { id: "instance-current" }, stateBadge(state.state, stateData.tries)),
              h("dt", {}, "Since"), h("dd", {}, formatTime(state.latest_timestamp)),
              h("dt", {}, "Tries"), h("dd", {}, stateData.tries),
              h("dt", {}, "Trigger"), h("dd", {}, stateData.trigger_id || "—"),
              h("dt", {}, "Execution"), h("dd", {}, stateData.execution_id || "—"),
              h("dt", {}, "Message"), h("dd", {}, last ? `${last.level}: ${last.line}` : "—")),
            buttons);
        });
      }),
      load(triggers, isCurrent, () => (history instanceof Error ? Promise.reject(history) : history), (data) => {
        drawIfChanged(triggers, data, () => replace(triggers, h("h2", {}, "Triggers and executions"), triggersTable(data)));
        output.refresh(data, isCurrent);
      }),
      load(timeline, isCurrent, () => api("GET", `/status/events/${enc(componentId)}/${enc(workflowId)}/${enc(parameter)}`), (data) => {
        drawIfChanged(timeline, data, () => replace(timeline, h("h2", {}, "Event timeline"), data.events.length === 0
          ? h("p", { className: "empty" }, "No events for this instance.")
          : h("ol", { className: "timeline" }, data.events.map(({ event, timestamp }) => h("li", {}, h("time", {}, formatTime(timestamp)), describeEvent(event))))));
      }),
    ]);
  }, LIVE_MILLIS);
}

function triggersTable(history) {
  return h("table", {}, headerRow("Trigger", "Triggered at", "Complete", "Execution", "Image", "Statuses"),
    h("tbody", {}, history.triggers.flatMap((trigger) => (trigger.executions.length ? trigger.executions : [null]).map((execution, index) => h("tr", {},
      h("td", {}, index === 0 ? trigger.trigger_id : ""),
      h("td", {}, index === 0 ? formatTime(trigger.timestamp) : ""),
      h("td", {}, index === 0 ? String(trigger.complete) : ""),
      h("td", {}, execution ? h("code", {}, execution.execution_id) : h("span", { className: "empty" }, "no execution yet")),
      h("td", {}, execution ? execution.docker_image : ""),
      h("td", { className: "statuses" }, execution ? execution.statuses.map((s) => h("div", {}, badge(s.status, statusClass(s.status)), " ", formatTime(s.timestamp), s.message ? ` — ${s.message}` : "")) : ""))))));
}

// Where /status/logs found an output: the container while it exists, afterwards the tail the store kept.
const OUTPUT_SOURCES = {
  container: "From the container, while it exists.",
  store: "Kept in the store when the container was removed (its last STYX_OUTPUT_TAIL_BYTES bytes).",
};

// Each execution's output, newest first, in a disclosure that loads when opened (the newest starts open).
// An execution's output is read again on every poll until it has ended and its output was found.
function executionOutputs(componentId, workflowId, parameter) {
  const list = h("div", { id: "execution-outputs" });
  const section = h("section", { className: "card", id: "instance-output" }, h("h2", {}, "Output"), list);
  const shown = new Map(); // execution id -> { details, body, final }
  const read = async (executionId, entry) => {
    if (entry.reading) return;
    entry.reading = true;
    const ended = entry.ended;
    const path = `/status/logs/${enc(componentId)}/${enc(workflowId)}/${enc(parameter)}?execution_id=${enc(executionId)}`;
    try {
      const data = await api("GET", path);
      if (data.execution_id !== executionId) throw new ApiError(404, `no output stored for execution ${executionId}`);
      drawIfChanged(entry.body, data, () => replace(entry.body,
        h("p", { className: "muted small" }, OUTPUT_SOURCES[data.source] || ""), h("pre", { className: "output" }, data.logs || "(no output)")));
      entry.final = ended;
    } catch (error) {
      const text = error instanceof ApiError && error.code === 404
        ? `No output for this execution${ended ? "" : " yet"} (${error.message}). Output is kept from when a container runs; an execution whose container never started has none.`
        : describeError(error);
      drawIfChanged(entry.body, text, () => replace(entry.body, h("p", { className: error.code === 404 ? "empty" : "error" }, text)));
    } finally {
      entry.reading = false;
    }
  };
  const refresh = (history, isCurrent) => {
    const executions = history.triggers.flatMap((trigger) => trigger.executions).filter((e) => e.execution_id).reverse();
    if (executions.length === 0) {
      drawIfChanged(list, "none", () => replace(list, h("p", { className: "empty" }, "No execution yet.")));
      return;
    }
    const entries = executions.map((execution, index) => {
      const last = execution.statuses[execution.statuses.length - 1];
      const ended = Boolean(last && FINAL_STATUSES.has(last.status));
      let entry = shown.get(execution.execution_id);
      if (!entry) {
        const body = h("div", { className: "output-body" }, h("p", { className: "muted" }, "Loading…"));
        const details = h("details", { "data-execution": execution.execution_id, open: index === 0 }, h("summary", {}), body);
        entry = { details, body, final: false, reading: false, ended };
        details.addEventListener("toggle", () => { if (details.open && !entry.final && isCurrent()) read(execution.execution_id, entry); });
        shown.set(execution.execution_id, entry);
      }
      entry.ended = ended;
      const summary = entry.details.firstChild;
      drawIfChanged(summary, last, () => replace(summary, "Execution ", h("code", {}, execution.execution_id), " ",
        last ? badge(last.status, statusClass(last.status)) : null, last ? ` ${formatTime(last.timestamp)}` : ""));
      if (entry.details.open && !entry.final) read(execution.execution_id, entry);
      return entry.details;
    });
    placeChildren(list, entries);
  };
  return { section, refresh };
}

// ---------------------------------------------------------------------------------------------------------
// Active states (live)

function activeStateRow(s) {
  const id = s.workflow_instance.workflow_id;
  const messages = s.state_data.messages || [];
  const last = messages[messages.length - 1];
  return h("tr", { "data-instance": `${id.component_id}/${id.id}/${s.workflow_instance.parameter}` },
    h("td", {}, h("a", { href: instanceHref(id.component_id, id.id, s.workflow_instance.parameter) }, `${id.component_id}/${id.id}/${s.workflow_instance.parameter}`)),
    h("td", {}, stateBadge(s.state, s.state_data.tries)),
    h("td", {}, formatTime(s.latest_timestamp)),
    h("td", {}, s.state_data.tries),
    h("td", {}, s.state_data.trigger_id || "—"),
    h("td", {}, last ? last.line : "—"));
}

function activePage() {
  const counts = h("div", { className: "counts", id: "state-counts", role: "group", "aria-label": "Filter by state" });
  const search = h("input", { id: "active-search", type: "search", placeholder: "component, workflow, parameter…" });
  const body = h("tbody", {});
  const table = h("table", {}, headerRow("Instance", "State", "Since", "Tries", "Trigger", "Last message"), body);
  const holder = h("div", {}, table);
  let states = [];
  let chosenState = "";
  const draw = () => {
    const tally = new Map();
    for (const s of states) tally.set(s.state, (tally.get(s.state) || 0) + 1);
    drawIfChanged(counts, [chosenState, states.length, [...tally.entries()].sort()], () => {
      const chip = (state, text) => {
        const button = h("button", { type: "button", "aria-pressed": String(chosenState === state), "data-state": state }, text);
        button.addEventListener("click", () => { chosenState = state; draw(); counts.querySelector(`[data-state="${state}"]`).focus(); });
        return button;
      };
      replace(counts, chip("", `All ${states.length}`), [...tally.entries()].sort().map(([state, n]) => chip(state, `${state} ${n}`)));
    });
    const wanted = search.value.trim().toLowerCase();
    const shown = states.filter((s) => (!chosenState || s.state === chosenState) &&
      (!wanted || `${s.workflow_instance.workflow_id.component_id}/${s.workflow_instance.workflow_id.id}/${s.workflow_instance.parameter}`.toLowerCase().includes(wanted)));
    const key = (s) => `${s.workflow_instance.workflow_id.component_id}/${s.workflow_instance.workflow_id.id}/${s.workflow_instance.parameter}`;
    drawRows(body, shown, key, activeStateRow, 6, states.length ? "No active instance matches the filter." : "No active instances.");
  };
  search.addEventListener("input", draw);
  setPage("Active states", true, counts, h("div", { className: "toolbar" }, h("label", {}, "Search", search)), holder);
  startPage((isCurrent) => load(holder, isCurrent, () => api("GET", "/status/activeStates"), (data) => {
    states = data.active_states.sort((a, b) => (b.latest_timestamp || 0) - (a.latest_timestamp || 0));
    if (holder.firstChild !== table) replace(holder, table);
    draw();
  }), LIVE_MILLIS);
}

// ---------------------------------------------------------------------------------------------------------
// Backfills (live): progress from the per-partition statuses

// FAILED and TERMINATED are on their way to a retry, so they count as running; ERROR is final, and UNKNOWN is a
// partition the cursor passed whose outcome cannot be replayed.
function backfillProgress(statuses) {
  const tally = { done: 0, running: 0, failed: 0, waiting: 0 };
  for (const s of statuses) {
    if (s.state === "DONE") tally.done += 1;
    else if (s.state === "ERROR" || s.state === "UNKNOWN") tally.failed += 1;
    else if (s.state === "WAITING") tally.waiting += 1;
    else tally.running += 1;
  }
  return tally;
}

function progressBar(tally) {
  const total = tally.done + tally.running + tally.failed + tally.waiting || 1;
  const label = `${tally.done} done, ${tally.running} running, ${tally.failed} failed, ${tally.waiting} waiting`;
  return h("div", {},
    h("div", { className: "progress", role: "img", "aria-label": label },
      [["done", tally.done], ["running", tally.running], ["failed", tally.failed]].map(([cls, n]) =>
        h("span", { className: `s-${cls}`, style: { width: `${(100 * n) / total}%` } }))),
    h("small", { className: "muted progress-label" }, label));
}

// halted; finished (every partition triggered and none still running); all triggered (some still run); running.
function backfillStatus(backfill, tally) {
  if (backfill.halted) return "halted";
  if (backfill.all_triggered) return tally.running === 0 && tally.waiting === 0 ? "finished" : "all triggered";
  return "running";
}

function statusBadge(status) {
  const cls = { halted: "failed", finished: "done", "all triggered": "running", running: "running" }[status];
  return badge(status, cls);
}

function backfillsPage() {
  const body = h("tbody", {});
  const holder = h("div", {}, h("table", {}, headerRow("Backfill", "Workflow", "Range", "Concurrency", "Status", "Progress"), body));
  const table = holder.firstChild;
  setPage("Backfills", true, holder, h("p", { className: "muted" }, "All backfills, halted and finished ones included."));
  startPage((isCurrent) => load(holder, isCurrent, () => api("GET", "/backfills?status=true&showAll=true"), (data) => {
    if (holder.firstChild !== table) replace(holder, table);
    const items = data.backfills.sort((a, b) => String(b.backfill.created || "").localeCompare(String(a.backfill.created || "")));
    drawRows(body, items, ({ backfill }) => backfill.id, backfillRow, 6, "No backfills. Start one from a workflow's page.");
  }), LIVE_MILLIS);
}

function backfillRow({ backfill, statuses }) {
  const tally = backfillProgress(statuses ? statuses.active_states : []);
  const wf = backfill.workflow_id;
  return h("tr", { "data-backfill": backfill.id },
    h("td", {}, h("a", { href: `#/backfills/${enc(backfill.id)}` }, backfill.id), backfill.description ? h("div", { className: "muted small" }, backfill.description) : null),
    h("td", {}, h("a", { href: workflowHref(wf.component_id, wf.id) }, `${wf.component_id}/${wf.id}`)),
    h("td", {}, `${formatTime(backfill.start)} → ${formatTime(backfill.end)}`),
    h("td", {}, backfill.concurrency),
    h("td", { className: "backfill-status" }, statusBadge(backfillStatus(backfill, tally))),
    h("td", {}, progressBar(tally)));
}

function backfillPage(backfillId) {
  const path = `/backfills/${enc(backfillId)}`;
  const details = h("section", { className: "card", id: "backfill-details" });
  const partitionRows = h("tbody", {});
  const partitions = h("section", { className: "card", id: "backfill-partitions" }, h("h2", {}, "Partitions"),
    h("table", {}, headerRow("Partition", "State", "Tries", "Last change"), partitionRows));
  const outlet = h("div", {});
  const concurrency = h("input", { id: "backfill-edit-concurrency", type: "number", min: 1, required: true });
  const save = h("button", { type: "submit", id: "backfill-save" }, "Save concurrency");
  const halt = h("button", { type: "button", id: "backfill-halt", className: "danger" }, "Halt backfill");
  // Shown once the backfill is known, and only while it has something left to halt or to pace.
  const editForm = h("form", { className: "stack", "aria-label": "Edit backfill", hidden: true }, h("label", {}, "Concurrency", concurrency), save, halt);
  const summary = h("div", {});
  editForm.addEventListener("submit", (event) => {
    event.preventDefault();
    act(save, outlet, () => api("PUT", path, { id: backfillId, concurrency: Number(concurrency.value) }), (b) => `Concurrency set to ${b.concurrency}.`);
  });
  halt.addEventListener("click", () => act(halt, outlet, () => api("DELETE", path), () => "Backfill halted."));
  replace(details, h("h2", {}, "Backfill"), summary, editForm, outlet);
  setPage(`Backfill ${backfillId}`, true, h("p", {}, h("a", { href: "#/backfills" }, "← all backfills")), details, partitions);
  let edited = false;
  startPage((isCurrent) => load(summary, isCurrent, () => api("GET", `${path}?status=true`), ({ backfill, statuses }) => {
    const states = statuses ? statuses.active_states : [];
    const wf = backfill.workflow_id;
    const tally = backfillProgress(states);
    const status = backfillStatus(backfill, tally);
    if (!edited) {
      concurrency.value = backfill.concurrency;
      edited = true;
    }
    editForm.hidden = status === "halted" || status === "finished";
    drawIfChanged(summary, [backfill, tally], () => replace(summary,
      h("dl", { className: "props" },
        h("dt", {}, "Workflow"), h("dd", {}, h("a", { href: workflowHref(wf.component_id, wf.id) }, `${wf.component_id}/${wf.id}`)),
        h("dt", {}, "Range"), h("dd", {}, `${formatTime(backfill.start)} → ${formatTime(backfill.end)}${backfill.reverse ? " (newest first)" : ""}`),
        h("dt", {}, "Concurrency"), h("dd", { id: "backfill-concurrency-value" }, backfill.concurrency),
        h("dt", {}, "Status"), h("dd", { id: "backfill-status" }, status),
        h("dt", {}, "Next trigger"), h("dd", {}, status === "running" ? formatTime(backfill.next_trigger) : "—"),
        h("dt", {}, "Description"), h("dd", {}, backfill.description || "—"),
        h("dt", {}, "Created"), h("dd", {}, formatTime(backfill.created))),
      progressBar(tally)));
    drawRows(partitionRows, states, (s) => s.workflow_instance.parameter, (s) => h("tr", { "data-parameter": s.workflow_instance.parameter },
      h("td", {}, h("a", { href: instanceHref(wf.component_id, wf.id, s.workflow_instance.parameter) }, s.workflow_instance.parameter)),
      h("td", {}, stateBadge(s.state, s.state_data.tries)),
      h("td", {}, s.state_data.tries),
      h("td", {}, formatTime(s.latest_timestamp))), 4, "No partitions.");
  }), LIVE_MILLIS);
}

// ---------------------------------------------------------------------------------------------------------
// Resources (live): used = active instances in a consuming state whose state_data.resource_ids hold it

// Resource id -> the instances holding it.
function resourceHolders(activeStates) {
  const holders = new Map();
  for (const s of activeStates) {
    if (!CONSUMING_STATES.has(s.state)) continue;
    for (const id of s.state_data.resource_ids || []) holders.set(id, [...(holders.get(id) || []), s.workflow_instance]);
  }
  return holders;
}

const HOLDERS_SHOWN = 5;

function resourceRow({ id, holders, limit }) {
  const used = holders.length;
  const share = limit > 0 ? Math.min(1, used / limit) : 1;
  const level = used >= limit ? "full" : share >= 0.8 ? "high" : "";
  const links = holders.slice(0, HOLDERS_SHOWN).map(({ workflow_id: wf, parameter }) =>
    h("div", {}, h("a", { href: instanceHref(wf.component_id, wf.id, parameter) }, `${wf.component_id}/${wf.id}/${parameter}`)));
  return h("tr", { "data-resource": id },
    h("td", {}, id),
    h("td", {},
      h("div", { className: "used-of-limit" }, h("span", { className: "usage" }, used), ` / ${limit} in use`,
        limit === 0 ? h("span", { className: "muted" }, " (a limit of 0 holds its instances back)") : null),
      h("span", { className: `meter ${level}`, role: "img", "aria-label": `${used} of ${limit} in use` },
        h("span", { style: { width: `${share * 100}%` } }))),
    h("td", { className: "holders" }, used === 0 ? h("span", { className: "muted" }, "—") : links,
      used > HOLDERS_SHOWN ? h("div", { className: "muted small" }, `and ${used - HOLDERS_SHOWN} more`) : null));
}

function resourcesPage() {
  const body = h("tbody", {});
  const holder = h("div", {}, h("table", {}, headerRow("Resource", "Used / limit", "Held by"), body));
  const table = holder.firstChild;
  setPage("Resources", true, holder,
    h("p", { className: "muted" }, "Used: active instances in PREPARE, SUBMITTING, SUBMITTED or RUNNING that hold the resource; instances queued for it are not counted."));
  startPage((isCurrent) => load(holder, isCurrent, () => Promise.all([api("GET", "/resources"), api("GET", "/status/activeStates")]), ([resources, active]) => {
    if (holder.firstChild !== table) replace(holder, table);
    const holders = resourceHolders(active.active_states);
    const items = resources.resources.sort((a, b) => a.id.localeCompare(b.id))
      .map((resource) => ({ id: resource.id, holders: holders.get(resource.id) || [], limit: resource.concurrency }));
    drawRows(body, items, (item) => item.id, resourceRow, 3, "No resources. Create one with `styx resource create <id> <concurrency>` or POST /api/v3/resources.");
  }), LIVE_MILLIS);
}

// ---------------------------------------------------------------------------------------------------------
// Token box (shown when the service requires authentication for changes) and the fragment router

async function setUpToken() {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  const status = document.getElementById("token-status");
  const showStatus = () => { status.textContent = sessionStorage.getItem(TOKEN_KEY) ? "token saved for this tab" : "no token: read-only"; };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value.trim()) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
    showStatus();
  });
  document.getElementById("token-clear").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); showStatus(); });
  showStatus();
  try {
    const response = await fetch("/ui/config.json");
    form.hidden = !(await response.json()).auth_enabled;
  } catch {
    form.hidden = false; // unknown: offer the box rather than hide it
  }
}

function notFoundPage() {
  setPage("Page not found", false, h("div", { className: "error", role: "alert" }, `There is no page at ${location.hash}.`),
    h("p", {}, h("a", { href: "#/workflows" }, "Go to the workflows")));
  startPage(async () => {}, null);
}

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter((p) => p !== "").map(decodeURIComponent);
  const [page, ...rest] = parts;
  for (const link of document.querySelectorAll("[data-nav]")) {
    const here = link.dataset.nav === (page === "instances" ? "workflows" : page || "workflows");
    link.classList.toggle("current", here);
    if (here) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  if (!page || (page === "workflows" && rest.length === 0)) workflowsPage();
  else if (page === "workflows" && rest.length === 2) workflowPage(rest[0], rest[1]);
  else if (page === "instances" && rest.length === 3) instancePage(rest[0], rest[1], rest[2]);
  else if (page === "active" && rest.length === 0) activePage();
  else if (page === "backfills" && rest.length === 0) backfillsPage();
  else if (page === "backfills" && rest.length === 1) backfillPage(rest[0]);
  else if (page === "resources" && rest.length === 0) resourcesPage();
  else notFoundPage();
}

window.addEventListener("hashchange", () => { route(); document.getElementById("main").focus(); });
setUpToken();
route();
