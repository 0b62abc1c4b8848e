/**
 * The playground's calls through the same-origin tunnel `/api/v1/playground/<rest>` (→ the proxy's
 * `/v1/<rest>`). Plain `apiFetch` in event handlers, not TanStack Query: nothing of a conversation may be kept
 * in a cache, a query key or anywhere but the page's state.
 *
 * With an API-key override the request carries `Authorization: Bearer <key>` and opts out of the sign-out on
 * 401 (a wrong key is the key's problem, not the session's).
 */
import { ApiError, apiFetch, errorFromResponse, type RequestOptions } from "../../lib/api";
import { readEvents } from "./sse";
import type { AnswerStats, TokenUsage } from "./types";

/** Headers and 401 handling for the optional API-key override. */
export function authOptions(apiKey: string): Pick<RequestOptions, "headers" | "redirectOn401"> {
  const key = apiKey.trim();
  return key ? { headers: { Authorization: `Bearer ${key}` }, redirectOn401: false } : {};
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function firstChoice(payload: Json): Json {
  const choices = payload.choices;
  return Array.isArray(choices) && isObject(choices[0]) ? choices[0] : {};
}

function usageOf(payload: Json): TokenUsage | null {
  const u = payload.usage;
  return isObject(u) && typeof u.total_tokens === "number" ? (u as unknown as TokenUsage) : null;
}

/** An error event inside a stream (`data: {"error": {...}}`), as the API client's error type. */
function streamError(error: unknown): ApiError {
  const e = isObject(error) ? error : { message: String(error) };
  const str = (v: unknown) => (typeof v === "string" && v ? v : null);
  return new ApiError({
    status: 502,
    code: str(e.code) ?? str(e.type) ?? "stream_error",
    message: str(e.message) ?? "The stream ended with an error.",
    requestId: str(e.request_id),
    field: str(e.param),
    details: e,
  });
}

export type GenerationKind = "chat" | "completion";

const PATHS: Record<GenerationKind, string> = { chat: "playground/chat/completions", completion: "playground/completions" };

/** The text a streamed chunk adds. */
function deltaText(kind: GenerationKind, chunk: Json): string {
  const choice = firstChoice(chunk);
  if (kind === "completion") return typeof choice.text === "string" ? choice.text : "";
  const delta = choice.delta;
  return isObject(delta) && typeof delta.content === "string" ? delta.content : "";
}

/** The whole text of a non-streamed answer. */
function fullText(kind: GenerationKind, payload: Json): string {
  const choice = firstChoice(payload);
  if (kind === "completion") return typeof choice.text === "string" ? choice.text : "";
  const message = choice.message;
  return isObject(message) && typeof message.content === "string" ? message.content : "";
}

export interface GenerateRequest {
  kind: GenerationKind;
  /** The OpenAI request body without `stream` (model, messages or prompt, temperature, max_tokens). */
  body: Json;
  stream: boolean;
  apiKey: string;
  signal: AbortSignal;
  /** Called with each piece of text as it arrives (once with the whole text when not streaming). */
  onDelta: (text: string) => void;
}

/**
 * Send a chat or text completion and feed its text to `onDelta` as it arrives. Resolves with the answer's
 * stats; rejects with {@link ApiError} (HTTP error or an error event in the stream) or the abort error.
 * An abort during the stream resolves normally (the caller checks `signal.aborted`).
 */
export async function generate(request: GenerateRequest): Promise<AnswerStats> {
  const { kind, stream, signal, onDelta } = request;
  const started = performance.now();
  const body = stream ? { ...request.body, stream: true, stream_options: { include_usage: true } } : { ...request.body, stream: false };
  const response = await apiFetch(PATHS[kind], {
    method: "POST",
    body,
    signal,
    ...authOptions(request.apiKey),
  });
  if (!response.ok) throw await errorFromResponse(response);
  const stats: AnswerStats = { latencyMs: 0, firstTokenMs: null, usage: null, model: null, finishReason: null };
  const streamed = (response.headers.get("Content-Type") ?? "").includes("text/event-stream");
  if (streamed && response.body) {
    await readEvents(response.body, signal, (data) => {
      let chunk: unknown;
      try {
        chunk = JSON.parse(data);
      } catch {
        throw streamError({ code: "bad_stream", message: "The stream sent an event that is not JSON." });
      }
      if (!isObject(chunk)) return;
      if (chunk.error !== undefined) throw streamError(chunk.error);
      const text = deltaText(kind, chunk);
      if (text) {
        stats.firstTokenMs ??= performance.now() - started;
        onDelta(text);
      }
      const reason = firstChoice(chunk).finish_reason;
      if (typeof reason === "string") stats.finishReason = reason;
      if (typeof chunk.model === "string") stats.model = chunk.model;
      stats.usage = usageOf(chunk) ?? stats.usage;
    });
  } else {
    const payload: unknown = await response.json();
    if (isObject(payload)) {
      onDelta(fullText(kind, payload));
      stats.usage = usageOf(payload);
      stats.model = typeof payload.model === "string" ? payload.model : null;
      const reason = firstChoice(payload).finish_reason;
      stats.finishReason = typeof reason === "string" ? reason : null;
    }
  }
  stats.latencyMs = performance.now() - started;
  return stats;
}

export interface EmbeddingsResult {
  vectors: number[][];
  usage: TokenUsage | null;
  model: string | null;
  latencyMs: number;
}

/** Embed several texts with one request (POST playground/embeddings), vectors in input order. */
export async function embed(model: string, inputs: string[], apiKey: string, signal: AbortSignal): Promise<EmbeddingsResult> {
  const started = performance.now();
  const response = await apiFetch("playground/embeddings", {
    method: "POST",
    body: { model, input: inputs },
    signal,
    ...authOptions(apiKey),
  });
  if (!response.ok) throw await errorFromResponse(response);
  const payload: unknown = await response.json();
  const items = isObject(payload) && Array.isArray(payload.data) ? payload.data.filter(isObject) : [];
  const vectors = [...items]
    .sort((a, b) => Number(a.index ?? 0) - Number(b.index ?? 0))
    .map((item) => (Array.isArray(item.embedding) ? item.embedding.map(Number) : []));
  if (vectors.length !== inputs.length || vectors.some((v) => v.length === 0)) {
    throw new ApiError({ status: 502, code: "bad_response", message: "The model did not return one embedding per text." });
  }
  return {
    vectors,
    usage: isObject(payload) ? usageOf(payload) : null,
    model: isObject(payload) && typeof payload.model === "string" ? payload.model : null,
    latencyMs: performance.now() - started,
  };
}

/** Cosine similarity of two vectors (-1..1); NaN when they differ in length or one is all zeros. */
export function cosineSimilarity(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length || a.length === 0) return Number.NaN;
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na === 0 || nb === 0 ? Number.NaN : dot / Math.sqrt(na * nb);
}

/** Whether an error is the abort of a request we stopped. */
export function isAbort(error: unknown): boolean {
  return error instanceof DOMException ? error.name === "AbortError" : error instanceof Error && error.name === "AbortError";
}
