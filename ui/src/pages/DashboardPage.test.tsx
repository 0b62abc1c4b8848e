import { describe, expect, it } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import DashboardPage from "./DashboardPage";
import { ME_ADMIN, ME_MEMBER, ME_ORG_ADMIN, errorResponse, mockApi, renderApp, renderPage } from "../test/utils";
import type { DashboardStats, UsagePoint } from "../lib/types";
import { hourKeys, last24Hours } from "../features/dashboard/queries";

const STATS: DashboardStats = {
  scope: "system",
  active_keys: 7,
  total_teams: 2,
  total_members: 5,
  requests_24h: 1234,
  tokens_24h: 56789,
  cost_estimate_24h: 1.5,
  budget_warnings: [
    { window: "monthly", scope: "team", scope_id: "t1", name: "Research", limit: 100000, usage: 92000, percent_used: 92 },
  ],
  models_healthy: 3,
  models_unhealthy: 1,
  models_degraded: 2,
};

const point = (key: string, requests: number, prompt: number, completion: number): UsagePoint => ({
  group_key: key,
  group_label: key,
  total_requests: requests,
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
  cost_estimate: 0,
  avg_duration_ms: 100,
  error_count: 0,
});

function usageHandler(req: { url: URL }) {
  const groupBy = req.url.searchParams.get("group_by");
  if (groupBy === "model") return { org_id: null, from: "", to: "", group_by: "model", data: [point("gpt-4o", 900, 30000, 20000), point("llama-3", 334, 4000, 2789)] };
  const hours = hourKeys(req.url.searchParams.get("from")!, req.url.searchParams.get("to")!);
  return { org_id: null, from: "", to: "", group_by: "hour", data: [point(hours[20]!, 1000, 1, 1), point(hours[22]!, 234, 1, 1)] };
}

const HEALTH = {
  models: [
    { name: "gpt-4o/openai", status: "healthy", last_check: "2026-12-06T05:00:00Z", last_error: null, latency_ms: 120, health_ok: true, models_ok: true, functional_ok: true },
    { name: "llama-3/local", status: "unhealthy", last_check: "2026-12-06T05:00:00Z", last_error: "connection refused", latency_ms: null, health_ok: false, models_ok: null, functional_ok: null },
  ],
};

