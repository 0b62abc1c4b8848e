/**
 * Server-Sent Events of an OpenAI-style stream, read as they arrive: each event's `data:` lines are handed
 * over as one string, and `data: [DONE]` ends the stream. Aborting `signal` cancels the reader at once.
 */

/** Split complete events (ended by a blank line) off `buffer`; returns them and what is left. */
export function splitEvents(buffer: string): { events: string[]; rest: string } {
  const normalised = buffer.replace(/\r\n?/g, "\n");
  const parts = normalised.split("\n\n");
  const rest = parts.pop() ?? "";
  return { events: parts, rest };
}

/** The data of one event (its `data:` lines joined by newlines), or null when it carries none. */
export function eventData(event: string): string | null {
  const lines: string[] = [];
  for (const line of event.split("\n")) {
    if (!line.startsWith("data:")) continue; // comments (":"), event:, id:, retry:
    lines.push(line.slice(line.startsWith("data: ") ? 6 : 5));
  }
  return lines.length ? lines.join("\n") : null;
}

/**
 * Read `body` until `[DONE]`, the end of the stream, or `signal` aborts; call `onData` with each event's
 * data as soon as the event is complete. Errors thrown by `onData` end the read and propagate.
 */
export async function readEvents(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  onData: (data: string) => void,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const cancel = () => void reader.cancel().catch(() => undefined);
  signal.addEventListener("abort", cancel, { once: true });
  let buffer = "";
  const deliver = (events: string[]): boolean => {
    for (const event of events) {
      const data = eventData(event);
      if (data === null) continue;
      if (data.trim() === "[DONE]") return true;
      onData(data);
    }
    return false;
  };
  try {
    for (;;) {
      if (signal.aborted) return;
      const { done, value } = await reader.read();
      if (done || signal.aborted) break;
      buffer += decoder.decode(value, { stream: true });
      const { events, rest } = splitEvents(buffer);
      buffer = rest;
      if (deliver(events)) {
        cancel();
        return;
      }
    }
    if (!signal.aborted) deliver([buffer + decoder.decode()]);
  } catch (error) {
    cancel();
    throw error;
  } finally {
    signal.removeEventListener("abort", cancel);
  }
}
