import { describe, expect, it } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import TeamsPage from "../../pages/TeamsPage";
import { ME_MEMBER, ME_ORG_ADMIN, errorResponse, mockApi, renderApp, renderPage } from "../../test/utils";
import type { Member, Team } from "./types";

function team(id: string, name: string, extra: Partial<Team> = {}): Team {
  return {
    id,
    org_id: "o1",
    name,
    slug: name.toLowerCase(),
    daily_token_limit: 0,
    monthly_token_limit: 1000,
    requests_per_minute: 2,
    requests_per_day: 0,
    member_count: 1,
    key_count: 0,
    created_at: "2026-12-01T10:00:00Z",
    updated_at: "2026-12-01T10:00:00Z",
    ...extra,
  };
}

function member(id: string, name: string, role = "member"): Member {
  return {
    id: `m_${id}`,
    org_id: "o1",
    team_id: "t1",
    user_id: id,
    role,
    email: `${name.toLowerCase()}@example.com`,
    display_name: name,
    created_at: "2026-12-01T10:00:00Z",
    updated_at: "2026-12-01T10:00:00Z",
  };
}

const RED = team("t1", "Red");
const TEAM_ADMIN = { ...ME_MEMBER, team_admin_of: ["t1"] };
const page = <T,>(data: T[]) => ({ data, has_more: false });

function routes() {
  return {
    "GET /api/v1/orgs/o1/teams": page([RED, team("t2", "Blue")]),
    "GET /api/v1/orgs/o1/teams/t1": RED,
    "GET /api/v1/orgs/o1/teams/t1/members": page([member("u1", "Ann", "team_admin"), member("u2", "Bob")]),
    "GET /api/v1/orgs/o1/members": page([
      { ...member("u1", "Ann"), team_id: null },
      { ...member("u3", "Cid"), team_id: null },
    ]),
    "GET /api/v1/orgs/o1/teams/t1/model-access": { models: ["gpt-4o"] },
    "GET /api/v1/orgs/o1/teams/t1/model-aliases": page([
      { id: "a1", alias: "fast", model_name: "gpt-4o", scope_type: "team", org_id: "o1", team_id: "t1", created_by: null, created_at: "" },
    ]),
    "GET /api/v1/me/available-models": { models: [{ name: "gpt-4o", type: "chat" }, { name: "mini", type: "chat" }] },
    "GET /api/v1/orgs/o1/teams/t1/mcp-access": { servers: [] },
    "GET /api/v1/orgs/o1/teams/t1/mcp-servers": page([
      { id: "s1", name: "Docs", alias: "docs", scope: "global", source: "api", is_active: true },
      { id: "s2", name: "Team tools", alias: "tt", scope: "team", source: "api", is_active: true },
      { id: "s3", name: "VoidLLM", alias: "voidllm", scope: "global", source: "builtin", is_active: true },
    ]),
    "GET /api/v1/orgs/o1/usage": (req: { url: URL }) => ({
      org_id: "o1",
      from: "",
      to: "",
      group_by: "team",
      data: [
        {
          group_key: "t1",
          group_label: "Red",
          total_requests: 3,
          total_tokens: req.url.searchParams.get("from")?.slice(8, 10) === "01" ? 900 : 400,
          prompt_tokens: 0,
          completion_tokens: 0,
          cost_estimate: 0,
          avg_duration_ms: 0,
          error_count: 0,
        },
      ],
    }),
  };
}

