// Chart: records over time, one stacked bar per stretch of time, by level, on a y-axis of
// round numbers. Choosing a bar (a click, or Enter after moving to it with the arrow keys:
// the chart is one stop for Tab, not one per bar) narrows the range to it.

import { shownTime, zoneLabel } from "./clock.js";
import { el, levelClass, number } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const ORDER = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const WIDTH = 1000;
const HEIGHT = 120;

/** Draw `data` (an /api/volume answer); `choose(bar)` is called with the chosen bar. */
export function drawChart(parts, data, choose) {
  const levels = levelsIn(data.bars);
  const top = roundUp(Math.max(1, ...data.bars.map(total)));
  const width = WIDTH / Math.max(1, data.bars.length);
  const gap = Math.min(1, width / 4);
  parts.yaxis.replaceChildren(
    ...[top, top / 2, 0].map((value) => el("span", null, value % 1 ? "" : number(value))),
  );
  parts.svg.replaceChildren(
    ...[0.5, 0].map((share) => line(HEIGHT - share * (HEIGHT - 4) - (share ? 0 : 0.5))),
    ...data.bars.map((bar, index) => {
      const group = shape("g", "bar");
      group.dataset.start = bar.start;
      group.dataset.stop = bar.stop;
      group.dataset.index = String(index);
      const title = shape("title");
      title.textContent = describe(bar, levels);
      group.append(title, rect(index * width, 0, width, HEIGHT, "hit"));
      let y = HEIGHT;
      for (const level of levels) {
        const count = bar.counts[level] ?? 0;
        if (!count) continue;
        const height = Math.max(1, (count / top) * (HEIGHT - 4));
        y -= height;
        group.append(rect(index * width + gap, y, width - 2 * gap, height, levelClass(level)));
      }
      group.addEventListener("click", () => choose(bar));
      return group;
    }),
  );
  let focused = data.bars.length - 1;
  const show = () => {
    parts.svg.querySelectorAll("g.bar").forEach((group, index) => {
      group.classList.toggle("focused", index === focused);
    });
    const bar = data.bars[focused];
    parts.svg.setAttribute(
      "aria-label",
      bar ? `${describe(bar, levels)}. Left and right choose a bar, Enter narrows to it` : "no records",
    );
  };
  parts.svg.setAttribute("tabindex", "0");
  parts.svg.onfocus = show;
  parts.svg.onkeydown = (event) => {
    const moves = { ArrowLeft: -1, ArrowRight: 1, Home: -Infinity, End: Infinity };
    if (event.key in moves) {
      event.preventDefault();
      focused = Math.min(data.bars.length - 1, Math.max(0, focused + moves[event.key]));
      show();
    } else if ((event.key === "Enter" || event.key === " ") && data.bars[focused]) {
      event.preventDefault();
      choose(data.bars[focused]);
    }
  };
  parts.legend.replaceChildren(
    ...levels.map((level) => {
      const sum = data.bars.reduce((all, bar) => all + (bar.counts[level] ?? 0), 0);
      return el("span", `key ${levelClass(level)}`, el("span", "swatch"), `${level} ${number(sum)}`);
    }),
  );
  const first = data.bars[0];
  const last = data.bars[data.bars.length - 1];
  parts.axis.replaceChildren(
    ...(first ? [el("span", null, stamp(first.start)), el("span", null, stamp(last.stop))] : []),
  );
  parts.axis.title = `times in ${zoneLabel()}`;
  const all = data.bars.reduce((sum, bar) => sum + total(bar), 0);
  parts.note.textContent =
    `${data.estimated ? "about " : ""}${number(all)} records, ${span(data.step_seconds)} a bar` +
    (data.estimated ? " (busy stretches are estimated from the rows they start with)" : "");
}

function levelsIn(bars) {
  const seen = new Set(bars.flatMap((bar) => Object.keys(bar.counts)));
  const others = [...seen].filter((level) => !ORDER.includes(level)).sort();
  return [...ORDER.filter((level) => seen.has(level)), ...others];
}

function total(bar) {
  return Object.values(bar.counts).reduce((sum, count) => sum + count, 0);
}

function describe(bar, levels) {
  const counts = levels
    .filter((level) => bar.counts[level])
    .map((level) => `${number(bar.counts[level])} ${level}`);
  return `${stamp(bar.start)} to ${stamp(bar.stop)}: ${counts.join(", ") || "no records"}`;
}

function stamp(iso) {
  return `${shownTime(iso).slice(5, 19)} ${zoneLabel(new Date(iso))}`;
}

/** The round number (1, 2 or 5 times a power of ten) at or above `value`. */
function roundUp(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((step) => step * power).find((round) => round >= value);
}

function line(y) {
  const node = shape("line", "grid");
  for (const [name, value] of Object.entries({ x1: 0, x2: WIDTH, y1: y, y2: y })) {
    node.setAttribute(name, String(value));
  }
  return node;
}

function span(seconds) {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

function shape(tag, className) {
  const node = document.createElementNS(SVG, tag);
  if (className) node.setAttribute("class", className);
  return node;
}

function rect(x, y, width, height, className) {
  const node = shape("rect", className);
  for (const [name, value] of Object.entries({ x, y, width, height })) {
    node.setAttribute(name, String(value));
  }
  return node;
}
