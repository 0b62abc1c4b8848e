import { describe, expect, it } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import OrgsPage from "../../pages/OrgsPage";
import UsersPage from "../../pages/UsersPage";
import { ME_ADMIN, ME_ORG_ADMIN, errorResponse, mockApi, renderApp, renderPage } from "../../test/utils";
import type { OrgOut, UserOut } from "./types";

const org = (id: string, name: string, slug: string, is_active = true): OrgOut => ({
  id,
  name,
  slug,
  timezone: "UTC",
  daily_token_limit: 0,
  monthly_token_limit: 0,
  requests_per_minute: 0,
  requests_per_day: 0,
  is_active,
  member_count: 3,
  team_count: 1,
  created_at: "2026-12-01T10:00:00Z",
  updated_at: "2026-12-01T10:00:00Z",
});
const ORGS = { data: [org("o1", "Default", "default"), org("o2", "Beta", "beta", false)], has_more: false };

const user = (id: string, email: string, extra: Partial<UserOut> = {}): UserOut => ({
  id,
  email,
  display_name: email.split("@")[0]!,
  is_system_admin: false,
  auth_provider: "local",
  org_id: "o1",
  role: "member",
  created_at: "2026-12-01T10:00:00Z",
  updated_at: "2026-12-01T10:00:00Z",
  ...extra,
});
const USERS = {
  data: [user("u_admin", "admin@example.com", { is_system_admin: true, role: "org_admin" }), user("u2", "bob@example.com")],
  has_more: false,
};

describe("organizations page", () => {
  it("lists organizations, creates one with a slug from its name, and links to viewing one", async () => {
    const api = mockApi({ "GET /api/v1/orgs": ORGS, "POST /api/v1/orgs": { status: 201, body: org("o3", "Gamma Labs", "gamma-labs") } });
    renderPage(<OrgsPage />, { route: "/orgs" });
    const table = await screen.findByRole("table", { name: "Organizations" });
    expect(within(table).getAllByRole("row")).toHaveLength(3);
    expect(within(table).getByRole("link", { name: "View Beta" })).toHaveAttribute("href", "/orgs/o2/settings");
    const u = userEvent.setup({ delay: null });
    await u.click(screen.getByRole("button", { name: "Create organization" }));
    const dialog = await screen.findByRole("dialog", { name: "Create organization" });
    await u.type(within(dialog).getByLabelText(/^Name/), "Gamma Labs");
    expect(within(dialog).getByLabelText(/^Slug/)).toHaveValue("gamma-labs");
    await u.clear(within(dialog).getByLabelText("Requests per minute"));
    await u.type(within(dialog).getByLabelText("Requests per minute"), "100");
    await u.click(within(dialog).getByRole("button", { name: "Create" }));
    await waitFor(() => expect(api.calls("POST", "/api/v1/orgs")).toHaveLength(1));
    expect(api.calls("POST", "/api/v1/orgs")[0]!.body).toEqual({
      name: "Gamma Labs",
      slug: "gamma-labs",
      requests_per_minute: 100,
      requests_per_day: 0,
      daily_token_limit: 0,
      monthly_token_limit: 0,
    });
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
  });

  it("shows a create error in the dialog", async () => {
    mockApi({ "GET /api/v1/orgs": ORGS, "POST /api/v1/orgs": errorResponse(403, "limit_reached", "the licence allows 1 organization") });
    renderPage(<OrgsPage />, { route: "/orgs" });
    const u = userEvent.setup({ delay: null });
    await u.click(await screen.findByRole("button", { name: "Create organization" }));
    const dialog = await screen.findByRole("dialog", { name: "Create organization" });
    await u.type(within(dialog).getByLabelText(/^Name/), "More");
    await u.click(within(dialog).getByRole("button", { name: "Create" }));
    expect(await within(dialog).findByRole("alert")).toHaveTextContent("the licence allows 1 organization");
  });

  it("deactivates after typing the slug and reactivates", async () => {
    const api = mockApi({
      "GET /api/v1/orgs": ORGS,
      "POST /api/v1/orgs/o1/deactivate": org("o1", "Default", "default", false),
      "POST /api/v1/orgs/o2/reactivate": org("o2", "Beta", "beta"),
    });
    renderPage(<OrgsPage />, { route: "/orgs" });
    const u = userEvent.setup({ delay: null });
    await u.click(await screen.findByRole("button", { name: "Deactivate Default" }));
    const dialog = await screen.findByRole("alertdialog", { name: "Deactivate Default?" });
    expect(within(dialog).getByRole("button", { name: "Deactivate" })).toBeDisabled();
    await u.type(within(dialog).getByLabelText(/Type the slug/), "default");
    await u.click(within(dialog).getByRole("button", { name: "Deactivate" }));
    await waitFor(() => expect(api.calls("POST", "/api/v1/orgs/o1/deactivate")).toHaveLength(1));
    await u.click(screen.getByRole("button", { name: "Reactivate Beta" }));
    await waitFor(() => expect(api.calls("POST", "/api/v1/orgs/o2/reactivate")).toHaveLength(1));
  });

  it("refuses /orgs and /users to an org admin", async () => {
    mockApi({ "GET /api/v1/me": ME_ORG_ADMIN, "GET /api/v1/*": { data: [], has_more: false } });
    renderApp({ route: "/users" });
    expect(await screen.findByRole("heading", { name: "No access" })).toBeInTheDocument();
  });
});

