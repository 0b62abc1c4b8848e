import { describe, expect, it, vi } from "vitest";
import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import UsagePage from "../../pages/UsagePage";
import { ME_ADMIN, ME_MEMBER, ME_ORG_ADMIN, errorResponse, mockApi, renderPage, type MockRequest } from "../../test/utils";

vi.setConfig({ testTimeout: 30_000 });

const HOUR = 3_600_000;

/** One totals row, as the API answers without `group_by`. */
const llmTotals = (requests: number, errors: number) => (req: MockRequest) => ({
  org_id: null,
  from: req.url.searchParams.get("from"),
  to: req.url.searchParams.get("to"),
  group_by: null,
  data: [
    {
      group_key: null,
      group_label: null,
      total_requests: requests,
      prompt_tokens: 1200 * requests,
      completion_tokens: 300 * requests,
      total_tokens: 1500 * requests,
      cost_estimate: 0.125 * requests,
      avg_duration_ms: 240,
      error_count: errors,
    },
  ],
});

const mcpTotals = (calls: number) => (req: MockRequest) => ({
  org_id: null,
  from: req.url.searchParams.get("from"),
  to: req.url.searchParams.get("to"),
  group_by: null,
  data: [
    {
      group_key: null,
      group_label: null,
      total_calls: calls,
      success_count: calls - 3,
      error_count: 2,
      timeout_count: 1,
      avg_duration_ms: 1500,
      code_mode_calls: 4,
    },
  ],
});

const section = (name: string) => screen.getByRole("heading", { level: 2, name }).closest("section")!;
const stat = (within_: HTMLElement, label: string) => within(within_).getByText(label, { selector: "dt" }).nextElementSibling;

function render(route: string, me = ME_ADMIN) {
  return renderPage(<UsagePage />, { route, path: "/usage/*", me });
}

