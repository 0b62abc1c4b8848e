import type { FormEvent } from "react";
import { Button, Card, CardContent, CardHeader, Field, Textarea } from "../../components/ui";
import { formatDuration, formatNumber } from "../../lib/format";
import { ModelSelect, RequestError, effectiveModel } from "./controls";
import type { EmbeddingsSession } from "./sessions";
import type { ModelBrief } from "./types";

/** How alike two texts are, in words, from their cosine similarity. */
function similarityWords(similarity: number): string {
  if (!Number.isFinite(similarity)) return "Not comparable (an embedding was empty or all zeros).";
  if (similarity >= 0.9) return "Very similar";
  if (similarity >= 0.7) return "Similar";
  if (similarity >= 0.4) return "Somewhat related";
  return "Not similar";
}

/** The embeddings tab: embed two texts and compare them by cosine similarity. */
export function EmbeddingsPanel({
  session,
  models,
  apiKey,
}: {
  session: EmbeddingsSession;
  models: readonly ModelBrief[];
  apiKey: string;
}) {
  const model = effectiveModel(session.model, models);
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (model) void session.compare(model, apiKey);
  };
  const result = session.result;
  return (
    <Card>
      <CardHeader title="Compare two texts" description="Both texts are embedded with one request; nothing is kept." />
      <CardContent className="flex flex-col gap-4">
        <form onSubmit={onSubmit} className="flex flex-col gap-4">
          <div className="max-w-sm">
            <ModelSelect models={models} value={session.model} onChange={session.setModel} typeLabel="embedding" />
          </div>
          <div className="grid grid-cols-1 gap-4 md:grid-cols-2">
            <Field label="First text">
              <Textarea rows={4} value={session.first} onChange={(e) => session.setFirst(e.target.value)} />
            </Field>
            <Field label="Second text">
              <Textarea rows={4} value={session.second} onChange={(e) => session.setSecond(e.target.value)} />
            </Field>
          </div>
          <div className="flex flex-wrap gap-2">
            <Button
              type="submit"
              loading={session.pending}
              disabled={!model || session.first.trim() === "" || session.second.trim() === ""}
            >
              Compare
            </Button>
            {session.pending ? (
              <Button variant="secondary" onClick={session.stop}>
                Stop
              </Button>
            ) : null}
          </div>
        </form>
        <RequestError error={session.error} apiKey={apiKey} />
        {result ? (
          <section aria-label="Similarity" className="rounded-lg border border-border p-4">
            <dl className="grid grid-cols-1 gap-3 sm:grid-cols-3">
              <div>
                <dt className="text-sm text-muted">Cosine similarity</dt>
                <dd className="text-2xl font-semibold tabular-nums">{formatNumber(result.similarity, 4)}</dd>
                <dd className="text-sm">{similarityWords(result.similarity)}</dd>
              </div>
              <div>
                <dt className="text-sm text-muted">Dimensions</dt>
                <dd className="text-2xl font-semibold tabular-nums">{formatNumber(result.vectors[0]?.length ?? 0)}</dd>
              </div>
              <div>
                <dt className="text-sm text-muted">Latency</dt>
                <dd className="text-2xl font-semibold tabular-nums">{formatDuration(result.latencyMs)}</dd>
                {result.usage ? <dd className="text-sm text-muted">{formatNumber(result.usage.total_tokens)} tokens</dd> : null}
              </div>
            </dl>
          </section>
        ) : null}
      </CardContent>
    </Card>
  );
}
