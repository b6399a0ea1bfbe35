// State: the filter, as it lives in the address bar, with the names `pglog query` uses.

export const PRESETS = ["15m", "1h", "24h"];
export const DEFAULT_SINCE = "1h";
const SINGLE = ["level", "logger", "since", "until", "grep"];

/** The filter a query string describes. */
export function readState(search) {
  const params = new URLSearchParams(search);
  const state = { where: params.getAll("where").filter((text) => text.trim()) };
  for (const name of SINGLE) state[name] = (params.get(name) ?? "").trim();
  state.since ||= DEFAULT_SINCE;
  return state;
}

/** The query string for a filter: empty fields left out, `where` repeated. */
export function toParams(state) {
  const params = new URLSearchParams();
  for (const name of SINGLE) if (state[name]) params.set(name, state[name]);
  for (const condition of state.where) params.append("where", condition);
  return params;
}

/** A range that runs up to now takes rows as they land. */
export function isLive(state) {
  return !state.until;
}

export function rangeChoice(state) {
  return !state.until && PRESETS.includes(state.since) ? state.since : "custom";
}