describe("Teams page", () => {
  it("lists the teams with their limits and creates one with limits, then opens it", async () => {
    document.cookie = "voidllm_csrf=c1; path=/";
    const api = mockApi({
      ...routes(),
      "POST /api/v1/orgs/o1/teams": { status: 201, body: team("t9", "Green", { requests_per_minute: 2 }) },
      "GET /api/v1/orgs/o1/teams/t9": team("t9", "Green"),
      "GET /api/v1/orgs/o1/teams/t9/members": page([]),
    });
    const { router } = renderPage(<TeamsPage />, { route: "/teams", path: "/teams/*", me: ME_ORG_ADMIN });
    const table = await screen.findByRole("table", { name: "Teams" });
    expect(within(table).getAllByRole("row")).toHaveLength(3);
    expect(within(table).getByRole("link", { name: "Red" })).toHaveAttribute("href", "/teams/t1/members");

    const user = userEvent.setup({ delay: null });
    await user.click(screen.getByRole("button", { name: "Create team" }));
    const dialog = await screen.findByRole("dialog", { name: "Create team" });
    await user.type(within(dialog).getByLabelText(/^Name/), "Green");
    const rpm = within(dialog).getByLabelText("Requests per minute");
    await user.clear(rpm);
    await user.type(rpm, "2");
    await user.click(within(dialog).getByRole("button", { name: "Create" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/teams/t9/members"));
    expect(api.calls("POST", "/api/v1/orgs/o1/teams")[0]!.body).toEqual({
      name: "Green",
      requests_per_minute: 2,
      requests_per_day: 0,
      daily_token_limit: 0,
      monthly_token_limit: 0,
    });
    expect(api.calls("POST", "/api/v1/orgs/o1/teams")[0]!.headers.get("X-CSRF-Token")).toBe("c1");
  });

  it("shows the API's error message in the create dialog", async () => {
    mockApi({
      ...routes(),
      "POST /api/v1/orgs/o1/teams": errorResponse(409, "conflict", "a team with this slug already exists in this organization"),
    });
    renderPage(<TeamsPage />, { route: "/teams", path: "/teams/*", me: ME_ORG_ADMIN });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Create team" }));
    const dialog = await screen.findByRole("dialog", { name: "Create team" });
    await user.type(within(dialog).getByLabelText(/^Name/), "Red");
    await user.click(within(dialog).getByRole("button", { name: "Create" }));
    expect(await within(dialog).findByRole("alert")).toHaveTextContent("a team with this slug already exists");
  });

  it("adds an organization member, changes a role and removes a member after confirming", async () => {
    const api = mockApi({
      ...routes(),
      "POST /api/v1/orgs/o1/teams/t1/members": { status: 201, body: member("u3", "Cid") },
      "PATCH /api/v1/orgs/o1/teams/t1/members/m_u2": member("u2", "Bob", "team_admin"),
      "DELETE /api/v1/orgs/o1/teams/t1/members/m_u2": { status: 204 },
    });
    renderPage(<TeamsPage />, { route: "/teams/t1/members", path: "/teams/*", me: ME_ORG_ADMIN });
    expect(await screen.findByRole("heading", { name: "Red" })).toBeInTheDocument();
    const table = await screen.findByRole("table", { name: "Members of Red" });
    expect(within(table).getAllByRole("row")).toHaveLength(3);

    const user = userEvent.setup({ delay: null });
    await user.click(screen.getAllByRole("button", { name: "Add member" })[0]!);
    const dialog = await screen.findByRole("dialog", { name: "Add member" });
    const choice = within(dialog).getByLabelText(/Organization member/);
    await waitFor(() => expect(within(choice).getAllByRole("option")).toHaveLength(2));
    expect(within(choice).queryByRole("option", { name: /Ann/ })).toBeNull();
    await user.selectOptions(choice, "u3");
    await user.selectOptions(within(dialog).getByLabelText("Team role"), "team_admin");
    await user.click(within(dialog).getByRole("button", { name: "Add" }));
    await waitFor(() => expect(api.calls("POST", "/api/v1/orgs/o1/teams/t1/members")).toHaveLength(1));
    expect(api.calls("POST", "/api/v1/orgs/o1/teams/t1/members")[0]!.body).toEqual({ user_id: "u3", role: "team_admin" });

    await user.selectOptions(screen.getByLabelText("Team role of Bob"), "team_admin");
    await waitFor(() => expect(api.calls("PATCH", "/api/v1/orgs/o1/teams/t1/members/m_u2")).toHaveLength(1));
    expect(api.calls("PATCH", "/api/v1/orgs/o1/teams/t1/members/m_u2")[0]!.body).toEqual({ role: "team_admin" });

    await user.click(screen.getByRole("button", { name: "Remove Bob" }));
    const confirm = await screen.findByRole("alertdialog", { name: "Remove member" });
    expect(api.calls("DELETE", "/api/v1/orgs/o1/teams/t1/members/m_u2")).toHaveLength(0);
    await user.click(within(confirm).getByRole("button", { name: "Remove" }));
    await waitFor(() => expect(api.calls("DELETE", "/api/v1/orgs/o1/teams/t1/members/m_u2")).toHaveLength(1));
  });

  it("saves the team's model allowlist and adds a model alias", async () => {
    const api = mockApi({
      ...routes(),
      "PUT /api/v1/orgs/o1/teams/t1/model-access": { models: ["gpt-4o", "mini"] },
      "POST /api/v1/orgs/o1/teams/t1/model-aliases": errorResponse(409, "conflict", "alias already exists in this scope"),
    });
    renderPage(<TeamsPage />, { route: "/teams/t1/models", path: "/teams/*", me: ME_ORG_ADMIN });
    const user = userEvent.setup({ delay: null });
    const mini = await screen.findByRole("checkbox", { name: "mini" });
    expect(screen.getByRole("checkbox", { name: "gpt-4o" })).toBeChecked();
    await user.click(mini);
    await user.click(screen.getByRole("button", { name: "Save model access" }));
    await waitFor(() => expect(api.calls("PUT", "/api/v1/orgs/o1/teams/t1/model-access")).toHaveLength(1));
    expect(api.calls("PUT", "/api/v1/orgs/o1/teams/t1/model-access")[0]!.body).toEqual({ models: ["gpt-4o", "mini"] });

    expect(await screen.findByRole("table", { name: "Model aliases of Red" })).toHaveTextContent("fast");
    await user.type(screen.getByLabelText(/^Alias/), "fast");
    await user.selectOptions(screen.getByRole("combobox", { name: /^Model/ }), "gpt-4o");
    await user.click(screen.getByRole("button", { name: "Add alias" }));
    expect(await screen.findByText("alias already exists in this scope")).toBeInTheDocument();
    expect(api.calls("POST", "/api/v1/orgs/o1/teams/t1/model-aliases")[0]!.body).toEqual({ alias: "fast", model_name: "gpt-4o" });
  });

  it("grants global and organization MCP servers (built-ins and team servers are not offered)", async () => {
    const api = mockApi({ ...routes(), "PUT /api/v1/orgs/o1/teams/t1/mcp-access": { servers: ["s1"] } });
    renderPage(<TeamsPage />, { route: "/teams/t1/mcp-access", path: "/teams/*", me: TEAM_ADMIN });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("checkbox", { name: /Docs/ }));
    expect(screen.queryByRole("checkbox", { name: /Team tools/ })).toBeNull();
    expect(screen.queryByRole("checkbox", { name: /VoidLLM/ })).toBeNull();
    await user.click(screen.getByRole("button", { name: "Save MCP access" }));
    await waitFor(() => expect(api.calls("PUT", "/api/v1/orgs/o1/teams/t1/mcp-access")).toHaveLength(1));
    expect(api.calls("PUT", "/api/v1/orgs/o1/teams/t1/mcp-access")[0]!.body).toEqual({ servers: ["s1"] });
  });

  it("shows the limits with budget use as progress bars and saves changed limits only", async () => {
    const api = mockApi({ ...routes(), "PATCH /api/v1/orgs/o1/teams/t1": RED });
    renderPage(<TeamsPage />, { route: "/teams/t1/settings", path: "/teams/*", me: ME_ORG_ADMIN });
    const bar = await screen.findByRole("progressbar", { name: "Tokens this month of Red" });
    expect(bar).toHaveAttribute("aria-valuetext", expect.stringMatching(/of 1,000$/));
    expect(screen.queryByRole("progressbar", { name: "Tokens today of Red" })).toBeNull();
    expect(screen.getByText(/Requests per minute:/)).toHaveTextContent("Requests per minute: 2");

    const user = userEvent.setup({ delay: null });
    const rpd = screen.getByLabelText("Requests per day");
    await user.clear(rpd);
    await user.type(rpd, "50");
    await user.click(screen.getByRole("button", { name: "Save settings" }));
    await waitFor(() => expect(api.calls("PATCH", "/api/v1/orgs/o1/teams/t1")).toHaveLength(1));
    expect(api.calls("PATCH", "/api/v1/orgs/o1/teams/t1")[0]!.body).toEqual({ requests_per_day: 50 });
  });

  it("lets a team admin rename the team but not change its limits, and hides other teams' pages", async () => {
    const api = mockApi({ ...routes(), "PATCH /api/v1/orgs/o1/teams/t1": RED });
    renderPage(<TeamsPage />, { route: "/teams/t1/settings", path: "/teams/*", me: TEAM_ADMIN });
    expect(await screen.findByText("The team's limits are set by organization admins.")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Delete team" })).toBeNull();
    expect(screen.queryByLabelText("Requests per day")).toBeNull();
    const user = userEvent.setup({ delay: null });
    await user.clear(screen.getByLabelText(/^Name/));
    await user.type(screen.getByLabelText(/^Name/), "Crimson");
    await user.click(screen.getByRole("button", { name: "Save settings" }));
    await waitFor(() => expect(api.calls("PATCH", "/api/v1/orgs/o1/teams/t1")).toHaveLength(1));
    expect(api.calls("PATCH", "/api/v1/orgs/o1/teams/t1")[0]!.body).toEqual({ name: "Crimson" });
    expect(api.calls("GET", "/api/v1/orgs/o1/usage")).toHaveLength(0);
  });

  it("refuses a member (no link, a clear page) and a team admin on another team", async () => {
    mockApi({ ...routes(), "GET /api/v1/me": ME_MEMBER, "GET /api/v1/*": page([]) });
    renderApp({ route: "/teams" });
    expect(await screen.findByRole("heading", { name: "No access" })).toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "Teams" })).toBeNull();
  });

  it("refuses a team admin another team's page", async () => {
    mockApi(routes());
    renderPage(<TeamsPage />, { route: "/teams/t2/members", path: "/teams/*", me: TEAM_ADMIN });
    expect(await screen.findByRole("heading", { name: "No access" })).toBeInTheDocument();
  });

  it("deletes a team after confirming", async () => {
    const api = mockApi({ ...routes(), "DELETE /api/v1/orgs/o1/teams/t1": { status: 204 } });
    const { router } = renderPage(<TeamsPage />, { route: "/teams/t1/settings", path: "/teams/*", me: ME_ORG_ADMIN });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Delete team" }));
    const confirm = await screen.findByRole("alertdialog", { name: "Delete team" });
    await user.click(within(confirm).getByRole("button", { name: "Delete team" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/teams"));
    expect(api.calls("DELETE", "/api/v1/orgs/o1/teams/t1")).toHaveLength(1);
  });
});
