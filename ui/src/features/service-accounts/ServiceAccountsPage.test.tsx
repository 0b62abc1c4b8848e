import { describe, expect, it } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import ServiceAccountsPage from "../../pages/ServiceAccountsPage";
import { ME_MEMBER, ME_ORG_ADMIN, errorResponse, mockApi, renderPage } from "../../test/utils";
import type { ServiceAccount } from "./data";

function account(id: string, name: string, extra: Partial<ServiceAccount> = {}): ServiceAccount {
  return {
    id,
    name,
    org_id: "o1",
    team_id: null,
    created_by: "u_org",
    key_count: 2,
    created_at: "2026-12-01T10:00:00Z",
    updated_at: "2026-12-01T10:00:00Z",
    ...extra,
  };
}

const page = <T,>(data: T[]) => ({ data, has_more: false });
const TEAMS = page([
  { id: "t1", org_id: "o1", name: "Red", slug: "red" },
  { id: "t2", org_id: "o1", name: "Blue", slug: "blue" },
]);

function routes() {
  return {
    "GET /api/v1/orgs/o1/service-accounts": page([account("sa1", "billing-bot"), account("sa2", "ci", { team_id: "t1", key_count: 0 })]),
    "GET /api/v1/orgs/o1/teams": TEAMS,
  };
}

describe("Service accounts page", () => {
  it("lists the accounts with their owner and a link to their keys", async () => {
    mockApi(routes());
    renderPage(<ServiceAccountsPage />, { route: "/service-accounts", me: ME_ORG_ADMIN });
    expect(screen.getByRole("heading", { name: "Service Accounts" })).toBeInTheDocument();
    const table = await screen.findByRole("table", { name: "Service accounts" });
    const rows = within(table).getAllByRole("row");
    expect(rows).toHaveLength(3);
    expect(rows[1]).toHaveTextContent("Organization");
    await waitFor(() => expect(rows[2]).toHaveTextContent("Red"));
    expect(within(table).getByRole("link", { name: "Keys of billing-bot: 2" })).toHaveAttribute("href", "/keys?account=sa1");
  });

  it("creates an organization-wide account as an org admin", async () => {
    const api = mockApi({ ...routes(), "POST /api/v1/orgs/o1/service-accounts": { status: 201, body: account("sa9", "deployer") } });
    renderPage(<ServiceAccountsPage />, { route: "/service-accounts", me: ME_ORG_ADMIN });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Create service account" }));
    const dialog = await screen.findByRole("dialog", { name: "Create service account" });
    await user.type(within(dialog).getByLabelText(/^Name/), "deployer");
    await user.click(within(dialog).getByRole("button", { name: "Create" }));
    await waitFor(() => expect(api.calls("POST", "/api/v1/orgs/o1/service-accounts")).toHaveLength(1));
    expect(api.calls("POST", "/api/v1/orgs/o1/service-accounts")[0]!.body).toEqual({ name: "deployer", team_id: null });
  });

  it("makes a team admin choose one of their teams, and shows the API's refusal in the dialog", async () => {
    const api = mockApi({
      ...routes(),
      "POST /api/v1/orgs/o1/service-accounts": errorResponse(403, "forbidden", "only admins of the team manage its service accounts"),
    });
    renderPage(<ServiceAccountsPage />, { route: "/service-accounts", me: { ...ME_MEMBER, team_admin_of: ["t1"] } });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Create service account" }));
    const dialog = await screen.findByRole("dialog", { name: "Create service account" });
    await user.type(within(dialog).getByLabelText(/^Name/), "bot");
    await user.click(within(dialog).getByRole("button", { name: "Create" }));
    expect(await within(dialog).findByText("Choose a team.")).toBeInTheDocument();
    const team = within(dialog).getByRole("combobox", { name: /Team/ });
    await waitFor(() => expect(within(team).getAllByRole("option").map((o) => o.textContent)).toEqual(["Choose a team", "Red"]));
    await user.selectOptions(team, "t1");
    await user.click(within(dialog).getByRole("button", { name: "Create" }));
    expect(await within(dialog).findByRole("alert")).toHaveTextContent("only admins of the team manage its service accounts");
    expect(api.calls("POST", "/api/v1/orgs/o1/service-accounts")[0]!.body).toEqual({ name: "bot", team_id: "t1" });
  });

  it("renames an account and deletes one after confirming", async () => {
    const api = mockApi({
      ...routes(),
      "PATCH /api/v1/orgs/o1/service-accounts/sa1": account("sa1", "billing"),
      "DELETE /api/v1/orgs/o1/service-accounts/sa2": { status: 204 },
    });
    renderPage(<ServiceAccountsPage />, { route: "/service-accounts", me: ME_ORG_ADMIN });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Rename billing-bot" }));
    const dialog = await screen.findByRole("dialog", { name: "Rename service account" });
    const name = within(dialog).getByLabelText(/^Name/);
    await user.clear(name);
    await user.type(name, "billing");
    await user.click(within(dialog).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(api.calls("PATCH", "/api/v1/orgs/o1/service-accounts/sa1")).toHaveLength(1));
    expect(api.calls("PATCH", "/api/v1/orgs/o1/service-accounts/sa1")[0]!.body).toEqual({ name: "billing" });

    await user.click(screen.getByRole("button", { name: "Delete ci" }));
    const confirm = await screen.findByRole("alertdialog", { name: "Delete service account" });
    expect(api.calls("DELETE", "/api/v1/orgs/o1/service-accounts/sa2")).toHaveLength(0);
    await user.click(within(confirm).getByRole("button", { name: "Delete" }));
    await waitFor(() => expect(api.calls("DELETE", "/api/v1/orgs/o1/service-accounts/sa2")).toHaveLength(1));
  });
});
