// Api: the server's JSON endpoints, and what their failures mean for the page.

/** A failed call. kind: "unavailable" (the database is away), "busy" (slow queries hold
 * every connection) or "offline" (pglog serve itself doesn't answer): show the banner and
 * keep trying; "aborted" (a newer request superseded it): nothing to show; "bad_request"
 * (the filter: show the message), or another the server named ("timeout", "missing",
 * "forbidden", "access", "database", "internal"). */
export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

/** GET a JSON endpoint; `signal` (an AbortController's) cancels it. */
export async function get(path, params = new URLSearchParams(), signal = undefined) {
  const query = params.toString();
  let response;
  try {
    response = await fetch(query ? `${path}?${query}` : path, {
      headers: { accept: "application/json" },
      cache: "no-store",
      credentials: "same-origin",
      signal,
    });
  } catch {
    if (signal?.aborted) throw superseded();
    throw new ApiError(0, "offline", "can't reach pglog serve: is it still running?");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (signal?.aborted) throw superseded();
  if (!response.ok) {
    const kind = body?.kind ?? unexplained(response.status);
    const message = body?.error ?? `pglog serve answered HTTP ${response.status}`;
    throw new ApiError(response.status, kind, message);
  }
  return body;
}

/** The kind of a failure without pglog's JSON: a proxy in front that can't reach pglog
 * serve (502, 503, 504), or something else that went wrong; never the database. */
function unexplained(status) {
  if (status === 502 || status === 503 || status === 504) return "offline";
  return status >= 500 ? "internal" : "bad_request";
}

function superseded() {
  return new ApiError(0, "aborted", "superseded by a newer request");
}
