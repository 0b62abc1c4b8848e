import { describe, expect, it } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useQuery } from "@tanstack/react-query";
import { api } from "../lib/api";
import { ErrorState } from "../components/ui";
import { render } from "@testing-library/react";
import { App } from "../App";
import { ME_ADMIN, ME_MEMBER, ME_ORG_ADMIN, errorResponse, mockApi, renderApp, renderPage } from "../test/utils";

const navLinks = async () => {
  const nav = await screen.findByRole("navigation", { name: "Main" });
  return within(nav)
    .getAllByRole("link")
    .map((a) => a.textContent);
};

/** The requests that carry a session: all but the public list of sign-in providers the sign-in page reads. */
function sessionRequests(requests: { method: string; path: string }[]): string[] {
  return requests.filter((r) => r.path !== "/api/v1/auth/providers").map((r) => `${r.method} ${r.path}`);
}

describe("app shell", () => {
  it("sends a signed-out user to the sign-in page, remembering where they wanted to go", async () => {
    mockApi({ "GET /api/v1/me": errorResponse(401, "unauthorized", "missing credentials") });
    const { router } = renderApp({ route: "/keys?q=prod" });
    await waitFor(() => expect(router.state.location.pathname).toBe("/login"));
    expect(new URLSearchParams(router.state.location.search).get("next")).toBe("/keys?q=prod");
  });

  it("shows a system admin every link, Models included", async () => {
    mockApi({ "GET /api/v1/me": ME_ADMIN, "GET /api/v1/*": { data: [], has_more: false } });
    renderApp({ route: "/profile" });
    expect(await navLinks()).toEqual([
      "Dashboard",
      "Playground",
      "API Keys",
      "Teams",
      "Service Accounts",
      "MCP Servers",
      "Models",
      "Usage",
      "Cost Reports",
      "Audit Log",
      "SSO",
      "Organization",
      "Organizations",
      "Users",
      "License",
      "Profile",
    ]);
  });

  it.each([
    ["member", ME_MEMBER, ["Dashboard", "Playground", "API Keys", "MCP Servers", "Usage", "Profile"]],
    [
      "team admin",
      { ...ME_MEMBER, team_admin_of: ["t1"] },
      ["Dashboard", "Playground", "API Keys", "Teams", "Service Accounts", "MCP Servers", "Usage", "Profile"],
    ],
    [
      "org admin",
      ME_ORG_ADMIN,
      [
        "Dashboard",
        "Playground",
        "API Keys",
        "Teams",
        "Service Accounts",
        "MCP Servers",
        "Usage",
        "Cost Reports",
        "Audit Log",
        "SSO",
        "Organization",
        "Profile",
      ],
    ],
  ])("shows a %s no Models link and refuses the page", async (_, me, expected) => {
    mockApi({ "GET /api/v1/me": me, "GET /api/v1/*": { data: [], has_more: false } });
    renderApp({ route: "/models" });
    const links = await navLinks();
    expect(links).toEqual(expected);
    expect(screen.queryByRole("link", { name: "Models" })).toBeNull();
    expect(await screen.findByRole("heading", { name: "No access" })).toBeInTheDocument();
  });

  it.each([
    ["member", ME_MEMBER],
    ["team admin", { ...ME_MEMBER, team_admin_of: ["t1"] }],
    ["org admin", ME_ORG_ADMIN],
  ])("shows a %s no License link and refuses the page", async (_, me) => {
    const api = mockApi({ "GET /api/v1/me": me, "GET /api/v1/*": { data: [], has_more: false } });
    renderApp({ route: "/license" });
    expect(await navLinks()).not.toContain("License");
    expect(await screen.findByRole("heading", { level: 1, name: "No access" })).toBeInTheDocument();
    expect(screen.getByText("Your role does not allow this page.")).toBeInTheDocument();
    expect(screen.queryByRole("heading", { name: "License" })).toBeNull();
    expect(api.requests.some((r) => r.path === "/health")).toBe(false);
  });

  it("has an Account menu with Sign out that ends the session on the server", async () => {
    document.cookie = "voidllm_csrf=csrf1; path=/";
    let signedIn = true;
    const fetch = mockApi({
      "GET /api/v1/me": () => (signedIn ? ME_MEMBER : errorResponse(401, "unauthorized", "signed out")),
      "GET /api/v1/*": { data: [], has_more: false },
      "POST /api/v1/auth/logout": () => {
        // The session ends only once no page of the app is mounted (nothing can ask again with it).
        expect(screen.queryByRole("navigation", { name: "Main" })).toBeNull();
        signedIn = false;
        return { status: 204 };
      },
    });
    const { router } = renderApp({ route: "/profile" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Account" }));
    await user.click(await screen.findByRole("menuitem", { name: "Sign out" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/login"));
    expect(await screen.findByLabelText("Email")).toBeInTheDocument();
    // Nothing of the page left behind asks again with the ended session; only the sign-in page asks who is there.
    const after = fetch.requests.slice(fetch.requests.findIndex((r) => r.path === "/api/v1/auth/logout") + 1);
    expect(sessionRequests(after)).toEqual(["GET /api/v1/me"]);
    const [logout] = fetch.calls("POST", "/api/v1/auth/logout");
    expect(logout!.headers.get("X-CSRF-Token")).toBe("csrf1");
  });

  it("signs out from the dashboard without its queries asking again", async () => {
    let signedIn = true;
    const refused = errorResponse(401, "unauthorized", "signed out");
    const fetch = mockApi({
      "GET /api/v1/me": () => (signedIn ? ME_ADMIN : refused),
      "GET /api/v1/dashboard/stats": () =>
        signedIn
          ? { scope: "system", active_keys: 1, total_teams: 0, total_members: 1, requests_24h: 0, tokens_24h: 0, cost_estimate_24h: 0, budget_warnings: [], models_healthy: 0, models_unhealthy: 0, models_degraded: 0 }
          : refused,
      "GET /api/v1/usage": () => (signedIn ? { org_id: null, from: "", to: "", group_by: null, data: [] } : refused),
      "GET /api/v1/models/health": () => (signedIn ? { models: [] } : refused),
      "POST /api/v1/auth/logout": () => {
        expect(screen.queryByRole("heading", { name: "Dashboard" })).toBeNull();
        signedIn = false;
        return { status: 204 };
      },
    });
    renderApp({ route: "/" });
    await screen.findByText("No requests in the last 24 hours");
    const user = userEvent.setup();
    await user.click(screen.getByRole("button", { name: "Account" }));
    await user.click(await screen.findByRole("menuitem", { name: "Sign out" }));
    expect(await screen.findByLabelText("Email")).toBeInTheDocument();
    const after = fetch.requests.slice(fetch.requests.findIndex((r) => r.path === "/api/v1/auth/logout") + 1);
    expect(sessionRequests(after)).toEqual(["GET /api/v1/me"]);
  });

  it("after Sign out everywhere asks nothing more with the ended session", async () => {
    let signedIn = true;
    const fetch = mockApi({
      "GET /api/v1/me": () => (signedIn ? ME_MEMBER : errorResponse(401, "unauthorized", "signed out")),
      "GET /api/v1/auth/sessions": () =>
        signedIn
          ? { data: [{ id: "s1", key_hint: "vl_sk_...1", created_at: "2026-12-06T04:00:00Z", expires_at: "2026-12-07T04:00:00Z", current: true }], has_more: false }
          : errorResponse(401, "unauthorized", "signed out"),
      "DELETE /api/v1/auth/sessions": () => {
        signedIn = false;
        return { status: 204 };
      },
    });
    const { router } = renderApp({ route: "/profile" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Sign out everywhere" }));
    const dialog = await screen.findByRole("alertdialog");
    await user.click(within(dialog).getByRole("button", { name: "Sign out everywhere" }));
    expect(await screen.findByLabelText("Email")).toBeInTheDocument();
    expect(router.state.location.pathname).toBe("/login");
    const after = fetch.requests.slice(fetch.requests.findIndex((r) => r.method === "DELETE") + 1);
    expect(sessionRequests(after)).toEqual(["GET /api/v1/me"]);
    expect(fetch.calls("GET", "/api/v1/auth/sessions")).toHaveLength(1);
  });

  it("still ends on the sign-in page when the session had already expired at sign-out", async () => {
    let signedIn = true;
    mockApi({
      "GET /api/v1/me": () => (signedIn ? ME_MEMBER : errorResponse(401, "unauthorized", "session expired")),
      "GET /api/v1/*": { data: [], has_more: false },
      "POST /api/v1/auth/logout": () => {
        signedIn = false;
        return errorResponse(401, "unauthorized", "session expired");
      },
    });
    const { router } = renderApp({ route: "/profile" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Account" }));
    await user.click(await screen.findByRole("menuitem", { name: "Sign out" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/login"));
    expect(router.state.location.search).toBe("");
    expect(await screen.findByLabelText("Email")).toBeInTheDocument();
  });

  it("switches the theme and keeps only that choice in localStorage", async () => {
    mockApi({ "GET /api/v1/me": ME_MEMBER, "GET /api/v1/*": { data: [], has_more: false } });
    renderApp({ route: "/profile" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: /^Theme/ }));
    await user.click(await screen.findByRole("menuitemradio", { name: "Dark" }));
    expect(document.documentElement.dataset.theme).toBe("dark");
    expect(Object.keys(window.localStorage)).toEqual(["voidllm-theme"]);
    await user.click(screen.getByRole("button", { name: /^Theme/ }));
    await user.click(await screen.findByRole("menuitemradio", { name: "System" }));
    expect(document.documentElement.dataset.theme).toBeUndefined();
    expect(window.localStorage.length).toBe(0);
  });

  it("opens and closes the navigation with the Menu button (small screens) and moves focus to the new page", async () => {
    mockApi({ "GET /api/v1/me": ME_MEMBER, "GET /api/v1/*": { data: [], has_more: false } });
    const { router } = renderApp({ route: "/profile" });
    const user = userEvent.setup();
    const menu = await screen.findByRole("button", { name: "Menu" });
    expect(menu).toHaveAttribute("aria-expanded", "false");
    await user.click(menu);
    expect(menu).toHaveAttribute("aria-expanded", "true");
    await user.click(screen.getByRole("link", { name: "Usage" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/usage"));
    expect(menu).toHaveAttribute("aria-expanded", "false");
    await waitFor(() => expect(screen.getByRole("main")).toHaveFocus());
  });

  it("skips to the content without leaving the page", async () => {
    mockApi({ "GET /api/v1/me": ME_MEMBER, "GET /api/v1/*": { data: [], has_more: false } });
    const { router } = renderApp({ route: "/profile" });
    const user = userEvent.setup();
    await screen.findByRole("button", { name: "Account" });
    await user.tab();
    expect(screen.getByRole("link", { name: "Skip to content" })).toHaveFocus();
    await user.keyboard("{Enter}");
    expect(screen.getByRole("main")).toHaveFocus();
    expect(router.state.location.pathname).toBe("/profile");
  });

  it("shows an unknown route as not found inside the shell", async () => {
    mockApi({ "GET /api/v1/me": ME_MEMBER });
    renderApp({ route: "/nowhere" });
    expect(await screen.findByRole("heading", { name: "Page not found" })).toBeInTheDocument();
    expect(document.title).toBe("Page not found · VoidLLM");
  });
});

describe("under a sub-path", () => {
  it("keeps the root route's trailing slash in links and in the address bar", async () => {
    const base = document.createElement("base");
    base.href = "/voidllm/";
    document.head.prepend(base);
    window.history.pushState({}, "", "/voidllm/profile");
    try {
      const api = mockApi({
        "GET /voidllm/api/v1/me": ME_MEMBER,
        "GET /voidllm/api/v1/dashboard/stats": {
          scope: "user", active_keys: 0, total_teams: null, total_members: null, requests_24h: 0, tokens_24h: 0,
          cost_estimate_24h: 0, budget_warnings: [], models_healthy: 0, models_unhealthy: 0, models_degraded: 0,
        },
        "GET /voidllm/api/v1/usage/me": { org_id: "o1", from: "", to: "", group_by: null, data: [] },
        "GET /voidllm/api/v1/*": { data: [], has_more: false },
      });
      render(<App />);
      const dashboard = await screen.findByRole("link", { name: "Dashboard" });
      expect(dashboard).toHaveAttribute("href", "/voidllm/");
      expect(screen.getByRole("link", { name: "VoidLLM" })).toHaveAttribute("href", "/voidllm/");
      expect(screen.getByRole("link", { name: "Profile" })).toHaveAttribute("href", "/voidllm/profile");
      const user = userEvent.setup();
      await user.click(dashboard);
      expect(await screen.findByRole("heading", { level: 1, name: "Dashboard" })).toBeInTheDocument();
      expect(window.location.pathname).toBe("/voidllm/");
      expect(dashboard).toHaveAttribute("aria-current", "page");
      expect(api.calls("GET", "/voidllm/api/v1/me")).toHaveLength(1);
    } finally {
      base.remove();
      window.history.pushState({}, "", "/");
    }
  });
});

describe("error state", () => {
  function Failing() {
    const q = useQuery({ queryKey: ["x"], queryFn: () => api.get("things") });
    return q.isError ? <ErrorState error={q.error} /> : <p>loading</p>;
  }

  it("shows the API's message and request id", async () => {
    mockApi({ "GET /api/v1/things": errorResponse(500, "internal_error", "the store did not answer") });
    renderPage(<Failing />);
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("the store did not answer");
    expect(alert).toHaveTextContent("req_test123");
  });
});
