// Keys: the page without a mouse. "/" searches, "j" and "k" move down and up the records,
// Enter (or "o") opens and closes the current one, Escape leaves a field.

const ROWS = "#list details.row";

export function listenForKeys(search) {
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest?.("input, select, textarea");
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "/") {
      event.preventDefault();
      search.focus();
      search.select();
    } else if (event.key === "j" || event.key === "k") {
      event.preventDefault();
      move(event.key === "j" ? 1 : -1);
    } else if (event.key === "o" || (event.key === "Enter" && !event.target.closest("summary, button, a"))) {
      const current = document.querySelector(`${ROWS}.current`);
      if (current) {
        event.preventDefault();
        current.open = !current.open;
      }
    }
  });
}

function move(step) {
  const rows = [...document.querySelectorAll(ROWS)];
  if (!rows.length) return;
  const index = rows.findIndex((row) => row.classList.contains("current"));
  const next = rows[Math.min(rows.length - 1, Math.max(0, index < 0 ? 0 : index + step))];
  rows.forEach((row) => row.classList.toggle("current", row === next));
  const summary = next.querySelector("summary");
  summary.focus({ preventScroll: true });
  next.scrollIntoView({ block: "nearest" });
}
