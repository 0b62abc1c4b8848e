/**
 * The one way the app talks to the gateway's management API (`/api/v1`, relative to the mount root).
 *
 * - URLs resolve against `document.baseURI` (works under `/` and behind a proxy under a sub-path).
 * - The session is the HttpOnly `voidllm_session` cookie (`credentials: "same-origin"`); no key is ever
 *   handled by page scripts.
 * - Every request other than GET/HEAD/OPTIONS carries `X-CSRF-Token` from the `voidllm_csrf` cookie.
 * - A failed request throws {@link ApiError} parsed from the envelope
 *   `{"error": {"code", "message", "request_id", "field"?, ...}}`.
 * - A 401 (expired or revoked session) calls the unauthorized handler, which sends the browser to
 *   `login?next=<current path>`; the sign-in request itself opts out (`redirectOn401: false`).
 */
import { appUrl, currentAppPath, loginPath } from "./base";

export const API_PREFIX = "api/v1/";
export const CSRF_COOKIE = "voidllm_csrf";
export const CSRF_HEADER = "X-CSRF-Token";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export type QueryValue = string | number | boolean | null | undefined;
export type Query = Record<string, QueryValue | readonly QueryValue[]>;

/** An organisation offered by a 409 at sign-in, when the user belongs to several. */
export interface OrgChoice {
  id: string;
  name: string;
  slug: string;
}

/** A failed API call, from the gateway's error envelope (or the HTTP status when there was none). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly requestId: string | null;
  readonly field: string | null;
  /** Seconds to wait, from `retry_after` in the error object or the `Retry-After` header (429). */
  readonly retryAfter: number | null;
  /** The whole `error` object as sent (extra members such as `organizations`). */
  readonly details: Record<string, unknown>;

  constructor(init: {
    status: number;
    code: string;
    message: string;
    requestId?: string | null;
    field?: string | null;
    retryAfter?: number | null;
    details?: Record<string, unknown>;
  }) {
    super(init.message);
    this.name = "ApiError";
    this.status = init.status;
    this.code = init.code;
    this.requestId = init.requestId ?? null;
    this.field = init.field ?? null;
    this.retryAfter = init.retryAfter ?? null;
    this.details = init.details ?? {};
  }

  /** The organisations a 409 at sign-in lists (empty for any other error). */
  get organizations(): OrgChoice[] {
    const orgs = this.details.organizations;
    return Array.isArray(orgs) ? (orgs as OrgChoice[]) : [];
  }
}

export function isApiError(error: unknown): error is ApiError {
  return error instanceof ApiError;
}

/** The value of a cookie readable by scripts (only `voidllm_csrf` is; the session cookie is HttpOnly). */
export function readCookie(name: string): string | null {
  for (const part of document.cookie ? document.cookie.split(";") : []) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return null;
}

/** An absolute URL of an API path such as `"me"` or `"orgs/o1/keys"` (a leading `/` is ignored). */
export function apiUrl(path: string, query?: Query): URL {
  const url = appUrl(API_PREFIX + path.replace(/^\/+/, ""));
  for (const [key, value] of Object.entries(query ?? {})) {
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      if (v === undefined || v === null || v === "") continue;
      url.searchParams.append(key, String(v));
    }
  }
  return url;
}

type UnauthorizedHandler = () => void;

function defaultUnauthorized(): void {
  const target = appUrl(loginPath(currentAppPath()).slice(1));
  if (window.location.href !== target.href) window.location.assign(target.href);
}

let unauthorizedHandler: UnauthorizedHandler = defaultUnauthorized;

/**
 * Replace what a 401 does (the app installs a router-aware handler; tests install a spy). Returns a
 * function restoring the previous handler.
 */
export function setUnauthorizedHandler(handler: UnauthorizedHandler): () => void {
  const previous = unauthorizedHandler;
  unauthorizedHandler = handler;
  return () => {
    unauthorizedHandler = previous;
  };
}

