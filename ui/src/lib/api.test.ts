import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, api, apiFetch, apiUrl, readCookie, setUnauthorizedHandler } from "./api";
import { currentAppPath, loginPath, routerBasename, safeNext } from "./base";
import { errorResponse, mockApi } from "../test/utils";

describe("api client", () => {
  let restore: (() => void) | undefined;
  afterEach(() => {
    restore?.();
    restore = undefined;
  });

  it("resolves API paths against document.baseURI", () => {
    expect(apiUrl("me").href).toBe(new URL("api/v1/me", document.baseURI).href);
    expect(apiUrl("/usage", { from: "a", group_by: undefined, x: ["1", "2"] }).search).toBe("?from=a&x=1&x=2");
  });

  it("sends the CSRF cookie as X-CSRF-Token on non-GET requests only, with same-origin credentials", async () => {
    document.cookie = "voidllm_csrf=tok%2Babc; path=/";
    expect(readCookie("voidllm_csrf")).toBe("tok+abc");
    const fetch = mockApi({ "GET /api/v1/me": { id: "u1" }, "POST /api/v1/auth/logout": { status: 204 } });
    await api.get("me");
    await api.post("auth/logout");
    const [getCall, postCall] = fetch.requests;
    expect(getCall!.headers.get("X-CSRF-Token")).toBeNull();
    expect(postCall!.headers.get("X-CSRF-Token")).toBe("tok+abc");
    for (const [, init] of fetch.mock.calls) expect((init as RequestInit).credentials).toBe("same-origin");
  });

  it("sends JSON bodies with a content type and returns undefined for 204", async () => {
    const fetch = mockApi({ "POST /api/v1/me/password": { status: 204 } });
    const result = await api.post("me/password", { current_password: "a", new_password: "b" });
    expect(result).toBeUndefined();
    expect(fetch.requests[0]!.headers.get("Content-Type")).toBe("application/json");
    expect(fetch.requests[0]!.body).toEqual({ current_password: "a", new_password: "b" });
  });

  it("parses the error envelope into an ApiError", async () => {
    mockApi({ "POST /api/v1/orgs/o1/keys": errorResponse(400, "bad_request", "name is required", { field: "name" }) });
    const error = await api.post("orgs/o1/keys", {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 400, code: "bad_request", message: "name is required", requestId: "req_test123", field: "name" });
  });

  it("reads retry_after from the error object or the Retry-After header", async () => {
    mockApi({
      "POST /api/v1/a": errorResponse(429, "too_many_requests", "slow down", { retry_after: 42 }),
      "POST /api/v1/b": errorResponse(429, "too_many_requests", "slow down", {}, { "Retry-After": "7" }),
    });
    expect(await api.post("a").catch((e: ApiError) => e.retryAfter)).toBe(42);
    expect(await api.post("b").catch((e: ApiError) => e.retryAfter)).toBe(7);
  });

  it("keeps extra members of the error object (the organisations of a 409 at sign-in)", async () => {
    const orgs = [{ id: "o1", name: "One", slug: "one" }];
    mockApi({ "POST /api/v1/auth/session": errorResponse(409, "conflict", "choose", { organizations: orgs }) });
    const error = (await api.post("auth/session", {}).catch((e: unknown) => e)) as ApiError;
    expect(error.organizations).toEqual(orgs);
  });

  it("explains a response without an envelope by its status", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response("<html>bad gateway</html>", { status: 502 })));
    const error = (await api.get("me").catch((e: unknown) => e)) as ApiError;
    expect(error.status).toBe(502);
    expect(error.code).toBe("http_502");
    expect(error.message).toContain("502");
  });

  it("calls the unauthorized handler on 401 unless the caller opts out", async () => {
    const onUnauthorized = vi.fn();
    restore = setUnauthorizedHandler(onUnauthorized);
    mockApi({ "GET /api/v1/me": errorResponse(401, "unauthorized", "session expired") });
    await expect(api.get("me")).rejects.toMatchObject({ status: 401 });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
    await expect(api.get("me", { redirectOn401: false })).rejects.toMatchObject({ status: 401 });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
    const raw = await apiFetch("me");
    expect(raw.status).toBe(401);
    expect(onUnauthorized).toHaveBeenCalledTimes(2);
  });

  it("by default sends the browser to login?next=<current path> inside the mount root", async () => {
    window.history.pushState({}, "", "/keys?q=prod");
    const assign = vi.fn();
    const original = window.location;
    Object.defineProperty(window, "location", {
      configurable: true,
      value: { ...original, href: original.href, pathname: original.pathname, search: original.search, assign },
    });
    try {
      mockApi({ "GET /api/v1/me": errorResponse(401, "unauthorized", "session expired") });
      await expect(api.get("me")).rejects.toBeInstanceOf(ApiError);
      expect(assign).toHaveBeenCalledWith(new URL(`login?next=${encodeURIComponent("/keys?q=prod")}`, document.baseURI).href);
    } finally {
      Object.defineProperty(window, "location", { configurable: true, value: original });
      window.history.pushState({}, "", "/");
    }
  });
});

describe("mount root helpers", () => {
  it("derives the basename and the in-app path from the <base href> the gateway inserts", () => {
    expect(routerBasename()).toBe("");
    const base = document.createElement("base");
    base.href = "../";
    window.history.pushState({}, "", "/usage/llm?from=x");
    document.head.prepend(base);
    try {
      expect(routerBasename()).toBe("");
      expect(apiUrl("me").pathname).toBe("/api/v1/me");
      expect(currentAppPath()).toBe("/usage/llm?from=x");
    } finally {
      base.remove();
      window.history.pushState({}, "", "/");
    }
  });

  it("works under a sub-path given by a <base href>", () => {
    const base = document.createElement("base");
    base.href = "/voidllm/";
    document.head.prepend(base);
    window.history.pushState({}, "", "/voidllm/keys/abc?x=1");
    try {
      expect(routerBasename()).toBe("/voidllm");
      expect(apiUrl("me").pathname).toBe("/voidllm/api/v1/me");
      expect(currentAppPath()).toBe("/keys/abc?x=1");
    } finally {
      base.remove();
      window.history.pushState({}, "", "/");
    }
  });

  it("only accepts in-app paths as next", () => {
    expect(safeNext("/keys?x=1")).toBe("/keys?x=1");
    expect(safeNext("//evil.example/")).toBe("/");
    expect(safeNext("https://evil.example/")).toBe("/");
    expect(safeNext("/\\evil")).toBe("/");
    expect(safeNext("/login?next=/x")).toBe("/");
    expect(safeNext(null)).toBe("/");
    expect(loginPath("/")).toBe("/login");
    expect(loginPath("/keys")).toBe("/login?next=%2Fkeys");
  });
});
