// Errors: the range's errors, one group per kind, the most frequent first: how many, a
// trend over the range, when first and last seen, whether the kind is new (never seen
// before the range), and a way to its records.

import { shownTime, zoneLabel } from "./clock.js";
import { el, levelClass, number } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

/** Fill `parts` with an /api/errors answer; `open(group)` shows a group's records. */
export function showErrors(parts, data, open) {
  const fresh = data.groups.filter((group) => group.new).length;
  const kinds = data.groups.length + data.more;
  parts.summary.textContent =
    `${number(data.records)} error records of ${number(kinds)} kinds in this range` +
    (fresh ? `, ${number(fresh)} of them new (never seen before it)` : "") +
    (data.more ? `; the ${data.groups.length} most frequent are shown` : "") +
    `. Times in ${zoneLabel()}.`;
  parts.list.replaceChildren(
    ...data.groups.map((group) => {
      const link = el("button", "kind link", group.kind);
      link.type = "button";
      link.title = "show the records of this kind";
      link.addEventListener("click", () => open(group));
      const sample = [group.message.split("\n", 1)[0], group.error].filter(Boolean).join(" | ");
      return el(
        "li",
        `group${group.new ? " new" : ""}`,
        el("span", "count", number(group.count)),
        el("span", `level ${levelClass(group.level)}`, group.level),
        el(
          "span",
          "what",
          link,
          group.new ? el("span", "badge", "new") : null,
          el("span", "sample", `${group.logger}: ${sample}`),
        ),
        trend(group.trend, data.step_seconds),
        el(
          "span",
          "seen",
          `last ${shownTime(group.last_seen)}`,
          el("br"),
          `first ${shownTime(group.first_seen)}`,
        ),
      );
    }),
  );
  parts.empty.hidden = data.groups.length > 0;
}

/** A small bar chart of a group's counts over the range. */
function trend(counts, step) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "trend");
  svg.setAttribute("viewBox", `0 0 ${counts.length} 10`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const top = Math.max(1, ...counts);
  counts.forEach((count, index) => {
    if (!count) return;
    const bar = document.createElementNS(SVG, "rect");
    const height = Math.max(1, (count / top) * 10);
    for (const [name, value] of Object.entries({ x: index + 0.1, y: 10 - height, width: 0.8, height })) {
      bar.setAttribute(name, String(value));
    }
    svg.append(bar);
  });
  const minutes = Math.round(step / 60);
  svg.setAttribute("aria-label", `per ${minutes} min: ${counts.join(", ")}`);
  return svg;
}
