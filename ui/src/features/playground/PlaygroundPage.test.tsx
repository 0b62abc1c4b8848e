import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import PlaygroundPage from "../../pages/PlaygroundPage";
import { ME_MEMBER, errorResponse, mockApi, renderApp, renderPage } from "../../test/utils";
import { cosineSimilarity } from "./client";
import { eventData, splitEvents } from "./sse";

const MODELS = {
  models: [
    { name: "demo", type: "chat" },
    { name: "gpt-big", type: "chat" },
    { name: "legacy-complete", type: "completion" },
    { name: "embedder", type: "embedding" },
    { name: "reranker", type: "reranking" },
  ],
};

const CHAT_PATH = "/api/v1/playground/chat/completions";

/** A stream the test feeds one chunk at a time; records whether the reader cancelled it. */
function controlledStream() {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const state = { cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return {
    stream,
    state,
    push: (text: string) => controller.enqueue(encoder.encode(text)),
    close: () => controller.close(),
  };
}

const chunk = (content: string) =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", model: "demo", choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

const usageChunk = `data: ${JSON.stringify({
  id: "c1",
  object: "chat.completion.chunk",
  model: "demo",
  choices: [],
  usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
})}\n\n`;

interface Seen {
  url: URL;
  init: RequestInit;
  body: Record<string, unknown>;
}

/**
 * mockApi for the JSON routes, plus `path` answered by `respond` (a Response with a live stream body, which
 * mockApi cannot build). Returns what `path` received.
 */
function withRoute(routes: Parameters<typeof mockApi>[0], path: string, respond: (seen: Seen) => Response | Promise<Response>) {
  const api = mockApi(routes);
  const seen: Seen[] = [];
  vi.stubGlobal("fetch", async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(input instanceof URL ? input.href : typeof input === "string" ? input : input.url, document.baseURI);
    if (url.pathname !== path) return api(input, init);
    const entry = { url, init, body: JSON.parse(String(init.body)) as Record<string, unknown> };
    seen.push(entry);
    return respond(entry);
  });
  return { api, seen };
}

const sse = (stream: ReadableStream<Uint8Array>) =>
  new Response(stream, { status: 200, headers: { "Content-Type": "text/event-stream" } });

async function typeAndSend(user: ReturnType<typeof userEvent.setup>, text: string) {
  await user.type(await screen.findByLabelText("Message"), text);
  await user.click(screen.getByRole("button", { name: "Send" }));
}

