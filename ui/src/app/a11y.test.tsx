import { describe, it } from "vitest";
import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { ME_ADMIN, ME_MEMBER, errorResponse, mockApi, renderApp } from "../test/utils";
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
});
