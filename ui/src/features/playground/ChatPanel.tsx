import { useRef, type FormEvent } from "react";
import { Button, Card, CardContent, CardHeader, Field, Spinner, Textarea } from "../../components/ui";
import { GenerationFields, RequestError, StatsLine, StatusBadge, effectiveModel, promptKeys } from "./controls";
import { parseSettings, type ChatSession } from "./sessions";
import type { ModelBrief } from "./types";

/** The chat tab: a conversation with a chat model, streamed token by token. */
export function ChatPanel({ session, models, apiKey }: { session: ChatSession; models: readonly ModelBrief[]; apiKey: string }) {
  const model = effectiveModel(session.settings.model, models);
  const { errors } = parseSettings(session.settings);
  const invalid = Object.keys(errors).length > 0;
  const box = useRef<HTMLTextAreaElement>(null);
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    box.current?.focus();
    if (!invalid && model) void session.send(model, apiKey);
  };
  return (
    <div className="grid grid-cols-1 gap-4 lg:grid-cols-[minmax(0,1fr)_20rem]">
      <Card>
        <CardHeader
          title="Conversation"
          description="Kept in this page only; reloading or leaving the page clears it."
          actions={
            session.turns.length > 0 ? (
              <Button variant="ghost" size="sm" onClick={session.clear}>
                Clear conversation
              </Button>
            ) : null
          }
        />
        <CardContent className="flex flex-col gap-4">
          {session.turns.length === 0 ? (
            <p className="text-sm text-muted">Send a message to start a conversation.</p>
          ) : (
            <div role="log" aria-label="Conversation" aria-busy={session.pending}>
              <ol className="flex flex-col gap-3">
                {session.turns.map((turn) => (
                  <li
                    key={turn.id}
                    aria-label={turn.role === "user" ? "You" : "Assistant"}
                    className={
                      turn.role === "user"
                        ? "self-end max-w-[90%] rounded-lg bg-surface-2 px-3 py-2"
                        : "max-w-full rounded-lg border border-border px-3 py-2"
                    }
                  >
                    <div className="mb-1 flex items-center gap-2 text-xs font-medium text-muted">
                      <span>{turn.role === "user" ? "You" : "Assistant"}</span>
                      <StatusBadge status={turn.status} answer={turn.role === "assistant"} />
                      {turn.status === "streaming" ? <Spinner size="sm" label="Generating" /> : null}
                    </div>
                    <p className="whitespace-pre-wrap break-words text-sm" data-testid={turn.role === "assistant" ? "answer" : undefined}>
                      {turn.content}
                    </p>
                    {turn.role === "assistant" ? <StatsLine stats={turn.stats} /> : null}
                  </li>
                ))}
              </ol>
            </div>
          )}
          <RequestError error={session.error} apiKey={apiKey} />
          <form onSubmit={onSubmit} className="flex flex-col gap-3">
            <Field label="Message" hint="Ctrl+Enter sends; Escape stops the answer.">
              <Textarea
                ref={box}
                rows={3}
                value={session.draft}
                onChange={(e) => session.setDraft(e.target.value)}
                onKeyDown={promptKeys(session.stop, session.pending)}
              />
            </Field>
            <div className="flex flex-wrap gap-2">
              <Button type="submit" loading={session.pending} disabled={!model || invalid || session.draft.trim() === ""}>
                Send
              </Button>
              {session.pending ? (
                <Button variant="secondary" onClick={session.stop}>
                  Stop
                </Button>
              ) : null}
            </div>
          </form>
        </CardContent>
      </Card>
      <Card>
        <CardHeader title="Settings" />
        <CardContent>
          <GenerationFields
            settings={session.settings}
            onChange={session.setSettings}
            errors={errors}
            models={models}
            typeLabel="chat"
            withSystem
          />
        </CardContent>
      </Card>
    </div>
  );
}
