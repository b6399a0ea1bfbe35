// Clock: times as the page shows them, in the browser's zone or in UTC (the reader's
// choice, kept in this browser), always labelled; and times typed in that zone.

const KEY = "pglog.utc";

export function usesUtc() {
  return localStorage.getItem(KEY) === "1";
}

export function setUtc(utc) {
  localStorage.setItem(KEY, utc ? "1" : "0");
}

/** The zone's label: "UTC", or the browser's short name for its zone (CET, GMT+9). */
export function zoneLabel(at = new Date()) {
  if (usesUtc()) return "UTC";
  const part = new Intl.DateTimeFormat("en", { timeZoneName: "short" })
    .formatToParts(at)
    .find((piece) => piece.type === "timeZoneName");
  return part ? part.value : "local";
}

/** 2026-11-23T10:00:01.123456+00:00 -> "2026-11-23 11:00:01.123" in the chosen zone. */
export function shownTime(iso, { date = true } = {}) {
  const at = new Date(iso);
  const fields = usesUtc()
    ? [at.getUTCFullYear(), at.getUTCMonth() + 1, at.getUTCDate(), at.getUTCHours(), at.getUTCMinutes(), at.getUTCSeconds(), at.getUTCMilliseconds()]
    : [at.getFullYear(), at.getMonth() + 1, at.getDate(), at.getHours(), at.getMinutes(), at.getSeconds(), at.getMilliseconds()];
  const [year, month, day, hour, minute, second, milli] = fields.map((n) => String(n));
  const time = `${hour.padStart(2, "0")}:${minute.padStart(2, "0")}:${second.padStart(2, "0")}.${milli.padStart(3, "0")}`;
  return date ? `${year}-${month.padStart(2, "0")}-${day.padStart(2, "0")} ${time}` : time;
}

/** A time as typed (2026-11-23T10:00, no zone) read in the chosen zone, as ISO with its
 * offset; a duration (2h) or a time with a zone is passed on as it is. */
export function absolute(text) {
  const naive = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$/;
  if (!naive.test(text)) return text;
  const [datePart, timePart = "00:00"] = text.split(/[T ]/);
  const [year, month, day] = datePart.split("-").map(Number);
  const [hour, minute, second = "0"] = timePart.split(":");
  const seconds = Number(second);
  const parts = [year, month - 1, day, Number(hour), Number(minute), Math.floor(seconds), Math.round((seconds % 1) * 1000)];
  const at = usesUtc() ? new Date(Date.UTC(...parts)) : new Date(...parts);
  return isNaN(at) ? text : at.toISOString();
}
