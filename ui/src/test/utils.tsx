/**
 * Test helpers: render a page or the whole app with every provider, and answer fetch from a table of
 * mocked API routes.
 *
 *   const api = mockApi({ "GET /api/v1/me": ME_ADMIN, "POST /api/v1/orgs/o1/keys": { status: 201, body: {...} } });
 *   renderPage(<KeysPage />, { route: "/keys" });          // page inside MeProvider, router, query client
 *   renderApp({ route: "/keys" });                          // the whole app (auth guard, shell, routes)
 *   await screen.findByRole("heading", { name: "API Keys" });
 *   expect(api.calls("POST", "/api/v1/orgs/o1/keys")[0].body).toEqual({...});
 */
import type { ReactElement, ReactNode } from "react";
import { render, waitFor, type RenderResult } from "@testing-library/react";
import { createMemoryRouter, RouterProvider, type RouteObject } from "react-router";
import { QueryClient } from "@tanstack/react-query";
import { vi } from "vitest";
import { AppProviders } from "../app/providers";
import { appRoutes } from "../app/routes";
import { setUnauthorizedHandler } from "../lib/api";
import { MeProvider } from "../lib/auth";
import type { Me } from "../lib/types";

export const ME_ADMIN: Me = {
  id: "u_admin",
  email: "admin@example.com",
  display_name: "Ada Admin",
  role: "system_admin",
  org_id: "o1",
  is_system_admin: true,
};

export const ME_ORG_ADMIN: Me = { ...ME_ADMIN, id: "u_org", email: "org@example.com", display_name: "Olga Org", role: "org_admin", is_system_admin: false };

export const ME_MEMBER: Me = {
  id: "u_member",
  email: "member@example.com",
  display_name: "Max Member",
  role: "member",
  org_id: "o1",
  is_system_admin: false,
};

/** A mocked response: a plain value is a 200 JSON body; or give status/body/headers. */
export interface MockResponse {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface MockRequest {
  method: string;
  /** Path without query, e.g. "/api/v1/me". */
  path: string;
  url: URL;
  headers: Headers;
  /** Parsed JSON body (or the raw string), undefined without a body. */
  body: unknown;
}

/** A route's answer: a JSON value (200), a MockResponse, or a function of the request returning either. */
export type MockHandler = ((req: MockRequest) => unknown) | MockResponse | object | string | number | boolean | null;
type Handler = MockHandler;

/** The error envelope the gateway sends. */
export function apiErrorBody(code: string, message: string, extra: Record<string, unknown> = {}) {
  return { error: { code, message, request_id: "req_test123", ...extra } };
}

/** An error response: `errorResponse(401, "unauthorized", "invalid email or password")`. */
export function errorResponse(status: number, code: string, message: string, extra: Record<string, unknown> = {}, headers?: Record<string, string>): MockResponse {
  return { status, body: apiErrorBody(code, message, extra), headers };
}

function isMockResponse(value: unknown): value is MockResponse {
  if (!value || typeof value !== "object" || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  const status = (value as { status?: unknown }).status;
  return (
    keys.length > 0 &&
    keys.every((k) => k === "status" || k === "body" || k === "headers") &&
    (status === undefined || typeof status === "number")
  );
}

/**
 * Replace global fetch with a router over `routes` ("METHOD /path" → handler; the path may end in `*` to
 * match a prefix). Unmatched requests answer 404 in the API envelope and are recorded. Returns the spy
 * with helpers: `calls(method, path)`, `set(route, handler)`.
 */
export function mockApi(routes: Record<string, Handler>) {
  const table = new Map<string, Handler>(Object.entries(routes));
  const recorded: MockRequest[] = [];
  const find = (method: string, path: string): Handler | undefined => {
    const exact = table.get(`${method} ${path}`);
    if (exact !== undefined) return exact;
    for (const [key, handler] of table) {
      const [m, p] = key.split(" ", 2) as [string, string];
      if (m === method && p.endsWith("*") && path.startsWith(p.slice(0, -1))) return handler;
    }
    return undefined;
  };
  const spy = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url, document.baseURI);
    const method = (init?.method ?? "GET").toUpperCase();
    const headers = new Headers(init?.headers);
    let body: unknown = undefined;
    if (typeof init?.body === "string") {
      try {
        body = JSON.parse(init.body);
      } catch {
        body = init.body;
      }
    }
    const req: MockRequest = { method, path: url.pathname, url, headers, body };
    recorded.push(req);
    const handler = find(method, url.pathname);
    let result: unknown =
      handler === undefined
        ? errorResponse(404, "not_found", `no mock for ${method} ${url.pathname}`)
        : typeof handler === "function"
          ? await (handler as (r: MockRequest) => unknown)(req)
          : handler;
    if (!isMockResponse(result)) result = { status: 200, body: result };
    const { status = 200, body: resBody, headers: resHeaders = {} } = result as MockResponse;
    const noBody = status === 204 || resBody === undefined;
    return new Response(noBody ? null : typeof resBody === "string" ? resBody : JSON.stringify(resBody), {
      status,
      headers: { ...(noBody || typeof resBody === "string" ? {} : { "Content-Type": "application/json" }), ...resHeaders },
    });
  });
  vi.stubGlobal("fetch", spy);
  return Object.assign(spy, {
    requests: recorded,
    calls: (method: string, path: string) => recorded.filter((r) => r.method === method && r.path === path),
    set: (route: string, handler: Handler) => void table.set(route, handler),
  });
}

