// The REST client: every call carries the signed-in token; errors arrive as ApiError with the
// problem+json detail, so pages can show the daemon's own words.

const KEY = "dragonops.token";

/** The credential lives in sessionStorage: gone when the tab closes, never in a cookie. */
export const session = {
  get token() {
    return sessionStorage.getItem(KEY);
  },
  set(token) {
    sessionStorage.setItem(KEY, token);
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? problem?.title ?? `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Fired when the daemon refuses the token: main.js signs out. */
export const UNAUTHORIZED = "dragonops:unauthorized";

/**
 * Call the API. path is absolute ("/api/..."); body is sent as JSON; token overrides the
 * session's (for the sign-in check); ifMatch sends If-Match (the ETag a form read), ifNoneMatch
 * If-None-Match ("*": create only, for a PUT that would otherwise replace). Resolves to
 * the decoded JSON, or null on 204; with meta, to {data, etag} (forms keep the ETag).
 */
export async function api(path, {method = "GET", body, token, signal, ifMatch, ifNoneMatch, meta = false} = {}) {
  const headers = {Accept: "application/json"};
  const credential = token ?? session.token;
  if (credential) headers.Authorization = `Bearer ${credential}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (ifMatch) headers["If-Match"] = ifMatch;
  if (ifNoneMatch) headers["If-None-Match"] = ifNoneMatch;
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, {detail: "the daemon cannot be reached; is it running?"});
  }
  if (resp.status === 204) return meta ? {data: null, etag: null} : null;
  const type = resp.headers.get("Content-Type") ?? "";
  const data = type.includes("json") ? await resp.json() : await resp.text();
  if (!resp.ok) {
    if (resp.status === 401 && token === undefined) {
      window.dispatchEvent(new CustomEvent(UNAUTHORIZED, {detail: data?.detail}));
    }
    throw new ApiError(resp.status, typeof data === "object" ? data : {detail: data});
  }
  return meta ? {data, etag: resp.headers.get("ETag")} : data;
}

/** Build a query string from an object, skipping null/undefined. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== "") q.set(k, String(v));
  const text = q.toString();
  return text ? `?${text}` : "";
}
