import { describe, expect, it } from "vitest";
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { ME_MEMBER, errorResponse, mockApi, renderApp } from "../../test/utils";

const TOKEN = "vl_iv_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN";
const PEEK = { email: "erin@example.com", org_name: "Acme", role: "member", expires_at: "2026-12-13T10:00:00Z" };

describe("invite page", () => {
  it("shows what the invite offers, creates the account and signs the new user in", async () => {
    let signedIn = false;
    const me = { ...ME_MEMBER, email: "erin@example.com", display_name: "Erin" };
    const api = mockApi({
      "GET /api/v1/invites/peek": PEEK,
      "POST /api/v1/invites/redeem": { status: 201, body: { id: "u9", email: PEEK.email, display_name: "Erin", org_id: "o1", role: "member" } },
      "POST /api/v1/auth/session": () => {
        signedIn = true;
        return { user: me, expires_at: "2026-12-07T10:00:00Z", csrf_token: "c" };
      },
      "GET /api/v1/me": () => (signedIn ? me : errorResponse(401, "unauthorized", "missing credentials")),
      "GET /api/v1/*": { data: [], has_more: false },
    });
    const { router } = renderApp({ route: `/invite/${TOKEN}` });
    expect(await screen.findByRole("heading", { level: 1, name: "Join your organization" })).toBeInTheDocument();
    expect(api.calls("GET", "/api/v1/invites/peek")[0]!.url.searchParams.get("token")).toBe(TOKEN);
    expect(screen.getByText("Acme")).toBeInTheDocument();
    expect(screen.getByText("erin@example.com")).toBeInTheDocument();
    expect(screen.getByText("Member")).toBeInTheDocument();

    const user = userEvent.setup({ delay: null });
    await user.type(screen.getByLabelText("Display name"), "Erin");
    await user.type(screen.getByLabelText(/^Password/), "short");
    await user.type(screen.getByLabelText(/^Confirm password/), "other");
    await user.click(screen.getByRole("button", { name: "Create account and sign in" }));
    expect(screen.getByLabelText(/^Password/)).toHaveAccessibleDescription(/At least 8 characters/);
    expect(screen.getByLabelText(/^Confirm password/)).toHaveAccessibleDescription("The passwords do not match.");
    expect(api.calls("POST", "/api/v1/invites/redeem")).toHaveLength(0);

    await user.clear(screen.getByLabelText(/^Password/));
    await user.type(screen.getByLabelText(/^Password/), "a-long-Passw0rd");
    await user.clear(screen.getByLabelText(/^Confirm password/));
    await user.type(screen.getByLabelText(/^Confirm password/), "a-long-Passw0rd");
    await user.click(screen.getByRole("button", { name: "Create account and sign in" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/"));
    expect(api.calls("POST", "/api/v1/invites/redeem")[0]!.body).toEqual({ token: TOKEN, password: "a-long-Passw0rd", display_name: "Erin" });
    expect(api.calls("POST", "/api/v1/auth/session")[0]!.body).toEqual({ email: PEEK.email, password: "a-long-Passw0rd" });
    expect(await screen.findByRole("button", { name: "Account" })).toBeInTheDocument();
  });

  it.each([
    ["expired", "Invite expired", /has expired/],
    ["used", "Invite already used", /already been used/],
    ["invalid", "Invalid invite link", /withdrawn or replaced/],
    [undefined, "Invite no longer valid", /can no longer be used/],
  ])("says why a refused (410) invite cannot be used: %s", async (reason, heading, text) => {
    const extra = reason ? { reason } : {};
    mockApi({ "GET /api/v1/invites/peek": errorResponse(410, "gone", "invite is invalid, expired or already redeemed", extra) });
    renderApp({ route: `/invite/${TOKEN}` });
    expect(await screen.findByRole("heading", { level: 1, name: heading })).toBeInTheDocument();
    expect(screen.getByText(text)).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Go to sign in" })).toBeInTheDocument();
  });

  it("says a link that is no invite token is invalid, without asking the gateway", async () => {
    const api = mockApi({});
    renderApp({ route: "/invite/not-a-token" });
    expect(await screen.findByRole("heading", { level: 1, name: "Invalid invite link" })).toBeInTheDocument();
    expect(api.calls("GET", "/api/v1/invites/peek")).toHaveLength(0);
  });

  it("shows the gone page when the invite is used up while the form is open", async () => {
    mockApi({
      "GET /api/v1/invites/peek": PEEK,
      "POST /api/v1/invites/redeem": errorResponse(410, "gone", "invite is invalid, expired or already redeemed", { reason: "used" }),
    });
    renderApp({ route: `/invite/${TOKEN}` });
    const user = userEvent.setup({ delay: null });
    await user.type(await screen.findByLabelText(/^Password/), "a-long-Passw0rd");
    await user.type(screen.getByLabelText(/^Confirm password/), "a-long-Passw0rd");
    await user.click(screen.getByRole("button", { name: "Create account and sign in" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Invite already used" })).toBeInTheDocument();
  });

  it("shows a 409 (the email already has an account) next to the form", async () => {
    mockApi({
      "GET /api/v1/invites/peek": PEEK,
      "POST /api/v1/invites/redeem": errorResponse(409, "conflict", "a user with this email already exists"),
    });
    renderApp({ route: `/invite/${TOKEN}` });
    const user = userEvent.setup({ delay: null });
    await user.type(await screen.findByLabelText(/^Password/), "a-long-Passw0rd");
    await user.type(screen.getByLabelText(/^Confirm password/), "a-long-Passw0rd");
    await user.click(screen.getByRole("button", { name: "Create account and sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("a user with this email already exists");
  });
});
