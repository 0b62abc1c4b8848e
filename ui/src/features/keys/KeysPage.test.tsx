import { describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import KeysPage from "../../pages/KeysPage";
import { ME_MEMBER, ME_ORG_ADMIN, errorResponse, mockApi, renderPage, untilClickable } from "../../test/utils";
import type { KeyOut } from "./types";

const DAY = 24 * 3600 * 1000;
const iso = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString();

function key(id: string, name: string, extra: Partial<KeyOut> = {}): KeyOut {
  return {
    id,
    name,
    key_type: "user_key",
    key_hint: `vl_uk_…${id}`,
    org_id: "o1",
    team_id: null,
    user_id: "u_org",
    service_account_id: null,
    daily_token_limit: 0,
    monthly_token_limit: 0,
    requests_per_minute: 0,
    requests_per_day: 0,
    expires_at: null,
    last_used_at: null,
    created_by: "u_org",
    created_at: "2026-12-01T10:00:00Z",
    updated_at: "2026-12-01T10:00:00Z",
    ...extra,
  };
}

const KEYS = [
  key("k1", "ci-runner"),
  key("k2", "staging", { expires_at: iso(2 * DAY) }),
  key("k3", "old-laptop", { expires_at: iso(-DAY) }),
  key("k4", "platform", { key_type: "team_key", team_id: "t1", user_id: null }),
];
const TEAMS = { data: [{ id: "t1", org_id: "o1", name: "Platform", slug: "platform" }], has_more: false };
const PLAINTEXT = "vl_uk_0123456789abcdefSECRET";

function baseRoutes(keys: KeyOut[] = KEYS) {
  return {
    "GET /api/v1/orgs/o1/keys": { data: keys, has_more: false },
    "GET /api/v1/orgs/o1/teams": TEAMS,
    "GET /api/v1/orgs/o1/service-accounts": { data: [{ id: "sa1", name: "billing-bot", org_id: "o1", team_id: null, key_count: 0 }], has_more: false },
    "GET /api/v1/me/available-models": { models: [{ name: "gpt-4o", type: "chat" }, { name: "embed", type: "embedding" }] },
  };
}

const counts = () => within(screen.getByRole("region", { name: "Key counts" }));

describe("API keys page", () => {
  it("lists the keys with total, active and expiring-soon counts over every page", async () => {
    const api = mockApi({
      ...baseRoutes(),
      "GET /api/v1/orgs/o1/keys": (req) =>
        req.url.searchParams.get("cursor") === "c2"
          ? { data: KEYS.slice(2), has_more: false }
          : { data: KEYS.slice(0, 2), has_more: true, next_cursor: "c2" },
    });
    renderPage(<KeysPage />, { route: "/keys", me: ME_ORG_ADMIN });
    const table = await screen.findByRole("table", { name: "API keys" });
    expect(within(table).getAllByRole("row")).toHaveLength(5);
    expect(counts().getByText("Total keys").nextSibling).toHaveTextContent("4");
    expect(screen.getByText("4 keys")).toBeInTheDocument();
    expect(counts().getByText("Active keys").nextSibling).toHaveTextContent("3");
    expect(counts().getByText("Expiring soon").nextSibling).toHaveTextContent("1");
    expect(api.calls("GET", "/api/v1/orgs/o1/keys").map((r) => r.url.searchParams.get("cursor"))).toEqual([null, "c2"]);
    expect(within(table).getByText("Expired")).toBeInTheDocument();
    expect(within(table).getByText("Platform")).toBeInTheDocument();
  });

  it("counts one key in the singular", async () => {
    mockApi({ ...baseRoutes(), "GET /api/v1/orgs/o1/keys": { data: KEYS.slice(0, 1), has_more: false } });
    renderPage(<KeysPage />, { route: "/keys", me: ME_ORG_ADMIN });
    await screen.findByRole("table", { name: "API keys" });
    expect(screen.getByText("1 key")).toBeInTheDocument();
  });

  it("keeps the filter and the search in the URL", async () => {
    mockApi(baseRoutes());
    const { router } = renderPage(<KeysPage />, { route: "/keys?q=stag", me: ME_ORG_ADMIN });
    const table = await screen.findByRole("table", { name: "API keys" });
    expect(within(table).getAllByRole("row")).toHaveLength(2);
    expect(within(table).getByText("staging")).toBeInTheDocument();
    expect(screen.getByText("1 of 4 keys")).toBeInTheDocument();
    expect(screen.getByLabelText("Search")).toHaveValue("stag");

    const user = userEvent.setup({ delay: null });
    await user.clear(screen.getByLabelText("Search"));
    await user.selectOptions(screen.getByLabelText("Status"), "expired");
    expect(router.state.location.search).toBe("?status=expired");
    expect(within(screen.getByRole("table", { name: "API keys" })).getAllByRole("row")).toHaveLength(2);
    expect(screen.getByText("old-laptop")).toBeInTheDocument();

    await user.selectOptions(screen.getByLabelText("Status"), "");
    await user.selectOptions(screen.getByLabelText("Type"), "team_key");
    expect(router.state.location.search).toBe("?type=team_key");
    expect(within(screen.getByRole("table", { name: "API keys" })).getAllByRole("row")).toHaveLength(2);
    expect(screen.getByText("platform")).toBeInTheDocument();
  });

  it("shows loading, then an error state with the request id", async () => {
    mockApi({ ...baseRoutes(), "GET /api/v1/orgs/o1/keys": errorResponse(500, "internal_error", "boom") });
    renderPage(<KeysPage />, { route: "/keys" });
    expect(screen.getByText(/Loading keys/)).toBeInTheDocument();
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Could not load the keys");
    expect(alert).toHaveTextContent("req_test123");
  });

  it("shows an empty state with a create button", async () => {
    mockApi(baseRoutes([]));
    renderPage(<KeysPage />, { route: "/keys" });
    expect(await screen.findByText("No keys yet")).toBeInTheDocument();
    expect(screen.getAllByRole("button", { name: "Create key" })).toHaveLength(2);
  });

  it("creates a key, shows it once with a copy button, and forgets it when the dialog closes", async () => {
    document.cookie = "voidllm_csrf=t1; path=/";
    const created = { ...key("k9", "deploy-bot", { key_type: "team_key", team_id: "t1", user_id: null }), key: PLAINTEXT };
    const api = mockApi({
      ...baseRoutes(),
      "POST /api/v1/orgs/o1/keys": { status: 201, body: created },
      "PUT /api/v1/orgs/o1/keys/k9/model-access": { models: ["gpt-4o"] },
    });
    const { client } = renderPage(<KeysPage />, { route: "/keys", me: ME_ORG_ADMIN });
    const user = userEvent.setup({ delay: null });
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });

    await user.click(await screen.findByRole("button", { name: "Create key" }));
    const dialog = await screen.findByRole("dialog", { name: "Create key" });
    await user.type(within(dialog).getByLabelText(/^Name/), "deploy-bot");
    await user.selectOptions(within(dialog).getByLabelText("Key type"), "team_key");
    await user.selectOptions(await within(dialog).findByLabelText(/^Team/), "t1");
    const rpm = within(dialog).getByLabelText("Requests per minute");
    expect(rpm).toHaveAccessibleDescription("0 = unlimited");
    await user.clear(rpm);
    await user.type(rpm, "60");
    await user.clear(within(dialog).getByLabelText("Monthly token limit"));
    await user.type(within(dialog).getByLabelText("Monthly token limit"), "1000000");
    await user.selectOptions(within(dialog).getByLabelText("Expiry"), "30");
    await user.click(await within(dialog).findByRole("checkbox", { name: "gpt-4o" }));
    await user.click(within(dialog).getByRole("button", { name: "Create" }));

    const shown = await screen.findByRole("dialog", { name: "Key created" });
    expect(within(shown).getByLabelText("API key")).toHaveValue(PLAINTEXT);
    expect(within(shown).getByText(/shown only once/)).toBeInTheDocument();
    await user.click(within(shown).getByRole("button", { name: "Copy" }));
    expect(writeText).toHaveBeenCalledWith(PLAINTEXT);

    const post = api.calls("POST", "/api/v1/orgs/o1/keys")[0]!;
    expect(post.headers.get("X-CSRF-Token")).toBe("t1");
    expect(post.body).toMatchObject({
      name: "deploy-bot",
      key_type: "team_key",
      team_id: "t1",
      requests_per_minute: 60,
      requests_per_day: 0,
      daily_token_limit: 0,
      monthly_token_limit: 1000000,
    });
    expect(post.body).not.toHaveProperty("user_id");
    const expires = new Date((post.body as { expires_at: string }).expires_at).getTime();
    expect(Math.abs(expires - (Date.now() + 30 * DAY))).toBeLessThan(60_000);
    expect(api.calls("PUT", "/api/v1/orgs/o1/keys/k9/model-access")[0]!.body).toEqual({ models: ["gpt-4o"] });

    // The plaintext is in no cache, no storage and not in the URL.
    const cached = JSON.stringify([
      client.getQueryCache().getAll().map((q) => q.state.data),
      client.getMutationCache().getAll().map((m) => m.state.data),
    ]);
    expect(cached).not.toContain(PLAINTEXT);
    expect(window.location.href).not.toContain(PLAINTEXT);
    expect(JSON.stringify({ ...window.localStorage, ...window.sessionStorage })).not.toContain(PLAINTEXT);

    await user.click(within(shown).getByRole("button", { name: "Done" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(document.body.textContent).not.toContain(PLAINTEXT);
    await user.click(screen.getByRole("button", { name: "Create key" }));
    const again = await screen.findByRole("dialog", { name: "Create key" });
    expect(within(again).getByLabelText(/^Name/)).toHaveValue("");
    expect(document.body.innerHTML).not.toContain(PLAINTEXT);
  }, 40_000);

  it("marks the field a 400 names", async () => {
    mockApi({
      ...baseRoutes(),
      "POST /api/v1/orgs/o1/keys": errorResponse(400, "invalid_request", "expires_at must be in the future", { field: "expires_at" }),
    });
    renderPage(<KeysPage />, { route: "/keys", me: ME_MEMBER });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Create key" }));
    const dialog = await screen.findByRole("dialog", { name: "Create key" });
    await user.click(within(dialog).getByRole("button", { name: "Create" }));
    expect(within(dialog).getByLabelText(/^Name/)).toHaveAccessibleDescription("Enter a name.");
    await user.type(within(dialog).getByLabelText(/^Name/), "mine");
    await user.selectOptions(within(dialog).getByLabelText("Expiry"), "7");
    await user.click(within(dialog).getByRole("button", { name: "Create" }));
    const expiry = within(dialog).getByLabelText("Expiry");
    await waitFor(() => expect(expiry).toHaveAttribute("aria-invalid", "true"));
    expect(expiry).toHaveAccessibleDescription("expires_at must be in the future");
    expect(within(dialog).getByLabelText(/^Name/)).not.toHaveAttribute("aria-invalid", "true");
  });

  it("lets a member create only an own user key, without type, account or model choices", async () => {
    const api = mockApi({
      ...baseRoutes([key("m1", "mine", { user_id: "u_member", team_id: "t1" })]),
      "POST /api/v1/orgs/o1/keys": { status: 201, body: { ...key("m2", "laptop", { user_id: "u_member" }), key: PLAINTEXT } },
    });
    renderPage(<KeysPage />, { route: "/keys", me: ME_MEMBER });
    const user = userEvent.setup({ delay: null });
    await screen.findByRole("table", { name: "API keys" });
    expect(screen.queryByLabelText("Type")).toBeNull();
    expect(screen.getByRole("button", { name: "Rotate mine" })).toBeInTheDocument();
    expect(api.calls("GET", "/api/v1/orgs/o1/service-accounts")).toHaveLength(0);

    await user.click(screen.getByRole("button", { name: "Create key" }));
    const dialog = await screen.findByRole("dialog", { name: "Create key" });
    expect(within(dialog).queryByLabelText("Key type")).toBeNull();
    expect(within(dialog).queryByLabelText("Service account")).toBeNull();
    expect(within(dialog).queryByRole("group", { name: "Allowed models" })).toBeNull();
    await user.type(within(dialog).getByLabelText(/^Name/), "laptop");
    await user.click(within(dialog).getByRole("button", { name: "Create" }));
    await screen.findByRole("dialog", { name: "Key created" });
    expect(api.calls("POST", "/api/v1/orgs/o1/keys")[0]!.body).toEqual({
      name: "laptop",
      key_type: "user_key",
      user_id: "u_member",
      requests_per_minute: 0,
      requests_per_day: 0,
      daily_token_limit: 0,
      monthly_token_limit: 0,
    });
    expect(api.calls("GET", "/api/v1/me/available-models")).toHaveLength(0);
  });

  it("lets a member rename an own key but not change its limits", async () => {
    const api = mockApi({
      ...baseRoutes([key("m1", "mine", { user_id: "u_member", team_id: "t1", requests_per_minute: 10 })]),
      "PATCH /api/v1/orgs/o1/keys/m1": (req) => ({ ...key("m1", "renamed"), ...(req.body as object) }),
    });
    renderPage(<KeysPage />, { route: "/keys", me: ME_MEMBER });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Edit mine" }));
    const dialog = await screen.findByRole("dialog", { name: "Edit mine" });
    expect(within(dialog).queryByLabelText("Requests per minute")).toBeNull();
    expect(within(dialog).getByText(/set by an administrator/)).toBeInTheDocument();
    const name = within(dialog).getByLabelText(/^Name/);
    await user.clear(name);
    await user.type(name, "renamed");
    await user.click(within(dialog).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(api.calls("PATCH", "/api/v1/orgs/o1/keys/m1")[0]!.body).toEqual({ name: "renamed" });
  });

  it("lets an admin change limits and the model allowlist, sending only what changed", async () => {
    const api = mockApi({
      ...baseRoutes(),
      "GET /api/v1/orgs/o1/keys/k1/model-access": { models: ["embed"] },
      "PATCH /api/v1/orgs/o1/keys/k1": key("k1", "ci-runner"),
      "PUT /api/v1/orgs/o1/keys/k1/model-access": { models: ["gpt-4o"] },
    });
    renderPage(<KeysPage />, { route: "/keys", me: ME_ORG_ADMIN });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Edit ci-runner" }));
    const dialog = await screen.findByRole("dialog", { name: "Edit ci-runner" });
    expect(await within(dialog).findByRole("checkbox", { name: "embed" })).toBeChecked();
    await user.click(within(dialog).getByRole("checkbox", { name: "embed" }));
    await user.click(within(dialog).getByRole("checkbox", { name: "gpt-4o" }));
    await user.clear(within(dialog).getByLabelText("Requests per day"));
    await user.type(within(dialog).getByLabelText("Requests per day"), "500");
    await user.click(within(dialog).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(api.calls("PATCH", "/api/v1/orgs/o1/keys/k1")[0]!.body).toEqual({ requests_per_day: 500 });
    expect(api.calls("PUT", "/api/v1/orgs/o1/keys/k1/model-access")[0]!.body).toEqual({ models: ["gpt-4o"] });
  });

  it("rotates after a confirmation with the 24 h grace warning and shows the new key once", async () => {
    document.cookie = "voidllm_csrf=r1; path=/";
    const graceEnd = iso(DAY);
    const api = mockApi({
      ...baseRoutes(),
      "POST /api/v1/orgs/o1/keys/k1/rotate": {
        new_key: { ...key("k5", "ci-runner (rotated)"), key: PLAINTEXT },
        old_key: key("k1", "ci-runner", { expires_at: graceEnd }),
      },
    });
    renderPage(<KeysPage />, { route: "/keys", me: ME_ORG_ADMIN });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Rotate ci-runner" }));
    const confirm = await screen.findByRole("alertdialog", { name: "Rotate ci-runner?" });
    expect(confirm).toHaveTextContent("keeps working for 24 hours");
    expect(api.calls("POST", "/api/v1/orgs/o1/keys/k1/rotate")).toHaveLength(0);
    await user.click(within(confirm).getByRole("button", { name: "Rotate" }));
    const shown = await screen.findByRole("dialog", { name: "Key rotated" });
    expect(within(shown).getByLabelText("New API key")).toHaveValue(PLAINTEXT);
    expect(shown).toHaveTextContent(/old key keeps working until/);
    expect(api.calls("POST", "/api/v1/orgs/o1/keys/k1/rotate")[0]!.headers.get("X-CSRF-Token")).toBe("r1");
    // The confirmation is replaced by this dialog in one render: wait until Radix lets the pointer in.
    await user.click(await untilClickable(within(shown).getByRole("button", { name: "Done" })));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(document.body.innerHTML).not.toContain(PLAINTEXT);
  });

  it("revokes only after a destructive confirmation", async () => {
    let keys = KEYS;
    const api = mockApi({
      ...baseRoutes(),
      "GET /api/v1/orgs/o1/keys": () => ({ data: keys, has_more: false }),
      "DELETE /api/v1/orgs/o1/keys/k2": () => {
        keys = KEYS.filter((k) => k.id !== "k2");
        return { status: 204 };
      },
    });
    renderPage(<KeysPage />, { route: "/keys", me: ME_ORG_ADMIN });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Revoke staging" }));
    const confirm = await screen.findByRole("alertdialog", { name: "Revoke staging?" });
    await user.click(within(confirm).getByRole("button", { name: "Cancel" }));
    expect(api.calls("DELETE", "/api/v1/orgs/o1/keys/k2")).toHaveLength(0);
    await user.click(screen.getByRole("button", { name: "Revoke staging" }));
    await user.click(within(await screen.findByRole("alertdialog")).getByRole("button", { name: "Revoke" }));
    await waitFor(() => expect(screen.queryByText("staging")).toBeNull());
    expect(api.calls("DELETE", "/api/v1/orgs/o1/keys/k2")).toHaveLength(1);
  });
});
