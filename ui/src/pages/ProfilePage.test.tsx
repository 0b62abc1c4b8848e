import { describe, expect, it } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import ProfilePage from "./ProfilePage";
import { ME_MEMBER, errorResponse, mockApi, renderPage } from "../test/utils";

const CURRENT = { id: "s1", key_hint: "vl_sk_ab…1234", created_at: "2026-12-06T04:00:00Z", expires_at: "2026-12-07T04:00:00Z", current: true };
const OTHER = { id: "s2", key_hint: "vl_sk_cd…5678", created_at: "2026-12-05T04:00:00Z", expires_at: "2026-12-06T20:00:00Z", current: false };

describe("profile page", () => {
  it("shows the account and the active sessions with the current one marked", async () => {
    mockApi({ "GET /api/v1/auth/sessions": { data: [CURRENT, OTHER], has_more: false } });
    renderPage(<ProfilePage />, { route: "/profile", me: ME_MEMBER });
    expect(screen.getByRole("heading", { level: 1, name: "Profile" })).toBeInTheDocument();
    expect(screen.getByText("member@example.com")).toBeInTheDocument();
    const table = await screen.findByRole("table", { name: "Active sessions" });
    const rows = within(table).getAllByRole("row");
    expect(rows).toHaveLength(3);
    expect(rows[1]).toHaveTextContent("This session");
    expect(rows[2]).not.toHaveTextContent("This session");
  });

  it("ends another session", async () => {
    document.cookie = "voidllm_csrf=c9; path=/";
    let sessions = [CURRENT, OTHER];
    const api = mockApi({
      "GET /api/v1/auth/sessions": () => ({ data: sessions, has_more: false }),
      "DELETE /api/v1/auth/sessions/s2": () => {
        sessions = [CURRENT];
        return { status: 204 };
      },
    });
    renderPage(<ProfilePage />, { route: "/profile" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "End session vl_sk_cd…5678" }));
    await waitFor(() => expect(screen.queryByText("vl_sk_cd…5678")).toBeNull());
    expect(api.calls("DELETE", "/api/v1/auth/sessions/s2")[0]!.headers.get("X-CSRF-Token")).toBe("c9");
  });

  it("signs out everywhere after a confirmation and goes to sign-in", async () => {
    const api = mockApi({
      "GET /api/v1/auth/sessions": { data: [CURRENT, OTHER], has_more: false },
      "DELETE /api/v1/auth/sessions": { status: 204 },
    });
    const { router } = renderPage(<ProfilePage />, { route: "/profile" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Sign out everywhere" }));
    const dialog = await screen.findByRole("alertdialog", { name: "Sign out everywhere?" });
    expect(api.calls("DELETE", "/api/v1/auth/sessions")).toHaveLength(0);
    await user.click(within(dialog).getByRole("button", { name: "Sign out everywhere" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/login"));
    expect(api.calls("DELETE", "/api/v1/auth/sessions")).toHaveLength(1);
  });

  it("changes the password", async () => {
    const api = mockApi({
      "GET /api/v1/auth/sessions": { data: [CURRENT], has_more: false },
      "POST /api/v1/me/password": { status: 200 },
    });
    renderPage(<ProfilePage />, { route: "/profile" });
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Current password"), "old password");
    await user.type(screen.getByLabelText("New password"), "new password 1");
    await user.type(screen.getByLabelText("Confirm new password"), "new password 1");
    await user.click(screen.getByRole("button", { name: "Change password" }));
    expect(await screen.findByText("Password changed")).toBeInTheDocument();
    expect(api.calls("POST", "/api/v1/me/password")[0]!.body).toEqual({ current_password: "old password", new_password: "new password 1" });
    expect(screen.getByLabelText("Current password")).toHaveValue("");
  });

  it("refuses mismatched passwords without asking the server, and shows the server's refusal", async () => {
    const api = mockApi({
      "GET /api/v1/auth/sessions": { data: [CURRENT], has_more: false },
      "POST /api/v1/me/password": errorResponse(400, "bad_request", "current password is incorrect"),
    });
    renderPage(<ProfilePage />, { route: "/profile" });
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Current password"), "wrong one");
    await user.type(screen.getByLabelText("New password"), "new password 1");
    await user.type(screen.getByLabelText("Confirm new password"), "new password 2");
    await user.click(screen.getByRole("button", { name: "Change password" }));
    expect(screen.getByLabelText("Confirm new password")).toHaveAccessibleDescription("The new passwords do not match.");
    expect(api.calls("POST", "/api/v1/me/password")).toHaveLength(0);
    await user.clear(screen.getByLabelText("Confirm new password"));
    await user.type(screen.getByLabelText("Confirm new password"), "new password 1");
    await user.click(screen.getByRole("button", { name: "Change password" }));
    await waitFor(() => expect(screen.getByLabelText("Current password")).toHaveAccessibleDescription("current password is incorrect"));
  });

  it("names what is missing or too short before asking the server", async () => {
    const api = mockApi({ "GET /api/v1/auth/sessions": { data: [CURRENT], has_more: false } });
    renderPage(<ProfilePage />, { route: "/profile" });
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("New password"), "short");
    await user.click(screen.getByRole("button", { name: "Change password" }));
    expect(screen.getByLabelText("Current password")).toHaveAccessibleDescription("Enter your current password.");
    expect(screen.getByLabelText("New password")).toHaveAccessibleDescription(/at least 8 characters\.$/);
    expect(api.calls("POST", "/api/v1/me/password")).toHaveLength(0);
  });

  it("shows an error with the request id when the sessions cannot be loaded", async () => {
    mockApi({ "GET /api/v1/auth/sessions": errorResponse(500, "internal_error", "the store did not answer") });
    renderPage(<ProfilePage />, { route: "/profile" });
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("the store did not answer");
    expect(alert).toHaveTextContent("req_test123");
  });
});
