/**
 * The organisation being viewed (lib/viewedOrg.tsx): a system admin's switcher and banner, the URL naming it,
 * and the org-scoped pages (keys, teams, service accounts, MCP servers) asking the API for that
 * organisation's data only, with no data of the previous one shown after a switch.
 */
import { describe, expect, it } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { ME_ADMIN, ME_ORG_ADMIN, mockApi, renderApp, type MockRequest } from "../test/utils";
import { expectNoSeriousA11yViolations } from "../test/axe";
import { namingOrg, orgNamedBy, switchTarget, withOrgParam } from "../lib/viewedOrg";
import type { OrgOut } from "../features/org/types";
import type { KeyOut } from "../features/keys/types";

const page = <T,>(data: T[]) => ({ data, has_more: false });

const org = (id: string, name: string, slug: string): OrgOut => ({
  id,
  name,
  slug,
  timezone: "UTC",
  daily_token_limit: 0,
  monthly_token_limit: 0,
  requests_per_minute: 0,
  requests_per_day: 0,
  is_active: true,
  member_count: 1,
  team_count: 1,
  created_at: "2026-12-01T10:00:00Z",
  updated_at: "2026-12-01T10:00:00Z",
});
const HOME = org("o1", "Home", "home");
const BETA = org("o2", "Beta", "beta");

function key(id: string, name: string, orgId: string, extra: Partial<KeyOut> = {}): KeyOut {
  return {
    id,
    name,
    key_type: "team_key",
    key_hint: `vl_tk_…${id}`,
    org_id: orgId,
    team_id: null,
    user_id: null,
    service_account_id: null,
    daily_token_limit: 0,
    monthly_token_limit: 0,
    requests_per_minute: 0,
    requests_per_day: 0,
    expires_at: null,
    last_used_at: null,
    created_by: "u_admin",
    created_at: "2026-12-01T10:00:00Z",
    updated_at: "2026-12-01T10:00:00Z",
    ...extra,
  };
}

const team = (id: string, name: string, orgId: string) => ({
  id,
  org_id: orgId,
  name,
  slug: name.toLowerCase(),
  daily_token_limit: 0,
  monthly_token_limit: 0,
  requests_per_minute: 0,
  requests_per_day: 0,
  member_count: 0,
  key_count: 0,
  created_at: "2026-12-01T10:00:00Z",
  updated_at: "2026-12-01T10:00:00Z",
});

/** Each organisation's data, told apart by name: "home-…" in o1, "beta-…" in o2. */
function routes(extra: Record<string, unknown> = {}) {
  return {
    "GET /api/v1/me": ME_ADMIN,
    "GET /api/v1/orgs": page([HOME, BETA]),
    "GET /api/v1/orgs/o1": HOME,
    "GET /api/v1/orgs/o2": BETA,
    "GET /api/v1/orgs/o1/keys": page([key("k1", "home-key", "o1")]),
    "GET /api/v1/orgs/o2/keys": page([key("k2", "beta-key", "o2", { team_id: "t2" })]),
    "GET /api/v1/orgs/o1/teams": page([team("t1", "HomeTeam", "o1")]),
    "GET /api/v1/orgs/o2/teams": page([team("t2", "BetaTeam", "o2")]),
    "GET /api/v1/orgs/o1/service-accounts": page([{ id: "sa1", name: "home-bot", org_id: "o1", team_id: null, key_count: 0 }]),
    "GET /api/v1/orgs/o2/service-accounts": page([{ id: "sa2", name: "beta-bot", org_id: "o2", team_id: null, key_count: 0 }]),
    "GET /api/v1/orgs/o1/mcp-servers": page([]),
    "GET /api/v1/orgs/o2/mcp-servers": page([]),
    "GET /api/v1/orgs/o1/teams/t1/mcp-servers": page([]),
    "GET /api/v1/orgs/o2/teams/t2/mcp-servers": page([]),
    "GET /api/v1/mcp-servers/health": [],
    "GET /api/v1/orgs/o2/model-access": { models: [] },
    "GET /api/v1/models": page([{ name: "gpt-4o" }]),
    ...extra,
  };
}

