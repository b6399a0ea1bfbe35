// Fields: a record's extra_data as name and value, each value a way to narrow the view
// (only these records, or all but these) or to show its field as a column.

import { el } from "./dom.js";

const KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** The top-level fields of a row's extra_data (the server's indented JSON text). */
export function fieldsOf(row) {
  if (!row.extra_data) return [];
  try {
    return Object.entries(JSON.parse(row.extra_data));
  } catch {
    return [];
  }
}

/** `extra.name=value` (or `!=`) for a value the filter language can compare, else null:
 * a string in quotes (so "42" stays a string), a number exact in JavaScript, a boolean. */
export function condition(name, value, exclude = false) {
  if (!KEY.test(name)) return null;
  const operator = exclude ? "!=" : "=";
  if (typeof value === "string") return `extra.${name}${operator}${JSON.stringify(value)}`;
  if (typeof value === "boolean" || value === null) return `extra.${name}${operator}${value}`;
  if (typeof value === "number" && (Number.isSafeInteger(value) || !Number.isInteger(value))) {
    return `extra.${name}${operator}${value}`;
  }
  return null;
}

/** A value as a column or a field shows it. */
export function shown(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** The list of fields with their buttons; `act(kind, name, value)` is called with kind
 * "only", "not" or "column". */
export function fieldList(row, act) {
  const list = el("dl", "fields");
  for (const [name, value] of fieldsOf(row)) {
    const buttons = el("span", "field-actions");
    for (const [kind, label, title] of [
      ["only", "=", `only records whose ${name} is this`],
      ["not", "≠", `hide records whose ${name} is this`],
      ["column", "⊞", `show ${name} as a column`],
    ]) {
      if (kind !== "column" && condition(name, value) === null) continue;
      const button = el("button", `field-${kind}`, label);
      button.type = "button";
      button.title = title;
      button.setAttribute("aria-label", title);
      button.addEventListener("click", () => act(kind, name, value));
      buttons.append(button);
    }
    list.append(el("dt", null, name), el("dd", null, el("span", "value", shown(value)), buttons));
  }
  return list;
}