export interface RequestOptions {
  method?: string;
  /** Serialised as JSON (with `Content-Type: application/json`) unless it is a string, Blob or FormData. */
  body?: unknown;
  query?: Query;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Default true: a 401 sends the browser to the sign-in page. */
  redirectOn401?: boolean;
}

function buildInit(options: RequestOptions): RequestInit {
  const method = (options.method ?? "GET").toUpperCase();
  const headers = new Headers(options.headers);
  if (!headers.has("Accept")) headers.set("Accept", "application/json");
  if (!SAFE_METHODS.has(method)) {
    const csrf = readCookie(CSRF_COOKIE);
    if (csrf && !headers.has(CSRF_HEADER)) headers.set(CSRF_HEADER, csrf);
  }
  let body: BodyInit | undefined;
  if (options.body !== undefined) {
    if (
      typeof options.body === "string" ||
      options.body instanceof Blob ||
      options.body instanceof FormData
    ) {
      body = options.body;
    } else {
      body = JSON.stringify(options.body);
      if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
    }
  }
  return { method, headers, body, credentials: "same-origin", signal: options.signal };
}

function parseRetryAfter(header: string | null): number | null {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** Build an {@link ApiError} from a failed response (API envelope, OpenAI envelope, or none). */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  let details: Record<string, unknown> = {};
  try {
    const text = await response.text();
    const parsed: unknown = text ? JSON.parse(text) : null;
    if (parsed && typeof parsed === "object" && "error" in parsed) {
      const err = (parsed as { error: unknown }).error;
      if (err && typeof err === "object") details = err as Record<string, unknown>;
      else if (typeof err === "string") details = { message: err };
    }
  } catch {
    // Not JSON: the status line speaks for itself.
  }
  const str = (v: unknown): string | null => (typeof v === "string" && v ? v : null);
  const retryAfter =
    typeof details.retry_after === "number"
      ? Math.ceil(details.retry_after)
      : parseRetryAfter(response.headers.get("Retry-After"));
  return new ApiError({
    status: response.status,
    code: str(details.code) ?? str(details.type) ?? `http_${response.status}`,
    message:
      str(details.message) ?? `The request failed (HTTP ${response.status}).`,
    requestId: str(details.request_id) ?? response.headers.get("X-Request-Id"),
    field: str(details.field) ?? str(details.param),
    retryAfter,
    details,
  });
}

/**
 * Send a request and return the raw Response (cookie, CSRF header and URL handled). For streams and
 * downloads (playground SSE, CSV). Does not throw on HTTP errors, but still redirects on 401 unless
 * `redirectOn401` is false.
 */
export async function apiFetch(path: string, options: RequestOptions = {}): Promise<Response> {
  const response = await fetch(apiUrl(path, options.query), buildInit(options));
  if (response.status === 401 && options.redirectOn401 !== false) unauthorizedHandler();
  return response;
}

/** Send a request and return its parsed JSON body (`undefined` for 204/empty); throws {@link ApiError}. */
export async function apiRequest<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await apiFetch(path, options);
  if (!response.ok) throw await errorFromResponse(response);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

type Opts = Omit<RequestOptions, "method" | "body">;

/** Shorthands: `api.get<Me>("me")`, `api.post<KeyCreated>("orgs/o1/keys", body)`. */
export const api = {
  get: <T>(path: string, options?: Opts) => apiRequest<T>(path, { ...options, method: "GET" }),
  post: <T>(path: string, body?: unknown, options?: Opts) =>
    apiRequest<T>(path, { ...options, method: "POST", body }),
  put: <T>(path: string, body?: unknown, options?: Opts) =>
    apiRequest<T>(path, { ...options, method: "PUT", body }),
  patch: <T>(path: string, body?: unknown, options?: Opts) =>
    apiRequest<T>(path, { ...options, method: "PATCH", body }),
  delete: <T = void>(path: string, options?: Opts) =>
    apiRequest<T>(path, { ...options, method: "DELETE" }),
};

/** A human sentence for any error (ApiError message, or a generic one). */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof TypeError) return "The gateway could not be reached. Check your connection.";
  if (error instanceof Error && error.message) return error.message;
  return "Something went wrong.";
}
