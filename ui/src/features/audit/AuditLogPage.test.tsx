import { describe, expect, it } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import AuditLogPage from "../../pages/AuditLogPage";
import { ME_ADMIN, ME_MEMBER, ME_ORG_ADMIN, errorResponse, mockApi, renderApp, renderPage, type MockRequest } from "../../test/utils";
import { localToInstant, prettyDescription, readFilters } from "./filters";
import type { AuditLogEntry } from "./types";

const entry = (n: number, overrides: Partial<AuditLogEntry> = {}): AuditLogEntry => ({
  id: `a${String(n).padStart(3, "0")}`,
  timestamp: `2026-12-06T10:${String(n).padStart(2, "0")}:00Z`,
  request_id: `req-${n}`,
  org_id: "o1",
  actor_id: "u_admin",
  actor_type: "user",
  actor_key_id: "k_session",
  action: "create",
  resource_type: "api_key",
  resource_id: `key-${n}`,
  description: JSON.stringify({ name: `key ${n}`, api_key: "[REDACTED]" }),
  ip_address: "10.0.0.1",
  status_code: 201,
  ...overrides,
});

/** Three pages of two entries (newest first), answered by cursor. */
function pages(req: MockRequest) {
  const all = [entry(6), entry(5, { action: "delete", resource_type: "team", status_code: 204, description: "" }), entry(4), entry(3), entry(2), entry(1)];
  const cursor = req.url.searchParams.get("cursor");
  const limit = Number(req.url.searchParams.get("limit"));
  const start = cursor ? all.findIndex((e) => e.id === cursor) + 1 : 0;
  const data = all.slice(start, start + Math.min(limit, 2));
  const more = start + data.length < all.length;
  return { data, has_more: more, next_cursor: more ? data[data.length - 1]!.id : null };
}

function render(route = "/audit-log", me = ME_ADMIN) {
  return renderPage(<AuditLogPage />, { route, path: "/audit-log", me });
}

