// App: the page's wiring: the filter in the address bar, the three views (the records
// with their live tail and chart, the errors by kind, and one record with what was logged
// around it), the facts, the reader's choices (zone, theme), and what to do while the
// database is away.

import { ApiError, get } from "./api.js";
import { drawChart } from "./chart.js";
import { absolute, shownTime, zoneLabel } from "./clock.js";
import { el } from "./dom.js";
import { showErrors } from "./errors.js";
import { condition } from "./fields.js";
import { showFacts } from "./facts.js";
import { listenForKeys } from "./keys.js";
import { RowList } from "./rows.js";
import {
  DEFAULT_SINCE,
  filterParams,
  isLive,
  rangeChoice,
  readState,
  records,
  toParams,
} from "./state.js";
import { wireToolbar } from "./toolbar.js";

const POLL_MS = 2000; // the live tail asks for new rows this often,
const RETRY_MS = 3000; // and, while the database is away, tries to reload this often
const CHART_MS = 15000;
const FACTS_MS = 60000;
// Ids are handed out in one order and committed in another, so a poll starts from the
// newest id seen this long ago: a row whose transaction was still open at the last poll
// is not skipped. The list drops rows it already has.
const HORIZON_MS = 5000;
const PAGE_ROWS = 100;
const LIVE_ROWS = 200;
const MAX_ROWS = 2000;
const AUTO_PAGES = 5; // a search that finds little goes on by itself this many times
// Failures that pass by themselves: a banner says which, and the page keeps trying.
const BANNERS = new Map([
  ["unavailable", "The database can't be reached"],
  ["busy", "The database is busy"],
  ["offline", "pglog serve can't be reached"],
]);

const $ = (id) => document.getElementById(id);
const form = $("filters");
const list = new RowList($("list"), act);
const chartParts = {
  svg: $("chart"),
  legend: $("legend"),
  axis: $("axis"),
  yaxis: $("yaxis"),
  note: $("chart-note"),
};
const errorParts = { summary: $("errors-summary"), list: $("errors-list"), empty: $("errors-empty") };
const factParts = {
  name: $("table-name"),
  list: $("facts-list"),
  levels: $("facts-levels"),
  loggers: $("facts-loggers"),
  datalist: $("loggers"),
  basis: $("facts-basis"),
};

let state = readState(location.search);
let generation = 0; // bumped by every new filter: answers for an older one are dropped
let requests = new AbortController(); // and the requests made for it are cancelled
let paused = false;
let outage = false;
let older = null; // the cursor for older rows
let polls = []; // [when, newest id looked at] of recent polls, oldest first
let chartAt = 0;
let factsAt = 0;

// -- the filter ------------------------------------------------------------------------

function fillForm() {
  const fields = form.elements;
  const level = state.level.toUpperCase();
  fields.level.value = level === "WARN" ? "WARNING" : level;
  fields.logger.value = state.logger;
  fields.grep.value = state.grep;
  fields.range.value = rangeChoice(state);
  $("custom-range").hidden = fields.range.value !== "custom";
  fields.since.value = state.since;
  fields.until.value = state.until;
  const chip = (text, without) => {
    const remove = el("button", "remove", "×");
    remove.type = "button";
    remove.setAttribute("aria-label", `remove ${text}`);
    remove.addEventListener("click", () => apply(without));
    return el("li", "condition", el("code", null, text), remove);
  };
  $("conditions").replaceChildren(
    ...state.where.map((text, index) =>
      chip(text, records(state, { where: state.where.filter((_, other) => other !== index) })),
    ),
    ...["request", "trace", "kind"]
      .filter((name) => state[name])
      .map((name) => chip(`${name}: ${state[name]}`, records(state, { [name]: "" }))),
  );
  $("columns").replaceChildren(
    ...state.columns.map((name) =>
      chip(`column ${name}`, { ...state, columns: state.columns.filter((other) => other !== name) }),
    ),
  );
  for (const button of document.querySelectorAll("#views button")) {
    button.setAttribute("aria-pressed", String(button.dataset.view === (state.view || "records")));
  }
}

function readForm() {
  const fields = form.elements;
  const custom = fields.range.value === "custom";
  const where = [...state.where];
  const typed = fields.where.value.trim();
  if (typed && !where.includes(typed)) where.push(typed);
  fields.where.value = "";
  return records(state, {
    level: fields.level.value,
    logger: fields.logger.value.trim(),
    since: custom ? absolute(fields.since.value.trim()) || DEFAULT_SINCE : fields.range.value,
    until: custom ? absolute(fields.until.value.trim()) : "",
    grep: fields.grep.value.trim(),
    where,
    view: state.view === "errors" ? "errors" : "",
  });
}