const answer = () => screen.getAllByTestId("answer").at(-1)!;

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("playground: chat", () => {
  it("streams the answer token by token, with usage and latency at the end", async () => {
    document.cookie = "voidllm_csrf=c1; path=/";
    const feed = controlledStream();
    const { seen } = withRoute({ "GET /api/v1/me/available-models": MODELS }, CHAT_PATH, () => sse(feed.stream));
    renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    expect(await screen.findByRole("switch", { name: "Stream" })).toBeChecked();
    await user.type(screen.getByLabelText("System prompt"), "Be brief.");
    await typeAndSend(user, "Say hello");

    await waitFor(() => expect(seen).toHaveLength(1));
    expect(seen[0]!.body).toEqual({
      model: "demo",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Say hello" },
      ],
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(new Headers(seen[0]!.init.headers).get("X-CSRF-Token")).toBe("c1");
    expect(new Headers(seen[0]!.init.headers).get("Authorization")).toBeNull();
    expect(screen.getByRole("button", { name: "Stop" })).toBeInTheDocument();

    feed.push(chunk("Hel"));
    await waitFor(() => expect(answer()).toHaveTextContent(/^Hel$/));
    feed.push(chunk("lo"));
    await waitFor(() => expect(answer()).toHaveTextContent(/^Hello$/));
    // An event split across two network chunks is delivered once complete.
    const tail = chunk(", world");
    feed.push(tail.slice(0, 20));
    feed.push(tail.slice(20));
    await waitFor(() => expect(answer()).toHaveTextContent(/^Hello, world$/));
    expect(screen.getByRole("log", { name: "Conversation" })).toHaveAttribute("aria-busy", "true");

    feed.push(usageChunk);
    feed.push("data: [DONE]\n\n");
    const details = await screen.findByLabelText("Answer details");
    expect(details).toHaveTextContent("Total tokens:8");
    expect(details).toHaveTextContent("Latency:");
    expect(details).toHaveTextContent("First token:");
    expect(screen.queryByRole("button", { name: "Stop" })).toBeNull();
    expect(screen.getByRole("log", { name: "Conversation" })).toHaveAttribute("aria-busy", "false");
  });

  it("sends the history with the next message", async () => {
    const feeds: ReturnType<typeof controlledStream>[] = [];
    const { seen } = withRoute({ "GET /api/v1/me/available-models": MODELS }, CHAT_PATH, () => {
      const feed = controlledStream();
      feeds.push(feed);
      return sse(feed.stream);
    });
    renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    await typeAndSend(user, "One");
    await waitFor(() => expect(feeds).toHaveLength(1));
    feeds[0]!.push(chunk("First answer"));
    feeds[0]!.push("data: [DONE]\n\n");
    await waitFor(() => expect(screen.queryByRole("button", { name: "Stop" })).toBeNull());
    await typeAndSend(user, "Two");
    await waitFor(() => expect(seen).toHaveLength(2));
    expect(seen[1]!.body.messages).toEqual([
      { role: "user", content: "One" },
      { role: "assistant", content: "First answer" },
      { role: "user", content: "Two" },
    ]);
  });

  it("stops a stream: the request is aborted, the partial answer stays marked stopped", async () => {
    const feed = controlledStream();
    const { seen } = withRoute({ "GET /api/v1/me/available-models": MODELS }, CHAT_PATH, () => sse(feed.stream));
    renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    await typeAndSend(user, "Tell me a long story");
    feed.push(chunk("Once upon"));
    await waitFor(() => expect(answer()).toHaveTextContent("Once upon"));

    await user.click(screen.getByRole("button", { name: "Stop" }));
    expect(await screen.findByText("Stopped")).toBeInTheDocument();
    expect(seen[0]!.init.signal!.aborted).toBe(true);
    expect(feed.state.cancelled).toBe(true);
    expect(answer()).toHaveTextContent(/^Once upon$/);
    expect(screen.queryByRole("button", { name: "Stop" })).toBeNull();
    expect(screen.queryByRole("alert")).toBeNull();
    await user.type(screen.getByLabelText("Message"), "again");
    expect(screen.getByRole("button", { name: "Send" })).toBeEnabled();
  });

  it("sends with Ctrl+Enter and stops with Escape from the message box", async () => {
    const feed = controlledStream();
    const { seen } = withRoute({ "GET /api/v1/me/available-models": MODELS }, CHAT_PATH, () => sse(feed.stream));
    renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    const box = await screen.findByLabelText("Message");
    await user.type(box, "Keyboard only{Control>}{Enter}{/Control}");
    await waitFor(() => expect(seen).toHaveLength(1));
    expect(box).toHaveFocus();
    expect(box).toHaveValue("");
    feed.push(chunk("Par"));
    await waitFor(() => expect(answer()).toHaveTextContent("Par"));
    await user.keyboard("{Escape}");
    expect(await screen.findByText("Stopped")).toBeInTheDocument();
    expect(seen[0]!.init.signal!.aborted).toBe(true);
  });

  it("sends the API-key override as a Bearer token and a refused key does not sign out", async () => {
    const { seen } = withRoute({ "GET /api/v1/me/available-models": MODELS }, CHAT_PATH, () =>
      Response.json(
        { error: { message: "Invalid API key", type: "invalid_request_error", code: "invalid_api_key" } },
        { status: 401, headers: { "X-Request-Id": "req_pg1" } },
      ),
    );
    const { onUnauthorized, router } = renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    const keyField = screen.getByLabelText("API key override");
    expect(keyField).toHaveAttribute("type", "password");
    await user.type(keyField, "vl_uk_wrong");
    await typeAndSend(user, "Hi");

    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("The API key was refused");
    expect(alert).toHaveTextContent("Invalid API key");
    expect(alert).toHaveTextContent("req_pg1");
    expect(new Headers(seen[0]!.init.headers).get("Authorization")).toBe("Bearer vl_uk_wrong");
    expect(onUnauthorized).not.toHaveBeenCalled();
    expect(router.state.location.pathname).toBe("/playground");
    expect(screen.getByText("Not answered")).toBeInTheDocument();
  });

  it("a 401 without an override is an expired session: the app signs in again", async () => {
    withRoute({ "GET /api/v1/me/available-models": MODELS }, CHAT_PATH, () =>
      Response.json({ error: { message: "session expired", type: "invalid_request_error", code: "unauthorized" } }, { status: 401 }),
    );
    const { onUnauthorized } = renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    await typeAndSend(user, "Hi");
    await waitFor(() => expect(onUnauthorized).toHaveBeenCalledTimes(1));
  });

  it("shows an upstream error in the OpenAI envelope inline", async () => {
    withRoute({ "GET /api/v1/me/available-models": MODELS }, CHAT_PATH, () =>
      Response.json(
        { error: { message: "rate limit exceeded: 10 requests per minute", type: "rate_limit_error", code: "rate_limit_exceeded" } },
        { status: 429, headers: { "Retry-After": "12" } },
      ),
    );
    renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    await typeAndSend(user, "Hi");
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("The request failed");
    expect(alert).toHaveTextContent("rate limit exceeded: 10 requests per minute");
    expect(alert).toHaveTextContent("HTTP 429");
  });

  it("shows an error event inside the stream and keeps the partial answer", async () => {
    const feed = controlledStream();
    withRoute({ "GET /api/v1/me/available-models": MODELS }, CHAT_PATH, () => sse(feed.stream));
    renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    await typeAndSend(user, "Hi");
    feed.push(chunk("Partial"));
    feed.push(`data: ${JSON.stringify({ error: { message: "upstream timed out", type: "upstream_timeout", code: "upstream_timeout" } })}\n\n`);
    expect(await screen.findByRole("alert")).toHaveTextContent("upstream timed out");
    expect(answer()).toHaveTextContent("Partial");
    expect(screen.getByText("Incomplete")).toBeInTheDocument();
  });

  it("without streaming sends stream false and shows the whole answer with its usage", async () => {
    const { seen } = withRoute({ "GET /api/v1/me/available-models": MODELS }, CHAT_PATH, () =>
      Response.json({
        id: "c2",
        object: "chat.completion",
        model: "gpt-big",
        choices: [{ index: 0, message: { role: "assistant", content: "All at once." }, finish_reason: "stop" }],
        usage: { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 },
      }),
    );
    renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("switch", { name: "Stream" }));
    expect(screen.getByRole("switch", { name: "Stream" })).not.toBeChecked();
    await user.selectOptions(screen.getByLabelText("Model"), "gpt-big");
    await user.clear(screen.getByLabelText("Temperature"));
    await user.type(screen.getByLabelText("Temperature"), "0.5");
    await user.type(screen.getByLabelText("Max tokens"), "64");
    await typeAndSend(user, "Hi");
    await waitFor(() => expect(answer()).toHaveTextContent("All at once."));
    expect(seen[0]!.body).toEqual({
      model: "gpt-big",
      messages: [{ role: "user", content: "Hi" }],
      temperature: 0.5,
      max_tokens: 64,
      stream: false,
    });
    expect(screen.getByLabelText("Answer details")).toHaveTextContent("Completion tokens:3");
  });

  it("refuses a temperature out of range before sending", async () => {
    const { seen } = withRoute({ "GET /api/v1/me/available-models": MODELS }, CHAT_PATH, () => Response.json({}));
    renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Temperature"), "3");
    expect(screen.getByLabelText("Temperature")).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByText("Enter a number from 0 to 2.")).toBeInTheDocument();
    await user.type(screen.getByLabelText("Message"), "Hi");
    expect(screen.getByRole("button", { name: "Send" })).toBeDisabled();
    expect(seen).toHaveLength(0);
  });
});

