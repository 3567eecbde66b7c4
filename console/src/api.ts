// The console's HTTP client: the API key from sessionStorage, sent as a header; the one error
// shape ({code, message, errors: [{path, message}]}) as ApiError; the event stream read with
// fetch (EventSource cannot send headers, and the API takes the key only in one).

const KEY = "billbridge.apiKey";

export type FieldError = { path: string; message: string };

export class ApiError extends Error {
  status: number;
  code: string;
  errors: FieldError[];
  body: any;
  constructor(status: number, body: any) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || "http_error";
    this.errors = (body && body.errors) || [];
    this.body = body;
  }
}

export type Page<T> = { items: T[]; total?: number; nextCursor?: string };

export function apiKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

/** A key handed over in the URL's fragment (`/#key=...`, printed by `billbridge serve
 * --console-key`): kept for this tab, then removed from the address bar and history. */
export function takeKeyFromFragment(): void {
  const match = /(?:^#|&)key=([^&]+)/.exec(window.location.hash);
  if (match) {
    setApiKey(decodeURIComponent(match[1]));
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

let unauthorized: () => void = () => undefined;
export function onUnauthorized(handler: () => void): void {
  unauthorized = handler;
}

export async function request<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, { code: "network", message: "billbridge did not answer: " + String(e) });
  }
  const text = await response.text();
  let parsed: any = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { message: text.slice(0, 300) };
    }
  }
  if (!response.ok) {
    if (response.status === 401) unauthorized();
    throw new ApiError(response.status, parsed);
  }
  return parsed as T;
}

export const get = <T = any>(path: string) => request<T>("GET", path);
export const post = <T = any>(path: string, body?: unknown) => request<T>("POST", path, body ?? {});
export const put = <T = any>(path: string, body: unknown) => request<T>("PUT", path, body);
export const del = (path: string) => request("DELETE", path);

export function query(params: Record<string, string | string[] | undefined | null | boolean>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((item) => q.append(k, item));
    else q.append(k, String(v));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

export type StreamItem = { key: string; type: string; at: string; data: any };

/** Reads `/api/stream` with fetch and calls `onItem` for each event, reconnecting with
 * Last-Event-ID until `signal` aborts. */
export async function stream(
  onItem: (item: StreamItem) => void,
  onState: (live: boolean) => void,
  signal: AbortSignal,
): Promise<void> {
  let last: string | null = null;
  while (!signal.aborted) {
    try {
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      const key = apiKey();
      if (key) headers.Authorization = `Bearer ${key}`;
      if (last) headers["Last-Event-ID"] = last;
      const response = await fetch("/api/stream", { headers, signal });
      if (!response.ok || !response.body) throw new Error(`stream: HTTP ${response.status}`);
      onState(true);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut: number;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("id:")) last = line.slice(3).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (data) {
            try {
              onItem(JSON.parse(data));
            } catch {
              /* not an item: a comment or a keep-alive */
            }
          }
        }
      }
    } catch {
      if (signal.aborted) return;
    }
    onState(false);
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
}
