import { describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import CostReportsPage from "../../pages/CostReportsPage";
import { downloadText } from "../../lib/download";
import { ME_MEMBER, ME_ORG_ADMIN, errorResponse, mockApi, renderApp, renderPage, type MockRequest } from "../../test/utils";
import type { CostReport } from "./types";

vi.mock("../../lib/download", async (importOriginal) => ({
  ...(await importOriginal<typeof import("../../lib/download")>()),
  downloadText: vi.fn(),
}));

const REPORT: CostReport = {
  org_id: "o1",
  from: "2026-12-01T00:00:00Z",
  to: "2026-12-04T00:00:00Z",
  totals: { requests: 15, prompt_tokens: 150, completion_tokens: 60, total_tokens: 210, cost: 3.3 },
  by_model: [
    { model_name: "gpt-4o", requests: 10, prompt_tokens: 100, completion_tokens: 40, total_tokens: 140, cost: 3 },
    { model_name: "=cheap", requests: 5, prompt_tokens: 50, completion_tokens: 20, total_tokens: 70, cost: 0.3 },
  ],
  by_day: [
    { day: "2026-12-01", requests: 10, total_tokens: 140, cost: 3 },
    { day: "2026-12-03", requests: 5, total_tokens: 70, cost: 0.3 },
  ],
  top_keys: [
    { id: "k1", name: "ci key", requests: 10, total_tokens: 140, cost: 3 },
    { id: "k2", name: "", requests: 5, total_tokens: 70, cost: 0.3 },
  ],
  top_users: [{ id: "u1", name: "ada@example.com", requests: 15, total_tokens: 210, cost: 3.3 }],
};

const CUSTOM = "range=custom&from=2026-12-01&to=2026-12-03";
const PATH = "/api/v1/orgs/o1/usage/cost-report";

function render(route: string) {
  return renderPage(<CostReportsPage />, { route, path: "/cost-reports", me: ME_ORG_ADMIN });
}

vi.setConfig({ testTimeout: 30_000 });

const stat = (label: string) => screen.getByText(label, { selector: "dt" }).nextElementSibling;

describe("cost reports page", () => {
  it("shows totals, the average per day, charts and tables of the range", async () => {
    const api = mockApi({ [`GET ${PATH}`]: REPORT });
    render(`/cost-reports?${CUSTOM}`);
    expect(screen.getByRole("heading", { level: 1, name: "Cost Reports" })).toBeInTheDocument();
    await screen.findByRole("table", { name: "Cost per day" });
    const sent = api.calls("GET", PATH)[0]!.url.searchParams;
    expect(Object.fromEntries(sent)).toEqual({ from: "2026-12-01T00:00:00.000Z", to: "2026-12-04T00:00:00.000Z", top: "10" });

    expect(stat("Total cost")).toHaveTextContent("$3.30");
    expect(stat("Average per day")).toHaveTextContent("$1.10"); // 3 UTC days
    expect(screen.getByText("Over 3 days")).toBeInTheDocument();
    expect(stat("Requests")).toHaveTextContent("15");
    expect(stat("Top model")).toHaveTextContent("gpt-4o");

    // Every day of the range, the one without usage as zero.
    const days = within(screen.getByRole("table", { name: "Cost per day" })).getAllByRole("row");
    expect(days).toHaveLength(4);
    expect(days[2]).toHaveTextContent("$0.00");
    const models = within(screen.getByRole("table", { name: "Cost per model" })).getAllByRole("row");
    expect(models[1]).toHaveTextContent("gpt-4o");
    expect(models[1]).toHaveTextContent("$3.00");
    const keys = within(screen.getByRole("table", { name: "Top API keys" })).getAllByRole("row");
    expect(keys[1]).toHaveTextContent("ci key");
    expect(keys[2]).toHaveTextContent("(unknown)");
    expect(within(screen.getByRole("table", { name: "Top users" })).getAllByRole("row")[1]).toHaveTextContent("ada@example.com");
    for (const name of ["Cost per day", "Cost per model"]) {
      expect(screen.getByRole("figure", { name }).querySelector("svg")).not.toBeNull();
    }
  });

  it("changes the range and the number of top spenders in the URL and the query", async () => {
    const api = mockApi({ [`GET ${PATH}`]: (req: MockRequest) => ({ ...REPORT, from: req.url.searchParams.get("from"), to: req.url.searchParams.get("to") }) });
    const { router } = render(`/cost-reports?${CUSTOM}`);
    await screen.findByRole("table", { name: "Cost per day" });
    const user = userEvent.setup();
    await user.selectOptions(screen.getByLabelText("Top spenders"), "25");
    await waitFor(() => expect(api.calls("GET", PATH).at(-1)!.url.searchParams.get("top")).toBe("25"));
    expect(router.state.location.search).toContain("top=25");
    await user.selectOptions(screen.getByLabelText("Date range"), "30d");
    await waitFor(() => expect(router.state.location.search).toBe("?range=30d&top=25"));
    const last = api.calls("GET", PATH).at(-1)!.url.searchParams;
    expect(Date.parse(last.get("to")!) - Date.parse(last.get("from")!)).toBe(30 * 24 * 3_600_000);
  });

  it("exports each table as the CSV of what it shows", async () => {
    mockApi({ [`GET ${PATH}`]: REPORT });
    render(`/cost-reports?${CUSTOM}`);
    await screen.findByRole("table", { name: "Cost per day" });
    const user = userEvent.setup();
    const exported = vi.mocked(downloadText);
    exported.mockClear();
    await user.click(screen.getByRole("button", { name: "Export CSV of the cost per day" }));
    expect(exported).toHaveBeenLastCalledWith(
      "voidllm-cost-per-day-2026-12-01-to-2026-12-03.csv",
      "Day (UTC),Requests,Total tokens,Estimated cost\r\n2026-12-01,10,140,3\r\n2026-12-02,0,0,0\r\n2026-12-03,5,70,0.3\r\n",
    );
    await user.click(screen.getByRole("button", { name: "Export CSV of the cost per model" }));
    expect(exported.mock.lastCall![1]).toBe(
      "Model,Requests,Prompt tokens,Completion tokens,Total tokens,Estimated cost\r\ngpt-4o,10,100,40,140,3\r\n'=cheap,5,50,20,70,0.3\r\n",
    );
    await user.click(screen.getByRole("button", { name: "Export CSV of the top API keys" }));
    expect(exported.mock.lastCall).toEqual([
      "voidllm-cost-top-keys-2026-12-01-to-2026-12-03.csv",
      "Key,Key ID,Requests,Total tokens,Estimated cost\r\nci key,k1,10,140,3\r\n,k2,5,70,0.3\r\n",
    ]);
    await user.click(screen.getByRole("button", { name: "Export CSV of the top users" }));
    expect(exported.mock.lastCall![1]).toBe("User,User ID,Requests,Total tokens,Estimated cost\r\nada@example.com,u1,15,210,3.3\r\n");
  });

  it("says when a range has no usage, and refuses an inverted custom range without asking the API", async () => {
    const empty: CostReport = { ...REPORT, totals: { requests: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost: 0 }, by_model: [], by_day: [], top_keys: [], top_users: [] };
    const api = mockApi({ [`GET ${PATH}`]: empty });
    render(`/cost-reports?${CUSTOM}`);
    expect(await screen.findByText("No requests in this range")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Export CSV of the top users" })).toBeDisabled();
    expect(stat("Top model")).toHaveTextContent("—");

    const before = api.calls("GET", PATH).length;
    render("/cost-reports?range=custom&from=2026-12-05&to=2026-12-01");
    expect(await screen.findByText("Choose a valid date range")).toBeInTheDocument();
    expect(screen.getAllByLabelText("From").at(-1)).toHaveAttribute("aria-invalid", "true");
    expect(api.calls("GET", PATH)).toHaveLength(before);
  });

  it("shows the API's error message in the page", async () => {
    mockApi({ [`GET ${PATH}`]: errorResponse(400, "validation_error", "from must be before to") });
    render(`/cost-reports?${CUSTOM}`);
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Could not load the cost report");
    expect(alert).toHaveTextContent("from must be before to");
  });

  it("a member opening /cost-reports is told it is not allowed", async () => {
    mockApi({ "GET /api/v1/me": ME_MEMBER });
    renderApp({ route: "/cost-reports" });
    expect(await screen.findByRole("heading", { level: 1, name: "No access" })).toBeInTheDocument();
  });
});
