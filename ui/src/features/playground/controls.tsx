/** Pieces shared by the playground tabs: model picker, generation settings, stream switch, stats, errors. */
import { useId, type KeyboardEvent, type ReactNode } from "react";
import { Badge, Field, Input, Label, NativeSelect, Switch, Textarea } from "../../components/ui";
import { errorMessage, isApiError } from "../../lib/api";
import { formatDuration, formatNumber } from "../../lib/format";
import type { SettingsErrors } from "./sessions";
import type { AnswerStats, GenerationSettings, ModelBrief } from "./types";

/** The model to use: the chosen one while it is still offered, else the first offered. */
export function effectiveModel(chosen: string, models: readonly ModelBrief[]): string {
  return models.some((m) => m.name === chosen) ? chosen : (models[0]?.name ?? "");
}

export function ModelSelect({
  models,
  value,
  onChange,
  typeLabel,
}: {
  models: readonly ModelBrief[];
  value: string;
  onChange: (model: string) => void;
  typeLabel: string;
}) {
  if (models.length === 0) {
    return (
      <Field label="Model" hint={`No ${typeLabel} model is available to you. An administrator can grant access to one.`}>
        <NativeSelect options={[]} placeholder={`No ${typeLabel} models`} disabled value="" onChange={() => undefined} />
      </Field>
    );
  }
  return (
    <Field label="Model" hint={`${formatNumber(models.length)} ${typeLabel} ${models.length === 1 ? "model" : "models"} you may use`}>
      <NativeSelect
        options={models.map((m) => ({ value: m.name, label: m.name }))}
        value={effectiveModel(value, models)}
        onChange={(e) => onChange(e.target.value)}
      />
    </Field>
  );
}

export function StreamSwitch({ checked, onChange }: { checked: boolean; onChange: (checked: boolean) => void }) {
  const id = useId();
  const hintId = `${id}-hint`;
  return (
    <div className="flex flex-col gap-1.5">
      <div className="flex items-center justify-between gap-3">
        <Label htmlFor={id}>Stream</Label>
        <Switch id={id} checked={checked} onCheckedChange={onChange} aria-describedby={hintId} />
      </div>
      <p id={hintId} className="text-xs text-muted">
        {checked ? "Tokens appear as they arrive." : "The answer appears when it is complete."}
      </p>
    </div>
  );
}

/** Model, system prompt (chat only), temperature, max tokens, stream. */
export function GenerationFields({
  settings,
  onChange,
  errors,
  models,
  typeLabel,
  withSystem,
}: {
  settings: GenerationSettings;
  onChange: (settings: GenerationSettings) => void;
  errors: SettingsErrors;
  models: readonly ModelBrief[];
  typeLabel: string;
  withSystem: boolean;
}) {
  const set = <K extends keyof GenerationSettings>(key: K, value: GenerationSettings[K]) => onChange({ ...settings, [key]: value });
  return (
    <div className="flex flex-col gap-4">
      <ModelSelect models={models} value={settings.model} onChange={(m) => set("model", m)} typeLabel={typeLabel} />
      {withSystem ? (
        <Field label="System prompt" hint="Optional: instructions the model follows for the whole conversation.">
          <Textarea rows={3} value={settings.system} onChange={(e) => set("system", e.target.value)} />
        </Field>
      ) : null}
      <div className="grid grid-cols-2 gap-3">
        <Field label="Temperature" hint="0 to 2; empty = the model's default" error={errors.temperature}>
          <Input
            type="number"
            inputMode="decimal"
            min={0}
            max={2}
            step={0.1}
            value={settings.temperature}
            onChange={(e) => set("temperature", e.target.value)}
          />
        </Field>
        <Field label="Max tokens" hint="Empty = the model's default" error={errors.maxTokens}>
          <Input
            type="number"
            inputMode="numeric"
            min={1}
            step={1}
            value={settings.maxTokens}
            onChange={(e) => set("maxTokens", e.target.value)}
          />
        </Field>
      </div>
      <StreamSwitch checked={settings.stream} onChange={(stream) => set("stream", stream)} />
    </div>
  );
}

/** Latency and token usage of an answer, when known. */
export function StatsLine({ stats }: { stats: AnswerStats | undefined }) {
  if (!stats) return null;
  const items: [string, ReactNode][] = [["Latency", formatDuration(stats.latencyMs)]];
  if (stats.firstTokenMs !== null) items.push(["First token", formatDuration(stats.firstTokenMs)]);
  if (stats.usage) {
    items.push(["Prompt tokens", formatNumber(stats.usage.prompt_tokens)]);
    if (typeof stats.usage.completion_tokens === "number") items.push(["Completion tokens", formatNumber(stats.usage.completion_tokens)]);
    items.push(["Total tokens", formatNumber(stats.usage.total_tokens)]);
  }
  if (stats.model) items.push(["Model", stats.model]);
  if (stats.finishReason && stats.finishReason !== "stop") items.push(["Finish reason", stats.finishReason]);
  return (
    <dl aria-label="Answer details" className="mt-2 flex flex-wrap gap-x-4 gap-y-1 text-xs text-muted">
      {items.map(([label, value]) => (
        <div key={label} className="flex gap-1">
          <dt>{label}:</dt>
          <dd className="tabular-nums text-fg">{value}</dd>
        </div>
      ))}
    </dl>
  );
}

export function StatusBadge({ status, answer = true }: { status: string; answer?: boolean }) {
  if (status === "stopped") return <Badge tone="warning">Stopped</Badge>;
  if (status === "failed") return <Badge tone="danger">{answer ? "Incomplete" : "Not answered"}</Badge>;
  return null;
}

/** A failed request, inline: the gateway's (or model's) message in the OpenAI envelope, and its request id. */
export function RequestError({ error, apiKey }: { error: unknown; apiKey: string }) {
  if (!error) return null;
  const keyRefused = apiKey.trim() !== "" && isApiError(error) && error.status === 401;
  const requestId = isApiError(error) ? error.requestId : null;
  return (
    <div role="alert" className="rounded-md border border-danger/40 px-3 py-2 text-sm">
      <p className="font-medium text-danger">{keyRefused ? "The API key was refused" : "The request failed"}</p>
      <p>{errorMessage(error)}</p>
      {isApiError(error) ? (
        <p className="text-xs text-muted">
          {error.status ? `HTTP ${error.status} · ` : ""}
          {error.code}
          {requestId ? ` · Request ID: ${requestId}` : ""}
        </p>
      ) : null}
    </div>
  );
}

/** Keys of a prompt box: Ctrl+Enter / Cmd+Enter submits its form; Escape stops a running answer. */
export function promptKeys(stop: () => void, pending: boolean) {
  return (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      e.currentTarget.form?.requestSubmit();
    } else if (e.key === "Escape" && pending) {
      e.preventDefault();
      stop();
    }
  };
}
