// The Styx dashboard: a single page over the v3 API (docs/dashboard.md). Plain JavaScript, no build step.
// Pages are chosen by the URL fragment (#/workflows, #/workflows/c/w, #/instances/c/w/p, #/active,
// #/backfills, #/backfills/id, #/resources); live pages poll the API every 2 s.
"use strict";

const API = "/api/v3";
const POLL_MILLIS = 2000;
const TOKEN_KEY = "styx-id-token";
// States that hold resource permits (styx_actors.model.State.consumes_resources).
const CONSUMING_STATES = new Set(["PREPARE", "SUBMITTING", "SUBMITTED", "RUNNING"]);

// ---------------------------------------------------------------------------------------------------------
// DOM and formatting helpers. Text always goes in as text nodes, never as HTML.

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function replace(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined));
}

function formatTime(value) {
  if (value === null || value === undefined) return "—";
  const date = typeof value === "number" ? new Date(value) : new Date(value);
  return isNaN(date) ? String(value) : date.toISOString().replace(".000Z", "Z");
}

const enc = encodeURIComponent;

function instanceHref(componentId, workflowId, parameter) {
  return `#/instances/${enc(componentId)}/${enc(workflowId)}/${enc(parameter)}`;
}

function workflowHref(componentId, workflowId) {
  return `#/workflows/${enc(componentId)}/${enc(workflowId)}`;
}

// The colour class of a state or execution status: done, failed, running, queued or waiting.
function outcomeClass(status) {
  switch (status) {
    case "DONE": case "SUCCESS": return "done";
    case "ERROR": case "FAILED": case "TERMINATED": case "UNKNOWN": case "MISSING_DEPS": case "FAILURE": return "failed";
    case "WAITING": return "waiting";
    case "NEW": case "QUEUED": return "queued";
    default: return "running";
  }
}

function badge(status) {
  return h("span", { className: `badge s-${outcomeClass(status)}` }, status);
}

