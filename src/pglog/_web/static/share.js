// Share: a link to what the page shows with its range frozen (absolute times, so whoever
// opens it sees the same records), and the rows shown, downloaded as JSON lines or CSV.

/** The address of `state` with its range as absolute times, now. */
export function frozenLink(state, toParams, now = new Date()) {
  const frozen = { ...state, since: moment(state.since, now), until: state.until ? moment(state.until, now) : now.toISOString() };
  return `${location.origin}${location.pathname}?${toParams(frozen)}`;
}

const UNITS = { s: 1, sec: 1, m: 60, min: 60, h: 3600, d: 86400, w: 604800 };

/** A duration ("2h": that long before `now`) or a time, as an absolute ISO time. */
function moment(text, now) {
  const duration = /^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$/i.exec(text);
  if (!duration) return text;
  const seconds = Number(duration[1]) * UNITS[(duration[2] ?? "s").toLowerCase()];
  return new Date(now.getTime() - seconds * 1000).toISOString();
}

/** Offer `rows` as a file: one JSON object a line (extra_data as the object it is, its
 * numbers exact), or CSV with a header (extra_data as one line of JSON). */
export function download(rows, format) {
  const text = format === "csv" ? csv(rows.map(flat)) : rows.map(jsonLine).join("");
  const type = format === "csv" ? "text/csv" : "application/x-ndjson";
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type }));
  link.download = `pglog-${new Date().toISOString().replace(/[:.]/g, "-")}.${format === "csv" ? "csv" : "jsonl"}`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

/** extra_data (the server's indented JSON text) on one line: JSON strings hold no raw
 * line breaks, so this changes no value. */
function oneLine(extra) {
  return extra ? extra.replace(/\n\s*/g, " ") : "{}";
}

function flat(row) {
  return { ...row, extra_data: oneLine(row.extra_data) };
}

function jsonLine(row) {
  const { extra_data: extra, ...rest } = row;
  return `${JSON.stringify(rest).slice(0, -1)},"extra_data":${oneLine(extra)}}\n`;
}

function csv(rows) {
  const names = rows.length ? Object.keys(rows[0]) : [];
  const lines = [names.join(","), ...rows.map((row) => names.map((name) => cell(row[name])).join(","))];
  return lines.join("\r\n") + "\r\n";
}

/** A CSV cell: quoted when it must be, and never read as a formula by a spreadsheet. */
function cell(value) {
  if (value === null || value === undefined) return "";
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
