import { describe, expect, it } from "vitest";
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { ME_ADMIN, errorResponse, mockApi, renderApp } from "../test/utils";

const SIGNED_OUT = errorResponse(401, "unauthorized", "missing credentials");
const SESSION = { user: ME_ADMIN, expires_at: "2026-12-07T05:00:00Z", csrf_token: "c1" };

async function fillIn(email = "admin@example.com", password = "correct horse") {
  const user = userEvent.setup();
  await user.type(await screen.findByLabelText("Email"), email);
  await user.type(screen.getByLabelText("Password"), password);
  return user;
}

describe("sign-in page", () => {
  it("signs in and goes to the page the user wanted", async () => {
    let signedIn = false;
    const api = mockApi({
      "GET /api/v1/me": () => (signedIn ? ME_ADMIN : SIGNED_OUT),
      "POST /api/v1/auth/session": () => {
        signedIn = true;
        return SESSION;
      },
      "GET /api/v1/*": { data: [], has_more: false },
    });
    const { router } = renderApp({ route: "/login?next=%2Fprofile" });
    const user = await fillIn();
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/profile"));
    expect(api.calls("POST", "/api/v1/auth/session")[0]!.body).toEqual({ email: "admin@example.com", password: "correct horse" });
    expect(await screen.findByRole("button", { name: "Account" })).toBeInTheDocument();
    expect(window.localStorage.length).toBe(0);
    expect(window.sessionStorage.length).toBe(0);
  });

  it("says the email or password is invalid", async () => {
    mockApi({
      "GET /api/v1/me": SIGNED_OUT,
      "POST /api/v1/auth/session": errorResponse(401, "unauthorized", "invalid email or password"),
    });
    const { router } = renderApp({ route: "/login" });
    const user = await fillIn("admin@example.com", "wrong");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent(/invalid email or password/i);
    expect(router.state.location.pathname).toBe("/login");
  });

  it("tells a throttled user when to try again", async () => {
    mockApi({
      "GET /api/v1/me": SIGNED_OUT,
      "POST /api/v1/auth/session": errorResponse(429, "too_many_requests", "too many login attempts", { retry_after: 42 }, { "Retry-After": "42" }),
    });
    renderApp({ route: "/login" });
    const user = await fillIn();
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent(/too many/i);
    expect(alert).toHaveTextContent(new Intl.NumberFormat(undefined, { style: "unit", unit: "second", unitDisplay: "long" }).format(42));
  });

  it("lets a user of several organisations choose one and signs in with org_id", async () => {
    const orgs = [
      { id: "o1", name: "Acme", slug: "acme" },
      { id: "o2", name: "Globex", slug: "globex" },
    ];
    const api = mockApi({
      "GET /api/v1/me": SIGNED_OUT,
      "POST /api/v1/auth/session": (req) =>
        (req.body as { org_id?: string }).org_id
          ? SESSION
          : errorResponse(409, "conflict", "this account belongs to several organizations: sign in again with org_id", { organizations: orgs }),
      "GET /api/v1/*": { data: [], has_more: false },
    });
    const { router } = renderApp({ route: "/login" });
    const user = await fillIn();
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    const select = await screen.findByLabelText("Organization");
    expect(screen.queryByRole("alert")).toBeNull();
    api.set("GET /api/v1/me", ME_ADMIN);
    await user.selectOptions(select, "o2");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/"));
    expect(api.calls("POST", "/api/v1/auth/session")[1]!.body).toEqual({ email: "admin@example.com", password: "correct horse", org_id: "o2" });
  });

  it("asks for the missing fields without calling the server", async () => {
    const api = mockApi({ "GET /api/v1/me": SIGNED_OUT });
    renderApp({ route: "/login" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Sign in" }));
    expect(screen.getByLabelText("Email")).toHaveAccessibleDescription("Enter your email.");
    expect(screen.getByLabelText("Password")).toHaveAccessibleDescription("Enter your password.");
    expect(api.calls("POST", "/api/v1/auth/session")).toHaveLength(0);
  });

  it("sends an already signed-in user on, and never to another origin", async () => {
    mockApi({ "GET /api/v1/me": ME_ADMIN, "GET /api/v1/*": { data: [], has_more: false } });
    const { router } = renderApp({ route: "/login?next=%2F%2Fevil.example%2F" });
    await waitFor(() => expect(router.state.location.pathname).toBe("/"));
  });

  it("offers Sign in with SSO when the gateway has a provider, with the typed email", async () => {
    mockApi({ "GET /api/v1/me": SIGNED_OUT, "GET /api/v1/auth/providers": { local: true, oidc: true } });
    renderApp({ route: "/login" });
    const sso = await screen.findByRole("link", { name: "Sign in with SSO" });
    expect(new URL(sso.getAttribute("href")!).pathname).toBe("/api/v1/auth/oidc/login");
    expect(new URL(sso.getAttribute("href")!).searchParams.has("email")).toBe(false);
    await userEvent.setup().type(screen.getByLabelText("Email"), "ann@acme.com");
    const href = new URL(screen.getByRole("link", { name: "Sign in with SSO" }).getAttribute("href")!);
    expect(href.pathname).toBe("/api/v1/auth/oidc/login");
    expect(href.searchParams.get("email")).toBe("ann@acme.com");
    // The password form stays the first choice.
    expect(screen.getByRole("button", { name: "Sign in" })).toHaveClass("bg-primary");
  });

  it("offers no SSO without a provider", async () => {
    const api = mockApi({ "GET /api/v1/me": SIGNED_OUT, "GET /api/v1/auth/providers": { local: true, oidc: false } });
    renderApp({ route: "/login" });
    await screen.findByLabelText("Email");
    await waitFor(() => expect(api.calls("GET", "/api/v1/auth/providers")).toHaveLength(1));
    expect(screen.queryByRole("link", { name: "Sign in with SSO" })).toBeNull();
  });

  it.each([
    ["domain_not_allowed", "Your email domain is not allowed to sign in to this organization. Ask an administrator."],
    ["state_mismatch", /could not be matched to this browser/],
    ["provider_error", /identity provider did not complete the sign-in/],
    ["token_invalid", /answer could not be verified/],
    ["email_unverified", /email address is not verified/],
    ["no_provider", /not set up for your organization/],
    ["not_provisioned", /no account here yet/],
    ["local_only", /This provider may not sign in your account/],
    ["account_disabled", /account or its organization is deactivated/],
    ["something_new", "Single sign-on did not succeed. Try again, or ask an administrator if it keeps failing."],
  ])("explains a failed SSO sign-in (%s) and drops the code from the URL", async (code, message) => {
    mockApi({ "GET /api/v1/me": SIGNED_OUT, "GET /api/v1/auth/providers": { local: true, oidc: true } });
    const { router } = renderApp({ route: `/login?sso_error=${code}&next=%2Fkeys` });
    expect(await screen.findByRole("alert")).toHaveTextContent(message);
    await waitFor(() => expect(router.state.location.search).toBe("?next=%2Fkeys"));
    expect(screen.getByRole("alert")).toHaveTextContent(message);
  });

  it("sends a user whose organization signs in with SSO to the SSO button", async () => {
    mockApi({
      "GET /api/v1/me": SIGNED_OUT,
      "GET /api/v1/auth/providers": { local: true, oidc: true },
      "POST /api/v1/auth/session": errorResponse(403, "sso_required", "this organization signs in with SSO"),
    });
    renderApp({ route: "/login" });
    const user = await fillIn("ann@acme.com", "old password");
    expect(screen.getByRole("link", { name: "Sign in with SSO" })).not.toHaveClass("bg-primary");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("This organization signs in with SSO");
    const sso = screen.getByRole("link", { name: "Sign in with SSO" });
    expect(sso).toHaveClass("bg-primary");
    expect(screen.getByRole("button", { name: "Sign in" })).not.toHaveClass("bg-primary");
    expect(new URL(sso.getAttribute("href")!).searchParams.get("email")).toBe("ann@acme.com");
  });

  it("names the chosen organization to the SSO sign-in of a user of several", async () => {
    const orgs = [
      { id: "o1", name: "Acme", slug: "acme" },
      { id: "o2", name: "Globex", slug: "globex" },
    ];
    mockApi({
      "GET /api/v1/me": SIGNED_OUT,
      "GET /api/v1/auth/providers": { local: true, oidc: true },
      "POST /api/v1/auth/session": errorResponse(409, "conflict", "several organizations", { organizations: orgs }),
    });
    renderApp({ route: "/login" });
    const user = await fillIn();
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    await user.selectOptions(await screen.findByLabelText("Organization"), "o2");
    const href = new URL(screen.getByRole("link", { name: "Sign in with SSO" }).getAttribute("href")!);
    expect(href.searchParams.get("org")).toBe("globex");
  });
});
