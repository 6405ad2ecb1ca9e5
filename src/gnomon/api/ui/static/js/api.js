// The native API, as every other client uses it: Authorization: Bearer <token>.

const KEY = "gnomon.token";

export function token() {
  return sessionStorage.getItem(KEY) || localStorage.getItem(KEY);
}

export function setToken(value, remember) {
  forgetToken();
  (remember ? localStorage : sessionStorage).setItem(KEY, value);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

async function failure(res) {
  let code = "http_error";
  let message = `${res.status} ${res.statusText || "error"}`;
  let details = null;
  try {
    const body = await res.json();
    if (body && body.error) ({ code, message, details } = { ...body.error, message: body.error.message || message });
  } catch {
    /* not JSON: keep the status line */
  }
  if (res.status === 401) window.dispatchEvent(new CustomEvent("gnomon:unauthorized", { detail: message }));
  return new ApiError(res.status, code, message, details);
}

/** Call the API; resolves to the JSON body (or null for 204); rejects with ApiError. */
export async function api(method, path, body, { signal, tokenValue } = {}) {
  const headers = { Accept: "application/json" };
  const t = tokenValue || token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const init = { method, headers, signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "network", `cannot reach the server (${e.message})`);
  }
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

export const get = (path, opts) => api("GET", path, undefined, opts);
export const post = (path, body, opts) => api("POST", path, body, opts);
export const patch = (path, body, opts) => api("PATCH", path, body, opts);
export const put = (path, body, opts) => api("PUT", path, body, opts);
export const del = (path, opts) => api("DELETE", path, undefined, opts);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : "";
}

/**
 * Follow run transitions over SSE. EventSource cannot send headers, so each connection opens
 * with a short-lived ticket (POST /v1/events/ticket); on a drop it takes a new ticket and
 * resumes after the last event seen. A stream that starts from "now" calls `onEvent(null)`
 * once open: what happened before it is not replayed, so the page reloads its view. Returns a
 * function that stops following.
 */
export function follow(filters, onEvent, onState = () => {}) {
  let source = null;
  let stopped = false;
  let last = null;
  let retry = null;
  async function open() {
    if (stopped) return;
    try {
      const { ticket } = await post("/v1/events/ticket");
      if (stopped) return;
      source = new EventSource(`/v1/events${query({ ...filters, ticket, after: last })}`);
      source.addEventListener("open", () => {
        onState("live");
        if (last === null) onEvent(null);
      });
      source.addEventListener("run", (e) => {
        last = e.lastEventId || last;
        try {
          onEvent(JSON.parse(e.data));
        } catch (err) {
          console.error(err);
        }
      });
      source.addEventListener("error", () => {
        onState("reconnecting");
        source.close();
        if (!stopped) retry = setTimeout(open, 1000);
      });
    } catch (e) {
      onState("offline");
      if (!stopped && !(e instanceof ApiError && e.status === 401)) retry = setTimeout(open, 3000);
    }
  }
  open();
  return () => {
    stopped = true;
    clearTimeout(retry);
    if (source) source.close();
  };
}

/**
 * Stream a run's log (GET /v1/runs/{id}/log?follow=true) through fetch, so the Authorization
 * header goes along; `onText` gets each decoded chunk. Resolves when the run ends.
 */
export async function streamLog(runId, onText, signal) {
  const res = await fetch(`/v1/runs/${encodeURIComponent(runId)}/log?follow=true`, {
    headers: { Authorization: `Bearer ${token()}` },
    signal,
  });
  if (!res.ok) throw await failure(res);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    onText(decoder.decode(value, { stream: true }));
  }
  const rest = decoder.decode();
  if (rest) onText(rest);
}

/** `fn` run at most once at a time; calls while it runs fold into one more run after it. */
export function coalesce(fn) {
  let running = null;
  let again = false;
  const go = async () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await fn();
        } catch (e) {
          console.error(e);
        }
      } while (again);
    })();
    try {
      await running;
    } finally {
      running = null;
    }
  };
  return go;
}
