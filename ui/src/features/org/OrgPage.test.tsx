import { describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import OrgPage from "../../pages/OrgPage";
import { ME_ADMIN, ME_ORG_ADMIN, errorResponse, mockApi, renderApp, renderPage } from "../../test/utils";
import type { InviteOut, MemberOut, OrgOut } from "./types";

const ORG: OrgOut = {
  id: "o1",
  name: "Acme",
  slug: "acme",
  timezone: "UTC",
  daily_token_limit: 0,
  monthly_token_limit: 5000000,
  requests_per_minute: 60,
  requests_per_day: 0,
  is_active: true,
  member_count: 2,
  team_count: 1,
  created_at: "2026-12-01T10:00:00Z",
  updated_at: "2026-12-01T10:00:00Z",
};

const member = (id: string, email: string, role: string, user_id = `u_${id}`): MemberOut => ({
  id,
  org_id: "o1",
  user_id,
  role,
  email,
  display_name: email.split("@")[0]!,
  created_at: "2026-12-01T10:00:00Z",
  updated_at: "2026-12-01T10:00:00Z",
});

const invite = (id: string, email: string, status: string): InviteOut => ({
  id,
  org_id: "o1",
  email,
  role: "member",
  token_hint: "vl_iv_…abcd",
  status,
  expires_at: "2026-12-13T10:00:00Z",
  redeemed_at: null,
  created_at: "2026-12-06T10:00:00Z",
  created_by: "u_org",
});

const TOKEN = "vl_iv_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN";

function routes(extra: Record<string, unknown> = {}) {
  return {
    "GET /api/v1/orgs/o1": ORG,
    "GET /api/v1/orgs/o1/members": {
      data: [member("m1", "org@example.com", "org_admin", "u_org"), member("m2", "bob@example.com", "member")],
      has_more: false,
    },
    "GET /api/v1/orgs/o1/invites": {
      data: [invite("i1", "carol@example.com", "pending"), invite("i2", "dan@example.com", "redeemed")],
      has_more: false,
    },
    "GET /api/v1/orgs/o1/model-access": { models: ["gpt-4o"] },
    "GET /api/v1/orgs/o1/model-aliases": {
      data: [{ id: "a1", alias: "smart", model_name: "gpt-4o", scope_type: "org", org_id: "o1", team_id: null, created_by: null, created_at: "2026-12-01T10:00:00Z" }],
      has_more: false,
    },
    "GET /api/v1/orgs/o1/mcp-access": { servers: [] },
    "GET /api/v1/orgs/o1/available-mcp-servers": [{ id: "s1", name: "Docs", alias: "docs" }, { id: "s2", name: "Tickets", alias: "tickets" }],
    "GET /api/v1/me/available-models": { models: [{ name: "gpt-4o", type: "chat" }, { name: "mini", type: "chat" }] },
    "GET /api/v1/models": { data: [{ name: "gpt-4o" }, { name: "mini" }, { name: "embed" }], has_more: false },
    ...extra,
  };
}

const render = (route: string, me = ME_ORG_ADMIN) =>
  renderPage(<OrgPage />, { route, me, path: route.startsWith("/orgs/") ? "/orgs/:orgId/*" : "/org/*" });

describe("organization page", () => {
  it("opens /org on the settings tab and saves name and slug (an org admin sees the limits read-only)", async () => {
    document.cookie = "voidllm_csrf=t1; path=/";
    const api = mockApi(routes({ "PATCH /api/v1/orgs/o1": { ...ORG, name: "Acme Inc", slug: "acme-inc" } }));
    const { router } = render("/org");
    await waitFor(() => expect(router.state.location.pathname).toBe("/org/settings"));
    expect(await screen.findByRole("heading", { level: 1, name: "Organization" })).toBeInTheDocument();
    const form = await screen.findByRole("form", { name: "Organization settings" });
    const limits = within(form).getByRole("region", { name: "Limits" });
    expect(within(limits).getByText("Requests per minute").nextSibling).toHaveTextContent("60");
    expect(within(limits).getByText("Daily token limit").nextSibling).toHaveTextContent("Unlimited");
    expect(within(form).queryByLabelText("Requests per minute")).toBeNull();
    expect(screen.queryByRole("button", { name: "Deactivate organization" })).toBeNull();

    const user = userEvent.setup({ delay: null });
    await user.clear(within(form).getByLabelText(/^Slug/));
    await user.type(within(form).getByLabelText(/^Slug/), "Bad Slug");
    await user.click(within(form).getByRole("button", { name: "Save settings" }));
    expect(within(form).getByLabelText(/^Slug/)).toHaveAttribute("aria-invalid", "true");
    await user.clear(within(form).getByLabelText(/^Slug/));
    await user.type(within(form).getByLabelText(/^Slug/), "acme-inc");
    await user.clear(within(form).getByLabelText(/^Name/));
    await user.type(within(form).getByLabelText(/^Name/), "Acme Inc");
    await user.click(within(form).getByRole("button", { name: "Save settings" }));
    await waitFor(() => expect(api.calls("PATCH", "/api/v1/orgs/o1")).toHaveLength(1));
    expect(api.calls("PATCH", "/api/v1/orgs/o1")[0]!.body).toEqual({ name: "Acme Inc", slug: "acme-inc" });
  });

  it("opens /orgs/:orgId/members on the Members tab of that organization, named in the heading", async () => {
    mockApi(routes());
    const { router } = render("/orgs/o1/members", { ...ME_ADMIN, org_id: "o0" });
    await waitFor(() => expect(router.state.location.pathname).toBe("/orgs/o1/users"));
    expect(await screen.findByRole("table", { name: "Members" })).toBeInTheDocument();
    expect(await screen.findByRole("heading", { level: 1, name: "Organization: Acme" })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "All organizations" })).toHaveAttribute("href", "/orgs");
  });

  it("manages an organization's teams at /orgs/:orgId/teams: another one's too, which it then views", async () => {
    const team = {
      id: "t1",
      org_id: "o1",
      name: "Platform",
      slug: "platform",
      daily_token_limit: 0,
      monthly_token_limit: 2000000,
      requests_per_minute: 30,
      requests_per_day: 0,
      member_count: 3,
      key_count: 2,
      created_at: "2026-12-01T10:00:00Z",
      updated_at: "2026-12-01T10:00:00Z",
    };
    const admin = { ...ME_ADMIN, org_id: "o0" };
    const api = mockApi(
      routes({
        "GET /api/v1/me": admin,
        "GET /api/v1/orgs": { data: [{ ...ORG, id: "o0", name: "Home", slug: "home" }, ORG], has_more: false },
        "GET /api/v1/orgs/o1/teams": { data: [team], has_more: false },
        "GET /api/v1/orgs/o1/teams/t1": team,
        "GET /api/v1/orgs/o1/teams/t1/members": { data: [], has_more: false },
      }),
    );
    const { router } = renderApp({ route: "/orgs/o1/teams" });
    expect(await screen.findByRole("heading", { level: 1, name: "Organization: Acme" })).toBeInTheDocument();
    expect(screen.getByRole("tab", { name: "Teams", selected: true })).toBeInTheDocument();
    const table = await screen.findByRole("table", { name: "Teams" });
    const row = within(table).getByRole("row", { name: /Platform/ });
    expect(row).toHaveTextContent("platform");
    expect(row).toHaveTextContent("30 / ∞");
    expect(row).toHaveTextContent("∞ / 2M");
    expect(screen.getByRole("button", { name: "Create team" })).toBeInTheDocument();
    // Opening /orgs/o1/... made o1 the organization being viewed: its Teams pages manage o1's teams.
    expect(screen.getByRole("combobox", { name: "Organization being viewed" })).toHaveValue("o1");
    await userEvent.setup().click(within(row).getByRole("link", { name: "Platform" }));
    await waitFor(() => expect(`${router.state.location.pathname}${router.state.location.search}`).toBe("/teams/t1/members?org=o1"));
    expect(await screen.findByRole("heading", { level: 1, name: "Platform" })).toBeInTheDocument();
    expect(api.calls("GET", "/api/v1/orgs/o1/teams/t1/members")).toHaveLength(1);
    expect(api.requests.filter((r) => r.path.startsWith("/api/v1/orgs/o0/"))).toEqual([]);
  });

  it("links the viewer's own organization's teams at /orgs/:orgId/teams", async () => {
    const team = { id: "t1", org_id: "o1", name: "Platform", slug: "platform", daily_token_limit: 0, monthly_token_limit: 0, requests_per_minute: 0, requests_per_day: 0, member_count: 0, key_count: 0, created_at: "2026-12-01T10:00:00Z", updated_at: "2026-12-01T10:00:00Z" };
    mockApi(routes({ "GET /api/v1/orgs/o1/teams": { data: [team], has_more: false } }));
    render("/orgs/o1/teams", ME_ADMIN);
    const own = await screen.findByRole("table", { name: "Teams" });
    expect(within(own).getByRole("link", { name: "Platform" })).toHaveAttribute("href", "/teams/t1/members");
  });

  it("has no Teams tab for the session's own /org (its teams are the Teams page)", async () => {
    mockApi(routes());
    const teams = render("/org/teams");
    expect(await screen.findByText("There is no such organization page")).toBeInTheDocument();
    teams.unmount();
    render("/org/settings");
    await screen.findByRole("tablist", { name: "Organization sections" });
    expect(screen.queryByRole("tab", { name: "Teams" })).toBeNull();
  });

  it("shows a 409 of the settings in the form", async () => {
    mockApi(routes({ "PATCH /api/v1/orgs/o1": errorResponse(409, "conflict", "slug is already taken") }));
    render("/org/settings");
    const form = await screen.findByRole("form", { name: "Organization settings" });
    await userEvent.setup({ delay: null }).click(within(form).getByRole("button", { name: "Save settings" }));
    expect(await within(form).findByRole("alert")).toHaveTextContent("slug is already taken");
  });

  it("lets a system admin change the limits and deactivate only after typing the slug", async () => {
    const api = mockApi(
      routes({
        "PATCH /api/v1/orgs/o1": (req: { body: unknown }) => ({ ...ORG, ...(req.body as object) }),
        "POST /api/v1/orgs/o1/deactivate": { ...ORG, is_active: false },
      }),
    );
    render("/orgs/o1/settings", ME_ADMIN);
    const form = await screen.findByRole("form", { name: "Organization settings" });
    const user = userEvent.setup({ delay: null });
    await user.clear(within(form).getByLabelText("Requests per day"));
    await user.type(within(form).getByLabelText("Requests per day"), "1000");
    await user.click(within(form).getByRole("button", { name: "Save settings" }));
    await waitFor(() => expect(api.calls("PATCH", "/api/v1/orgs/o1")).toHaveLength(1));
    expect(api.calls("PATCH", "/api/v1/orgs/o1")[0]!.body).toMatchObject({ requests_per_day: 1000, requests_per_minute: 60 });

    await user.click(screen.getByRole("button", { name: "Deactivate organization" }));
    const dialog = await screen.findByRole("alertdialog", { name: "Deactivate Acme?" });
    const confirm = within(dialog).getByRole("button", { name: "Deactivate" });
    expect(confirm).toBeDisabled();
    await user.type(within(dialog).getByLabelText(/Type the slug/), "acm");
    expect(confirm).toBeDisabled();
    await user.type(within(dialog).getByLabelText(/Type the slug/), "e");
    expect(confirm).toBeEnabled();
    await user.click(confirm);
    await waitFor(() => expect(api.calls("POST", "/api/v1/orgs/o1/deactivate")).toHaveLength(1));
    expect(await screen.findByRole("button", { name: "Reactivate organization" })).toBeInTheDocument();
  });

  it("lists members with roles, changes a role and removes a member after confirming", async () => {
    const api = mockApi(
      routes({
        "PATCH /api/v1/orgs/o1/members/m2": { ...member("m2", "bob@example.com", "org_admin") },
        "DELETE /api/v1/orgs/o1/members/m2": { status: 204 },
      }),
    );
    render("/org/users");
    const table = await screen.findByRole("table", { name: "Members" });
    expect(within(table).getAllByRole("row")).toHaveLength(3);
    expect(within(table).getByLabelText("Role of org")).toBeDisabled();
    const user = userEvent.setup({ delay: null });
    await user.selectOptions(within(table).getByLabelText("Role of bob"), "org_admin");
    await waitFor(() => expect(api.calls("PATCH", "/api/v1/orgs/o1/members/m2")[0]?.body).toEqual({ role: "org_admin" }));
    await user.click(within(table).getByRole("button", { name: "Remove bob" }));
    const dialog = await screen.findByRole("alertdialog", { name: "Remove bob?" });
    await user.click(within(dialog).getByRole("button", { name: "Remove" }));
    await waitFor(() => expect(api.calls("DELETE", "/api/v1/orgs/o1/members/m2")).toHaveLength(1));
  });

  it("lets a system admin add an existing user who is not a member yet", async () => {
    const users = {
      data: [
        { id: "u_org", email: "org@example.com", display_name: "", is_system_admin: false, auth_provider: "local", org_id: "o1", role: "org_admin", created_at: ORG.created_at, updated_at: ORG.created_at },
        { id: "u7", email: "zed@example.com", display_name: "Zed", is_system_admin: false, auth_provider: "local", org_id: "o2", role: "member", created_at: ORG.created_at, updated_at: ORG.created_at },
      ],
      has_more: false,
    };
    const api = mockApi(
      routes({ "GET /api/v1/users": users, "POST /api/v1/orgs/o1/members": { status: 201, body: member("m7", "zed@example.com", "member", "u7") } }),
    );
    render("/orgs/o1/users", ME_ADMIN);
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Add existing user" }));
    const dialog = await screen.findByRole("dialog", { name: "Add existing user" });
    const select = await within(dialog).findByLabelText(/^User/);
    await waitFor(() => expect(within(select).getAllByRole("option").map((o) => o.textContent)).toEqual(["Choose a user", "Zed (zed@example.com)"]));
    await user.selectOptions(select, "u7");
    await user.click(within(dialog).getByRole("button", { name: "Add" }));
    await waitFor(() => expect(api.calls("POST", "/api/v1/orgs/o1/members")[0]?.body).toEqual({ user_id: "u7", role: "member" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
  });

  it("offers an org admin no way to add an existing user (they invite)", async () => {
    mockApi(routes());
    render("/org/users");
    await screen.findByRole("table", { name: "Members" });
    expect(screen.queryByRole("button", { name: "Add existing user" })).toBeNull();
  });

  it("creates an invite, shows its link once with a copy button, and forgets it when closed", async () => {
    const created = { ...invite("i9", "erin@example.com", "pending"), role: "org_admin", token: TOKEN };
    const api = mockApi(routes({ "POST /api/v1/orgs/o1/invites": { status: 201, body: created } }));
    const { client } = render("/org/users");
    const pending = await screen.findByRole("table", { name: "Pending invites" });
    expect(within(pending).getAllByRole("row")).toHaveLength(2);
    expect(within(pending).getByText("carol@example.com")).toBeInTheDocument();

    const user = userEvent.setup({ delay: null });
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    await user.click(screen.getByRole("button", { name: "Invite member" }));
    const dialog = await screen.findByRole("dialog", { name: "Invite member" });
    await user.type(within(dialog).getByLabelText(/^Email/), "erin@example.com");
    await user.selectOptions(within(dialog).getByLabelText("Role"), "org_admin");
    await user.selectOptions(within(dialog).getByLabelText("Expires"), "14");
    await user.click(within(dialog).getByRole("button", { name: "Create invite" }));
    const shown = await screen.findByRole("dialog", { name: "Invite created" });
    const link = within(shown).getByLabelText("Invite link");
    expect((link as HTMLInputElement).value).toBe(new URL(`invite/${TOKEN}`, document.baseURI).href);
    await user.click(within(shown).getByRole("button", { name: "Copy link" }));
    expect(writeText).toHaveBeenCalledWith((link as HTMLInputElement).value);
    expect(api.calls("POST", "/api/v1/orgs/o1/invites")[0]!.body).toEqual({ email: "erin@example.com", role: "org_admin", expires_in_days: 14 });
    const cached = JSON.stringify([
      client.getQueryCache().getAll().map((q) => q.state.data),
      client.getMutationCache().getAll().map((m) => m.state.data),
    ]);
    expect(cached).not.toContain(TOKEN);
    await user.click(within(shown).getByRole("button", { name: "Done" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(document.body.innerHTML).not.toContain(TOKEN);
  });

  it("revokes a pending invite after confirming, and can show every invite", async () => {
    const api = mockApi(routes({ "DELETE /api/v1/orgs/o1/invites/i1": { status: 204 } }));
    render("/org/users");
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("checkbox", { name: /Also show used/ }));
    const all = await screen.findByRole("table", { name: "Invites" });
    expect(within(all).getByText("dan@example.com")).toBeInTheDocument();
    await user.click(within(all).getByRole("button", { name: "Revoke the invite of carol@example.com" }));
    const dialog = await screen.findByRole("alertdialog", { name: /Revoke the invite of carol/ });
    await user.click(within(dialog).getByRole("button", { name: "Revoke" }));
    await waitFor(() => expect(api.calls("DELETE", "/api/v1/orgs/o1/invites/i1")).toHaveLength(1));
  });

  it("shows the model allowlist read-only to an org admin and manages aliases", async () => {
    const api = mockApi(
      routes({
        "POST /api/v1/orgs/o1/model-aliases": errorResponse(409, "conflict", "alias already exists in this scope"),
        "DELETE /api/v1/orgs/o1/model-aliases/a1": { status: 204 },
      }),
    );
    render("/org/models");
    expect(await screen.findByRole("list", { name: "Allowed models" })).toHaveTextContent("gpt-4o");
    expect(screen.queryByRole("button", { name: "Save model access" })).toBeNull();
    const user = userEvent.setup({ delay: null });
    const form = screen.getByRole("form", { name: "Add an alias" });
    await user.type(within(form).getByLabelText("Alias"), "smart");
    await user.selectOptions(await within(form).findByLabelText("Model"), "mini");
    await user.click(within(form).getByRole("button", { name: "Add alias" }));
    expect(await screen.findByText("alias already exists in this scope")).toBeInTheDocument();
    expect(api.calls("POST", "/api/v1/orgs/o1/model-aliases")[0]!.body).toEqual({ alias: "smart", model_name: "mini" });
    await user.click(screen.getByRole("button", { name: "Delete alias smart" }));
    const dialog = await screen.findByRole("alertdialog", { name: "Delete alias smart?" });
    await user.click(within(dialog).getByRole("button", { name: "Delete" }));
    await waitFor(() => expect(api.calls("DELETE", "/api/v1/orgs/o1/model-aliases/a1")).toHaveLength(1));
  });

  it("lets a system admin replace the model allowlist", async () => {
    const api = mockApi(routes({ "PUT /api/v1/orgs/o1/model-access": { models: ["gpt-4o", "embed"] } }));
    render("/orgs/o1/models", ME_ADMIN);
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("checkbox", { name: "embed" }));
    await user.click(screen.getByRole("button", { name: "Save model access" }));
    await waitFor(() => expect(api.calls("PUT", "/api/v1/orgs/o1/model-access")[0]?.body).toEqual({ models: ["gpt-4o", "embed"] }));
  });

  it("grants global MCP servers", async () => {
    const api = mockApi(routes({ "PUT /api/v1/orgs/o1/mcp-access": { servers: ["s2"] } }));
    render("/org/mcp-access");
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("checkbox", { name: /Tickets/ }));
    await user.click(screen.getByRole("button", { name: "Save MCP access" }));
    await waitFor(() => expect(api.calls("PUT", "/api/v1/orgs/o1/mcp-access")[0]?.body).toEqual({ servers: ["s2"] }));
  });

  it("refuses /org to a member with a clear page", async () => {
    mockApi({ "GET /api/v1/me": { ...ME_ORG_ADMIN, role: "member" }, "GET /api/v1/*": { data: [], has_more: false } });
    renderApp({ route: "/org/settings" });
    expect(await screen.findByRole("heading", { name: "No access" })).toBeInTheDocument();
  });
});