describe("playground: models by type", () => {
  it("offers chat models on Chat, completion models on Completion, embedding models on Embeddings", async () => {
    mockApi({ "GET /api/v1/me/available-models": MODELS });
    renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    const options = () => within(screen.getByLabelText("Model")).getAllByRole("option").map((o) => o.textContent);
    await screen.findByLabelText("Message");
    expect(options()).toEqual(["demo", "gpt-big"]);
    await user.click(screen.getByRole("tab", { name: "Completion" }));
    expect(options()).toEqual(["legacy-complete"]);
    await user.click(screen.getByRole("tab", { name: "Embeddings" }));
    expect(options()).toEqual(["embedder"]);
  });

  it("says so when no model of a type is available", async () => {
    mockApi({ "GET /api/v1/me/available-models": { models: [{ name: "demo", type: "chat" }] } });
    renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("tab", { name: "Embeddings" }));
    expect(screen.getByText(/No embedding model is available to you/)).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Compare" })).toBeDisabled();
  });

  it("shows an empty state without any model and an error state when the list fails", async () => {
    mockApi({ "GET /api/v1/me/available-models": { models: [] } });
    const first = renderPage(<PlaygroundPage />, { route: "/playground" });
    expect(await screen.findByText("No models available")).toBeInTheDocument();
    first.unmount();
    mockApi({ "GET /api/v1/me/available-models": errorResponse(500, "internal_error", "database unavailable") });
    renderPage(<PlaygroundPage />, { route: "/playground" });
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Could not load the models you may use");
    expect(alert).toHaveTextContent("database unavailable");
  });

  it("keeps a tab's conversation when switching tabs", async () => {
    withRoute({ "GET /api/v1/me/available-models": MODELS }, CHAT_PATH, () =>
      Response.json({ model: "demo", choices: [{ index: 0, message: { role: "assistant", content: "Kept" }, finish_reason: "stop" }] }),
    );
    renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("switch", { name: "Stream" }));
    await typeAndSend(user, "Hi");
    await waitFor(() => expect(answer()).toHaveTextContent("Kept"));
    await user.click(screen.getByRole("tab", { name: "Embeddings" }));
    await user.click(screen.getByRole("tab", { name: "Chat" }));
    expect(answer()).toHaveTextContent("Kept");
  });
});