function emptyRow(columns, text) {
  return h("tr", {}, h("td", { colspan: columns, className: "empty" }, text));
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

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (method !== "GET" && token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
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
// Page lifecycle: one page at a time; a page's `refresh` runs now and, for live pages, every 2 s after the
// previous run finished. Navigating away stops it.

let currentPage = { generation: 0, timer: null };

function startPage(refresh, live) {
  const generation = currentPage.generation + 1;
  clearTimeout(currentPage.timer);
  currentPage = { generation, timer: null };
  const run = async () => {
    if (generation !== currentPage.generation) return;
    await refresh(() => generation === currentPage.generation);
    if (live && generation === currentPage.generation) currentPage.timer = setTimeout(run, POLL_MILLIS);
  };
  run();
}

function setPage(title, ...content) {
  document.title = `${title} · Styx`;
  const main = document.getElementById("main");
  replace(main, h("h1", {}, title), ...content);
}

// Loads data into `target`, showing the API's error there when the load fails.
async function load(target, isCurrent, loader, renderer) {
  try {
    const data = await loader();
    if (isCurrent()) renderer(data);
  } catch (error) {
    if (isCurrent()) replace(target, errorBox(error));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Workflows

function workflowsPage() {
  const component = h("select", { id: "component-filter" }, h("option", { value: "" }, "All components"));
  const search = h("input", { id: "workflow-search", type: "search", placeholder: "id, component, image…" });
  const body = h("tbody", {});
  const table = h("table", {},
    h("thead", {}, h("tr", {}, ["Component", "Workflow", "Schedule", "Enabled", "Next trigger"].map((c) => h("th", { scope: "col" }, c)))),
    body);
  const holder = h("div", {}, table);
  let rows = [];
  const draw = () => {
    const wanted = search.value.trim().toLowerCase();
    const shown = rows.filter(({ workflow }) =>
      (!component.value || workflow.component_id === component.value) &&
      (!wanted || [workflow.component_id, workflow.workflow_id, workflow.configuration.docker_image || ""]
        .some((text) => text.toLowerCase().includes(wanted))));
    replace(body, shown.length === 0
      ? emptyRow(5, rows.length === 0 ? "No workflows yet. Create one with `styx create` or POST /api/v3/workflows/{component}." : "No workflow matches the filter.")
      : shown.map(({ workflow, state }) => h("tr", {},
        h("td", {}, workflow.component_id),
        h("td", {}, h("a", { href: workflowHref(workflow.component_id, workflow.workflow_id) }, workflow.workflow_id)),
        h("td", {}, workflow.configuration.schedule),
        h("td", {}, state.enabled === "true" ? badge("ENABLED") : h("span", { className: "muted" }, "disabled")),
        h("td", {}, formatTime(state.next_natural_trigger)))));
  };
  component.addEventListener("change", draw);
  search.addEventListener("input", draw);
  setPage("Workflows",
    h("div", { className: "toolbar" }, h("label", {}, "Component", component), h("label", {}, "Search", search)),
    holder);
  startPage((isCurrent) => load(holder, isCurrent, () => api("GET", "/workflows?full=true"), (data) => {
    rows = data.sort((a, b) => (a.workflow.component_id + "/" + a.workflow.workflow_id).localeCompare(b.workflow.component_id + "/" + b.workflow.workflow_id));
    const components = [...new Set(rows.map(({ workflow }) => workflow.component_id))].sort();
    const chosen = component.value;
    replace(component, h("option", { value: "" }, "All components"), components.map((c) => h("option", { value: c, selected: c === chosen }, c)));
    replace(holder, table);
    draw();
  }), false);
}

// ---------------------------------------------------------------------------------------------------------
// One workflow: configuration, state, instance grid, trigger and backfill forms

function outcomeOfHistory(history, activeState) {
  if (activeState) return activeState.state;
  const trigger = history.triggers[history.triggers.length - 1];
  const execution = trigger && trigger.executions[trigger.executions.length - 1];
  const status = execution && execution.statuses[execution.statuses.length - 1];
  if (!status) return trigger && trigger.complete ? "DONE" : "UNKNOWN";
  return status.status;
}

function legend() {
  return h("div", { className: "legend", "aria-hidden": "true" },
    [["done", "done"], ["failed", "failed"], ["running", "running"], ["queued", "queued"]]
      .map(([cls, text]) => h("span", {}, h("span", { className: `swatch s-${cls}` }), text)));
}

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
  setPage(`${componentId} / ${workflowId}`, content);
  let grid = null;
  // The configuration and forms load once; the instance grid is live.
  startPage(async (isCurrent) => {
    if (grid === null) {
      await load(content, isCurrent, () => api("GET", `${path}/full`), ({ workflow, state }) => {
        grid = instanceGrid(componentId, workflowId, path);
        replace(content, workflowDetails(componentId, workflowId, path, workflow, state, grid.section));
      });
    }
    if (grid !== null) await grid.refresh(isCurrent);
  }, true);
}

function workflowDetails(componentId, workflowId, path, workflow, state, gridSection) {
  const config = workflow.configuration;
  const stateSection = h("section", { className: "card" });
  // Redrawn from the state the API answered, so the button always flips the latest known state.
  const drawState = (current) => {
    const enabled = current.enabled === "true";
    const outlet = h("div", {});
    const toggle = h("button", { type: "button", id: "toggle-enabled", className: enabled ? "danger" : "" }, enabled ? "Disable" : "Enable");
    toggle.addEventListener("click", async () => {
      const changed = await act(toggle, outlet, () => api("PATCH", `${path}/state`, { enabled: !enabled }));
      if (changed) drawState(changed).focus();
    });
    replace(stateSection, h("h2", {}, "State"),
      h("dl", { className: "props" },
        h("dt", {}, "Enabled"), h("dd", { id: "workflow-enabled" }, enabled ? "true" : "false"),
        h("dt", {}, "Next natural trigger"), h("dd", {}, formatTime(current.next_natural_trigger)),
        h("dt", {}, "Next trigger with offset"), h("dd", {}, formatTime(current.next_natural_offset_trigger))),
      h("p", {}, toggle), outlet);
    return toggle;
  };
  drawState(state);

  return [
    h("section", { className: "card" }, h("h2", {}, "Configuration"),
      h("dl", { className: "props" },
        ...[["Schedule", config.schedule], ["Offset", config.offset], ["Docker image", config.docker_image],
          ["Docker args", config.docker_args ? config.docker_args.join(" ") : null], ["Resources", (config.resources || []).join(", ")],
          ["Service account", config.service_account], ["Running timeout", config.running_timeout],
          ["Commit", config.commit_sha], ["Deployed", formatTime(config.deployment_time)]]
          .flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value === null || value === undefined || value === "" ? "—" : value)])),
      h("details", {}, h("summary", {}, "Full configuration (JSON)"), h("pre", {}, JSON.stringify(config, null, 2)))),
    stateSection,
    gridSection,
    triggerForm(componentId, workflowId),
    backfillForm(componentId, workflowId),
  ];
}

