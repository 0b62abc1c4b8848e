import { useRef, type FormEvent } from "react";
import { Button, Card, CardContent, CardHeader, Field, Spinner, Textarea } from "../../components/ui";
import { GenerationFields, RequestError, StatsLine, StatusBadge, effectiveModel, promptKeys } from "./controls";
import { parseSettings, type CompletionSession } from "./sessions";
import type { ModelBrief } from "./types";

/** The completion tab: a prompt continued by a completion model (POST /v1/completions). */
export function CompletionPanel({
  session,
  models,
  apiKey,
}: {
  session: CompletionSession;
  models: readonly ModelBrief[];
  apiKey: string;
}) {
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
          title="Completion"
          description="Kept in this page only."
          actions={
            session.status !== null ? (
              <Button variant="ghost" size="sm" onClick={session.clear}>
                Clear
              </Button>
            ) : null
          }
        />
        <CardContent className="flex flex-col gap-4">
          <form onSubmit={onSubmit} className="flex flex-col gap-3">
            <Field label="Prompt" hint="The model continues this text. Ctrl+Enter sends; Escape stops.">
              <Textarea ref={box} rows={5} value={session.prompt} onChange={(e) => session.setPrompt(e.target.value)} onKeyDown={promptKeys(session.stop, session.pending)} />
            </Field>
            <div className="flex flex-wrap gap-2">
              <Button type="submit" loading={session.pending} disabled={!model || invalid || session.prompt.trim() === ""}>
                Send
              </Button>
              {session.pending ? (
                <Button variant="secondary" onClick={session.stop}>
                  Stop
                </Button>
              ) : null}
            </div>
          </form>
          <RequestError error={session.error} apiKey={apiKey} />
          {session.status !== null && session.status !== "failed" ? (
            <section aria-label="Completion output" aria-busy={session.pending} className="rounded-lg border border-border px-3 py-2">
              <div className="mb-1 flex items-center gap-2 text-xs font-medium text-muted">
                <span>Output</span>
                <StatusBadge status={session.status} />
                {session.status === "streaming" ? <Spinner size="sm" label="Generating" /> : null}
              </div>
              <p className="whitespace-pre-wrap break-words text-sm" data-testid="completion">
                {session.output}
              </p>
              <StatsLine stats={session.stats} />
            </section>
          ) : null}
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
            typeLabel="completion"
            withSystem={false}
          />
        </CardContent>
      </Card>
    </div>
  );
}