describe("users page", () => {
  it("creates a user in an organization", async () => {
    const api = mockApi({ "GET /api/v1/users": USERS, "GET /api/v1/orgs": ORGS, "POST /api/v1/users": { status: 201, body: user("u3", "carl@example.com") } });
    renderPage(<UsersPage />, { route: "/users", me: ME_ADMIN });
    const table = await screen.findByRole("table", { name: "Users" });
    expect(within(table).getAllByRole("row")).toHaveLength(3);
    expect(within(table).getByText("System admin")).toBeInTheDocument();
    const u = userEvent.setup({ delay: null });
    await u.click(screen.getByRole("button", { name: "Create user" }));
    const dialog = await screen.findByRole("dialog", { name: "Create user" });
    await u.type(within(dialog).getByLabelText(/^Email/), "carl@example.com");
    await u.type(within(dialog).getByLabelText(/^Password/), "a-long-Passw0rd");
    await u.selectOptions(within(dialog).getByLabelText("Organization role"), "org_admin");
    await u.click(within(dialog).getByRole("button", { name: "Create" }));
    await waitFor(() => expect(api.calls("POST", "/api/v1/users")).toHaveLength(1));
    expect(api.calls("POST", "/api/v1/users")[0]!.body).toEqual({
      email: "carl@example.com",
      display_name: "",
      password: "a-long-Passw0rd",
      org_id: "o1",
      role: "org_admin",
      is_system_admin: false,
    });
  });

  it("makes a user system admin, resets a password and deactivates, each after confirming", async () => {
    const api = mockApi({
      "GET /api/v1/users": USERS,
      "GET /api/v1/orgs": ORGS,
      "PATCH /api/v1/users/u2": (req: { body: unknown }) => ({ ...user("u2", "bob@example.com"), ...(req.body as object) }),
      "DELETE /api/v1/users/u2": { status: 204 },
    });
    renderPage(<UsersPage />, { route: "/users", me: ME_ADMIN });
    const table = await screen.findByRole("table", { name: "Users" });
    expect(within(table).queryByRole("button", { name: /Deactivate admin/ })).toBeNull();
    const u = userEvent.setup({ delay: null });
    await u.click(within(table).getByRole("button", { name: "Make system admin bob" }));
    const confirm = await screen.findByRole("alertdialog", { name: "Make bob a system admin?" });
    await u.click(within(confirm).getByRole("button", { name: "Make system admin" }));
    await waitFor(() => expect(api.calls("PATCH", "/api/v1/users/u2")[0]?.body).toEqual({ is_system_admin: true }));
    await waitFor(() => expect(screen.queryByRole("alertdialog")).toBeNull());

    await u.click(within(table).getByRole("button", { name: "Reset password for bob" }));
    const reset = await screen.findByRole("dialog", { name: "Reset password for bob" });
    await u.type(within(reset).getByLabelText(/^New password/), "another-Passw0rd");
    await u.click(within(reset).getByRole("button", { name: "Reset password" }));
    await waitFor(() => expect(api.calls("PATCH", "/api/v1/users/u2")[1]?.body).toEqual({ password: "another-Passw0rd" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());

    await u.click(within(table).getByRole("button", { name: "Deactivate bob" }));
    const deactivate = await screen.findByRole("alertdialog", { name: "Deactivate bob?" });
    await u.click(within(deactivate).getByRole("button", { name: "Deactivate" }));
    await waitFor(() => expect(api.calls("DELETE", "/api/v1/users/u2")).toHaveLength(1));
  });

  it("shows a refused password reset in its dialog", async () => {
    mockApi({
      "GET /api/v1/users": USERS,
      "GET /api/v1/orgs": ORGS,
      "PATCH /api/v1/users/u2": errorResponse(400, "bad_request", "password is too common"),
    });
    renderPage(<UsersPage />, { route: "/users", me: ME_ADMIN });
    const u = userEvent.setup({ delay: null });
    await u.click(await screen.findByRole("button", { name: "Reset password for bob" }));
    const reset = await screen.findByRole("dialog", { name: "Reset password for bob" });
    await u.type(within(reset).getByLabelText(/^New password/), "password123");
    await u.click(within(reset).getByRole("button", { name: "Reset password" }));
    expect(await within(reset).findByText("password is too common")).toBeInTheDocument();
  });
});