describe("playground in the app", () => {
  it("renders inside the app shell for a member, on the chat tab", async () => {
    mockApi({ "GET /api/v1/me": ME_MEMBER, "GET /api/v1/me/available-models": MODELS });
    renderApp({ route: "/playground" });
    expect(await screen.findByRole("heading", { level: 1, name: "Playground" })).toBeInTheDocument();
    expect(await screen.findByRole("tab", { name: "Chat", selected: true })).toBeInTheDocument();
    expect(screen.getByLabelText("Message")).toBeInTheDocument();
  });
});

describe("playground: completion", () => {
  it("streams a text completion of the prompt", async () => {
    const feed = controlledStream();
    const { seen } = withRoute({ "GET /api/v1/me/available-models": MODELS }, "/api/v1/playground/completions", () => sse(feed.stream));
    renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("tab", { name: "Completion" }));
    await user.type(screen.getByLabelText("Prompt"), "Once");
    await user.click(screen.getByRole("button", { name: "Send" }));
    const piece = (text: string) => `data: ${JSON.stringify({ object: "text_completion", model: "legacy-complete", choices: [{ index: 0, text }] })}\n\n`;
    feed.push(piece(" upon"));
    await waitFor(() => expect(screen.getByTestId("completion")).toHaveTextContent(/^upon$/));
    feed.push(piece(" a time"));
    await waitFor(() => expect(screen.getByTestId("completion")).toHaveTextContent(/^upon a time$/));
    feed.close();
    await waitFor(() => expect(screen.queryByRole("button", { name: "Stop" })).toBeNull());
    expect(seen[0]!.body).toMatchObject({ model: "legacy-complete", prompt: "Once", stream: true });
  });
});