/** The org-scoped API calls (`/api/v1/orgs/<id>/...`), by organisation id. */
const orgCalls = (requests: MockRequest[], orgId: string) => requests.filter((r) => r.path.startsWith(`/api/v1/orgs/${orgId}/`));
const where = (router: ReturnType<typeof renderApp>["router"]) => `${router.state.location.pathname}${router.state.location.search}`;

describe("the organization being viewed", () => {
  it("is switched by a system admin in the bar under the header: the banner names it, the URL carries it, and back to their own", async () => {
    const api = mockApi(routes());
    const { router } = renderApp({ route: "/keys" });
    expect(await screen.findByText("home-key")).toBeInTheDocument();
    expect(screen.queryByRole("region", { name: "Organization being viewed" })).toBeNull();
    const switcher = screen.getByRole("combobox", { name: "Organization being viewed" });
    expect(switcher).toHaveValue("o1");
    await waitFor(() => expect(within(switcher).getAllByRole("option").map((o) => o.textContent)).toEqual(["Home (yours)", "Beta"]));

    const user = userEvent.setup({ delay: null });
    await user.selectOptions(switcher, "o2");
    await waitFor(() => expect(where(router)).toBe("/keys?org=o2"));
    expect(await screen.findByText("beta-key")).toBeInTheDocument();
    expect(screen.queryByText("home-key")).toBeNull();
    const banner = await screen.findByRole("region", { name: "Organization being viewed" });
    await waitFor(() => expect(banner).toHaveTextContent("Viewing Beta (beta), not your own organization."));
    expect(api.calls("GET", "/api/v1/orgs/o2/keys")).toHaveLength(1);

    // The navigation's links do not name the organization; following one keeps it.
    await user.click(within(screen.getByRole("navigation", { name: "Main" })).getByRole("link", { name: "Teams" }));
    await waitFor(() => expect(where(router)).toBe("/teams?org=o2"));
    expect(await screen.findByRole("link", { name: "BetaTeam" })).toHaveAttribute("href", "/teams/t2/members");
    expect(screen.queryByRole("link", { name: "HomeTeam" })).toBeNull();

    await user.click(within(banner).getByRole("button", { name: "Back to my organization" }));
    await waitFor(() => expect(where(router)).toBe("/teams"));
    expect(await screen.findByRole("link", { name: "HomeTeam" })).toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "BetaTeam" })).toBeNull();
    expect(screen.queryByRole("region", { name: "Organization being viewed" })).toBeNull();
    expect(screen.getByRole("combobox", { name: "Organization being viewed" })).toHaveValue("o1");
  });

  it("never shows the previous organization's data while the next one's loads (caches are per organization)", async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const api = mockApi(
      routes({
        "GET /api/v1/orgs/o2/keys": async () => {
          await held;
          return page([key("k2", "beta-key", "o2")]);
        },
      }),
    );
    renderApp({ route: "/keys" });
    expect(await screen.findByText("home-key")).toBeInTheDocument();
    const user = userEvent.setup({ delay: null });
    await user.selectOptions(screen.getByRole("combobox", { name: "Organization being viewed" }), "o2");
    await waitFor(() => expect(api.calls("GET", "/api/v1/orgs/o2/keys")).toHaveLength(1));
    expect(screen.queryByText("home-key")).toBeNull();
    expect(screen.queryByRole("table", { name: "API keys" })).toBeNull();
    release();
    expect(await screen.findByText("beta-key")).toBeInTheDocument();

    // Back: o1's keys come from its own cache entry, o2's are never shown there.
    await user.selectOptions(screen.getByRole("combobox", { name: "Organization being viewed" }), "o1");
    expect(await screen.findByText("home-key")).toBeInTheDocument();
    expect(screen.queryByText("beta-key")).toBeNull();
  });

  it("is opened from a link naming it, and from “View” on the organizations page", async () => {
    mockApi(routes({ "GET /api/v1/orgs/o2/members": page([]), "GET /api/v1/orgs/o2/invites": page([]) }));
    const { router } = renderApp({ route: "/orgs" });
    const table = await screen.findByRole("table", { name: "Organizations" });
    const user = userEvent.setup({ delay: null });
    await user.click(within(table).getByRole("link", { name: "View Beta" }));
    await waitFor(() => expect(where(router)).toBe("/orgs/o2/settings"));
    expect(await screen.findByRole("heading", { level: 1, name: "Organization: Beta" })).toBeInTheDocument();
    expect(screen.getByRole("combobox", { name: "Organization being viewed" })).toHaveValue("o2");
    await user.click(within(screen.getByRole("navigation", { name: "Main" })).getByRole("link", { name: "API Keys" }));
    await waitFor(() => expect(where(router)).toBe("/keys?org=o2"));
    expect(await screen.findByText("beta-key")).toBeInTheDocument();
  });

  it("is offered to system admins only: an org admin's pages stay in their organization whatever the URL says", async () => {
    const api = mockApi(routes({ "GET /api/v1/me": ME_ORG_ADMIN }));
    renderApp({ route: "/keys?org=o2" });
    expect(await screen.findByText("home-key")).toBeInTheDocument();
    expect(screen.queryByRole("combobox", { name: "Organization being viewed" })).toBeNull();
    expect(screen.queryByRole("region", { name: "Organization being viewed" })).toBeNull();
    expect(orgCalls(api.requests, "o2")).toEqual([]);
    expect(api.calls("GET", "/api/v1/orgs")).toHaveLength(0);
  });

  it("has no serious accessibility violation in the switcher and the banner", async () => {
    mockApi(routes());
    const { container } = renderApp({ route: "/keys?org=o2" });
    const banner = await screen.findByRole("region", { name: "Organization being viewed" });
    await waitFor(() => expect(banner).toHaveTextContent("Beta (beta)"));
    await screen.findByText("beta-key");
    await expectNoSeriousA11yViolations(container);
  });
});

