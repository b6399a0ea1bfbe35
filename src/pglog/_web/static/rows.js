// Rows: the list of records, newest first; each row opens to its details, its fields (to
// filter by), its extra_data and exception, its permalink and the records around it.

import { shownTime } from "./clock.js";
import { el, levelClass } from "./dom.js";
import { fieldList, fieldsOf, shown } from "./fields.js";

export class RowList {
  /** `act(kind, ...)` is called when a row's button asks for another view. */
  constructor(container, act) {
    this.container = container;
    this.act = act;
    this.ids = new Set();
    this.rows = new Map();
    this.columns = [];
    this.dates = true;
  }

  clear() {
    this.container.replaceChildren();
    this.ids.clear();
    this.rows.clear();
  }

  get size() {
    return this.ids.size;
  }

  has(id) {
    return this.ids.has(id);
  }

  /** The rows shown, newest first (for downloads). */
  shown() {
    return [...this.container.children].map((node) => this.rows.get(Number(node.dataset.id)));
  }

  /** Older rows, at the bottom; returns how many were new. */
  append(rows) {
    const fresh = rows.filter((row) => !this.ids.has(row.id));
    this.container.append(...fresh.map((row) => this.#render(row, false)));
    return fresh.length;
  }

  /** Rows that just landed (newest first), at the top; returns how many were new. */
  prepend(rows) {
    const fresh = rows.filter((row) => !this.ids.has(row.id));
    this.container.prepend(...fresh.map((row) => this.#render(row, true)));
    return fresh.length;
  }

  /** Drop the oldest rows beyond `max`; returns the cursor that continues after the
   * last row kept, or null when nothing was dropped. */
  trim(max) {
    if (this.container.children.length <= max) return null;
    while (this.container.children.length > max) {
      const last = this.container.lastElementChild;
      this.ids.delete(Number(last.dataset.id));
      this.rows.delete(Number(last.dataset.id));
      last.remove();
    }
    const last = this.container.lastElementChild;
    return `${last.dataset.timestamp}/${last.dataset.id}`;
  }

  #render(row, arrived) {
    this.ids.add(row.id);
    this.rows.set(row.id, row);
    const level = el("span", `level ${levelClass(row.level)}`, row.level);
    const when = el("time", "when", shownTime(row.timestamp, { date: this.dates }));
    when.dateTime = row.timestamp;
    const fields = new Map(fieldsOf(row));
    const columns = this.columns.map((name) =>
      el("span", "column", fields.has(name) ? shown(fields.get(name)) : ""),
    );
    const summary = el(
      "summary",
      null,
      when,
      level,
      el("span", "logger", row.logger_name),
      ...columns,
      el("span", "message", row.message.split("\n", 1)[0]),
    );
    const node = el("details", `row ${levelClass(row.level)}${arrived ? " arrived" : ""}`, summary);
    node.dataset.id = row.id;
    node.dataset.timestamp = row.timestamp;
    node.addEventListener("toggle", () => {
      if (node.open && node.children.length === 1) node.append(this.#details(row, fields));
    });
    return node;
  }

  #details(row, fields) {
    const where = [row.filename, row.lineno].filter((part) => part !== null).join(":");
    const facts = el("dl", "row-facts");
    for (const [name, value] of [
      ["id", row.id],
      ["time", `${shownTime(row.timestamp)} (${row.timestamp})`],
      ["host", row.hostname],
      ["process", row.process_id],
      ["thread", row.thread_name],
      ["function", row.function_name],
      ["file", where],
      ["template", row.template],
      ["kind", row.fingerprint],
    ]) {
      if (value === null || value === undefined || value === "") continue;
      facts.append(el("dt", null, name), el("dd", null, value));
    }
    const link = el("a", "permalink", "Permalink");
    link.href = `?id=${row.id}`;
    link.title = "a link to this record and what was logged around it";
    const actions = el("p", "row-actions", link);
    const around = (label, kind) => {
      const button = el("button", `around-${kind}`, label);
      button.type = "button";
      button.addEventListener("click", () => this.act("around", row.id, kind));
      actions.append(button);
    };
    around("Around: same process", "process");
    if (typeof fields.get("request_id") === "string") around("Around: same request", "request");
    around("Around: everything", "all");
    const follow = (label, kind, value) => {
      const button = el("button", `follow-${kind}`, label);
      button.type = "button";
      button.addEventListener("click", () => this.act(kind, value));
      actions.append(button);
    };
    if (typeof fields.get("request_id") === "string") follow("This request", "request", fields.get("request_id"));
    if (typeof fields.get("otelTraceID") === "string") follow("This trace", "trace", fields.get("otelTraceID"));
    if (row.fingerprint) follow("Errors of this kind", "kind", row.fingerprint);
    follow("This logger", "logger", row.logger_name);
    return el(
      "div",
      "detail",
      actions,
      el("h3", null, "message"),
      el("pre", "full-message", row.message),
      row.extra_data ? el("h3", null, "extra_data") : null,
      row.extra_data ? fieldList(row, (kind, name, value) => this.act(kind, name, value)) : null,
      row.extra_data ? el("pre", "extra", row.extra_data) : null,
      row.exception ? el("h3", null, "exception") : null,
      row.exception ? el("pre", "exception", row.exception) : null,
      facts,
    );
  }
}
