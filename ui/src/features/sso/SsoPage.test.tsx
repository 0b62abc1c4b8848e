import { describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { ME_ADMIN, ME_MEMBER, ME_ORG_ADMIN, errorResponse, mockApi, renderApp } from "../../test/utils";
import type { GlobalSsoOut, OrgSsoOut } from "./types";

const ORG = {
  id: "o1", name: "Acme", slug: "acme", timezone: "UTC", daily_token_limit: 0, monthly_token_limit: 0,
  requests_per_minute: 0, requests_per_day: 0, is_active: true, member_count: 2, team_count: 1,
  created_at: "2026-12-01T10:00:00Z", updated_at: "2026-12-01T10:00:00Z",
};
const GLOBEX = { ...ORG, id: "o2", name: "Globex", slug: "globex" };

const STORED: OrgSsoOut = {
  org_id: "o1",
  enabled: true,
  issuer: "https://login.acme.com",
  client_id: "voidllm",
  client_secret_set: true,
  redirect_url: null,
  scopes: ["openid", "email", "profile"],
  allowed_domains: ["acme.com"],
  auto_provision: true,
  default_role: "member",
  group_sync: "additive",
  group_claim: "groups",
  local_login: true,
  created_at: "2026-12-01T10:00:00Z",
  updated_at: "2026-12-01T10:00:00Z",
};

const GLOBAL: GlobalSsoOut = {
  configured: true,
  enabled: true,
  issuer: "https://id.example.com",
  client_id: "gateway",
  client_secret_set: true,
  redirect_url: null,
  scopes: ["openid", "email"],
  allowed_domains: [],
  auto_provision: true,
  default_role: "team_admin",
  default_org_slug: "acme",
  group_sync: "exact",
  group_claim: "roles",
  id_token_algorithms: ["RS256", "ES256"],
};

const OK = { ok: true, issuer: "https://login.acme.com", authorization_endpoint: "https://login.acme.com/auth", jwks_keys: 2, error: null };
const NOT_CONFIGURED = errorResponse(404, "not_found", "no SSO configuration for this organization");

function routes(me = ME_ORG_ADMIN, extra: Record<string, unknown> = {}) {
  return {
    "GET /api/v1/me": me,
    "GET /api/v1/orgs/o1": ORG,
    "GET /api/v1/orgs/o2": GLOBEX,
    "GET /api/v1/orgs": { data: [ORG, GLOBEX], has_more: false },
    "GET /api/v1/orgs/o1/sso": STORED,
    "GET /api/v1/settings/sso": GLOBAL,
    ...extra,
  };
}

async function openForm(route = "/sso") {
  const result = renderApp({ route });
  const form = await screen.findByRole("form", { name: "Organization provider" });
  return { ...result, form, user: userEvent.setup({ delay: null }) };
}

describe("single sign-on page", () => {
  it("shows an org admin their organization's provider (secret stored, not shown) and saves the change", async () => {
    document.cookie = "voidllm_csrf=t1; path=/";
    const api = mockApi(
      routes(ME_ORG_ADMIN, {
        "PUT /api/v1/orgs/o1/sso": (req: { body: unknown }) => ({ ...STORED, ...(req.body as object), updated_at: "2026-12-02T10:00:00Z" }),
      }),
    );
    const { form, user } = await openForm();
    expect(screen.getByRole("heading", { level: 1, name: "Single sign-on" })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "SSO" })).toHaveAttribute("aria-current", "page");
    // An org admin has no global provider card (that is the system admins').
    expect(screen.queryByRole("heading", { name: "Global provider" })).toBeNull();
    expect(api.calls("GET", "/api/v1/settings/sso")).toHaveLength(0);
    expect(within(form).getByLabelText(/^Issuer URL/)).toHaveValue("https://login.acme.com");
    expect(within(form).getByLabelText(/^Client ID/)).toHaveValue("voidllm");
    const secret = within(form).getByLabelText(/^Client secret/);
    expect(secret).toHaveValue("");
    expect(secret).not.toBeRequired();
    expect(secret).toHaveAccessibleDescription(/A secret is stored; it is never shown\. Leave empty to keep it/);
    expect(within(form).getByLabelText("Allowed email domains")).toHaveValue("acme.com");
    expect(within(form).getByLabelText("Scopes")).toHaveValue("openid email profile");
    expect(within(form).getByRole("switch", { name: "Enabled" })).toBeChecked();
    expect(within(form).getByLabelText("Group sync")).toHaveValue("additive");

    await user.clear(within(form).getByLabelText("Allowed email domains"));
    await user.type(within(form).getByLabelText("Allowed email domains"), "acme.com, @Acme.DE acme.com");
    await user.selectOptions(within(form).getByLabelText("Role in those teams"), "team_admin");
    await user.click(within(form).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(api.calls("PUT", "/api/v1/orgs/o1/sso")).toHaveLength(1));
    const put = api.calls("PUT", "/api/v1/orgs/o1/sso")[0]!;
    expect(put.headers.get("X-CSRF-Token")).toBe("t1");
    // No client_secret: the stored one is kept.
    expect(put.body).toEqual({
      enabled: true,
      issuer: "https://login.acme.com",
      client_id: "voidllm",
      redirect_url: null,
      scopes: ["openid", "email", "profile"],
      allowed_domains: ["acme.com", "acme.de"],
      auto_provision: true,
      default_role: "team_admin",
      group_sync: "additive",
      group_claim: "groups",
      local_login: true,
    });
    expect(await screen.findByText("Single sign-on saved")).toBeInTheDocument();
  });

  it("sets up a provider where there is none, asking for what is missing first (the secret included)", async () => {
    const api = mockApi(
      routes(ME_ORG_ADMIN, {
        "GET /api/v1/orgs/o1/sso": NOT_CONFIGURED,
        "PUT /api/v1/orgs/o1/sso": (req: { body: object }) => {
          const { client_secret: _secret, ...rest } = req.body as { client_secret?: string };
          return { ...STORED, ...rest, client_secret_set: true };
        },
      }),
    );
    const { form, user } = await openForm();
    expect(within(form).getByText(/No provider is set up for this organization yet/)).toBeInTheDocument();
    expect(within(form).queryByRole("button", { name: "Remove" })).toBeNull();
    const secret = within(form).getByLabelText(/^Client secret/);
    expect(secret).toBeRequired();
    expect(secret).toHaveAccessibleDescription(/Write-only/);

    await user.click(within(form).getByRole("button", { name: "Set up single sign-on" }));
    expect(within(form).getByLabelText(/^Issuer URL/)).toHaveAccessibleDescription(/Enter the issuer's http\(s\) URL\./);
    expect(within(form).getByLabelText(/^Client ID/)).toHaveAttribute("aria-invalid", "true");
    expect(secret).toHaveAccessibleDescription(/Enter the client secret\./);
    expect(api.calls("PUT", "/api/v1/orgs/o1/sso")).toHaveLength(0);

    await user.type(within(form).getByLabelText(/^Issuer URL/), "https://login.acme.com");
    await user.type(within(form).getByLabelText(/^Client ID/), "voidllm");
    await user.type(secret, "s3cret-value");
    await user.type(within(form).getByLabelText("Allowed email domains"), "acme.com, not a domain!");
    await user.clear(within(form).getByLabelText("Scopes"));
    await user.type(within(form).getByLabelText("Scopes"), "email profile");
    await user.click(within(form).getByRole("button", { name: "Set up single sign-on" }));
    expect(within(form).getByLabelText("Allowed email domains")).toHaveAccessibleDescription(/“not” is not a domain name/);
    expect(within(form).getByLabelText("Scopes")).toHaveAccessibleDescription(/must include openid/);
    expect(api.calls("PUT", "/api/v1/orgs/o1/sso")).toHaveLength(0);

    await user.clear(within(form).getByLabelText("Allowed email domains"));
    await user.type(within(form).getByLabelText("Allowed email domains"), "acme.com");
    await user.clear(within(form).getByLabelText("Scopes"));
    await user.type(within(form).getByLabelText("Scopes"), "openid,email");
    await user.click(within(form).getByRole("switch", { name: "Create accounts at first sign-in" }));
    await user.click(within(form).getByRole("button", { name: "Set up single sign-on" }));
    await waitFor(() => expect(api.calls("PUT", "/api/v1/orgs/o1/sso")).toHaveLength(1));
    expect(api.calls("PUT", "/api/v1/orgs/o1/sso")[0]!.body).toEqual({
      enabled: true,
      issuer: "https://login.acme.com",
      client_id: "voidllm",
      client_secret: "s3cret-value",
      redirect_url: null,
      scopes: ["openid", "email"],
      allowed_domains: ["acme.com"],
      auto_provision: false,
      default_role: "member",
      group_sync: "additive",
      group_claim: "groups",
      local_login: true,
    });
    // Saved: the form now says a secret is stored, and offers Remove.
    const saved = await screen.findByRole("button", { name: "Remove" });
    expect(saved).toBeInTheDocument();
    expect(within(screen.getByRole("form", { name: "Organization provider" })).getByLabelText(/^Client secret/)).toHaveValue("");
  });

  it("shows the gateway's 400 at the field it names, and other errors above the buttons", async () => {
    const api = mockApi(
      routes(ME_ORG_ADMIN, {
        "PUT /api/v1/orgs/o1/sso": errorResponse(400, "invalid_request", "issuer must use https", { field: "issuer" }),
      }),
    );
    const { form, user } = await openForm();
    await user.click(within(form).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(within(form).getByLabelText(/^Issuer URL/)).toHaveAccessibleDescription(/issuer must use https/));
    expect(within(form).queryByRole("alert")).toBeNull();
    api.set("PUT /api/v1/orgs/o1/sso", errorResponse(400, "invalid_request", "allowed_domains[1] is not a domain", { param: "allowed_domains[1]" }));
    await user.click(within(form).getByRole("button", { name: "Save" }));
    await waitFor(() =>
      expect(within(form).getByLabelText("Allowed email domains")).toHaveAccessibleDescription(/allowed_domains\[1\] is not a domain/),
    );
    api.set("PUT /api/v1/orgs/o1/sso", errorResponse(409, "conflict", "the configuration changed meanwhile"));
    await user.click(within(form).getByRole("button", { name: "Save" }));
    expect(await within(form).findByRole("alert")).toHaveTextContent("the configuration changed meanwhile");
  });

  it("tests the connection with the unsaved form and shows what the provider announced, or why it failed", async () => {
    const api = mockApi(routes(ME_ORG_ADMIN, { "POST /api/v1/orgs/o1/sso/test": OK }));
    const { form, user } = await openForm();
    await user.clear(within(form).getByLabelText(/^Issuer URL/));
    await user.type(within(form).getByLabelText(/^Issuer URL/), "https://new.acme.com");
    await user.type(within(form).getByLabelText(/^Client secret/), "typed");
    await user.click(within(form).getByRole("button", { name: "Test connection" }));
    const status = within(form).getByRole("status");
    await waitFor(() => expect(status).toHaveTextContent("Connection works"));
    expect(within(status).getByText("Authorization endpoint").nextSibling).toHaveTextContent("https://login.acme.com/auth");
    expect(within(status).getByText("Signing keys").nextSibling).toHaveTextContent("2");
    expect(api.calls("POST", "/api/v1/orgs/o1/sso/test")[0]!.body).toMatchObject({
      issuer: "https://new.acme.com",
      client_id: "voidllm",
      client_secret: "typed",
    });
    // Nothing was saved by testing.
    expect(api.calls("PUT", "/api/v1/orgs/o1/sso")).toHaveLength(0);

    api.set("POST /api/v1/orgs/o1/sso/test", { ok: false, issuer: "https://new.acme.com", authorization_endpoint: null, jwks_keys: 0, error: "discovery answered 404" });
    await user.click(within(form).getByRole("button", { name: "Test connection" }));
    await waitFor(() => expect(status).toHaveTextContent("Connection failed: discovery answered 404"));
    expect(status).not.toHaveTextContent("Connection works");
  });

  it("shows the callback URL to register, with a copy button", async () => {
    mockApi(routes());
    const { form, user } = await openForm();
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    const callback = new URL("api/v1/auth/oidc/callback", document.baseURI).href;
    expect(within(form).getByText(callback)).toBeInTheDocument();
    await user.click(within(form).getByRole("button", { name: "Copy callback URL" }));
    expect(writeText).toHaveBeenCalledWith(callback);
    await user.type(within(form).getByLabelText("Redirect URL"), "https://gw.acme.com/api/v1/auth/oidc/callback");
    expect(within(form).getByText("https://gw.acme.com/api/v1/auth/oidc/callback")).toBeInTheDocument();
  });

  it("warns before password sign-in is turned off and before exact group sync", async () => {
    const api = mockApi(routes(ME_ORG_ADMIN, { "PUT /api/v1/orgs/o1/sso": STORED }));
    const { form, user } = await openForm();
    expect(within(form).queryByRole("note")).toBeNull();
    const local = within(form).getByRole("switch", { name: "Password sign-in" });
    expect(local).toHaveAccessibleDescription(/System admins keep their password sign-in/);
    await user.click(local);
    expect(within(form).getByRole("note")).toHaveTextContent(/Members then need SSO to sign in/);
    await user.selectOptions(within(form).getByLabelText("Group sync"), "exact");
    expect(within(form).getAllByRole("note")[0]).toHaveTextContent(/Exact mode removes memberships/);
    await user.click(within(form).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(api.calls("PUT", "/api/v1/orgs/o1/sso")).toHaveLength(1));
    expect(api.calls("PUT", "/api/v1/orgs/o1/sso")[0]!.body).toMatchObject({ local_login: false, group_sync: "exact" });
  });

  it("removes the provider after confirming", async () => {
    const api = mockApi(routes(ME_ORG_ADMIN, { "DELETE /api/v1/orgs/o1/sso": { status: 204 } }));
    const { form, user } = await openForm();
    await user.click(within(form).getByRole("button", { name: "Remove" }));
    const dialog = await screen.findByRole("alertdialog", { name: "Remove this organization's provider?" });
    await user.click(within(dialog).getByRole("button", { name: "Cancel" }));
    expect(api.calls("DELETE", "/api/v1/orgs/o1/sso")).toHaveLength(0);
    await user.click(within(form).getByRole("button", { name: "Remove" }));
    await user.click(within(await screen.findByRole("alertdialog")).getByRole("button", { name: "Remove" }));
    await waitFor(() => expect(api.calls("DELETE", "/api/v1/orgs/o1/sso")).toHaveLength(1));
    expect(await screen.findByText(/No provider is set up for this organization yet/)).toBeInTheDocument();
    expect(screen.queryByRole("alertdialog")).toBeNull();
    expect(screen.getByLabelText(/^Issuer URL/)).toHaveValue("");
  });

  it("shows a system admin the global provider read-only, with its own connection test", async () => {
    const api = mockApi(routes(ME_ADMIN, { "POST /api/v1/settings/sso/test": { ...OK, issuer: "https://id.example.com" } }));
    renderApp({ route: "/sso" });
    const global = (await screen.findByRole("heading", { name: "Global provider" })).closest("section")!;
    await within(global).findByText("Issuer URL");
    expect(within(global).getByText("Issuer URL").nextSibling).toHaveTextContent("https://id.example.com");
    expect(within(global).getByText("Client secret").nextSibling).toHaveTextContent("Set");
    expect(within(global).getByText("Allowed email domains").nextSibling).toHaveTextContent("None: no new accounts");
    expect(within(global).getByText("Role in teams made from groups").nextSibling).toHaveTextContent("Team admin");
    expect(within(global).getByText("Group sync").nextSibling).toHaveTextContent(/Exact/);
    expect(within(global).getByText("ID token algorithms").nextSibling).toHaveTextContent("RS256, ES256");
    expect(within(global).queryByRole("textbox")).toBeNull();
    const user = userEvent.setup({ delay: null });
    await user.click(within(global).getByRole("button", { name: "Test connection" }));
    await waitFor(() => expect(within(global).getByRole("status")).toHaveTextContent("Connection works"));
    expect(api.calls("POST", "/api/v1/settings/sso/test")).toHaveLength(1);
    expect(api.calls("POST", "/api/v1/orgs/o1/sso/test")).toHaveLength(0);
  });

  it("says when there is no global provider", async () => {
    mockApi(routes(ME_ADMIN, { "GET /api/v1/settings/sso": { ...GLOBAL, configured: false, enabled: false, issuer: "", client_id: "" } }));
    renderApp({ route: "/sso" });
    expect(await screen.findByText(/No global provider is set up/)).toBeInTheDocument();
    expect(screen.getAllByRole("button", { name: "Test connection" })).toHaveLength(1);
  });

  it("lets a system admin choose another organization, whose provider is at /orgs/:orgId/sso", async () => {
    const api = mockApi(
      routes(ME_ADMIN, {
        "GET /api/v1/orgs/o2/sso": NOT_CONFIGURED,
        "PUT /api/v1/orgs/o2/sso": { ...STORED, org_id: "o2" },
      }),
    );
    const { router, user } = await openForm();
    await user.selectOptions(await screen.findByLabelText("Organization"), "o2");
    await waitFor(() => expect(router.state.location.pathname).toBe("/orgs/o2/sso"));
    expect(await screen.findByText(/No provider is set up for this organization yet/)).toBeInTheDocument();
    expect(screen.getByText(/members of Globex sign in with/)).toBeInTheDocument();
    expect(screen.getByLabelText("Organization")).toHaveValue("o2");
    expect(screen.getByRole("link", { name: "All organizations" })).toHaveAttribute("href", "/orgs");
    const form = screen.getByRole("form", { name: "Organization provider" });
    await user.type(within(form).getByLabelText(/^Issuer URL/), "https://login.globex.com");
    await user.type(within(form).getByLabelText(/^Client ID/), "gw");
    await user.type(within(form).getByLabelText(/^Client secret/), "x");
    await user.click(within(form).getByRole("button", { name: "Set up single sign-on" }));
    await waitFor(() => expect(api.calls("PUT", "/api/v1/orgs/o2/sso")).toHaveLength(1));
    expect(api.calls("PUT", "/api/v1/orgs/o1/sso")).toHaveLength(0);
  });

  it("is not offered to a member, and refused at its address", async () => {
    const api = mockApi(routes(ME_MEMBER, { "GET /api/v1/*": { data: [], has_more: false } }));
    renderApp({ route: "/sso" });
    expect(await screen.findByRole("heading", { name: "No access" })).toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "SSO" })).toBeNull();
    expect(api.calls("GET", "/api/v1/orgs/o1/sso")).toHaveLength(0);
  });

  it("refuses /orgs/:orgId/sso to an org admin", async () => {
    const api = mockApi(routes(ME_ORG_ADMIN));
    renderApp({ route: "/orgs/o2/sso" });
    expect(await screen.findByRole("heading", { name: "No access" })).toBeInTheDocument();
    expect(api.calls("GET", "/api/v1/orgs/o2/sso")).toHaveLength(0);
  });
});
