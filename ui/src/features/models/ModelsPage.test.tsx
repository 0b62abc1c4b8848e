import { describe, expect, it } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import ModelsPage from "../../pages/ModelsPage";
import { errorResponse, mockApi, renderPage } from "../../test/utils";
import type { DeploymentOut, ModelOut } from "./types";

function model(id: string, name: string, extra: Partial<ModelOut> = {}): ModelOut {
  return {
    id,
    name,
    provider: "openai",
    type: "chat",
    base_url: "https://api.openai.com/v1",
    has_api_key: false,
    max_context_tokens: 0,
    input_price_per_1m: 2.5,
    output_price_per_1m: 10,
    azure_deployment: "",
    azure_api_version: "",
    gcp_project: "",
    gcp_location: "",
    aliases: [],
    timeout: "",
    strategy: "",
    max_retries: 0,
    fallback_model_name: "",
    pii_filter: null,
    is_active: true,
    source: "api",
    created_by: "u_admin",
    created_at: "2026-12-01T10:00:00Z",
    updated_at: "2026-12-01T10:00:00Z",
    deployments: [],
    ...extra,
  };
}

function deployment(id: string, name: string, extra: Partial<DeploymentOut> = {}): DeploymentOut {
  return {
    id,
    model_id: "m3",
    name,
    provider: "vllm",
    base_url: `http://${name}:8000/v1`,
    has_api_key: false,
    azure_deployment: "",
    azure_api_version: "",
    gcp_project: "",
    gcp_location: "",
    weight: 1,
    priority: 0,
    pii_filter: null,
    is_active: true,
    created_at: "2026-12-01T10:00:00Z",
    updated_at: "2026-12-01T10:00:00Z",
    ...extra,
  };
}

const GPT = model("m1", "gpt-4o", { has_api_key: true, aliases: ["gpt4"] });
const CLAUDE = model("m2", "claude", { provider: "anthropic", source: "yaml", base_url: "https://api.anthropic.com/v1" });
const LLAMA = model("m3", "llama", {
  provider: "vllm",
  is_active: false,
  strategy: "priority",
  deployments: [deployment("d1", "east", { priority: 0 }), deployment("d2", "west", { priority: 1, has_api_key: true })],
});
const LLAMA_LIVE = { ...LLAMA, id: "m4", name: "llama-live", is_active: true };
const MODELS = [GPT, CLAUDE, LLAMA];

function health(name: string, status: string, extra: Record<string, unknown> = {}) {
  return { name, status, last_check: null, last_error: null, latency_ms: null, health_ok: null, models_ok: null, functional_ok: null, ...extra };
}
const HEALTH = {
  models: [
    health("gpt-4o", "healthy", { latency_ms: 120 }),
    health("claude", "unknown"),
    health("llama-live/east", "unhealthy", { last_error: "HTTP 503" }),
    health("llama-live/west", "degraded"),
  ],
};

function routes(models: ModelOut[] = MODELS) {
  return {
    "GET /api/v1/models": { data: models, has_more: false },
    "GET /api/v1/models/health": HEALTH,
  };
}

const row = async (name: string) => {
  const table = await screen.findByRole("table", { name: "Models" });
  return within(table).getByText(name, { selector: "div" }).closest("tr") as HTMLElement;
};

