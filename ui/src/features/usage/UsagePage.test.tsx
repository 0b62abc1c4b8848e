import { describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import UsagePage from "../../pages/UsagePage";
import { downloadText } from "../../lib/download";
import { ME_ADMIN, ME_MEMBER, ME_ORG_ADMIN, errorResponse, mockApi, renderApp, renderPage, type MockRequest } from "../../test/utils";
import { resolveRange } from "./params";
import { bucketKeys } from "./series";

vi.mock("../../lib/download", async (importOriginal) => ({
  ...(await importOriginal<typeof import("../../lib/download")>()),
  downloadText: vi.fn(),
}));

const point = (key: string | null, label: string | null, requests: number, prompt: number, completion: number, cost: number, ms = 100, errors = 0) => ({
  group_key: key,
  group_label: label,
  total_requests: requests,
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
  cost_estimate: cost,
  avg_duration_ms: ms,
  error_count: errors,
});

const BY = {
  day: [point("2026-12-01", "2026-12-01", 10, 100, 50, 0.25, 120, 2), point("2026-12-03", "2026-12-03", 5, 40, 10, 0.05, 80)],
  model: [point("gpt-4o", "gpt-4o", 12, 120, 55, 0.3), point("default", "default", 3, 20, 5, 0)],
  key: [point("k1", "ci key", 9, 90, 40, 0.2), point(null, null, 6, 50, 20, 0.1)],
  team: [point("t1", "Platform", 8, 80, 30, 0.2), point("t2", "Engineering", 7, 60, 30, 0.1)],
  org: [point("o1", "Acme", 15, 150, 50, 0.3)],
  hour: [point("2026-12-06T04:00:00Z", "2026-12-06T04:00:00Z", 2, 10, 5, 0)],
} as Record<string, ReturnType<typeof point>[]>;

const report = (req: MockRequest) => {
  const groupBy = req.url.searchParams.get("group_by");
  return {
    org_id: null,
    from: req.url.searchParams.get("from"),
    to: req.url.searchParams.get("to"),
    group_by: groupBy,
    data: BY[groupBy ?? ""] ?? [],
  };
};

const mcpPoint = (key: string | null, calls: number, success: number, errors: number, timeouts: number) => ({
  group_key: key,
  group_label: key,
  total_calls: calls,
  success_count: success,
  error_count: errors,
  timeout_count: timeouts,
  avg_duration_ms: 250,
  code_mode_calls: 1,
});

const mcpReport = (req: MockRequest) => {
  const groupBy = req.url.searchParams.get("group_by");
  const data =
    groupBy === "day"
      ? [mcpPoint("2026-12-01", 10, 7, 2, 1)]
      : groupBy === "server"
        ? [mcpPoint("github", 8, 6, 1, 1), mcpPoint("jira", 2, 1, 1, 0)]
        : [];
  return { org_id: null, from: req.url.searchParams.get("from"), to: req.url.searchParams.get("to"), group_by: groupBy, data };
};

const CUSTOM = "range=custom&from=2026-12-01&to=2026-12-03";

const grouped = (calls: MockRequest[], groupBy: string) => calls.filter((c) => c.url.searchParams.get("group_by") === groupBy);

function render(route: string, me = ME_ADMIN) {
  return renderPage(<UsagePage />, { route, path: "/usage/*", me });
}

vi.setConfig({ testTimeout: 30_000 });

describe("usage page: LLM", () => {
  it("renders totals, charts over time and the grouped table from the reports", async () => {
    const api = mockApi({ "GET /api/v1/usage": report });
    render(`/usage/llm?${CUSTOM}`);
    expect(screen.getByRole("heading", { level: 1, name: "Usage" })).toBeInTheDocument();
    const table = await screen.findByRole("table", { name: "LLM usage by model" });
    const rows = within(table).getAllByRole("row");
    expect(rows).toHaveLength(3);
    expect(rows[1]).toHaveTextContent("gpt-4o");
    expect(rows[1]).toHaveTextContent("175"); // total tokens
    expect(within(table).getAllByRole("columnheader").map((h) => h.textContent)).toEqual([
      "Model",
      "Requests",
      "Prompt tokens",
      "Completion tokens",
      "Total tokens",
      "Estimated cost",
      "Errors",
      "Average latency",
    ]);

    for (const name of ["Requests over time", "Tokens over time", "Estimated cost over time", "Errors over time", "Average latency over time", "Top model by tokens"]) {
      const figure = screen.getByRole("figure", { name });
      expect(figure.querySelector("svg")).not.toBeNull();
    }
    // Totals from the daily series: 15 requests, 200 tokens, $0.30.
    expect(screen.getByText("Requests", { selector: "dt" }).nextElementSibling).toHaveTextContent("15");
    expect(screen.getByText("Estimated cost", { selector: "dt" }).nextElementSibling).toHaveTextContent("$0.30");
    expect(screen.getByText("Average latency", { selector: "dt" }).nextElementSibling).toHaveTextContent("107 ms");

    // Two grouped reads of the same range: the series (by day; 3 days) and the table (by model). Nothing else.
    const calls = api.calls("GET", "/api/v1/usage");
    expect(calls.map((c) => c.url.searchParams.get("group_by")).sort()).toEqual(["day", "model"]);
    for (const c of calls) {
      expect(c.url.searchParams.get("from")).toBe("2026-12-01T00:00:00.000Z");
      expect(c.url.searchParams.get("to")).toBe("2026-12-04T00:00:00.000Z");
    }
    expect(api.requests.every((r) => !r.path.includes("export"))).toBe(true);
  });

  it("changes the group-by in the URL and the query", async () => {
    const api = mockApi({ "GET /api/v1/usage": report });
    const { router } = render(`/usage/llm?${CUSTOM}`);
    const user = userEvent.setup();
    await screen.findByRole("table", { name: "LLM usage by model" });
    await user.selectOptions(screen.getByLabelText("Group by"), "key");
    const table = await screen.findByRole("table", { name: "LLM usage by api key" });
    expect(new URLSearchParams(router.state.location.search).get("group")).toBe("key");
    expect(grouped(api.calls("GET", "/api/v1/usage"), "key")).toHaveLength(1);
    const rows = within(table).getAllByRole("row");
    expect(rows[1]).toHaveTextContent("ci key");
    expect(rows[1]).toHaveTextContent("k1");
    expect(rows[2]).toHaveTextContent("(none)");
    const options = within(screen.getByLabelText("Group by")).getAllByRole("option").map((o) => o.textContent);
    expect(options).toEqual(["Model", "API key", "Team", "User", "Source", "Project", "Organization", "Day", "Hour"]);
  });

  it("changes the date range in the URL and the query", async () => {
    const api = mockApi({ "GET /api/v1/usage": report });
    const { router } = render("/usage/llm");
    const user = userEvent.setup();
    await screen.findByRole("table", { name: "LLM usage by model" });
    // Default: the last 7 days by day.
    const first = grouped(api.calls("GET", "/api/v1/usage"), "day")[0]!;
    const span = (c: MockRequest) => Date.parse(c.url.searchParams.get("to")!) - Date.parse(c.url.searchParams.get("from")!);
    expect(span(first)).toBe(7 * 24 * 3600_000);

    await user.selectOptions(screen.getByLabelText("Date range"), "24h");
    expect(new URLSearchParams(router.state.location.search).get("range")).toBe("24h");
    await waitFor(() => expect(grouped(api.calls("GET", "/api/v1/usage"), "hour")).toHaveLength(1));
    expect(span(grouped(api.calls("GET", "/api/v1/usage"), "hour")[0]!)).toBe(24 * 3600_000);

    await user.selectOptions(screen.getByLabelText("Date range"), "custom");
    const search = new URLSearchParams(router.state.location.search);
    expect(search.get("range")).toBe("custom");
    expect(search.get("from")).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    const from = screen.getByLabelText("From");
    await user.clear(from);
    await user.type(from, "2026-11-20");
    await user.clear(screen.getByLabelText("To"));
    await user.type(screen.getByLabelText("To"), "2026-11-21");
    expect(new URLSearchParams(router.state.location.search).get("from")).toBe("2026-11-20");
    await waitFor(() =>
      expect(
        api.calls("GET", "/api/v1/usage").some(
          (c) => c.url.searchParams.get("from") === "2026-11-20T00:00:00.000Z" && c.url.searchParams.get("to") === "2026-11-22T00:00:00.000Z",
        ),
      ).toBe(true),
    );
  });

  it("refuses a range the API would refuse without asking it", async () => {
    const api = mockApi({ "GET /api/v1/usage": report });
    render("/usage/llm?range=custom&from=2026-12-05&to=2026-12-01");
    expect(await screen.findByText("Choose a valid date range")).toBeInTheDocument();
    expect(screen.getByLabelText("From")).toHaveAttribute("aria-invalid", "true");
    expect(api.calls("GET", "/api/v1/usage")).toHaveLength(0);
    expect(resolveRange("custom", "2026-01-01", "2026-04-30").error).toMatch(/at most 90 days/);
    expect(resolveRange("custom", "2026-01-01", "2026-03-31").range).toBeDefined();
  });

  it("restores the filters from the URL and filters the rows", async () => {
    mockApi({ "GET /api/v1/usage": report });
    const { router } = render(`/usage/llm?${CUSTOM}&group=team&q=eng`);
    const table = await screen.findByRole("table", { name: "LLM usage by team" });
    expect(screen.getByLabelText("Group by")).toHaveValue("team");
    expect(screen.getByLabelText("Filter rows")).toHaveValue("eng");
    expect(within(table).getAllByRole("row")).toHaveLength(2);
    expect(table).toHaveTextContent("Engineering");
    const user = userEvent.setup();
    await user.clear(screen.getByLabelText("Filter rows"));
    expect(new URLSearchParams(router.state.location.search).get("q")).toBeNull();
    expect(within(screen.getByRole("table", { name: "LLM usage by team" })).getAllByRole("row")).toHaveLength(3);
  });

  it("exports what is shown as CSV", async () => {
    mockApi({ "GET /api/v1/usage": report });
    render(`/usage/llm?${CUSTOM}&group=key&q=ci`);
    await screen.findByRole("table", { name: "LLM usage by api key" });
    const user = userEvent.setup();
    await user.click(screen.getByRole("button", { name: "Export CSV" }));
    expect(downloadText).toHaveBeenCalledTimes(1);
    const [filename, csv] = vi.mocked(downloadText).mock.calls[0]!;
    expect(filename).toBe("voidllm-llm-usage-all-orgs-by-key-2026-12-01-to-2026-12-03.csv");
    expect(csv).toBe(
      "API key,API key ID,Requests,Prompt tokens,Completion tokens,Total tokens,Estimated cost,Errors,Average latency (ms)\r\n" +
        "ci key,k1,9,90,40,130,0.2,0,100\r\n",
    );
  });

  it("shows the first 200 rows of a large grouping and all of them on request", async () => {
    const many = Array.from({ length: 250 }, (_, i) => point(`k${i}`, `key ${i}`, 1, 1, 1, 0));
    mockApi({ "GET /api/v1/usage": (req: MockRequest) => ({ ...report(req), data: req.url.searchParams.get("group_by") === "key" ? many : BY.day }) });
    render(`/usage/llm?${CUSTOM}&group=key`);
    const table = await screen.findByRole("table", { name: "LLM usage by api key" });
    expect(within(table).getAllByRole("row")).toHaveLength(201);
    expect(screen.getByText(/Showing the first 200 of 250 rows/)).toBeInTheDocument();
    const user = userEvent.setup();
    await user.click(screen.getByRole("button", { name: "Show all 250 rows" }));
    expect(within(table).getAllByRole("row")).toHaveLength(251);
    await user.click(screen.getByRole("button", { name: "Export CSV" }));
    expect(vi.mocked(downloadText).mock.calls.at(-1)![1].split("\r\n")).toHaveLength(252); // header + 250 + ""
  });

  it("shows the empty and the error states", async () => {
    mockApi({ "GET /api/v1/usage": (req: MockRequest) => ({ ...report(req), data: [] }) });
    const first = render(`/usage/llm?${CUSTOM}`);
    expect(await screen.findAllByText("No requests in this range")).toHaveLength(2);
    expect(screen.getByRole("button", { name: "Export CSV" })).toBeDisabled();
    expect(screen.queryByLabelText("Filter rows")).toBeNull();
    first.unmount();
    mockApi({ "GET /api/v1/usage": errorResponse(400, "bad_request", "the range from..to must not exceed 90 days") });
    render(`/usage/llm?${CUSTOM}`);
    const alerts = await screen.findAllByRole("alert");
    expect(alerts[0]).toHaveTextContent("Could not load the usage");
    expect(alerts[0]).toHaveTextContent("the range from..to must not exceed 90 days");
  });
});

describe("usage page: tabs and roles", () => {
  it("shows the LLM tab at /usage/llm and switches to MCP keeping the range", async () => {
    const api = mockApi({ "GET /api/v1/usage": report, "GET /api/v1/mcp-usage": mcpReport });
    const { router } = render(`/usage/llm?${CUSTOM}`);
    await screen.findByRole("table", { name: "LLM usage by model" });
    expect(router.state.location.pathname).toBe("/usage/llm");
    expect(screen.getByRole("tab", { name: "LLM", selected: true })).toBeInTheDocument();
    const user = userEvent.setup();
    await user.selectOptions(screen.getByLabelText("Group by"), "team");
    await user.click(screen.getByRole("tab", { name: "MCP" }));
    expect(router.state.location.pathname).toBe("/usage/mcp");
    const search = new URLSearchParams(router.state.location.search);
    expect(search.get("from")).toBe("2026-12-01");
    expect(search.get("group")).toBeNull();
    const table = await screen.findByRole("table", { name: "MCP usage by server" });
    expect(within(table).getAllByRole("columnheader").map((h) => h.textContent)).toEqual([
      "Server",
      "Calls",
      "Succeeded",
      "Errors",
      "Timeouts",
      "Success rate",
      "Average duration",
      "Code Mode calls",
    ]);
    expect(within(table).getAllByRole("row")[1]).toHaveTextContent("75%");
    for (const name of ["Tool calls over time", "Errors over time", "Average duration over time"]) {
      expect(screen.getByRole("figure", { name })).toBeInTheDocument();
    }
    expect(screen.getByText("Success rate", { selector: "dt" }).nextElementSibling).toHaveTextContent("70%");
    expect(screen.getByText("Errors", { selector: "dt" }).nextElementSibling).toHaveTextContent("3");
    expect(grouped(api.calls("GET", "/api/v1/mcp-usage"), "server")).toHaveLength(1);
    const options = within(screen.getByLabelText("Group by")).getAllByRole("option").map((o) => o.textContent);
    expect(options).toEqual(["Server", "Tool", "Status", "API key", "Team", "User", "Organization", "Day", "Hour"]);
  });

  it("an org admin reads the organization's routes", async () => {
    const api = mockApi({ "GET /api/v1/orgs/o1/usage": report, "GET /api/v1/orgs/o1/mcp-usage": mcpReport });
    render(`/usage/llm?${CUSTOM}`, ME_ORG_ADMIN);
    await screen.findByRole("table", { name: "LLM usage by model" });
    expect(screen.queryByLabelText("Scope")).toBeNull();
    expect(within(screen.getByLabelText("Group by")).queryByRole("option", { name: "Organization" })).toBeNull();
    const user = userEvent.setup();
    await user.click(screen.getByRole("tab", { name: "MCP" }));
    await screen.findByRole("table", { name: "MCP usage by server" });
    expect(api.requests.map((r) => r.path).every((p) => p.startsWith("/api/v1/orgs/o1/"))).toBe(true);
  });

  it("a member reads only their own usage and has no MCP tab", async () => {
    const api = mockApi({ "GET /api/v1/usage/me": report });
    const { router } = render(`/usage/mcp?${CUSTOM}`, ME_MEMBER);
    await screen.findByRole("table", { name: "LLM usage by model" });
    expect(router.state.location.pathname).toBe("/usage/llm");
    expect(screen.getAllByRole("tab").map((t) => t.textContent)).toEqual(["Overview", "LLM"]);
    expect(screen.queryByLabelText("Scope")).toBeNull();
    expect(within(screen.getByLabelText("Group by")).queryByRole("option", { name: "Organization" })).toBeNull();
    expect(api.requests.every((r) => r.path === "/api/v1/usage/me")).toBe(true);
  });

  it("a system admin chooses all organizations or theirs", async () => {
    const api = mockApi({ "GET /api/v1/usage": report, "GET /api/v1/orgs/o1/usage": report });
    const { router } = render(`/usage/llm?${CUSTOM}&group=org`);
    await screen.findByRole("table", { name: "LLM usage by organization" });
    const user = userEvent.setup();
    await user.selectOptions(screen.getByLabelText("Scope"), "org");
    expect(new URLSearchParams(router.state.location.search).get("scope")).toBe("org");
    // Only the system-wide route groups by organisation: the table falls back to models.
    await screen.findByRole("table", { name: "LLM usage by model" });
    expect(api.calls("GET", "/api/v1/orgs/o1/usage").map((c) => c.url.searchParams.get("group_by")).sort()).toEqual(["day", "model"]);
  });
});

describe("usage page in the app", () => {
  it("opens an old /usage link with filters on the LLM tab inside the shell, and the tabs move between /usage/mcp and /usage/llm", async () => {
    mockApi({ "GET /api/v1/me": ME_ORG_ADMIN, "GET /api/v1/orgs/o1/usage": report, "GET /api/v1/orgs/o1/mcp-usage": mcpReport });
    const { router } = renderApp({ route: `/usage?${CUSTOM}` });
    await screen.findByRole("table", { name: "LLM usage by model" });
    expect(router.state.location.pathname).toBe("/usage/llm");
    expect(new URLSearchParams(router.state.location.search).get("from")).toBe("2026-12-01");
    const user = userEvent.setup();
    await user.click(screen.getByRole("tab", { name: "MCP" }));
    await screen.findByRole("table", { name: "MCP usage by server" });
    expect(router.state.location.pathname).toBe("/usage/mcp");
    await user.click(screen.getByRole("tab", { name: "LLM" }));
    await screen.findByRole("table", { name: "LLM usage by model" });
    expect(router.state.location.pathname).toBe("/usage/llm");
  });
});

describe("usage series", () => {
  it("has one bucket per UTC day or hour of the range", () => {
    expect(bucketKeys({ from: "2026-12-01T00:00:00.000Z", to: "2026-12-04T00:00:00.000Z", bucket: "day" })).toEqual([
      "2026-12-01",
      "2026-12-02",
      "2026-12-03",
    ]);
    const hours = resolveRange("24h", "", "", Date.parse("2026-12-06T05:17:00Z")).range!;
    expect(hours.bucket).toBe("hour");
    expect(hours.to).toBe("2026-12-06T06:00:00.000Z");
    expect(bucketKeys(hours)).toHaveLength(24);
    expect(bucketKeys(hours)[0]).toBe("2026-12-05T06:00:00Z");
  });
});
