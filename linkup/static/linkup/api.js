// The REST API: one fetch wrapper (JSON, the CSRF token, errors as ApiError) and what a 401
// means (signed out: off to the sign-in page).

import { config } from "./page.js";

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export class ApiError extends Error {
  constructor(status, code, detail, retryAfter) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

let leaving = false; // signing out: no more calls, no reconnects, no redirects of our own

/** Signing out by the form: no more calls from here on. */
export function leave() {
  leaving = true;
}

export async function api(method, path, body) {
  if (leaving) throw new ApiError(0, "leaving", "signing out");
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  const response = await fetch(config.api + path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    if (response.status === 401) signedOut();
    throw new ApiError(
      response.status,
      error.code,
      error.detail,
      Number(response.headers.get("Retry-After")) || null,
    );
  }
  return data;
}

/** The session is gone (a 401, or the socket's 4401): sign in again, then come back here. */
export function signedOut() {
  if (leaving) return;
  leaving = true;
  location.assign(`${config.sign_in}?next=${encodeURIComponent(location.pathname)}`);
}