function instanceGrid(componentId, workflowId, path) {
  const limit = h("select", { id: "grid-limit" }, [24, 72, 168].map((n) => h("option", { value: n }, `latest ${n} periods`)));
  const start = h("input", { id: "grid-start", placeholder: "start parameter, e.g. 2026-10-01" });
  const stop = h("input", { id: "grid-stop", placeholder: "stop (exclusive, optional)" });
  const cells = h("div", { id: "instance-grid", className: "grid", role: "list", "aria-label": "Instances, oldest first" });
  const summary = h("p", { className: "muted" });
  const section = h("section", { className: "card" }, h("h2", {}, "Recent instances"),
    h("div", { className: "toolbar" }, h("label", {}, "Periods", limit), h("label", {}, "Or from", start), h("label", {}, "to", stop)),
    legend(), cells, summary);
  let refreshing = Promise.resolve();
  const query = () => start.value.trim()
    ? `start=${enc(start.value.trim())}${stop.value.trim() ? `&stop=${enc(stop.value.trim())}` : ""}`
    : `tail=true&limit=${limit.value}`;
  const refresh = async (isCurrent) => {
    try {
      const [histories, active] = await Promise.all([
        api("GET", `${path}/instances?${query()}`),
        api("GET", `/status/activeStates?component=${enc(componentId)}&workflow=${enc(workflowId)}`),
      ]);
      if (!isCurrent()) return;
      const activeByParameter = new Map(active.active_states.map((s) => [s.workflow_instance.parameter, s]));
      const parameters = new Set(histories.map((history) => history.workflow_instance.parameter));
      const entries = histories.map((history) => [history.workflow_instance.parameter, outcomeOfHistory(history, activeByParameter.get(history.workflow_instance.parameter))]);
      replace(cells, entries.length === 0 ? h("p", { className: "empty" }, "No instances in this range.") : entries.map(([parameter, status]) =>
        h("a", {
          className: `cell s-${outcomeClass(status)}`, role: "listitem", href: instanceHref(componentId, workflowId, parameter),
          title: `${parameter}: ${status}`, "aria-label": `${parameter}: ${status}`, "data-parameter": parameter, "data-status": status,
        })));
      const activeOutside = active.active_states.filter((s) => !parameters.has(s.workflow_instance.parameter)).length;
      replace(summary, `${entries.length} instances shown` + (activeOutside ? `; ${activeOutside} active instance(s) outside this range (see Active states)` : ""));
    } catch (error) {
      if (isCurrent()) replace(cells, errorBox(error));
    }
  };
  const redraw = () => { refreshing = refreshing.then(() => refresh(() => true)); };
  limit.addEventListener("change", redraw);
  start.addEventListener("change", redraw);
  stop.addEventListener("change", redraw);
  return { section, refresh };
}

function triggerForm(componentId, workflowId) {
  const parameter = h("input", { id: "trigger-parameter", required: true, placeholder: "e.g. 2026-10-01 or 2026-10-01T13" });
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
    await act(submit, outlet, () => {
      const request = { workflow_id: { component_id: componentId, id: workflowId }, parameter: value, trigger_parameters: { env: parseEnv(env.value) } };
      return api("POST", `/scheduler/trigger${allowFuture.checked ? "?allowFuture=true" : ""}`, request);
    }, (result) => ["Triggered ", h("code", {}, result.trigger_id), ": ",
      h("a", { id: "triggered-instance", href: instanceHref(componentId, workflowId, value) }, `open instance ${value}`)]);
  });
  return h("section", { className: "card" }, h("h2", {}, "Trigger an instance"), form, outlet);
}