export function testQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: { queries: { retry: false, staleTime: Infinity, gcTime: Infinity }, mutations: { retry: false } },
  });
}

export interface RenderOptions {
  /** Initial location, e.g. "/usage/llm?from=...". Default "/". */
  route?: string;
  /** Route pattern the page is mounted at (for useParams), default "*". */
  path?: string;
  /** The signed-in user given to useCurrentUser(); default ME_ADMIN. */
  me?: Me;
  client?: QueryClient;
  /** Extra routes beside the page (e.g. { path: "/login", element: <p>login</p> }). */
  routes?: RouteObject[];
}

export interface RenderPageResult extends RenderResult {
  client: QueryClient;
  router: ReturnType<typeof createMemoryRouter>;
  /** Called when an API call answered 401 (instead of navigating). */
  onUnauthorized: ReturnType<typeof vi.fn>;
}

/** Render one page as a signed-in user (no auth guard, no shell), inside a memory router. */
export function renderPage(page: ReactElement, options: RenderOptions = {}): RenderPageResult {
  const client = options.client ?? testQueryClient();
  const me = options.me ?? ME_ADMIN;
  const onUnauthorized = vi.fn();
  setUnauthorizedHandler(onUnauthorized);
  const router = createMemoryRouter(
    [
      { path: options.path ?? "*", element: <MeProvider me={me}>{page}</MeProvider> },
      { path: "/login", element: <p>Sign-in page</p> },
      ...(options.routes ?? []),
    ],
    { initialEntries: [options.route ?? "/"] },
  );
  const result = render(
    <AppProviders client={client}>
      <RouterProvider router={router} />
    </AppProviders>,
  );
  return { ...result, client, router, onUnauthorized };
}

/** Render the whole app (auth guard from GET /api/v1/me, shell, every route) at `route`. */
export function renderApp(options: Omit<RenderOptions, "me" | "path" | "routes"> = {}) {
  const client = options.client ?? testQueryClient();
  const router = createMemoryRouter(appRoutes(), { initialEntries: [options.route ?? "/"] });
  const result = render(
    <AppProviders client={client}>
      <RouterProvider router={router} />
    </AppProviders>,
  );
  return { ...result, client, router };
}

/** Wrap a hook's test component in the providers (for renderHook). */
export function wrapperWith(client: QueryClient = testQueryClient()) {
  return function Wrapper({ children }: { children: ReactNode }) {
    return <AppProviders client={client}>{children}</AppProviders>;
  };
}

/**
 * Wait until `element` takes pointer input. When one Radix modal replaces another in a single render, the new
 * layer is drawn with `pointer-events: none` until its effect has registered it as the topmost layer; a click
 * in that moment is refused by user-event (a real pointer arrives frames later).
 */
export async function untilClickable(element: Element): Promise<Element> {
  await waitFor(() => {
    // as user-event decides: the nearest element (itself or an ancestor) that declares pointer-events
    for (let node: Element | null = element; node; node = node.parentElement) {
      const value = getComputedStyle(node).pointerEvents;
      if (value && value !== "inherit" && value !== "unset") {
        if (value === "none") throw new Error("the element does not take pointer input yet");
        return;
      }
    }
  });
  return element;
}