describe("models page", () => {
  it("lists the registry with health per deployment", async () => {
    mockApi(routes([...MODELS, LLAMA_LIVE]));
    renderPage(<ModelsPage />, { route: "/models" });
    const gpt = await row("gpt-4o");
    expect(within(gpt).getByRole("list", { name: "Health of gpt-4o" })).toHaveTextContent(/gpt-4o\s*Healthy/);
    expect(gpt).toHaveTextContent("120 ms");
    expect(gpt).toHaveTextContent("Aliases: gpt4");
    expect(gpt).toHaveTextContent("Active");
    expect(await row("llama")).toHaveTextContent("Not served while inactive");
    const llama = await row("llama-live");
    const items = within(within(llama).getByRole("list", { name: "Health of llama-live" })).getAllByRole("listitem");
    expect(items[0]).toHaveTextContent(/east\s*Unhealthy\s*HTTP 503/);
    expect(items[1]).toHaveTextContent(/west\s*Degraded/);
    expect(llama).toHaveTextContent("Active");
  });

  it("shows loading, empty and error states", async () => {
    const api = mockApi({ ...routes([]) });
    renderPage(<ModelsPage />, { route: "/models" });
    expect(screen.getByText(/Loading models/)).toBeInTheDocument();
    expect(await screen.findByText("No models yet")).toBeInTheDocument();
    api.set("GET /api/v1/models", errorResponse(503, "unavailable", "database is down"));
    renderPage(<ModelsPage />, { route: "/models" });
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Could not load the models");
    expect(alert).toHaveTextContent("req_test123");
  });

  it("shows a voidllm.yaml model read-only with the reason", async () => {
    const api = mockApi(routes());
    renderPage(<ModelsPage />, { route: "/models" });
    const claude = await row("claude");
    expect(claude).toHaveTextContent("voidllm.yaml");
    expect(claude).toHaveTextContent("Defined in voidllm.yaml; change it there.");
    expect(within(claude).queryByRole("button", { name: /Deactivate|Delete|Edit/ })).toBeNull();
    const user = userEvent.setup({ delay: null });
    await user.click(within(claude).getByRole("button", { name: "View claude" }));
    const dialog = await screen.findByRole("dialog", { name: "claude" });
    expect(dialog).toHaveAccessibleDescription("Defined in voidllm.yaml; change it there.");
    expect(within(dialog).getByLabelText(/^Name/)).toBeDisabled();
    expect(within(dialog).getByLabelText(/^Base URL/)).toHaveValue("https://api.anthropic.com/v1");
    expect(within(dialog).queryByRole("button", { name: /Save|Create|Test connection/ })).toBeNull();
    const closers = within(dialog).getAllByRole("button", { name: "Close" });
    await user.click(closers[closers.length - 1]!);
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(api.requests.filter((r) => r.method !== "GET")).toHaveLength(0);
  });

  it("creates a model with Azure fields and deployments with priority and weight", async () => {
    document.cookie = "voidllm_csrf=m1; path=/";
    const created = model("m9", "azure-gpt", { provider: "azure" });
    const api = mockApi({
      ...routes(),
      "POST /api/v1/models": { status: 201, body: created },
      "POST /api/v1/models/m9/deployments": (req) => ({
        status: 201,
        body: deployment(`d-${(req.body as { name: string }).name}`, (req.body as { name: string }).name),
      }),
    });
    renderPage(<ModelsPage />, { route: "/models" });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Create model" }));
    const dialog = await screen.findByRole("dialog", { name: "Create model" });
    await user.type(within(dialog).getByLabelText(/^Name/), "azure-gpt");
    expect(within(dialog).queryByLabelText("Azure deployment")).toBeNull();
    await user.selectOptions(within(dialog).getByLabelText("Provider"), "azure");
    await user.type(within(dialog).getByLabelText("Azure deployment"), "gpt4o-prod");
    await user.type(within(dialog).getByLabelText("Azure API version"), "2024-10-21");
    await user.type(within(dialog).getByLabelText(/^Base URL/), "https://res.openai.azure.com");
    await user.type(within(dialog).getByLabelText("API key"), "sk-upstream");
    await user.type(within(dialog).getByLabelText("Aliases"), "gpt, default ,");
    await user.type(within(dialog).getByLabelText("Timeout"), "45s");
    await user.selectOptions(within(dialog).getByLabelText("Strategy"), "priority");
    await user.selectOptions(within(dialog).getByLabelText("Fallback model"), "gpt-4o");
    await user.clear(within(dialog).getByLabelText("Input price per 1M tokens"));
    await user.type(within(dialog).getByLabelText("Input price per 1M tokens"), "2.5");

    await user.click(within(dialog).getByRole("button", { name: "Add deployment" }));
    await user.click(within(dialog).getByRole("button", { name: "Add deployment" }));
    const rows = within(dialog).getAllByRole("group", { name: /^Deployment \d/ });
    expect(rows).toHaveLength(2);
    await user.type(within(rows[0]!).getByLabelText(/^Deployment name/), "primary");
    await user.type(within(rows[0]!).getByLabelText(/^Deployment base URL/), "https://a.openai.azure.com");
    await user.type(within(rows[0]!).getByLabelText("Deployment Azure deployment"), "gpt4o-a");
    await user.type(within(rows[1]!).getByLabelText(/^Deployment name/), "backup");
    await user.selectOptions(within(rows[1]!).getByLabelText("Deployment provider"), "openai");
    await user.type(within(rows[1]!).getByLabelText(/^Deployment base URL/), "https://api.openai.com/v1");
    await user.clear(within(rows[1]!).getByLabelText("Priority"));
    await user.type(within(rows[1]!).getByLabelText("Priority"), "1");
    await user.clear(within(rows[1]!).getByLabelText("Weight"));
    await user.type(within(rows[1]!).getByLabelText("Weight"), "3");
    await user.click(within(dialog).getByRole("button", { name: "Create" }));

    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    const post = api.calls("POST", "/api/v1/models")[0]!;
    expect(post.headers.get("X-CSRF-Token")).toBe("m1");
    expect(post.body).toMatchObject({
      name: "azure-gpt",
      provider: "azure",
      base_url: "https://res.openai.azure.com",
      api_key: "sk-upstream",
      azure_deployment: "gpt4o-prod",
      azure_api_version: "2024-10-21",
      aliases: ["gpt", "default"],
      timeout: "45s",
      strategy: "priority",
      fallback_model_name: "gpt-4o",
      input_price_per_1m: 2.5,
    });
    const deps = api.calls("POST", "/api/v1/models/m9/deployments").map((r) => r.body);
    expect(deps).toEqual([
      expect.objectContaining({ name: "primary", provider: "azure", azure_deployment: "gpt4o-a", priority: 0, weight: 1 }),
      expect.objectContaining({ name: "backup", provider: "openai", base_url: "https://api.openai.com/v1", priority: 1, weight: 3 }),
    ]);
    expect(deps[1]).not.toHaveProperty("api_key");
  }, 60_000);

  it("never shows the stored key back and sends only what changed", async () => {
    const api = mockApi({
      ...routes(),
      "PATCH /api/v1/models/m1": (req) => ({ ...GPT, ...(req.body as object) }),
    });
    renderPage(<ModelsPage />, { route: "/models" });
    const user = userEvent.setup({ delay: null });
    await user.click(within(await row("gpt-4o")).getByRole("button", { name: "Edit gpt-4o" }));
    const dialog = await screen.findByRole("dialog", { name: "Edit gpt-4o" });
    const key = within(dialog).getByLabelText("API key");
    expect(key).toHaveValue("");
    expect(key).toHaveAttribute("type", "password");
    expect(key).toHaveAccessibleDescription(/Leave empty to keep it/);
    expect(within(dialog).getByLabelText("Aliases")).toHaveValue("gpt4");
    await user.type(within(dialog).getByLabelText("Timeout"), "30s");
    await user.click(within(dialog).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(api.calls("PATCH", "/api/v1/models/m1")[0]!.body).toEqual({ timeout: "30s" });
  });

  it("edits deployments: changes, removes and adds them", async () => {
    const api = mockApi({
      ...routes(),
      "PATCH /api/v1/models/m3/deployments/d2": deployment("d2", "west", { weight: 5 }),
      "DELETE /api/v1/models/m3/deployments/d1": { status: 204 },
      "POST /api/v1/models/m3/deployments": { status: 201, body: deployment("d3", "north") },
    });
    renderPage(<ModelsPage />, { route: "/models" });
    const user = userEvent.setup({ delay: null });
    await user.click(within(await row("llama")).getByRole("button", { name: "Edit llama" }));
    const dialog = await screen.findByRole("dialog", { name: "Edit llama" });
    await user.click(within(dialog).getByRole("button", { name: "Remove Deployment 1: east" }));
    const west = within(dialog).getByRole("group", { name: "Deployment 1: west" });
    expect(within(west).getByLabelText("Deployment API key")).toHaveValue("");
    await user.clear(within(west).getByLabelText("Weight"));
    await user.type(within(west).getByLabelText("Weight"), "5");
    await user.click(within(dialog).getByRole("button", { name: "Add deployment" }));
    const added = within(dialog).getByRole("group", { name: "Deployment 2" });
    await user.type(within(added).getByLabelText(/^Deployment name/), "north");
    await user.type(within(added).getByLabelText(/^Deployment base URL/), "http://north:8000/v1");
    await user.click(within(dialog).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(api.calls("PATCH", "/api/v1/models/m3")).toHaveLength(0);
    expect(api.calls("DELETE", "/api/v1/models/m3/deployments/d1")).toHaveLength(1);
    expect(api.calls("PATCH", "/api/v1/models/m3/deployments/d2")[0]!.body).toEqual({ weight: 5 });
    expect(api.calls("POST", "/api/v1/models/m3/deployments")[0]!.body).toMatchObject({ name: "north", provider: "vllm" });
  }, 40_000);

  it("marks the field a 400 names, also when only its message names it", async () => {
    mockApi({
      ...routes(),
      "PATCH /api/v1/models/m1": // as the gateway sends it: the message names the field, the envelope has no `field`
      errorResponse(400, "bad_request", "timeout must be a positive duration such as 30s or 2m"),
    });
    renderPage(<ModelsPage />, { route: "/models" });
    const user = userEvent.setup({ delay: null });
    await user.click(within(await row("gpt-4o")).getByRole("button", { name: "Edit gpt-4o" }));
    const dialog = await screen.findByRole("dialog", { name: "Edit gpt-4o" });
    await user.type(within(dialog).getByLabelText("Timeout"), "soon");
    await user.click(within(dialog).getByRole("button", { name: "Save" }));
    const timeout = within(dialog).getByLabelText("Timeout");
    await waitFor(() => expect(timeout).toHaveAttribute("aria-invalid", "true"));
    expect(timeout).toHaveAccessibleDescription(/timeout must be a positive duration/);
  });

  it("tests the connection and shows the result", async () => {
    const api = mockApi({
      ...routes(),
      "POST /api/v1/models/test-connection": (req) =>
        (req.body as { api_key: string }).api_key === "sk-good"
          ? { success: true, message: "connection successful: 3 models available" }
          : { success: false, message: "upstream answered HTTP 401" },
    });
    renderPage(<ModelsPage />, { route: "/models" });
    const user = userEvent.setup({ delay: null });
    await user.click(await screen.findByRole("button", { name: "Create model" }));
    const dialog = await screen.findByRole("dialog", { name: "Create model" });
    expect(within(dialog).getByRole("button", { name: "Test connection" })).toBeDisabled();
    await user.type(within(dialog).getByLabelText(/^Base URL/), "https://api.openai.com/v1");
    await user.type(within(dialog).getByLabelText("API key"), "sk-bad");
    await user.click(within(dialog).getByRole("button", { name: "Test connection" }));
    expect(await within(dialog).findByText(/Connection failed: upstream answered HTTP 401/)).toBeInTheDocument();
    await user.clear(within(dialog).getByLabelText("API key"));
    await user.type(within(dialog).getByLabelText("API key"), "sk-good");
    await user.click(within(dialog).getByRole("button", { name: "Test connection" }));
    expect(await within(dialog).findByText(/Connection works: connection successful: 3 models available/)).toBeInTheDocument();
    expect(api.calls("POST", "/api/v1/models/test-connection")[1]!.body).toEqual({
      provider: "openai",
      base_url: "https://api.openai.com/v1",
      api_key: "sk-good",
    });
  }, 40_000);

  it("activates and deactivates API models", async () => {
    let models = MODELS;
    const api = mockApi({
      "GET /api/v1/models": () => ({ data: models, has_more: false }),
      "GET /api/v1/models/health": HEALTH,
      "PATCH /api/v1/models/m1/deactivate": () => {
        models = models.map((m) => (m.id === "m1" ? { ...m, is_active: false } : m));
        return { ...GPT, is_active: false };
      },
      "PATCH /api/v1/models/m3/activate": { ...LLAMA, is_active: true },
    });
    renderPage(<ModelsPage />, { route: "/models" });
    const user = userEvent.setup({ delay: null });
    await user.click(within(await row("gpt-4o")).getByRole("button", { name: "Deactivate gpt-4o" }));
    expect(await within(await row("gpt-4o")).findByRole("button", { name: "Activate gpt-4o" })).toBeInTheDocument();
    await user.click(within(await row("llama")).getByRole("button", { name: "Activate llama" }));
    await waitFor(() => expect(api.calls("PATCH", "/api/v1/models/m3/activate")).toHaveLength(1));
    expect(api.calls("PATCH", "/api/v1/models/m1/deactivate")).toHaveLength(1);
  });
});