function backfillForm(componentId, workflowId) {
  const start = h("input", { id: "backfill-start", required: true, placeholder: "2026-10-01T00:00:00Z" });
  const end = h("input", { id: "backfill-end", required: true, placeholder: "2026-10-05T00:00:00Z (exclusive)" });
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
// One instance: current state, retry/halt, triggers with their executions, the event timeline (live)

function describeEvent(event) {
  const details = Object.entries(event)
    .filter(([key]) => key !== "@type" && key !== "workflow_instance")
    .map(([key, value]) => `${key}=${typeof value === "object" ? JSON.stringify(value) : value}`);
  return [h("strong", {}, event["@type"]), details.length ? h("span", { className: "muted" }, " ", details.join(" ")) : null];
}

function instancePage(componentId, workflowId, parameter) {
  const instancePath = `/workflows/${enc(componentId)}/${enc(workflowId)}/instances/${enc(parameter)}`;
  const current = h("section", { className: "card", id: "instance-state" });
  const triggers = h("section", { className: "card", id: "instance-triggers" });
  const timeline = h("section", { className: "card", id: "instance-events" });
  const logs = h("section", { className: "card", id: "instance-logs" });
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
  setPage(`${componentId} / ${workflowId} / ${parameter}`,
    h("p", {}, h("a", { href: workflowHref(componentId, workflowId) }, `← workflow ${componentId}/${workflowId}`)),
    current, outlet, triggers, timeline, logs);
  startPage(async (isCurrent) => {
    await Promise.all([
      load(current, isCurrent, () => Promise.all([
        api("GET", `/status/activeStates?component=${enc(componentId)}&workflow=${enc(workflowId)}`),
        api("GET", instancePath).catch((error) => { if (error.code === 404) return null; throw error; }),
      ]), ([data, history]) => {
        const state = data.active_states.find((s) => s.workflow_instance.parameter === parameter);
        retry.disabled = halt.disabled = !state;
        if (!state) {
          // Not active any more: the outcome is the last execution status (SUCCESS means the instance is DONE).
          const outcome = history ? outcomeOfHistory(history, null) : null;
          const finalState = outcome === "SUCCESS" ? "DONE" : outcome;
          replace(current, h("h2", {}, "Current state"),
            h("p", { id: "instance-current" }, finalState ? ["Finished: ", badge(finalState)] : "Not active and never triggered."),
            h("p", {}, retry, " ", halt));
          return;
        }
        const stateData = state.state_data;
        const messages = stateData.messages || [];
        const last = messages[messages.length - 1];
        replace(current, h("h2", {}, "Current state"),
          h("dl", { className: "props" },
            h("dt", {}, "State"), h("dd", { id: "instance-current" }, badge(state.state)),
            h("dt", {}, "Since"), h("dd", {}, formatTime(state.latest_timestamp)),
            h("dt", {}, "Tries"), h("dd", {}, stateData.tries),
            h("dt", {}, "Trigger"), h("dd", {}, stateData.trigger_id || "—"),
            h("dt", {}, "Execution"), h("dd", {}, stateData.execution_id || "—"),
            h("dt", {}, "Message"), h("dd", {}, last ? `${last.level}: ${last.line}` : "—")),
          h("p", {}, retry, " ", halt));
      }),
      load(triggers, isCurrent, () => api("GET", instancePath), (history) => {
        replace(triggers, h("h2", {}, "Triggers and executions"), h("table", {},
          h("thead", {}, h("tr", {}, ["Trigger", "Triggered at", "Complete", "Execution", "Image", "Statuses"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, history.triggers.flatMap((trigger) => (trigger.executions.length ? trigger.executions : [null]).map((execution, index) => h("tr", {},
            h("td", {}, index === 0 ? trigger.trigger_id : ""),
            h("td", {}, index === 0 ? formatTime(trigger.timestamp) : ""),
            h("td", {}, index === 0 ? String(trigger.complete) : ""),
            h("td", {}, execution ? h("code", {}, execution.execution_id) : h("span", { className: "empty" }, "no execution yet")),
            h("td", {}, execution ? execution.docker_image : ""),
            h("td", { className: "statuses" }, execution ? execution.statuses.map((s) => h("div", {}, badge(s.status), " ", formatTime(s.timestamp), s.message ? ` — ${s.message}` : "")) : "")))))));
      }),
      load(timeline, isCurrent, () => api("GET", `/status/events/${enc(componentId)}/${enc(workflowId)}/${enc(parameter)}`), (data) => {
        replace(timeline, h("h2", {}, "Event timeline"), data.events.length === 0
          ? h("p", { className: "empty" }, "No events for this instance.")
          : h("ol", { className: "timeline" }, data.events.map(({ event, timestamp }) => h("li", {}, h("time", {}, formatTime(timestamp)), describeEvent(event)))));
      }),
      // Container output, while the latest execution's container exists (it is removed after a grace period).
      load(logs, isCurrent, () => api("GET", `/status/logs/${enc(componentId)}/${enc(workflowId)}/${enc(parameter)}`)
        .catch((error) => { if (error.code === 404) return null; throw error; }), (data) => {
        replace(logs, h("h2", {}, "Container logs"), data
          ? [h("p", { className: "muted" }, "Execution ", h("code", {}, data.execution_id)), h("pre", { id: "instance-log-text" }, data.logs || "(no output)")]
          : h("p", { className: "empty" }, "No container for this instance (none ran yet, or it was removed after its grace period)."));
      }),
    ]);
  }, true);
}

// ---------------------------------------------------------------------------------------------------------
// Active states (live)

function activeStateRow(s) {
  const id = s.workflow_instance.workflow_id;
  const messages = s.state_data.messages || [];
  const last = messages[messages.length - 1];
  return h("tr", {},
    h("td", {}, h("a", { href: instanceHref(id.component_id, id.id, s.workflow_instance.parameter) }, `${id.component_id}/${id.id}/${s.workflow_instance.parameter}`)),
    h("td", {}, badge(s.state)),
    h("td", {}, formatTime(s.latest_timestamp)),
    h("td", {}, s.state_data.tries),
    h("td", {}, s.state_data.trigger_id || "—"),
    h("td", {}, last ? last.line : "—"));
}

function activePage() {
  const counts = h("div", { className: "counts", id: "state-counts", role: "group", "aria-label": "Filter by state" });
  const search = h("input", { id: "active-search", type: "search", placeholder: "component, workflow, parameter…" });
  const body = h("tbody", {});
  const holder = h("div", {}, h("table", {},
    h("thead", {}, h("tr", {}, ["Instance", "State", "Since", "Tries", "Trigger", "Last message"].map((c) => h("th", { scope: "col" }, c)))), body));
  let states = [];
  let chosenState = "";
  const draw = () => {
    const tally = new Map();
    for (const s of states) tally.set(s.state, (tally.get(s.state) || 0) + 1);
    const chip = (state, text) => {
      const button = h("button", { type: "button", "aria-pressed": String(chosenState === state), "data-state": state }, text);
      button.addEventListener("click", () => { chosenState = state; draw(); counts.querySelector(`[data-state="${state}"]`).focus(); });
      return button;
    };
    replace(counts, chip("", `All ${states.length}`), [...tally.entries()].sort().map(([state, n]) => chip(state, `${state} ${n}`)));
    const wanted = search.value.trim().toLowerCase();
    const shown = states.filter((s) => (!chosenState || s.state === chosenState) &&
      (!wanted || `${s.workflow_instance.workflow_id.component_id}/${s.workflow_instance.workflow_id.id}/${s.workflow_instance.parameter}`.toLowerCase().includes(wanted)));
    replace(body, shown.length ? shown.map(activeStateRow) : emptyRow(6, states.length ? "No active instance matches the filter." : "No active instances."));
  };
  search.addEventListener("input", draw);
  setPage("Active states", counts, h("div", { className: "toolbar" }, h("label", {}, "Search", search)), holder,
    h("p", { className: "muted" }, "Refreshed every 2 seconds."));
  const table = holder.firstChild;
  startPage((isCurrent) => load(holder, isCurrent, () => api("GET", "/status/activeStates"), (data) => {
    states = data.active_states.sort((a, b) => (b.latest_timestamp || 0) - (a.latest_timestamp || 0));
    if (holder.firstChild !== table) replace(holder, table);
    draw();
  }), true);
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
        h("span", { className: `s-${cls}`, style: `width: ${(100 * n) / total}%` }))),
    h("small", { className: "muted progress-label" }, label));
}