describe("playground: embeddings", () => {
  it("embeds two texts in one request and shows their cosine similarity", async () => {
    const api = mockApi({
      "GET /api/v1/me/available-models": MODELS,
      "POST /api/v1/playground/embeddings": {
        object: "list",
        model: "embedder",
        data: [
          { object: "embedding", index: 1, embedding: [1, 1, 0] },
          { object: "embedding", index: 0, embedding: [1, 0, 0] },
        ],
        usage: { prompt_tokens: 6, total_tokens: 6 },
      },
    });
    renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("tab", { name: "Embeddings" }));
    await user.type(screen.getByLabelText("First text"), "a cat");
    await user.type(screen.getByLabelText("Second text"), "a kitten");
    await user.click(screen.getByRole("button", { name: "Compare" }));
    const result = await screen.findByRole("region", { name: "Similarity" });
    expect(result).toHaveTextContent("0.7071");
    expect(result).toHaveTextContent("Similar");
    expect(result).toHaveTextContent("3"); // dimensions
    expect(api.calls("POST", "/api/v1/playground/embeddings")[0]!.body).toEqual({ model: "embedder", input: ["a cat", "a kitten"] });
  });

  it("computes cosine similarity", () => {
    expect(cosineSimilarity([1, 0], [1, 0])).toBeCloseTo(1);
    expect(cosineSimilarity([1, 0], [0, 1])).toBeCloseTo(0);
    expect(cosineSimilarity([1, 2], [-1, -2])).toBeCloseTo(-1);
    expect(cosineSimilarity([0, 0], [1, 0])).toBeNaN();
    expect(cosineSimilarity([1], [1, 0])).toBeNaN();
  });
});

describe("playground: zero knowledge in the browser", () => {
  it("keeps the conversation out of storage, the URL, the query cache and the console", async () => {
    const marker = "ZK-MARKER-7f3a91";
    const consoleSpies = (["log", "info", "warn", "error", "debug"] as const).map((m) => vi.spyOn(console, m));
    const feed = controlledStream();
    withRoute({ "GET /api/v1/me/available-models": MODELS }, CHAT_PATH, () => sse(feed.stream));
    const { router, client } = renderPage(<PlaygroundPage />, { route: "/playground" });
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("System prompt"), `${marker} system`);
    await user.type(screen.getByLabelText("API key override"), "vl_uk_secretkey");
    await typeAndSend(user, `${marker} question`);
    feed.push(chunk(`${marker} answer`));
    feed.push("data: [DONE]\n\n");
    await waitFor(() => expect(answer()).toHaveTextContent(`${marker} answer`));

    expect(window.localStorage.length).toBe(0);
    expect(window.sessionStorage.length).toBe(0);
    expect(document.cookie).not.toContain(marker);
    const location = router.state.location;
    expect(`${location.pathname}${location.search}${location.hash}${JSON.stringify(location.state)}`).not.toContain(marker);
    const cached = JSON.stringify(client.getQueryCache().getAll().map((q) => [q.queryKey, q.state.data]));
    expect(cached).not.toContain(marker);
    expect(cached).not.toContain("vl_uk_secretkey");
    expect(JSON.stringify(client.getMutationCache().getAll().map((m) => m.state.variables))).not.toContain(marker);
    for (const spy of consoleSpies) {
      expect(JSON.stringify(spy.mock.calls)).not.toContain(marker);
    }
  });
});

describe("sse parsing", () => {
  it("splits complete events and joins multi-line data", () => {
    const { events, rest } = splitEvents("data: a\r\n\r\n: comment\ndata: b\ndata:c\n\nevent: ping\n\ndata: par");
    expect(events.map(eventData)).toEqual(["a", "b\nc", null]);
    expect(rest).toBe("data: par");
  });
});
