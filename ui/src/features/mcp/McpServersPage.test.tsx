import { describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import McpServersPage from "../../pages/McpServersPage";
import { ME_MEMBER, ME_ORG_ADMIN, errorResponse, mockApi, renderApp, renderPage } from "../../test/utils";
import { expectNoSeriousA11yViolations } from "../../test/axe";
import type { McpHealth, McpServerOut, McpTool } from "./types";

function server(id: string, name: string, extra: Partial<McpServerOut> = {}): McpServerOut {
  return {
    id,
    name,
    alias: name.toLowerCase(),
    url: `https://${name.toLowerCase()}.example.com/mcp`,
    auth_type: "none",
    auth_header: "",
    has_auth_token: false,
    oauth_token_url: "",
    oauth_client_id: "",
    has_oauth_client_secret: false,
    oauth_scopes: "",
    scope: "org",
    org_id: "o1",
    team_id: null,
    is_active: true,
    code_mode_enabled: true,
    source: "api",
    created_by: "u_admin",
    created_at: "2026-12-01T10:00:00Z",
    updated_at: "2026-12-01T10:00:00Z",
    ...extra,
  };
}

const GLOBAL = server("s1", "Github", { scope: "global", org_id: null, auth_type: "bearer", has_auth_token: true });
const ORG = server("s2", "Jira", { auth_type: "header", auth_header: "X-Api-Key", has_auth_token: true });
const TEAM = server("s3", "Ci", { scope: "team", team_id: "t1", is_active: false, code_mode_enabled: false });
const YAML = server("s4", "Docs", { source: "yaml" });

const health = (s: McpServerOut, status: string, extra: Partial<McpHealth> = {}): McpHealth => ({
  server_id: s.id,
  name: s.name,
  alias: s.alias,
  status,
  latency_ms: null,
  tool_count: null,
  last_error: null,
  checked_at: null,
  ...extra,
});

const TOOLS: McpTool[] = [
  { name: "echo", description: "Echo the text back.", blocked: false },
  { name: "delete_repo", description: "Delete a repository.", blocked: true },
];

function routes(extra: Record<string, unknown> = {}) {
  return {
    "GET /api/v1/orgs/o1/mcp-servers": { data: [GLOBAL, ORG, YAML], has_more: false },
    "GET /api/v1/orgs/o1/teams": { data: [{ id: "t1", org_id: "o1", name: "Platform", slug: "platform" }], has_more: false },
    "GET /api/v1/orgs/o1/teams/t1/mcp-servers": { data: [GLOBAL, ORG, TEAM], has_more: false },
    "GET /api/v1/mcp-servers/health": [
      health(GLOBAL, "healthy", { latency_ms: 42, tool_count: 12 }),
      health(ORG, "unhealthy", { last_error: "HTTP 401", tool_count: null }),
      health(YAML, "unknown"),
    ],
    "GET /api/v1/mcp-servers/s1": GLOBAL,
    "GET /api/v1/mcp-servers/s2": ORG,
    "GET /api/v1/mcp-servers/s4": YAML,
    "GET /api/v1/mcp-servers/s1/tools": TOOLS,
    "GET /api/v1/mcp-servers/s2/tools": [],
    "GET /api/v1/mcp-servers/s4/tools": TOOLS.slice(0, 1),
    "GET /api/v1/mcp-servers/s1/blocklist": [
      { tool_name: "delete_repo", reason: "writes to production", created_by: "u_admin", created_at: "2026-12-01T10:00:00Z" },
      { tool_name: "future_tool", reason: "", created_by: "u_admin", created_at: "2026-12-01T10:00:00Z" },
    ],
    "GET /api/v1/mcp-servers/s2/blocklist": [],
    "GET /api/v1/mcp-servers/s4/blocklist": [],
    ...extra,
  };
}

const rowOf = async (name: string) => {
  const table = await screen.findByRole("table", { name: "MCP servers" });
  return within(table).getByRole("link", { name }).closest("tr") as HTMLElement;
};

describe("MCP servers page", () => {
  it("lists global, organization and team servers with health, tool count and Code Mode", async () => {
    const api = mockApi(routes());
    renderPage(<McpServersPage />, { route: "/mcp-servers", path: "/mcp-servers/*" });
    const github = await rowOf("Github");
    expect(github).toHaveTextContent(/Global\s*Healthy\s*42 ms\s*12\s*On\s*Active\s*API/);
    expect(await rowOf("Jira")).toHaveTextContent(/Organization\s*Unhealthy\s*HTTP 401/);
    const ci = await rowOf("Ci");
    expect(ci).toHaveTextContent(/Team: Platform\s*Not probed while inactive/);
    expect(ci).toHaveTextContent(/Off\s*Inactive/);
    expect(await rowOf("Docs")).toHaveTextContent("voidllm.yaml");
    expect(api.calls("GET", "/api/v1/orgs/o1/teams/t1/mcp-servers")).toHaveLength(1);
    expect(screen.getByRole("link", { name: "MCP usage" })).toHaveAttribute("href", "/usage/mcp");
    await expectNoSeriousA11yViolations();
  });

  it("registers a server with bearer auth, warning that the credentials are shared", async () => {
    document.cookie = "voidllm_csrf=c1; path=/";
    const api = mockApi(
      routes({ "POST /api/v1/orgs/o1/mcp-servers": { status: 201, body: server("s9", "Tools") } }),
    );
    renderPage(<McpServersPage />, { route: "/mcp-servers", path: "/mcp-servers/*", me: ME_ORG_ADMIN });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Add MCP server" }));
    const dialog = await screen.findByRole("dialog", { name: "Add MCP server" });
    const scope = within(dialog).getByLabelText("Scope");
    expect(within(scope).getAllByRole("option").map((o) => o.textContent)).toEqual(["Organization", "Team"]);
    expect(within(dialog).queryByRole("note")).toBeNull();
    await user.type(within(dialog).getByLabelText(/^Name/), "Tools");
    await user.type(within(dialog).getByLabelText(/^Alias/), "tools");
    await user.type(within(dialog).getByLabelText(/^URL/), "https://tools.example.com/mcp");
    await user.selectOptions(within(dialog).getByLabelText("Authentication"), "bearer");
    expect(within(dialog).getByRole("note")).toHaveTextContent(/Shared credentials/);
    await user.click(within(dialog).getByRole("button", { name: "Add server" }));
    expect(within(dialog).getByLabelText(/^Bearer token/)).toHaveAccessibleDescription(/Enter the bearer token/);
    expect(api.calls("POST", "/api/v1/orgs/o1/mcp-servers")).toHaveLength(0);
    const token = within(dialog).getByLabelText(/^Bearer token/);
    expect(token).toHaveAttribute("type", "password");
    await user.type(token, "s3cret");
    await user.click(within(dialog).getByRole("button", { name: "Add server" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    const post = api.calls("POST", "/api/v1/orgs/o1/mcp-servers")[0]!;
    expect(post.headers.get("X-CSRF-Token")).toBe("c1");
    expect(post.body).toEqual({
      name: "Tools",
      alias: "tools",
      url: "https://tools.example.com/mcp",
      auth_type: "bearer",
      auth_header: "",
      auth_token: "s3cret",
      oauth_token_url: "",
      oauth_client_id: "",
      oauth_scopes: "",
    });
  }, 30_000);

  it("registers a team server with OAuth client credentials and one with a custom header", async () => {
    const api = mockApi(
      routes({ "POST /api/v1/orgs/o1/teams/t1/mcp-servers": { status: 201, body: server("s9", "Crm") } }),
    );
    renderPage(<McpServersPage />, { route: "/mcp-servers", path: "/mcp-servers/*" });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Add MCP server" }));
    let dialog = await screen.findByRole("dialog", { name: "Add MCP server" });
    await user.selectOptions(within(dialog).getByLabelText("Scope"), "team");
    await user.selectOptions(within(dialog).getByLabelText(/^Team/), "t1");
    await user.type(within(dialog).getByLabelText(/^Name/), "Crm");
    await user.type(within(dialog).getByLabelText(/^Alias/), "crm");
    await user.type(within(dialog).getByLabelText(/^URL/), "https://crm.example.com/mcp");
    await user.selectOptions(within(dialog).getByLabelText("Authentication"), "oauth");
    await user.type(within(dialog).getByLabelText(/^Client ID/), "gateway");
    await user.type(within(dialog).getByLabelText(/^Client secret/), "cs-1");
    await user.type(within(dialog).getByLabelText("Token URL"), "https://idp.example.com/token");
    await user.type(within(dialog).getByLabelText("Scopes"), "crm.read crm.write");
    await user.click(within(dialog).getByRole("button", { name: "Add server" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(api.calls("POST", "/api/v1/orgs/o1/teams/t1/mcp-servers")[0]!.body).toMatchObject({
      auth_type: "oauth",
      oauth_client_id: "gateway",
      oauth_client_secret: "cs-1",
      oauth_token_url: "https://idp.example.com/token",
      oauth_scopes: "crm.read crm.write",
    });

    await user.click(screen.getByRole("button", { name: "Add MCP server" }));
    dialog = await screen.findByRole("dialog", { name: "Add MCP server" });
    await user.selectOptions(within(dialog).getByLabelText("Scope"), "global");
    await user.type(within(dialog).getByLabelText(/^Name/), "Wiki");
    await user.type(within(dialog).getByLabelText(/^Alias/), "wiki");
    await user.type(within(dialog).getByLabelText(/^URL/), "https://wiki.example.com/mcp");
    await user.selectOptions(within(dialog).getByLabelText("Authentication"), "header");
    await user.type(within(dialog).getByLabelText(/^Header name/), "X-Api-Key");
    await user.type(within(dialog).getByLabelText(/^Header value/), "k-1");
    api.set("POST /api/v1/mcp-servers", errorResponse(400, "private_url_not_allowed", "url points to a private address"));
    await user.click(within(dialog).getByRole("button", { name: "Add server" }));
    expect(within(dialog).getByLabelText(/^URL/)).toHaveAccessibleDescription(/url points to a private address/);
    expect(api.calls("POST", "/api/v1/mcp-servers")[0]!.body).toMatchObject({
      auth_type: "header",
      auth_header: "X-Api-Key",
      auth_token: "k-1",
    });
  }, 40_000);

  it("edits a server without ever showing its stored secret, sending only what changed", async () => {
    const api = mockApi(routes({ "PATCH /api/v1/mcp-servers/s2": (req: { body: object }) => ({ ...ORG, ...req.body }) }));
    renderPage(<McpServersPage />, { route: "/mcp-servers/s2", path: "/mcp-servers/*" });
    const user = userEvent.setup({ delay: null });
    expect(await screen.findByRole("heading", { level: 1, name: "Jira" })).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Edit" }));
    const dialog = await screen.findByRole("dialog", { name: "Edit Jira" });
    const value = within(dialog).getByLabelText(/^Header value/);
    expect(value).toHaveValue("");
    expect(value).toHaveAccessibleDescription(/never shown\. Leave empty to keep it/);
    expect(within(dialog).getByLabelText(/^Header name/)).toHaveValue("X-Api-Key");
    await user.clear(within(dialog).getByLabelText(/^Name/));
    await user.type(within(dialog).getByLabelText(/^Name/), "Jira Cloud");
    await user.click(within(dialog).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(api.calls("PATCH", "/api/v1/mcp-servers/s2")[0]!.body).toEqual({ name: "Jira Cloud" });
  }, 30_000);

  it("tests the connection and shows a legacy SSE server as such; toggles Code Mode", async () => {
    const api = mockApi(
      routes({
        "POST /api/v1/mcp-servers/s2/test": {
          success: false,
          tools: null,
          error: "the server only supports the deprecated HTTP+SSE transport; Streamable HTTP is required",
          legacy_sse: true,
        },
        "PATCH /api/v1/mcp-servers/s2": { ...ORG, code_mode_enabled: false },
      }),
    );
    renderPage(<McpServersPage />, { route: "/mcp-servers/s2", path: "/mcp-servers/*", me: ME_ORG_ADMIN });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Test connection" }));
    const status = await screen.findByText(/Connection failed/);
    expect(status.parentElement).toHaveTextContent(/Legacy SSE server\s*Connection failed: the server only supports the deprecated HTTP\+SSE/);
    const toggle = screen.getByRole("switch", { name: "Available in Code Mode" });
    expect(toggle).toBeChecked();
    await user.click(toggle);
    await waitFor(() => expect(api.calls("PATCH", "/api/v1/mcp-servers/s2")).toHaveLength(1));
    expect(api.calls("PATCH", "/api/v1/mcp-servers/s2")[0]!.body).toEqual({ code_mode_enabled: false });
    expect(screen.getByRole("link", { name: "MCP usage of this server" })).toHaveAttribute(
      "href",
      "/usage/mcp?group=server&q=jira",
    );
  });

  it("blocks a tool with a reason, unblocks one, and waits out the refresh cooldown", async () => {
    const api = mockApi(
      routes({
        "POST /api/v1/mcp-servers/s1/blocklist": { status: 201, body: {} },
        "DELETE /api/v1/mcp-servers/s1/blocklist": { status: 204 },
        "POST /api/v1/mcp-servers/s1/refresh-tools": errorResponse(
          429,
          "refresh_too_soon",
          "the tool list was refreshed recently; retry in 42 seconds",
          {},
          { "Retry-After": "42" },
        ),
      }),
    );
    renderPage(<McpServersPage />, { route: "/mcp-servers/s1", path: "/mcp-servers/*" });
    const user = userEvent.setup({ delay: null });
    const table = await screen.findByRole("table", { name: "Tools of Github" });
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows.map((r) => (r as HTMLTableRowElement).cells[0]!.textContent)).toEqual(["echo", "delete_repo", "future_tool"]);
    expect(rows[0]).toHaveTextContent("Allowed");
    expect(rows[1]).toHaveTextContent(/Blocked\s*writes to production/);
    expect(rows[2]).toHaveTextContent(/Not in the server's current tool list\.\s*Blocked/);

    await user.click(within(table).getByRole("button", { name: "Block echo" }));
    const dialog = await screen.findByRole("dialog", { name: "Block echo?" });
    await user.type(within(dialog).getByLabelText("Reason"), "leaks data");
    await user.click(within(dialog).getByRole("button", { name: "Block" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(api.calls("POST", "/api/v1/mcp-servers/s1/blocklist")[0]!.body).toEqual({ tool_name: "echo", reason: "leaks data" });

    await user.click(within(table).getByRole("button", { name: "Unblock delete_repo" }));
    await waitFor(() => expect(api.calls("DELETE", "/api/v1/mcp-servers/s1/blocklist")).toHaveLength(1));
    expect(api.calls("DELETE", "/api/v1/mcp-servers/s1/blocklist")[0]!.url.searchParams.get("tool_name")).toBe("delete_repo");

    const refresh = screen.getByRole("button", { name: "Refresh tools" });
    await user.click(refresh);
    expect(await screen.findByText(/can be refreshed once a minute: try again in 42 seconds/)).toBeInTheDocument();
    expect(refresh).toBeDisabled();
    expect(screen.queryByRole("alert")).toBeNull();
  }, 30_000);

  it("copies a ready IDE configuration with the server's URL, a key placeholder and the Code Mode endpoint", async () => {
    mockApi(routes());
    const writeText = vi.fn(async (_text: string) => undefined);
    renderPage(<McpServersPage />, { route: "/mcp-servers/s1", path: "/mcp-servers/*" });
    const user = userEvent.setup({ delay: null });
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    await user.click(await screen.findByRole("button", { name: "Copy IDE config" }));
    await waitFor(() => expect(writeText).toHaveBeenCalledTimes(1));
    const origin = new URL(".", document.baseURI).href;
    expect(JSON.parse(writeText.mock.calls[0]![0])).toEqual({
      mcpServers: {
        github: {
          type: "http",
          url: `${origin}api/v1/mcp/github`,
          headers: { Authorization: "Bearer ${VOIDLLM_API_KEY}" },
        },
        "voidllm-code-mode": {
          type: "http",
          url: `${origin}api/v1/mcp`,
          headers: { Authorization: "Bearer ${VOIDLLM_API_KEY}" },
        },
      },
    });
    await user.click(screen.getByRole("checkbox", { name: /Include the Code Mode endpoint/ }));
    expect(screen.getByLabelText("IDE configuration")).not.toHaveTextContent("voidllm-code-mode");
  });

  it("shows a member the servers read-only, and a voidllm.yaml server's reason", async () => {
    const api = mockApi(routes());
    renderPage(<McpServersPage />, { route: "/mcp-servers", path: "/mcp-servers/*", me: ME_MEMBER });
    await rowOf("Github");
    expect(screen.queryByRole("button", { name: "Add MCP server" })).toBeNull();
    expect(screen.queryByRole("link", { name: "MCP usage" })).toBeNull();
    const user = userEvent.setup({ delay: null });
    await user.click(screen.getByRole("link", { name: "Github" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Github" })).toBeInTheDocument();
    await screen.findByRole("table", { name: "Tools of Github" });
    expect(screen.queryByRole("button", { name: /Test connection|Edit|Delete|Refresh tools|Block/ })).toBeNull();
    expect(screen.getByRole("switch", { name: "Available in Code Mode" })).toBeDisabled();
    expect(screen.getByRole("button", { name: "Copy IDE config" })).toBeInTheDocument();
    expect(api.requests.filter((r) => r.method !== "GET")).toHaveLength(0);
  });

  it("lets a member who administers a team register and manage that team's servers only", async () => {
    const teamAdmin = { ...ME_MEMBER, team_admin_of: ["t1"] };
    const api = mockApi(
      routes({
        "GET /api/v1/orgs/o1/teams": {
          data: [
            { id: "t1", org_id: "o1", name: "Platform", slug: "platform" },
            { id: "t2", org_id: "o1", name: "Data", slug: "data" },
          ],
          has_more: false,
        },
        "GET /api/v1/orgs/o1/teams/t2/mcp-servers": { data: [GLOBAL, ORG], has_more: false },
        "GET /api/v1/mcp-servers/s3": TEAM,
        "GET /api/v1/mcp-servers/s3/tools": TOOLS.slice(0, 1),
        "GET /api/v1/mcp-servers/s3/blocklist": [],
      }),
    );
    const { router } = renderPage(<McpServersPage />, { route: "/mcp-servers", path: "/mcp-servers/*", me: teamAdmin });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Add MCP server" }));
    const dialog = await screen.findByRole("dialog", { name: "Add MCP server" });
    expect(within(within(dialog).getByLabelText("Scope")).getAllByRole("option").map((o) => o.textContent)).toEqual(["Team"]);
    const team = within(dialog).getByLabelText(/^Team/);
    expect(within(team).getAllByRole("option").map((o) => o.textContent)).toEqual(["Choose a team", "Platform"]);
    await user.click(within(dialog).getByRole("button", { name: "Cancel" }));
    await router.navigate("/mcp-servers/s3");
    expect(await screen.findByRole("button", { name: "Edit" })).toBeInTheDocument();
    expect(await screen.findByRole("button", { name: "Block echo" })).toBeInTheDocument();
    await router.navigate("/mcp-servers/s2");
    await screen.findByText("No tools known yet");
    expect(screen.queryByRole("button", { name: /Edit|Test connection|Block/ })).toBeNull();
    expect(api.requests.filter((r) => r.method !== "GET")).toHaveLength(0);
  });

  it("deletes a server after a confirmation, and keeps a voidllm.yaml server read-only", async () => {
    const api = mockApi(routes({ "DELETE /api/v1/mcp-servers/s2": { status: 204 } }));
    const { router } = renderPage(<McpServersPage />, { route: "/mcp-servers/s4", path: "/mcp-servers/*" });
    expect(await screen.findByRole("note")).toHaveTextContent("Defined in voidllm.yaml; change it there.");
    expect(screen.queryByRole("button", { name: /Edit|Delete|Deactivate/ })).toBeNull();
    expect(screen.getByRole("button", { name: "Test connection" })).toBeInTheDocument();
    const user = userEvent.setup({ delay: null });
    await router.navigate("/mcp-servers/s2");
    await user.click(await screen.findByRole("button", { name: "Delete" }));
    const confirm = await screen.findByRole("alertdialog", { name: "Delete Jira?" });
    await user.click(within(confirm).getByRole("button", { name: "Delete" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/mcp-servers"));
    expect(api.calls("DELETE", "/api/v1/mcp-servers/s2")).toHaveLength(1);
  });

  it("opens at /mcp-servers in the shell from the navigation", async () => {
    mockApi({ "GET /api/v1/me": ME_MEMBER, ...routes() });
    renderApp({ route: "/mcp-servers/s1" });
    expect(await screen.findByRole("heading", { level: 1, name: "Github" })).toBeInTheDocument();
    const user = userEvent.setup({ delay: null });
    await user.click(screen.getByRole("link", { name: "MCP Servers" }));
    expect(await screen.findByRole("heading", { level: 1, name: "MCP Servers" })).toBeInTheDocument();
    await screen.findByRole("table", { name: "MCP servers" });
    await expectNoSeriousA11yViolations();
  });
});