function backfillStatusText(backfill) {
  if (backfill.halted) return "halted";
  if (backfill.all_triggered) return "all triggered";
  return "running";
}

function backfillsPage() {
  const body = h("tbody", {});
  const holder = h("div", {}, h("table", {},
    h("thead", {}, h("tr", {}, ["Backfill", "Workflow", "Range", "Concurrency", "Status", "Progress"].map((c) => h("th", { scope: "col" }, c)))), body));
  const table = holder.firstChild;
  setPage("Backfills", holder, h("p", { className: "muted" }, "All backfills, halted and finished ones included. Refreshed every 2 seconds."));
  startPage((isCurrent) => load(holder, isCurrent, () => api("GET", "/backfills?status=true&showAll=true"), (data) => {
    if (holder.firstChild !== table) replace(holder, table);
    const items = data.backfills.sort((a, b) => String(b.backfill.created || "").localeCompare(String(a.backfill.created || "")));
    replace(body, items.length === 0 ? emptyRow(6, "No backfills. Start one from a workflow's page.") : items.map(({ backfill, statuses }) => h("tr", { "data-backfill": backfill.id },
      h("td", {}, h("a", { href: `#/backfills/${enc(backfill.id)}` }, backfill.id), backfill.description ? h("div", { className: "muted" }, backfill.description) : null),
      h("td", {}, h("a", { href: workflowHref(backfill.workflow_id.component_id, backfill.workflow_id.id) }, `${backfill.workflow_id.component_id}/${backfill.workflow_id.id}`)),
      h("td", {}, `${formatTime(backfill.start)} → ${formatTime(backfill.end)}`),
      h("td", {}, backfill.concurrency),
      h("td", { className: "backfill-status" }, backfillStatusText(backfill)),
      h("td", {}, progressBar(backfillProgress(statuses ? statuses.active_states : []))))));
  }), true);
}