describe("dashboard", () => {
  it("shows the last 24 hours, charts, model health and budget warnings for a system admin", async () => {
    const api = mockApi({
      "GET /api/v1/dashboard/stats": STATS,
      "GET /api/v1/usage": usageHandler,
      "GET /api/v1/models/health": HEALTH,
    });
    renderPage(<DashboardPage />, { me: ME_ADMIN });
    const requests = (await screen.findByText("Requests (24h)")).closest("dl")!;
    await waitFor(() => expect(requests).toHaveTextContent(new Intl.NumberFormat().format(1234)));
    expect(screen.getByText("Estimated cost (24h)").closest("dl")).toHaveTextContent(
      new Intl.NumberFormat(undefined, { style: "currency", currency: "USD" }).format(1.5),
    );
    expect(screen.getByText("Active keys").closest("dl")).toHaveTextContent("7");
    expect(screen.getByText("Tokens (24h)").closest("dl")).toHaveTextContent(new Intl.NumberFormat().format(56789));

    const chart = await screen.findByRole("figure", { name: "Requests over time" });
    await waitFor(() => expect(chart.querySelector(".recharts-area-area")).not.toBeNull());
    expect(chart).toHaveTextContent(/requests in the last 24 hours; peak/);
    const top = await screen.findByRole("list", { name: "Top models" });
    const items = within(top).getAllByRole("listitem");
    expect(items[0]).toHaveTextContent("gpt-4o");
    expect(items[1]).toHaveTextContent("llama-3");
    const split = screen.getByRole("list", { name: "Token split" });
    expect(split).toHaveTextContent(`Prompt tokens: ${new Intl.NumberFormat().format(34000)}`);
    expect(split).toHaveTextContent(`Completion tokens: ${new Intl.NumberFormat().format(22789)}`);

    const bar = screen.getByRole("progressbar", { name: "Monthly tokens of Team Research" });
    expect(bar).toHaveAttribute("aria-valuenow", "92000");
    expect(bar).toHaveAttribute("aria-valuemax", "100000");

    const health = screen.getByRole("heading", { name: "Model health" }).closest("section")!;
    expect(within(health).getByText("Healthy").closest("div")).toHaveTextContent("3");
    expect(within(health).getByText("Degraded").closest("div")).toHaveTextContent("2");
    expect(within(health).getByText("Unhealthy").closest("div")).toHaveTextContent("1");
    const upstreams = await within(health).findByRole("table", { name: "Upstream health" });
    expect(upstreams).toHaveTextContent("gpt-4o/openai");
    expect(upstreams).toHaveTextContent("unhealthy");

    const usage = api.calls("GET", "/api/v1/usage");
    expect(usage.map((c) => c.url.searchParams.get("group_by")).sort()).toEqual(["hour", "model"]);
    const { from, to } = last24Hours();
    expect(usage[0]!.url.searchParams.get("from")).toBe(from);
    expect(usage[0]!.url.searchParams.get("to")).toBe(to);
  });

  it("reads a member's own usage and no upstream health", async () => {
    const api = mockApi({
      "GET /api/v1/dashboard/stats": { ...STATS, scope: "user", total_teams: null, total_members: null, budget_warnings: [] },
      "GET /api/v1/usage/me": usageHandler,
    });
    renderPage(<DashboardPage />, { me: ME_MEMBER });
    expect(await screen.findByRole("list", { name: "Top models" })).toBeInTheDocument();
    expect(screen.getByText("No token budget is near its limit.")).toBeInTheDocument();
    expect(api.calls("GET", "/api/v1/usage")).toHaveLength(0);
    expect(api.calls("GET", "/api/v1/models/health")).toHaveLength(0);
    expect(api.calls("GET", "/api/v1/usage/me")).toHaveLength(2);
    expect(screen.queryByRole("table", { name: "Upstream health" })).toBeNull();
  });

  it("reads an org admin's organisation usage", async () => {
    const api = mockApi({
      "GET /api/v1/dashboard/stats": { ...STATS, scope: "org" },
      "GET /api/v1/orgs/o1/usage": usageHandler,
    });
    renderPage(<DashboardPage />, { me: ME_ORG_ADMIN });
    expect(await screen.findByRole("list", { name: "Top models" })).toBeInTheDocument();
    expect(api.calls("GET", "/api/v1/orgs/o1/usage")).toHaveLength(2);
  });

  it("says when there were no requests", async () => {
    mockApi({
      "GET /api/v1/dashboard/stats": { ...STATS, requests_24h: 0, tokens_24h: 0, cost_estimate_24h: 0, budget_warnings: [] },
      "GET /api/v1/usage": { org_id: null, from: "", to: "", group_by: null, data: [] },
      "GET /api/v1/models/health": { models: [] },
    });
    renderPage(<DashboardPage />);
    expect(await screen.findByText("No requests in the last 24 hours")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Open the playground" })).toBeInTheDocument();
    expect(screen.getByText("No model was used in the last 24 hours.")).toBeInTheDocument();
  });

  it("shows loading, then the error with its request id", async () => {
    let fail!: () => void;
    const gate = new Promise<void>((resolve) => (fail = resolve));
    mockApi({
      "GET /api/v1/dashboard/stats": async () => {
        await gate;
        return errorResponse(503, "unavailable", "the store did not answer");
      },
    });
    renderPage(<DashboardPage />);
    expect(await screen.findByRole("status", { name: "Loading Requests (24h)" })).toBeInTheDocument();
    fail();
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("the store did not answer");
    expect(alert).toHaveTextContent("req_test123");
    expect(screen.getByRole("button", { name: "Try again" })).toBeInTheDocument();
  });

  it("goes to sign-in with next when the session expired", async () => {
    mockApi({
      "GET /api/v1/me": ME_MEMBER,
      "GET /api/v1/dashboard/stats": errorResponse(401, "unauthorized", "session expired"),
    });
    const { router } = renderApp({ route: "/?range=24h" });
    await waitFor(() => expect(router.state.location.pathname).toBe("/login"));
    expect(new URLSearchParams(router.state.location.search).get("next")).toBe("/?range=24h");
  });
});
