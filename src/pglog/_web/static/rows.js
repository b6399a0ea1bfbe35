// Rows: the list of records, newest first; each row opens to its details, extra_data
// and exception.

import { el, levelClass, shortTime } from "./dom.js";

export class RowList {
  constructor(container) {
    this.container = container;
    this.ids = new Set();
  }

  clear() {
    this.container.replaceChildren();
    this.ids.clear();
  }

  get size() {
    return this.ids.size;
  }

  has(id) {
    return this.ids.has(id);
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
      last.remove();
    }
    const last = this.container.lastElementChild;
    return `${last.dataset.timestamp}/${last.dataset.id}`;
  }

  #render(row, arrived) {
    this.ids.add(row.id);
    const level = el("span", `level ${levelClass(row.level)}`, row.level);
    const when = el("time", "when", shortTime(row.timestamp));
    when.dateTime = row.timestamp;
    const firstLine = row.message.split("\n", 1)[0];
    const summary = el(
      "summary",
      null,
      when,
      level,
      el("span", "logger", row.logger_name),
      el("span", "message", firstLine),
    );
    const where = [row.filename, row.lineno].filter((part) => part !== null).join(":");
    const facts = el("dl", "row-facts");
    for (const [name, value] of [
      ["id", row.id],
      ["host", row.hostname],
      ["process", row.process_id],
      ["thread", row.thread_name],
      ["function", row.function_name],
      ["file", where],
    ]) {
      if (value === null || value === "") continue;
      facts.append(el("dt", null, name), el("dd", null, value));
    }
    const details = el(
      "div",
      "detail",
      el("h3", null, "message"),
      el("pre", "full-message", row.message),
      row.extra_data ? el("h3", null, "extra_data") : null,
      row.extra_data ? el("pre", "extra", row.extra_data) : null,
      row.exception ? el("h3", null, "exception") : null,
      row.exception ? el("pre", "exception", row.exception) : null,
      facts,
    );
    const node = el("details", `row ${levelClass(row.level)}${arrived ? " arrived" : ""}`, summary, details);
    node.dataset.id = row.id;
    node.dataset.timestamp = row.timestamp;
    return node;
  }
}
