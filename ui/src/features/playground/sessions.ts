/**
 * The state of each playground tab, held by the page so it survives switching tabs. Everything here lives in
 * React state only: never browser storage, the URL, the query cache or the console. Leaving the page aborts
 * whatever is still streaming.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { cosineSimilarity, embed, generate, isAbort, type EmbeddingsResult, type GenerationKind } from "./client";
import { DEFAULT_SETTINGS, type AnswerStats, type GenerationSettings } from "./types";

export interface SettingsErrors {
  temperature?: string;
  maxTokens?: string;
}

/** The request fields of the settings, or what is wrong with them. */
export function parseSettings(settings: GenerationSettings): { params: Record<string, unknown>; errors: SettingsErrors } {
  const params: Record<string, unknown> = { model: settings.model };
  const errors: SettingsErrors = {};
  if (settings.temperature.trim() !== "") {
    const t = Number(settings.temperature);
    if (!Number.isFinite(t) || t < 0 || t > 2) errors.temperature = "Enter a number from 0 to 2.";
    else params.temperature = t;
  }
  if (settings.maxTokens.trim() !== "") {
    const m = Number(settings.maxTokens);
    if (!Number.isInteger(m) || m < 1) errors.maxTokens = "Enter a whole number of at least 1.";
    else params.max_tokens = m;
  }
  return { params, errors };
}

export type TurnStatus = "streaming" | "done" | "stopped" | "failed";

export interface ChatTurn {
  id: number;
  role: "user" | "assistant";
  content: string;
  status: TurnStatus;
  stats?: AnswerStats;
}

/** One generation at a time, stoppable; aborted when the page goes away. */
function useRunner() {
  const controller = useRef<AbortController | null>(null);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => () => controller.current?.abort(), []);

  const run = useCallback(async <T,>(task: (signal: AbortSignal) => Promise<T>): Promise<{ value?: T; aborted: boolean; failed: boolean }> => {
    controller.current?.abort();
    const c = new AbortController();
    controller.current = c;
    setPending(true);
    setError(null);
    try {
      const value = await task(c.signal);
      return { value, aborted: c.signal.aborted, failed: false };
    } catch (e) {
      if (c.signal.aborted || isAbort(e)) return { aborted: true, failed: false };
      setError(e);
      return { aborted: false, failed: true };
    } finally {
      if (controller.current === c) {
        controller.current = null;
        setPending(false);
      }
    }
  }, []);

  const stop = useCallback(() => controller.current?.abort(), []);
  return { pending, error, setError, run, stop };
}

export function useChatSession() {
  const runner = useRunner();
  const [settings, setSettings] = useState<GenerationSettings>(DEFAULT_SETTINGS);
  const [draft, setDraft] = useState("");
  const [turns, setTurns] = useState<ChatTurn[]>([]);
  const nextId = useRef(1);

  const send = async (model: string, apiKey: string) => {
    const text = draft.trim();
    if (!text || runner.pending) return;
    const { params } = parseSettings({ ...settings, model });
    const history = turns
      .filter((t) => t.status !== "failed" && t.content !== "")
      .map((t) => ({ role: t.role, content: t.content }));
    const system = settings.system.trim();
    const messages = [...(system ? [{ role: "system", content: system }] : []), ...history, { role: "user", content: text }];
    const userId = nextId.current++;
    const answerId = nextId.current++;
    setTurns((prev) => [
      ...prev,
      { id: userId, role: "user", content: text, status: "done" },
      { id: answerId, role: "assistant", content: "", status: "streaming" },
    ]);
    setDraft("");
    const update = (change: (turn: ChatTurn) => ChatTurn) =>
      setTurns((prev) => prev.map((t) => (t.id === answerId ? change(t) : t)));
    const result = await runner.run((signal) =>
      generate({
        kind: "chat",
        body: { ...params, messages },
        stream: settings.stream,
        apiKey,
        signal,
        onDelta: (delta) => update((t) => ({ ...t, content: t.content + delta })),
      }),
    );
    if (result.failed) {
      // The question stays, marked unanswered and left out of later requests; a partial answer stays too.
      setTurns((prev) =>
        prev
          .filter((t) => t.id !== answerId || t.content !== "")
          .map((t) => (t.id === userId || t.id === answerId ? { ...t, status: "failed" } : t)),
      );
      return;
    }
    update((t) => ({ ...t, status: result.aborted ? "stopped" : "done", stats: result.value }));
  };

  const clear = () => {
    runner.stop();
    runner.setError(null);
    setTurns([]);
  };

  return { settings, setSettings, draft, setDraft, turns, send, clear, stop: runner.stop, pending: runner.pending, error: runner.error };
}

export type ChatSession = ReturnType<typeof useChatSession>;

export function useCompletionSession() {
  const runner = useRunner();
  const [settings, setSettings] = useState<GenerationSettings>(DEFAULT_SETTINGS);
  const [prompt, setPrompt] = useState("");
  const [output, setOutput] = useState("");
  const [status, setStatus] = useState<TurnStatus | null>(null);
  const [stats, setStats] = useState<AnswerStats | undefined>(undefined);

  const send = async (model: string, apiKey: string) => {
    if (!prompt.trim() || runner.pending) return;
    const { params } = parseSettings({ ...settings, model });
    setOutput("");
    setStats(undefined);
    setStatus("streaming");
    const kind: GenerationKind = "completion";
    const result = await runner.run((signal) =>
      generate({ kind, body: { ...params, prompt }, stream: settings.stream, apiKey, signal, onDelta: (d) => setOutput((o) => o + d) }),
    );
    setStatus(result.failed ? "failed" : result.aborted ? "stopped" : "done");
    setStats(result.value);
  };

  const clear = () => {
    runner.stop();
    runner.setError(null);
    setOutput("");
    setStatus(null);
    setStats(undefined);
  };

  return { settings, setSettings, prompt, setPrompt, output, status, stats, send, clear, stop: runner.stop, pending: runner.pending, error: runner.error };
}

export type CompletionSession = ReturnType<typeof useCompletionSession>;

export interface Comparison extends EmbeddingsResult {
  similarity: number;
}

export function useEmbeddingsSession() {
  const runner = useRunner();
  const [model, setModel] = useState("");
  const [first, setFirst] = useState("");
  const [second, setSecond] = useState("");
  const [result, setResult] = useState<Comparison | null>(null);

  const compare = async (effectiveModel: string, apiKey: string) => {
    if (!first.trim() || !second.trim() || runner.pending) return;
    setResult(null);
    const outcome = await runner.run((signal) => embed(effectiveModel, [first, second], apiKey, signal));
    const value = outcome.value;
    if (value && !outcome.aborted) {
      const [a = [], b = []] = value.vectors;
      setResult({ ...value, similarity: cosineSimilarity(a, b) });
    }
  };

  return { model, setModel, first, setFirst, second, setSecond, result, compare, stop: runner.stop, pending: runner.pending, error: runner.error };
}

export type EmbeddingsSession = ReturnType<typeof useEmbeddingsSession>;