/** What a row's button asks for. */
function act(kind, ...args) {
  if (kind === "around") {
    const [id, around] = args;
    apply({ ...state, id: String(id), around, view: "" });
  } else if (kind === "only" || kind === "not") {
    const [name, value] = args;
    const text = condition(name, value, kind === "not");
    if (text && !state.where.includes(text)) apply(records(state, { where: [...state.where, text] }));
  } else if (kind === "column") {
    const [name] = args;
    if (!state.columns.includes(name)) apply({ ...state, columns: [...state.columns, name] });
  } else {
    const [value] = args; // request, trace, kind or logger
    apply(records(state, { [kind]: value, view: "" }));
  }
}

/** Show `next`, and put it in the address bar (a new history entry) if it changed. */
function apply(next, force = false) {
  const query = toParams(next).toString();
  if (query === toParams(state).toString() && !force) return;
  state = next;
  if (`?${query}` !== location.search) history.pushState(null, "", `?${query}`);
  fillForm();
  reload();
}

// -- loading -----------------------------------------------------------------------------

async function reload() {
  const mine = ++generation;
  requests.abort();
  requests = new AbortController();
  list.clear();
  list.columns = state.columns;
  list.dates = Boolean(state.id || state.until) || !["15m", "1h"].includes(state.since);
  $("records").classList.toggle("dated", list.dates);
  older = null;
  polls = [];
  $("error").hidden = true;
  $("arrivals-note").hidden = true;
  $("list-note").textContent = "";
  const view = state.id ? "context" : state.view === "errors" ? "errors" : "records";
  document.body.dataset.view = view;
  const columns = state.columns.length;
  $("records").style.setProperty("--columns", columns ? `repeat(${columns}, minmax(3rem, 8rem))` : " ");
  $("when-head").textContent = `Time (${zoneLabel()})`;
  $("column-heads").replaceChildren(...state.columns.map((name) => el("span", null, name)));
  showStatus();
  try {
    if (view === "context") await loadContext(mine);
    else if (view === "errors") await loadErrors(mine);
    else await Promise.all([loadRows(mine, null), loadChart(mine)]);
  } catch (error) {
    failed(error, mine);
  }
}

async function loadContext(mine) {
  const params = new URLSearchParams({ id: state.id, around: state.around || "process" });
  if (state.window) params.set("window", state.window);
  const found = await get("/api/context", params, requests.signal);
  if (mine !== generation) return;
  $("context-around").value = found.around;
  $("context-window").value = state.window || "5m";
  if (!found.record) {
    $("context-note").textContent = `There is no record ${state.id} in this table.`;
    return;
  }
  const what = { process: "by the same process", request: "in the same request", all: "by anyone" };
  $("context-note").textContent =
    `Record ${found.record.id}, logged ${shownTime(found.record.timestamp)} ${zoneLabel()},` +
    ` and what was logged ${what[found.around]} around it` +
    (found.cut ? " (the nearest 50 each side)." : ".");
  list.append([...found.rows].reverse());
  const anchor = document.querySelector(`#list details.row[data-id="${found.record.id}"]`);
  if (anchor) {
    anchor.classList.add("anchor", "current");
    anchor.open = true;
    anchor.scrollIntoView({ block: "center" });
  }
}

async function loadErrors(mine) {
  const data = await get("/api/errors", filterParams(state), requests.signal);
  if (mine !== generation) return;
  showErrors(errorParts, data, (group) =>
    apply(records(state, { kind: group.kind, since: data.since, until: data.until, view: "" })),
  );
}

async function loadRows(mine, cursor) {
  const { signal } = requests;
  let added = 0;
  let pages = 0;
  $("older").hidden = true;
  do {
    const params = filterParams(state);
    params.set("limit", PAGE_ROWS);
    if (cursor) params.set("before", cursor);
    const page = await get("/api/rows", params, signal);
    if (mine !== generation) return;
    if (page.live_from !== null && polls.length === 0) polls.push([Date.now(), page.live_from]);
    added += list.append(page.rows);
    cursor = page.next;
    pages += 1;
  } while (cursor && added < PAGE_ROWS && pages < AUTO_PAGES);
  older = cursor;
  $("older").hidden = !older;
  let note = "";
  if (list.size === 0 && !older) note = "No records match in this range.";
  else if (older && added < PAGE_ROWS) {
    note = `Searched back to ${shownTime(older.split("/")[0])} ${zoneLabel()}; older matches may exist.`;
  }
  $("list-note").textContent = note;
}

