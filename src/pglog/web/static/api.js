// Api: the server's JSON endpoints, and what their failures mean for the page.

/** A failed call. kind: "unavailable" (the database or the server is away: show the
 * banner and keep trying), "bad_request" (the filter: show the message), or another
 * the server named ("timeout", "missing", "forbidden", "access", "database"). */
export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

export async function get(path, params = new URLSearchParams()) {
  const query = params.toString();
  let response;
  try {
    response = await fetch(query ? `${path}?${query}` : path, {
      headers: { accept: "application/json" },
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, "unavailable", "can't reach pglog serve: is it still running?");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const kind = body?.kind ?? (response.status >= 500 ? "unavailable" : "bad_request");
    throw new ApiError(response.status, kind, body?.error ?? `HTTP ${response.status}`);
  }
  return body;
}
