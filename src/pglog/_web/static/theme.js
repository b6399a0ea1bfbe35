// Theme: light, dark, or as the system says (prefers-color-scheme), kept in this browser.

const KEY = "pglog.theme";
const NEXT = { auto: "dark", dark: "light", light: "auto" };

export function theme() {
  const chosen = localStorage.getItem(KEY);
  return chosen in NEXT ? chosen : "auto";
}

/** Show the chosen theme; `button` says which it is and switches to the next. */
export function applyTheme(button) {
  const chosen = theme();
  if (chosen === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = chosen;
  button.textContent = `Theme: ${chosen}`;
  button.title = "auto follows the system's light or dark setting";
}

export function nextTheme(button) {
  localStorage.setItem(KEY, NEXT[theme()]);
  applyTheme(button);
}