async function poll(mine) {
  const params = filterParams(state);
  params.set("after", startingPoint());
  params.set("limit", LIVE_ROWS);
  const answer = await get("/api/live", params, requests.signal);
  if (mine !== generation || paused) return;
  if (answer.last_id !== null) polls.push([Date.now(), answer.last_id]);
  const oldest = answer.rows[answer.rows.length - 1];
  if (!answer.complete && oldest && !list.has(oldest.id)) {
    $("arrivals-note").textContent =
      "Rows arrived faster than the page shows them: some in between are left out.";
    $("arrivals-note").hidden = false;
  }
  list.prepend(answer.rows);
  const cut = list.trim(MAX_ROWS);
  if (cut) {
    older = cut;
    $("older").hidden = false;
  }
}

/** The newest id looked at by a poll at least HORIZON_MS ago (or the oldest known). */
function startingPoint() {
  const now = Date.now();
  let keep = 0;
  polls.forEach(([when], index) => {
    if (now - when >= HORIZON_MS) keep = index;
  });
  polls = polls.slice(keep);
  return polls[0][1];
}

async function loadChart(mine) {
  const data = await get("/api/volume", filterParams(state), requests.signal);
  if (mine !== generation) return;
  chartAt = Date.now();
  drawChart(chartParts, data, (bar) => apply(records(state, { since: bar.start, until: bar.stop })));
}

async function loadFacts() {
  const facts = await get("/api/facts");
  factsAt = Date.now();
  document.title = `pglog: ${facts.table}`;
  showFacts(factParts, facts, (logger) => apply(records(state, { logger })));
}

// -- time passing: the live tail, refreshes, recovery -------------------------------------

async function tick() {
  const mine = generation;
  try {
    if (outage) {
      await loadFacts(); // throws while the database is still away
      outage = false;
      $("banner").hidden = true;
      document.body.dataset.outage = "no";
      await reload();
    } else if (isLive(state) && !paused && polls.length) {
      await poll(mine);
      if (Date.now() - chartAt > CHART_MS) await loadChart(mine);
      if (Date.now() - factsAt > FACTS_MS) await loadFacts();
    }
  } catch (error) {
    failed(error, mine);
  } finally {
    setTimeout(tick, outage ? RETRY_MS : POLL_MS);
  }
}

function failed(error, mine) {
  if (!(error instanceof ApiError)) throw error; // a bug of the page's: leave it to the console
  if (error.kind === "aborted") return;
  if (BANNERS.has(error.kind)) {
    outage = true;
    $("banner").textContent = `${BANNERS.get(error.kind)} (${error.message}). Trying again…`;
    $("banner").hidden = false;
    document.body.dataset.outage = error.kind === "busy" ? "busy" : "yes";
    return;
  }
  if (mine !== generation) return;
  $("error").textContent = error.message;
  $("error").hidden = false;
}

function showStatus() {
  const live = isLive(state);
  const mode = !live ? "off" : paused ? "paused" : "on";
  document.body.dataset.live = mode;
  $("live-status").textContent = {
    on: "Live: new records appear at the top",
    paused: "Paused",
    off: "Not live: the range has an end",
  }[mode];
  $("pause").textContent = paused ? "Resume" : "Pause";
  $("pause").setAttribute("aria-pressed", String(paused));
  $("pause").disabled = !live;
}

// -- wiring ------------------------------------------------------------------------------

form.addEventListener("submit", (event) => {
  event.preventDefault();
  apply(readForm(), true);
});
form.addEventListener("change", (event) => {
  if (event.target.name === "range" && event.target.value === "custom") {
    $("custom-range").hidden = false;
    form.elements.since.focus();
    return;
  }
  apply(readForm());
});
$("pause").addEventListener("click", () => {
  paused = !paused;
  showStatus();
  if (!paused && polls.length) poll(generation).catch((error) => failed(error, generation));
});
$("older").addEventListener("click", () => {
  loadRows(generation, older).catch((error) => failed(error, generation));
});
for (const button of document.querySelectorAll("#views button")) {
  button.addEventListener("click", () =>
    apply(records(state, { view: button.dataset.view === "errors" ? "errors" : "" })),
  );
}
$("context-around").addEventListener("change", (event) => apply({ ...state, around: event.target.value }));
$("context-window").addEventListener("change", (event) => apply({ ...state, window: event.target.value }));
$("context-back").addEventListener("click", () => apply(records(state)));
wireToolbar({
  state: () => state,
  toParams,
  rows: () => list.shown(),
  zoneChanged: () => {
    reload();
    loadFacts().catch((error) => failed(error, generation));
  },
});
window.addEventListener("popstate", () => {
  state = readState(location.search);
  fillForm();
  reload();
});

listenForKeys(form.elements.grep);
fillForm();
reload();
loadFacts().catch((error) => failed(error, generation));
setTimeout(tick, POLL_MS);
