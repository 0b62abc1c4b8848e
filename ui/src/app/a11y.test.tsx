import { describe, it } from "vitest";
import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { ME_ADMIN, ME_MEMBER, ME_ORG_ADMIN, errorResponse, mockApi, renderApp } from "../test/utils";
import { expectNoSeriousA11yViolations } from "../test/axe";

const STATS = {
  scope: "system",
  active_keys: 2,
  total_teams: 1,
  total_members: 3,
  requests_24h: 10,
  tokens_24h: 1000,
  cost_estimate_24h: 0.01,
  budget_warnings: [{ window: "daily", scope: "key", scope_id: "k1", name: "ci", limit: 1000, usage: 900, percent_used: 90 }],
  models_healthy: 1,
  models_unhealthy: 0,
  models_degraded: 0,
};
const REPORT = {
  org_id: null,
  from: "",
  to: "",
  group_by: "model",
  data: [{ group_key: "demo", group_label: "demo", total_requests: 10, prompt_tokens: 400, completion_tokens: 600, total_tokens: 1000, cost_estimate: 0.01, avg_duration_ms: 30 }],
};

describe("accessibility (axe-core, serious and critical)", () => {
  it("sign-in page, also with an error shown", async () => {
    mockApi({
      "GET /api/v1/me": errorResponse(401, "unauthorized", "missing credentials"),
      "POST /api/v1/auth/session": errorResponse(401, "unauthorized", "invalid email or password"),
    });
    renderApp({ route: "/login" });
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Email"), "a@example.com");
    await user.type(screen.getByLabelText("Password"), "nope");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    await screen.findByRole("alert");
    await expectNoSeriousA11yViolations();
  });

  it("sign-in page with the SSO button and a failed SSO sign-in's message", async () => {
    mockApi({
      "GET /api/v1/me": errorResponse(401, "unauthorized", "missing credentials"),
      "GET /api/v1/auth/providers": { local: true, oidc: true },
    });
    renderApp({ route: "/login?sso_error=domain_not_allowed" });
    await screen.findByRole("link", { name: "Sign in with SSO" });
    await screen.findByRole("alert");
    await expectNoSeriousA11yViolations();
  });

  it("single sign-on page (system admin: global provider and the organization's form, warnings shown)", async () => {
    mockApi({
      "GET /api/v1/me": ME_ADMIN,
      "GET /api/v1/orgs/o1": ORG,
      "GET /api/v1/orgs": { data: [ORG], has_more: false },
      "GET /api/v1/orgs/o1/sso": {
        org_id: "o1", enabled: true, issuer: "https://login.acme.com", client_id: "voidllm", client_secret_set: true,
        redirect_url: null, scopes: ["openid", "email"], allowed_domains: ["acme.com"], auto_provision: true,
        default_role: "member", group_sync: "exact", group_claim: "groups", local_login: false,
        created_at: ORG.created_at, updated_at: ORG.created_at,
      },
      "GET /api/v1/settings/sso": {
        configured: true, enabled: true, issuer: "https://id.example.com", client_id: "gw", client_secret_set: true,
        redirect_url: null, scopes: ["openid"], allowed_domains: [], auto_provision: false, default_role: "member",
        default_org_slug: "acme", group_sync: "off", group_claim: "groups",
      },
      "POST /api/v1/orgs/o1/sso/test": { ok: true, issuer: "https://login.acme.com", authorization_endpoint: "https://login.acme.com/auth", jwks_keys: 1, error: null },
    });
    renderApp({ route: "/sso" });
    const form = await screen.findByRole("form", { name: "Organization provider" });
    await screen.findByText("https://id.example.com");
    const user = userEvent.setup();
    await user.click(within(form).getByRole("button", { name: "Test connection" }));
    await within(form).findByText("Connection works");
    await expectNoSeriousA11yViolations();
    await user.click(within(form).getByRole("button", { name: "Remove" }));
    await screen.findByRole("alertdialog");
    await expectNoSeriousA11yViolations();
  });

  it("dashboard in the shell", async () => {
    mockApi({
      "GET /api/v1/me": ME_ADMIN,
      "GET /api/v1/dashboard/stats": STATS,
      "GET /api/v1/usage": REPORT,
      "GET /api/v1/models/health": { models: [] },
    });
    renderApp({ route: "/" });
    await screen.findByRole("list", { name: "Top models" });
    await expectNoSeriousA11yViolations();
  });

  it("profile page with the account menu open", async () => {
    mockApi({
      "GET /api/v1/me": ME_MEMBER,
      "GET /api/v1/auth/sessions": {
        data: [{ id: "s1", key_hint: "vl_sk_...1234", created_at: "2026-12-06T04:00:00Z", expires_at: "2026-12-07T04:00:00Z", current: true }],
        has_more: false,
      },
    });
    renderApp({ route: "/profile" });
    await screen.findByRole("table", { name: "Active sessions" });
    await expectNoSeriousA11yViolations();
    const user = userEvent.setup();
    await user.click(screen.getByRole("button", { name: "Account" }));
    await screen.findByRole("menuitem", { name: "Sign out" });
    await expectNoSeriousA11yViolations();
  });

  const ORG = {
    id: "o1",
    name: "Acme",
    slug: "acme",
    timezone: "UTC",
    daily_token_limit: 0,
    monthly_token_limit: 0,
    requests_per_minute: 60,
    requests_per_day: 0,
    is_active: true,
    member_count: 1,
    team_count: 0,
    created_at: "2026-12-01T10:00:00Z",
    updated_at: "2026-12-01T10:00:00Z",
  };
  const ORG_ROUTES = {
    "GET /api/v1/orgs/o1": ORG,
    "GET /api/v1/orgs": { data: [ORG], has_more: false },
    "GET /api/v1/orgs/o1/members": {
      data: [{ id: "m1", org_id: "o1", user_id: "u_org", role: "org_admin", email: "org@example.com", display_name: "Olga", created_at: ORG.created_at, updated_at: ORG.created_at }],
      has_more: false,
    },
    "GET /api/v1/orgs/o1/invites": {
      data: [{ id: "i1", org_id: "o1", email: "new@example.com", role: "member", token_hint: "vl_iv_…", status: "pending", expires_at: ORG.created_at, redeemed_at: null, created_at: ORG.created_at, created_by: null }],
      has_more: false,
    },
    "GET /api/v1/users": {
      data: [{ id: "u2", email: "bob@example.com", display_name: "Bob", is_system_admin: false, auth_provider: "local", org_id: "o1", role: "member", created_at: ORG.created_at, updated_at: ORG.created_at }],
      has_more: false,
    },
  };

  it.each([
    ["organization settings (system admin)", ME_ADMIN, "/org/settings", "form"],
    ["organization members and invites", ME_ORG_ADMIN, "/org/users", "table"],
    ["organizations", ME_ADMIN, "/orgs", "table"],
    ["users", ME_ADMIN, "/users", "table"],
  ])("%s", async (_, me, route, role) => {
    mockApi({ "GET /api/v1/me": me, ...ORG_ROUTES, "GET /api/v1/*": { data: [], has_more: false } });
    renderApp({ route });
    await screen.findAllByRole(role);
    await expectNoSeriousA11yViolations();
  });

  it("invite page", async () => {
    mockApi({ "GET /api/v1/invites/peek": { email: "new@example.com", org_name: "Acme", role: "member", expires_at: "2026-12-13T10:00:00Z" } });
    renderApp({ route: "/invite/vl_iv_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN" });
    await screen.findByRole("heading", { name: "Join your organization" });
    await expectNoSeriousA11yViolations();
  });

  it("MCP server page with its tools and the block dialog open", async () => {
    const server = {
      id: "s1", name: "Github", alias: "github", url: "https://github.example.com/mcp", auth_type: "bearer",
      auth_header: "", has_auth_token: true, oauth_token_url: "", oauth_client_id: "", has_oauth_client_secret: false,
      oauth_scopes: "", scope: "global", org_id: null, team_id: null, is_active: true, code_mode_enabled: true,
      source: "api", created_by: null, created_at: "2026-12-01T10:00:00Z", updated_at: "2026-12-01T10:00:00Z",
    };
    mockApi({
      "GET /api/v1/me": ME_ADMIN,
      "GET /api/v1/mcp-servers/s1": server,
      "GET /api/v1/mcp-servers/health": [],
      "GET /api/v1/orgs/o1/mcp-servers": { data: [server], has_more: false },
      "GET /api/v1/orgs/o1/teams": { data: [], has_more: false },
      "GET /api/v1/mcp-servers/s1/tools": [{ name: "echo", description: "Echo.", blocked: false }],
      "GET /api/v1/mcp-servers/s1/blocklist": [],
    });
    renderApp({ route: "/mcp-servers/s1" });
    await screen.findByRole("table", { name: "Tools of Github" });
    await expectNoSeriousA11yViolations();
    const user = userEvent.setup();
    await user.click(screen.getByRole("button", { name: "Block echo" }));
    await screen.findByRole("dialog", { name: "Block echo?" });
    await expectNoSeriousA11yViolations();
  });

  it("audit log with an entry's detail open", async () => {
    const entry = {
      id: "a1",
      timestamp: "2026-12-06T10:00:00Z",
      request_id: "req-1",
      org_id: "o1",
      actor_id: "u_admin",
      actor_type: "user",
      actor_key_id: null,
      action: "create",
      resource_type: "api_key",
      resource_id: "k1",
      description: '{"name":"ci","api_key":"[REDACTED]"}',
      ip_address: "127.0.0.1",
      status_code: 201,
    };
    mockApi({ "GET /api/v1/me": ME_ADMIN, "GET /api/v1/audit-logs": { data: [entry], has_more: true, next_cursor: "a1" } });
    renderApp({ route: "/audit-log" });
    await screen.findByRole("table", { name: "Audit log entries" });
    await expectNoSeriousA11yViolations();
    const user = userEvent.setup();
    await user.click(screen.getByRole("button", { name: "Details of create API key k1" }));
    await screen.findByRole("dialog", { name: "Audit log entry" });
    await expectNoSeriousA11yViolations();
  });

  it("cost reports", async () => {
    const day = new Date().toISOString().slice(0, 10);
    mockApi({
      "GET /api/v1/me": ME_ORG_ADMIN,
      "GET /api/v1/orgs/o1/usage/cost-report": {
        org_id: "o1",
        from: "",
        to: "",
        totals: { requests: 3, prompt_tokens: 30, completion_tokens: 9, total_tokens: 39, cost: 1.5 },
        by_model: [{ model_name: "demo", requests: 3, prompt_tokens: 30, completion_tokens: 9, total_tokens: 39, cost: 1.5 }],
        by_day: [{ day, requests: 3, total_tokens: 39, cost: 1.5 }],
        top_keys: [{ id: "k1", name: "ci", requests: 3, total_tokens: 39, cost: 1.5 }],
        top_users: [{ id: "u1", name: "org@example.com", requests: 3, total_tokens: 39, cost: 1.5 }],
      },
    });
    renderApp({ route: "/cost-reports" });
    await screen.findByRole("table", { name: "Top users" });
    await expectNoSeriousA11yViolations();
  });

  it.each([
    ["teams list", "/teams", "table", "Teams"],
    ["team members", "/teams/t1/members", "table", "Members of Red"],
    ["team models", "/teams/t1/models", "table", "Model aliases of Red"],
    ["team MCP access", "/teams/t1/mcp-access", "checkbox", "Docs (docs, global)"],
    ["team settings with budget bars", "/teams/t1/settings", "progressbar", "Tokens this month of Red"],
    ["service accounts", "/service-accounts", "table", "Service accounts"],
  ] as const)("%s", async (_, route, role, name) => {
    const red = {
      id: "t1", org_id: "o1", name: "Red", slug: "red", daily_token_limit: 0, monthly_token_limit: 1000,
      requests_per_minute: 2, requests_per_day: 0, member_count: 1, key_count: 1,
      created_at: "2026-12-01T10:00:00Z", updated_at: "2026-12-01T10:00:00Z",
    };
    const ann = {
      id: "m1", org_id: "o1", team_id: "t1", user_id: "u1", role: "team_admin", email: "ann@example.com",
      display_name: "Ann", created_at: "2026-12-01T10:00:00Z", updated_at: "2026-12-01T10:00:00Z",
    };
    mockApi({
      "GET /api/v1/me": ME_ORG_ADMIN,
      "GET /api/v1/orgs/o1/teams": { data: [red], has_more: false },
      "GET /api/v1/orgs/o1/teams/t1": red,
      "GET /api/v1/orgs/o1/teams/t1/members": { data: [ann], has_more: false },
      "GET /api/v1/orgs/o1/teams/t1/model-access": { models: [] },
      "GET /api/v1/orgs/o1/teams/t1/model-aliases": {
        data: [{ id: "a1", alias: "fast", model_name: "demo", scope_type: "team", org_id: "o1", team_id: "t1", created_by: null, created_at: "" }],
        has_more: false,
      },
      "GET /api/v1/me/available-models": { models: [{ name: "demo", type: "chat" }] },
      "GET /api/v1/orgs/o1/teams/t1/mcp-access": { servers: [] },
      "GET /api/v1/orgs/o1/teams/t1/mcp-servers": {
        data: [{ id: "s1", name: "Docs", alias: "docs", scope: "global", source: "api", is_active: true }],
        has_more: false,
      },
      "GET /api/v1/orgs/o1/usage": { ...REPORT, data: [{ ...REPORT.data[0], group_key: "t1", error_count: 0 }] },
      "GET /api/v1/orgs/o1/service-accounts": {
        data: [{ id: "sa1", name: "bot", org_id: "o1", team_id: "t1", created_by: null, key_count: 1, created_at: "2026-12-01T10:00:00Z", updated_at: "2026-12-01T10:00:00Z" }],
        has_more: false,
      },
    });
    renderApp({ route });
    await screen.findByRole(role, { name });
    await expectNoSeriousA11yViolations();
  });
});