describe("audit log page", () => {
  it("lists entries newest first and pages with the cursor, forward and back", async () => {
    const api = mockApi({ "GET /api/v1/audit-logs": pages });
    render();
    expect(screen.getByRole("heading", { level: 1, name: "Audit Log" })).toBeInTheDocument();
    const table = await screen.findByRole("table", { name: "Audit log entries" });
    const rows = within(table).getAllByRole("row");
    expect(rows).toHaveLength(3);
    expect(within(table).getAllByRole("columnheader").map((h) => h.textContent)).toEqual(["Time", "Actor", "Action", "Resource", "Status", "Details"]);
    expect(rows[1]).toHaveTextContent("Create");
    expect(rows[1]).toHaveTextContent("API key");
    expect(rows[1]).toHaveTextContent("key-6");
    expect(rows[2]).toHaveTextContent("Delete");
    expect(rows[2]).toHaveTextContent("204");
    expect(api.calls("GET", "/api/v1/audit-logs")[0]!.url.searchParams.get("limit")).toBe("50");

    const user = userEvent.setup();
    expect(screen.getByRole("button", { name: "Newer entries" })).toBeDisabled();
    await user.click(screen.getByRole("button", { name: "Older entries" }));
    await waitFor(() => expect(screen.getByRole("table", { name: "Audit log entries" })).toHaveTextContent("key-4"));
    expect(api.calls("GET", "/api/v1/audit-logs").at(-1)!.url.searchParams.get("cursor")).toBe("a005");
    await user.click(screen.getByRole("button", { name: "Older entries" }));
    await waitFor(() => expect(screen.getByRole("table", { name: "Audit log entries" })).toHaveTextContent("key-2"));
    expect(screen.getByRole("button", { name: "Older entries" })).toBeDisabled();
    await user.click(screen.getByRole("button", { name: "Newer entries" }));
    await waitFor(() => expect(screen.getByRole("table", { name: "Audit log entries" })).toHaveTextContent("key-4"));
    expect(screen.getByText(/page 2/)).toBeInTheDocument();
  });

  it("applies every filter to the URL and the query, and clears them", async () => {
    const api = mockApi({ "GET /api/v1/audit-logs": pages });
    const { router } = render();
    await screen.findByRole("table", { name: "Audit log entries" });
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Action"), "delete");
    await user.type(screen.getByLabelText("Resource type"), "team");
    await user.type(screen.getByLabelText("Actor ID"), "u_42");
    await user.selectOptions(screen.getByLabelText("Status"), "204");
    await user.type(screen.getByLabelText("From"), "2026-12-01T08:30");
    await user.type(screen.getByLabelText("To"), "2026-12-02T18:00");
    await user.selectOptions(screen.getByLabelText("Entries per page"), "100");
    await user.selectOptions(screen.getByLabelText("Organizations"), "org");
    await user.click(screen.getByRole("button", { name: "Apply filters" }));

    await waitFor(() => expect(api.calls("GET", "/api/v1/audit-logs")).toHaveLength(2));
    const sent = api.calls("GET", "/api/v1/audit-logs")[1]!.url.searchParams;
    expect(Object.fromEntries(sent)).toEqual({
      limit: "100",
      action: "delete",
      resource_type: "team",
      actor_id: "u_42",
      status_code: "204",
      from: new Date("2026-12-01T08:30").toISOString(),
      to: new Date("2026-12-02T18:00").toISOString(),
      org_id: "o1",
    });
    const url = new URLSearchParams(router.state.location.search);
    expect(Object.fromEntries(url)).toEqual({
      action: "delete",
      resource: "team",
      actor: "u_42",
      status: "204",
      from: "2026-12-01T08:30",
      to: "2026-12-02T18:00",
      scope: "org",
      limit: "100",
    });

    await user.click(screen.getByRole("button", { name: "Clear filters" }));
    await waitFor(() => expect(router.state.location.search).toBe("?scope=org&limit=100"));
    expect(screen.getByLabelText("Action")).toHaveValue("");
  });

  it("refuses a range whose start is after its end, in context", async () => {
    const api = mockApi({ "GET /api/v1/audit-logs": pages });
    render("/audit-log?from=2026-12-03T00:00&to=2026-12-01T00:00");
    expect(await screen.findByText("Choose a valid time range")).toBeInTheDocument();
    expect(screen.getByLabelText("From")).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByRole("button", { name: "Apply filters" })).toBeDisabled();
    expect(api.calls("GET", "/api/v1/audit-logs")).toHaveLength(0);
  });

  it("opens the detail of an entry with its redacted body, and filters by its actor", async () => {
    const api = mockApi({ "GET /api/v1/audit-logs": pages });
    const { router } = render();
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Details of create API key key-6" }));
    const dialog = await screen.findByRole("dialog", { name: "Audit log entry" });
    expect(dialog).toHaveTextContent("req-6");
    expect(dialog).toHaveTextContent("10.0.0.1");
    expect(dialog).toHaveTextContent("k_session");
    const body = within(dialog).getByLabelText("Request body");
    expect(body.textContent).toBe(JSON.stringify({ name: "key 6", api_key: "[REDACTED]" }, null, 2));
    await user.click(within(dialog).getByRole("button", { name: "Show this actor's entries" }));
    await waitFor(() => expect(router.state.location.search).toBe("?actor=u_admin"));
    await waitFor(() => expect(api.calls("GET", "/api/v1/audit-logs").at(-1)!.url.searchParams.get("actor_id")).toBe("u_admin"));
    expect(screen.queryByRole("dialog")).not.toBeInTheDocument();

    await user.click(await screen.findByRole("button", { name: "Details of delete team key-5" }));
    expect(await screen.findByRole("dialog")).toHaveTextContent("No request body was recorded.");
  });

  it("an organization admin's query never names an organization; no scope choice", async () => {
    const api = mockApi({ "GET /api/v1/audit-logs": pages });
    render("/audit-log?scope=org", ME_ORG_ADMIN);
    await screen.findByRole("table", { name: "Audit log entries" });
    expect(screen.queryByLabelText("Organizations")).not.toBeInTheDocument();
    expect(api.calls("GET", "/api/v1/audit-logs")[0]!.url.searchParams.has("org_id")).toBe(false);
  });

  it("shows the API's error message in the page", async () => {
    mockApi({ "GET /api/v1/audit-logs": errorResponse(403, "forbidden", "organization admins only see their organization") });
    render();
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Could not load the audit log");
    expect(alert).toHaveTextContent("organization admins only see their organization");
    expect(alert).toHaveTextContent("req_test123");
  });

  it("is not offered to members: no link, and the URL says not allowed", async () => {
    mockApi({ "GET /api/v1/me": ME_MEMBER });
    renderApp({ route: "/audit-log" });
    expect(await screen.findByRole("heading", { level: 1, name: "No access" })).toBeInTheDocument();
    const nav = screen.getByRole("navigation", { name: "Main" });
    expect(within(nav).queryByRole("link", { name: "Audit Log" })).not.toBeInTheDocument();
    expect(within(nav).queryByRole("link", { name: "Cost Reports" })).not.toBeInTheDocument();
  });

  it("is in the navigation of organization admins, at /audit-log", async () => {
    mockApi({ "GET /api/v1/me": ME_ORG_ADMIN, "GET /api/v1/audit-logs": pages });
    renderApp({ route: "/audit-log" });
    expect(await screen.findByRole("heading", { level: 1, name: "Audit Log" })).toBeInTheDocument();
    const nav = screen.getByRole("navigation", { name: "Main" });
    expect(within(nav).getByRole("link", { name: "Audit Log" })).toHaveAttribute("aria-current", "page");
    expect(within(nav).getByRole("link", { name: "Cost Reports" })).toBeInTheDocument();
  });
});

describe("audit filters", () => {
  it("reads only valid values from the URL", () => {
    const f = readFilters(new URLSearchParams("status=abc&from=yesterday&to=2026-12-01T10:00&limit=7&scope=x"));
    expect(f).toMatchObject({ status: "", from: "", to: "2026-12-01T10:00", limit: 50, scope: "all" });
  });

  it("turns local times into instants and bodies into pretty JSON", () => {
    expect(localToInstant("")).toBeUndefined();
    expect(localToInstant("2026-12-01T10:00")).toBe(new Date(2026, 11, 1, 10, 0).toISOString());
    expect(prettyDescription("")).toBeNull();
    expect(prettyDescription("{}")).toBeNull();
    expect(prettyDescription("not json")).toBe("not json");
    expect(prettyDescription('{"a":1}')).toBe('{\n  "a": 1\n}');
  });
});