describe("usage overview", () => {
  it("shows a system admin the last 24 hours of LLM requests and MCP tool calls of every organization", async () => {
    const api = mockApi({ "GET /api/v1/usage": llmTotals(40, 2), "GET /api/v1/mcp-usage": mcpTotals(12) });
    const { router } = render("/usage");
    expect(screen.getByRole("heading", { level: 1, name: "Usage" })).toBeInTheDocument();
    expect(screen.getByRole("tab", { name: "Overview", selected: true })).toBeInTheDocument();

    await screen.findByText("Requests (24h)", { selector: "dt" });
    const llm = section("LLM requests");
    expect(llm).toHaveTextContent("All organizations, last 24 hours");
    expect(stat(llm, "Requests (24h)")).toHaveTextContent("40");
    expect(stat(llm, "Tokens (24h)")).toHaveTextContent("60K");
    expect(stat(llm, "Estimated cost (24h)")).toHaveTextContent("$5.00");
    expect(stat(llm, "Success rate")).toHaveTextContent("95%");
    expect(stat(llm, "Average duration")).toHaveTextContent("240 ms");

    const mcp = section("MCP tool calls");
    await within(mcp).findByText("Tool calls (24h)", { selector: "dt" });
    expect(stat(mcp, "Tool calls (24h)")).toHaveTextContent("12");
    expect(stat(mcp, "Success rate")).toHaveTextContent("75%");
    expect(stat(mcp, "Errors")).toHaveTextContent("3");
    expect(stat(mcp, "Average duration")).toHaveTextContent("1.5 s");

    // One totals read each (no group_by) over the tabs' "Last 24 hours": 24 whole hours up to the next one.
    for (const path of ["/api/v1/usage", "/api/v1/mcp-usage"]) {
      const calls = api.calls("GET", path);
      expect(calls).toHaveLength(1);
      const query = calls[0]!.url.searchParams;
      expect(query.get("group_by")).toBeNull();
      expect(Date.parse(query.get("to")!) - Date.parse(query.get("from")!)).toBe(24 * HOUR);
      expect(Date.parse(query.get("to")!) % HOUR).toBe(0);
      expect(Date.parse(query.get("to")!)).toBeGreaterThan(Date.now());
    }

    expect(within(llm).getByRole("link", { name: "LLM usage" })).toHaveAttribute("href", "/usage/llm?range=24h");
    expect(within(mcp).getByRole("link", { name: "MCP usage" })).toHaveAttribute("href", "/usage/mcp?range=24h");
    await userEvent.setup().click(within(mcp).getByRole("link", { name: "MCP usage" }));
    expect(router.state.location.pathname).toBe("/usage/mcp");
    expect(router.state.location.search).toBe("?range=24h");
    expect(screen.getByRole("tab", { name: "MCP", selected: true })).toBeInTheDocument();
  });

  it("reads an org admin's organization routes", async () => {
    const api = mockApi({ "GET /api/v1/orgs/o1/usage": llmTotals(3, 0), "GET /api/v1/orgs/o1/mcp-usage": mcpTotals(5) });
    render("/usage", ME_ORG_ADMIN);
    await screen.findByText("Tool calls (24h)", { selector: "dt" });
    expect(section("LLM requests")).toHaveTextContent("Your organization, last 24 hours");
    expect(stat(section("LLM requests"), "Success rate")).toHaveTextContent("100%");
    expect(api.requests.map((r) => r.path).sort()).toEqual(["/api/v1/orgs/o1/mcp-usage", "/api/v1/orgs/o1/usage"]);
  });

  it("shows a member their own requests, no MCP figures and no MCP tab", async () => {
    const api = mockApi({ "GET /api/v1/usage/me": llmTotals(7, 0) });
    render("/usage", ME_MEMBER);
    await screen.findByText("Requests (24h)", { selector: "dt" });
    expect(section("LLM requests")).toHaveTextContent("Your requests, last 24 hours");
    expect(screen.queryByRole("heading", { name: "MCP tool calls" })).toBeNull();
    expect(screen.getAllByRole("tab").map((t) => t.textContent)).toEqual(["Overview", "LLM"]);
    expect(api.requests.every((r) => r.path === "/api/v1/usage/me")).toBe(true);
  });

  it("says when nothing happened in the last 24 hours", async () => {
    mockApi({ "GET /api/v1/usage": llmTotals(0, 0), "GET /api/v1/mcp-usage": mcpTotals(0) });
    render("/usage");
    expect(await screen.findByText("No requests in the last 24 hours")).toBeInTheDocument();
    expect(await screen.findByText("No tool calls in the last 24 hours")).toBeInTheDocument();
    expect(screen.queryByText("Success rate", { selector: "dt" })).toBeNull();
    expect(within(section("LLM requests")).getByRole("link", { name: "Open the playground" })).toHaveAttribute("href", "/playground");
  });

  it("shows a failed read as an error with a retry, the other section unaffected", async () => {
    let fail = true;
    mockApi({
      "GET /api/v1/usage": (req: MockRequest) => (fail ? errorResponse(500, "internal_error", "the store is down") : llmTotals(9, 0)(req)),
      "GET /api/v1/mcp-usage": mcpTotals(12),
    });
    render("/usage");
    expect(await screen.findByText("Could not load LLM usage")).toBeInTheDocument();
    expect(await within(section("MCP tool calls")).findByText("Tool calls (24h)", { selector: "dt" })).toBeInTheDocument();
    fail = false;
    await userEvent.setup().click(within(section("LLM requests")).getByRole("button", { name: /retry|try again/i }));
    expect(stat(section("LLM requests"), "Requests (24h)")).toHaveTextContent("9");
  });

  it("keeps links from before the overview working: /usage with filters opens the LLM tab", async () => {
    mockApi({ "GET /api/v1/usage": llmTotals(1, 0), "GET /api/v1/mcp-usage": mcpTotals(1) });
    const { router } = render("/usage?range=7d&group=team&q=eng");
    await screen.findByRole("tab", { name: "LLM", selected: true });
    expect(router.state.location.pathname).toBe("/usage/llm");
    expect(router.state.location.search).toBe("?range=7d&group=team&q=eng");
    expect(screen.getByLabelText("Group by")).toHaveValue("team");
  });

  it("moves between the tabs: Overview drops the LLM tab's filters", async () => {
    mockApi({ "GET /api/v1/usage": llmTotals(1, 0), "GET /api/v1/mcp-usage": mcpTotals(1) });
    const { router } = render("/usage/llm?range=30d&group=key");
    const user = userEvent.setup();
    await user.click(await screen.findByRole("tab", { name: "Overview" }));
    expect(router.state.location.pathname).toBe("/usage");
    expect(router.state.location.search).toBe("");
    await screen.findByRole("heading", { level: 2, name: "LLM requests" });
  });
});
