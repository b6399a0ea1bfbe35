// Toolbar: the header's buttons that don't change what is shown: Share, the downloads,
// the zone times are shown in, and the theme.

import { setUtc, usesUtc, zoneLabel } from "./clock.js";
import { download, frozenLink } from "./share.js";
import { applyTheme, nextTheme } from "./theme.js";

const $ = (id) => document.getElementById(id);
const FROZEN = "The range is frozen: whoever opens it sees these records.";

/** `state()` and `rows()` give what the page shows now; `zoneChanged()` redraws it. */
export function wireToolbar({ state, toParams, rows, zoneChanged }) {
  $("share").addEventListener("click", async () => {
    const link = frozenLink(state(), toParams);
    const field = $("share-link");
    field.value = link;
    $("share-box").hidden = false;
    field.select();
    try {
      await navigator.clipboard.writeText(link);
      $("share-note").textContent = `Copied. ${FROZEN}`;
    } catch {
      $("share-note").textContent = `Copy this link. ${FROZEN}`;
    }
  });
  for (const format of ["jsonl", "csv"]) {
    $(`download-${format}`).addEventListener("click", () => download(rows(), format));
  }
  $("zone").addEventListener("click", () => {
    setUtc(!usesUtc());
    showZone();
    zoneChanged();
  });
  $("theme").addEventListener("click", () => nextTheme($("theme")));
  applyTheme($("theme"));
  showZone();
}

function showZone() {
  $("zone").textContent = usesUtc() ? "Times: UTC" : `Times: local (${zoneLabel()})`;
  $("zone").setAttribute("aria-pressed", String(usesUtc()));
}
