import { describe, expect, it } from "vitest";
import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { ME_ADMIN, errorResponse, mockApi, renderApp } from "../test/utils";

const HEALTH = { status: "ok", version: "1.4.2", uptime_seconds: 3600 };

const fact = (label: string) => screen.getByText(label, { selector: "dt" }).nextElementSibling;

describe("license page", () => {
  it("tells a system admin that no license key is needed, lists the included features and shows the version", async () => {
    const api = mockApi({ "GET /api/v1/me": ME_ADMIN, "GET /health": HEALTH });
    renderApp({ route: "/license" });
    expect(await screen.findByRole("heading", { level: 1, name: "License" })).toBeInTheDocument();
    expect(within(screen.getByRole("navigation", { name: "Main" })).getByRole("link", { name: "License" })).toHaveAttribute("aria-current", "page");
    expect(screen.getByRole("heading", { level: 2, name: "No license key needed" })).toBeInTheDocument();
    expect(screen.getByRole("main")).toHaveTextContent("no license key");

    const features = within(screen.getByRole("list", { name: "Included features" })).getAllByRole("listitem");
    expect(features.map((f) => f.firstElementChild?.textContent)).toEqual([
      "Single sign-on",
      "Audit log",
      "Cost reports",
      "Fallback chains",
      "OpenTelemetry tracing",
      "Multiple organizations",
      "PII filtering",
    ]);
    expect(screen.getByRole("link", { name: "Audit log" })).toHaveAttribute("href", "/audit-log");
    expect(screen.getByRole("link", { name: "Single sign-on" })).toHaveAttribute("href", "/sso");

    await screen.findByText("1.4.2");
    expect(fact("Version")).toHaveTextContent("1.4.2");
    expect(fact("Project license")).toHaveTextContent("Apache-2.0");
    // The version comes from the unauthenticated health answer at the mount root, not a management route.
    expect(api.calls("GET", "/health")).toHaveLength(1);
  });

  it("shows a failed version read as an error with a retry", async () => {
    let fail = true;
    mockApi({
      "GET /api/v1/me": ME_ADMIN,
      "GET /health": () => (fail ? errorResponse(503, "unavailable", "the gateway is starting") : HEALTH),
    });
    renderApp({ route: "/license" });
    expect(await screen.findByText("Could not load the version")).toBeInTheDocument();
    expect(screen.getByText("the gateway is starting")).toBeInTheDocument();
    fail = false;
    await userEvent.setup().click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByText("1.4.2")).toBeInTheDocument();
  });
});
