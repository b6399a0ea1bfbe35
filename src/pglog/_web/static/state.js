// State: what the page shows, as it lives in the address bar, with the names `pglog query`
// uses for the filters, and the page's own for the rest (view, id, around, window, columns).

export const PRESETS = ["15m", "1h", "24h"];
export const DEFAULT_SINCE = "1h";
// The filter, as the API takes it; then what only the page reads.
const FILTERS = ["level", "logger", "since", "until", "grep", "request", "trace", "kind"];
const PAGE = ["view", "id", "around", "window"];

/** The state a query string describes. */
export function readState(search) {
  const params = new URLSearchParams(search);
  const state = { where: params.getAll("where").filter((text) => text.trim()) };
  for (const name of [...FILTERS, ...PAGE]) state[name] = (params.get(name) ?? "").trim();
  state.columns = (params.get("columns") ?? "").split(",").map((key) => key.trim()).filter(Boolean);
  state.since ||= DEFAULT_SINCE;
  return state;
}

/** The query string for the whole state: empty fields left out, `where` repeated. */
export function toParams(state) {
  const params = filterParams(state);
  for (const name of PAGE) if (state[name]) params.set(name, state[name]);
  if (state.columns.length) params.set("columns", state.columns.join(","));
  return params;
}

/** The filter alone, as the API endpoints take it. */
export function filterParams(state) {
  const params = new URLSearchParams();
  for (const name of FILTERS) if (state[name]) params.set(name, state[name]);
  for (const condition of state.where) params.append("where", condition);
  return params;
}

/** A range that runs up to now takes rows as they land. */
export function isLive(state) {
  return !state.until && !state.id && state.view !== "errors";
}

export function rangeChoice(state) {
  return !state.until && PRESETS.includes(state.since) ? state.since : "custom";
}

/** The state with `changes`, out of a record's context (a new filter shows a list). */
export function records(state, changes = {}) {
  return { ...state, id: "", around: "", window: "", ...changes };
}
