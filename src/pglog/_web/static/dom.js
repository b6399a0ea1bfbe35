// Dom: the one way this page makes elements. Strings become text nodes, never markup,
// so log content shows as the characters it is; the CSP's Trusted Types would refuse
// any assignment of HTML anyway.

const KNOWN_LEVELS = new Set(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]);

/** An element with a class (or none) and children: strings, numbers or nodes. */
export function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The CSS class for a level: one of ours, or "other" for a custom level's name. */
export function levelClass(level) {
  return `level-${KNOWN_LEVELS.has(level) ? level.toLowerCase() : "other"}`;
}

export function number(value) {
  return Number(value).toLocaleString("en");
}