describe("org-scoped pages of another organization", () => {
  it("API keys: lists and creates a team key in the organization viewed, never as a personal key", async () => {
    const api = mockApi(routes({ "POST /api/v1/orgs/o2/keys": { status: 201, body: { ...key("k9", "deploy", "o2", { team_id: "t2" }), key: "vl_tk_SECRET" } } }));
    renderApp({ route: "/keys?org=o2" });
    expect(await screen.findByText("beta-key")).toBeInTheDocument();
    const user = userEvent.setup({ delay: null });
    await user.click(screen.getAllByRole("button", { name: "Create key" })[0]!);
    const dialog = await screen.findByRole("dialog", { name: "Create key" });
    const type = within(dialog).getByLabelText("Key type");
    expect(type).toHaveValue("team_key");
    expect(within(type).getAllByRole("option").map((o) => o.textContent)).toEqual(["Team key", "Service account key"]);
    await user.type(within(dialog).getByLabelText(/^Name/), "deploy");
    const teamSelect = within(dialog).getByRole("combobox", { name: /^Team/ });
    await waitFor(() => expect(within(teamSelect).getAllByRole("option").map((o) => o.textContent)).toContain("BetaTeam"));
    await user.selectOptions(teamSelect, "t2");
    await user.click(within(dialog).getByRole("button", { name: "Create" }));
    await waitFor(() => expect(api.calls("POST", "/api/v1/orgs/o2/keys")).toHaveLength(1));
    expect(api.calls("POST", "/api/v1/orgs/o2/keys")[0]!.body).toMatchObject({ name: "deploy", key_type: "team_key", team_id: "t2" });
    expect(orgCalls(api.requests, "o1")).toEqual([]);
  });

  it("Teams: lists and creates a team in the organization viewed, then opens it there", async () => {
    const created = team("t9", "Research", "o2");
    const api = mockApi(
      routes({
        "POST /api/v1/orgs/o2/teams": { status: 201, body: created },
        "GET /api/v1/orgs/o2/teams/t9": created,
        "GET /api/v1/orgs/o2/teams/t9/members": page([]),
      }),
    );
    const { router } = renderApp({ route: "/teams?org=o2" });
    expect(await screen.findByRole("link", { name: "BetaTeam" })).toBeInTheDocument();
    const user = userEvent.setup({ delay: null });
    await user.click(screen.getAllByRole("button", { name: "Create team" })[0]!);
    const dialog = await screen.findByRole("dialog", { name: "Create team" });
    await user.type(within(dialog).getByLabelText(/^Name/), "Research");
    await user.click(within(dialog).getByRole("button", { name: "Create" }));
    await waitFor(() => expect(api.calls("POST", "/api/v1/orgs/o2/teams")).toHaveLength(1));
    await waitFor(() => expect(where(router)).toBe("/teams/t9/members?org=o2"));
    expect(await screen.findByRole("heading", { level: 1, name: "Research" })).toBeInTheDocument();
    expect(api.calls("GET", "/api/v1/orgs/o2/teams/t9/members")).toHaveLength(1);
    expect(orgCalls(api.requests, "o1")).toEqual([]);
  });

  it("Service accounts: lists and creates an account in the organization viewed", async () => {
    const api = mockApi(
      routes({ "POST /api/v1/orgs/o2/service-accounts": { status: 201, body: { id: "sa9", name: "deployer", org_id: "o2", team_id: null, key_count: 0 } } }),
    );
    renderApp({ route: "/service-accounts?org=o2" });
    const table = await screen.findByRole("table", { name: "Service accounts" });
    expect(within(table).getByText("beta-bot")).toBeInTheDocument();
    expect(within(table).getByRole("link", { name: "Keys of beta-bot: 0" })).toHaveAttribute("href", "/keys?account=sa2");
    const user = userEvent.setup({ delay: null });
    await user.click(screen.getAllByRole("button", { name: "Create service account" })[0]!);
    const dialog = await screen.findByRole("dialog", { name: "Create service account" });
    await user.type(within(dialog).getByLabelText(/^Name/), "deployer");
    await user.click(within(dialog).getByRole("button", { name: "Create" }));
    await waitFor(() => expect(api.calls("POST", "/api/v1/orgs/o2/service-accounts")).toHaveLength(1));
    expect(orgCalls(api.requests, "o1")).toEqual([]);
  });

  it("MCP servers: lists the organization's and its teams' servers and registers one there", async () => {
    const server = {
      id: "s9",
      name: "Tools",
      alias: "tools",
      url: "https://tools.example.com/mcp",
      auth_type: "none",
      auth_header: "",
      has_auth_token: false,
      oauth_token_url: "",
      oauth_client_id: "",
      has_oauth_client_secret: false,
      oauth_scopes: "",
      scope: "org",
      org_id: "o2",
      team_id: null,
      is_active: true,
      code_mode_enabled: true,
      source: "api",
      created_by: "u_admin",
      created_at: "2026-12-01T10:00:00Z",
      updated_at: "2026-12-01T10:00:00Z",
    };
    const api = mockApi(routes({ "POST /api/v1/orgs/o2/mcp-servers": { status: 201, body: server } }));
    renderApp({ route: "/mcp-servers?org=o2" });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Add MCP server" }));
    await waitFor(() => expect(api.calls("GET", "/api/v1/orgs/o2/teams/t2/mcp-servers")).toHaveLength(1));
    expect(api.calls("GET", "/api/v1/orgs/o2/mcp-servers")).toHaveLength(1);
    const dialog = await screen.findByRole("dialog", { name: "Add MCP server" });
    await user.selectOptions(within(dialog).getByLabelText("Scope"), "org");
    await user.type(within(dialog).getByLabelText(/^Name/), "Tools");
    await user.type(within(dialog).getByLabelText(/^Alias/), "tools");
    await user.type(within(dialog).getByLabelText(/^URL/), "https://tools.example.com/mcp");
    await user.click(within(dialog).getByRole("button", { name: "Add server" }));
    await waitFor(() => expect(api.calls("POST", "/api/v1/orgs/o2/mcp-servers")).toHaveLength(1));
    expect(orgCalls(api.requests, "o1")).toEqual([]);
  }, 30_000);
});

describe("URL helpers", () => {
  it("read and write the organization a URL names", () => {
    expect(orgNamedBy({ pathname: "/orgs/o2/settings", search: "?org=o3" })).toBe("o2");
    expect(orgNamedBy({ pathname: "/orgs", search: "" })).toBeNull();
    expect(orgNamedBy({ pathname: "/keys", search: "?q=x&org=o3" })).toBe("o3");
    expect(withOrgParam("?q=x", "o2")).toBe("?q=x&org=o2");
    expect(withOrgParam("?org=o2", null)).toBe("");
    expect(switchTarget("/teams/t1/members", "o2")).toBe("/teams?org=o2");
    expect(switchTarget("/orgs/o1/users", "o2")).toBe("/orgs/o2/users");
    expect(namingOrg("/sso", "o1")).toBe("/sso?org=o1");
    expect(namingOrg("/orgs/o2/sso", "o2")).toBe("/orgs/o2/sso");
  });
});
