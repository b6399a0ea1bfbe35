// Facts: what the table is, how big, how fresh, and what it holds.

import { shownTime, zoneLabel } from "./clock.js";
import { el, levelClass, number } from "./dom.js";

const BASIS = {
  counted: "Counted over the whole table.",
  statistics: "Estimated from the planner's statistics (ANALYZE): counting would take too long.",
  newest: "Counted over the newest rows only: no planner statistics (ANALYZE) to estimate from.",
};

/** Fill the facts panel; a logger's name is a button that filters by it. */
export function showFacts(parts, facts, chooseLogger) {
  parts.name.textContent = facts.table;
  const estimate = facts.basis === "counted" ? "" : "about ";
  parts.list.replaceChildren(
    ...[
      ["table", facts.table],
      ["database", facts.database],
      ["rows", `${estimate}${number(facts.estimated_rows)}`],
      ["size", bytes(facts.total_bytes)],
      ["newest row", facts.newest ? `${shownTime(facts.newest)} ${zoneLabel()}` : "none"],
      ["oldest row", facts.oldest ? `${shownTime(facts.oldest)} ${zoneLabel()}` : "none"],
      ["schema version", facts.schema_version ?? "unmarked"],
    ].flatMap(([name, value]) => [el("dt", null, name), el("dd", null, value)]),
  );
  parts.levels.replaceChildren(
    ...facts.by_level.map(([level, count]) =>
      el("li", null, el("span", `level ${levelClass(level)}`, level), ` ${estimate}${number(count)}`),
    ),
  );
  parts.loggers.replaceChildren(
    ...facts.by_logger.map(([name, count]) => {
      const button = el("button", "link", name);
      button.type = "button";
      button.title = `show only ${name} and its children`;
      button.addEventListener("click", () => chooseLogger(name));
      return el("li", null, button, ` ${estimate}${number(count)}`);
    }),
  );
  parts.datalist.replaceChildren(
    ...facts.by_logger.map(([name]) => {
      const option = el("option");
      option.value = name;
      return option;
    }),
  );
  parts.basis.textContent = BASIS[facts.basis] ?? "";
}

function bytes(size) {
  const units = ["bytes", "kB", "MB", "GB", "TB"];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit ? `${value.toFixed(1)} ${units[unit]}` : `${value} bytes`;
}