function backfillPage(backfillId) {
  const path = `/backfills/${enc(backfillId)}`;
  const details = h("section", { className: "card", id: "backfill-details" });
  const partitions = h("section", { className: "card", id: "backfill-partitions" });
  const outlet = h("div", {});
  const concurrency = h("input", { id: "backfill-edit-concurrency", type: "number", min: 1, required: true });
  const save = h("button", { type: "submit", id: "backfill-save" }, "Save concurrency");
  const halt = h("button", { type: "button", id: "backfill-halt", className: "danger" }, "Halt backfill");
  const editForm = h("form", { className: "stack", "aria-label": "Edit backfill" }, h("label", {}, "Concurrency", concurrency), save, halt);
  editForm.addEventListener("submit", (event) => {
    event.preventDefault();
    act(save, outlet, () => api("PUT", path, { id: backfillId, concurrency: Number(concurrency.value) }), (b) => `Concurrency set to ${b.concurrency}.`);
  });
  halt.addEventListener("click", () => act(halt, outlet, () => api("DELETE", path), () => "Backfill halted."));
  setPage(`Backfill ${backfillId}`, h("p", {}, h("a", { href: "#/backfills" }, "← all backfills")), details, partitions);
  let editable = false;
  startPage((isCurrent) => load(details, isCurrent, () => api("GET", `${path}?status=true`), ({ backfill, statuses }) => {
    const states = statuses ? statuses.active_states : [];
    const wf = backfill.workflow_id;
    if (!editable) {
      concurrency.value = backfill.concurrency;
      editable = true;
    }
    halt.disabled = backfill.halted;
    replace(details, h("h2", {}, "Backfill"),
      h("dl", { className: "props" },
        h("dt", {}, "Workflow"), h("dd", {}, h("a", { href: workflowHref(wf.component_id, wf.id) }, `${wf.component_id}/${wf.id}`)),
        h("dt", {}, "Range"), h("dd", {}, `${formatTime(backfill.start)} → ${formatTime(backfill.end)}${backfill.reverse ? " (newest first)" : ""}`),
        h("dt", {}, "Concurrency"), h("dd", { id: "backfill-concurrency-value" }, backfill.concurrency),
        h("dt", {}, "Status"), h("dd", { id: "backfill-status" }, backfillStatusText(backfill)),
        h("dt", {}, "Next trigger"), h("dd", {}, formatTime(backfill.next_trigger)),
        h("dt", {}, "Description"), h("dd", {}, backfill.description || "—"),
        h("dt", {}, "Created"), h("dd", {}, formatTime(backfill.created))),
      progressBar(backfillProgress(states)), editForm, outlet);
    replace(partitions, h("h2", {}, "Partitions"), h("table", {},
      h("thead", {}, h("tr", {}, ["Partition", "State", "Tries", "Last change"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, states.length === 0 ? emptyRow(4, "No partitions.") : states.map((s) => h("tr", {},
        h("td", {}, h("a", { href: instanceHref(wf.component_id, wf.id, s.workflow_instance.parameter) }, s.workflow_instance.parameter)),
        h("td", {}, badge(s.state)),
        h("td", {}, s.state_data.tries),
        h("td", {}, formatTime(s.latest_timestamp)))))));
  }), true);
}

// ---------------------------------------------------------------------------------------------------------
// Resources (live): usage = active instances in a consuming state whose state_data.resource_ids hold it

function resourceUsage(activeStates) {
  const usage = new Map();
  for (const s of activeStates) {
    if (!CONSUMING_STATES.has(s.state)) continue;
    for (const id of s.state_data.resource_ids || []) usage.set(id, (usage.get(id) || 0) + 1);
  }
  return usage;
}

function resourcesPage() {
  const body = h("tbody", {});
  const holder = h("div", {}, h("table", {},
    h("thead", {}, h("tr", {}, ["Resource", "Usage", "Concurrency", ""].map((c) => h("th", { scope: "col" }, c)))), body));
  const table = holder.firstChild;
  setPage("Resources", holder,
    h("p", { className: "muted" }, "Usage counts active instances in PREPARE, SUBMITTING, SUBMITTED or RUNNING that hold the resource. Refreshed every 2 seconds."));
  startPage((isCurrent) => load(holder, isCurrent, () => Promise.all([api("GET", "/resources"), api("GET", "/status/activeStates")]), ([resources, active]) => {
    if (holder.firstChild !== table) replace(holder, table);
    const usage = resourceUsage(active.active_states);
    const items = resources.resources.sort((a, b) => a.id.localeCompare(b.id));
    replace(body, items.length === 0 ? emptyRow(4, "No resources. Create one with `styx resource create` or POST /api/v3/resources.") : items.map((resource) => {
      const used = usage.get(resource.id) || 0;
      const share = resource.concurrency > 0 ? Math.min(1, used / resource.concurrency) : 1;
      return h("tr", { "data-resource": resource.id },
        h("td", {}, resource.id),
        h("td", { className: "usage" }, used),
        h("td", {}, resource.concurrency),
        h("td", {}, h("span", { className: `meter${used >= resource.concurrency ? " full" : ""}`, role: "img", "aria-label": `${used} of ${resource.concurrency} in use` },
          h("span", { style: `width: ${share * 100}%` }))));
    }));
  }), true);
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
  setPage("Page not found", h("div", { className: "error", role: "alert" }, `There is no page at ${location.hash}.`),
    h("p", {}, h("a", { href: "#/workflows" }, "Go to the workflows")));
  startPage(async () => {}, false);
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
