import { useState, type FormEvent, type ReactNode } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { Button, Dialog, DialogClose, Field, InlineError, Input, NativeSelect, useToast } from "../../components/ui";
import { apiFieldError, errorField } from "../keys/form";
import { ConnectionTest } from "./ConnectionTest";
import { CONFIG_REASON, isConfigModel, MODELS_KEY, modelPath } from "./data";
import {
  deploymentBody,
  deploymentChanges,
  emptyDeployment,
  modelBody,
  modelChanges,
  modelDraft,
  type DeploymentDraft,
  type Errors,
  type ModelDraft,
} from "./draft";
import { MODEL_TYPES, PROVIDERS, STRATEGIES, type DeploymentOut, type ModelOut } from "./types";

const PROVIDER_OPTIONS = PROVIDERS.map((p) => ({ value: p, label: p }));
const TYPE_OPTIONS = MODEL_TYPES.map((t) => ({ value: t, label: t.replace("_", " ") }));
const BASE_URL_EXAMPLES: Record<string, string> = {
  openai: "https://api.openai.com/v1",
  anthropic: "https://api.anthropic.com/v1",
  azure: "https://<resource>.openai.azure.com",
  gemini: "https://generativelanguage.googleapis.com/v1beta",
  vertex: "https://<location>-aiplatform.googleapis.com",
  vllm: "http://vllm:8000/v1",
  ollama: "http://ollama:11434/v1",
};
const MODEL_FIELDS = [
  "name", "provider", "type", "base_url", "api_key", "aliases", "timeout", "strategy", "max_retries",
  "max_context_tokens", "fallback_model_name", "input_price_per_1m", "output_price_per_1m", "azure_deployment",
  "azure_api_version", "gcp_project", "gcp_location", "pii_filter",
];

/** A failed write of one deployment row (the model itself was saved). */
class DeploymentError extends Error {
  readonly rowKey: string;
  readonly failure: unknown;

  constructor(rowKey: string, failure: unknown) {
    super(failure instanceof Error ? failure.message : String(failure));
    this.rowKey = rowKey;
    this.failure = failure;
  }
}

const ROW_FIELDS = [
  "name", "provider", "base_url", "api_key", "priority", "weight", "azure_deployment", "azure_api_version",
  "gcp_project", "gcp_location",
];

export type ModelDialogState = { kind: "create" } | { kind: "edit"; model: ModelOut } | null;

export function ModelDialog({
  state,
  models,
  onClose,
}: {
  state: ModelDialogState;
  /** Every model (for the fallback choice). */
  models: ModelOut[];
  onClose: () => void;
}) {
  const model = state?.kind === "edit" ? state.model : null;
  const readOnly = model !== null && isConfigModel(model);
  const title = state?.kind === "create" ? "Create model" : readOnly ? model?.name : `Edit ${model?.name ?? "model"}`;
  return (
    <Dialog
      open={state !== null}
      onOpenChange={(open) => (open ? undefined : onClose())}
      title={title}
      description={readOnly ? CONFIG_REASON : undefined}
      size="xl"
    >
      {state ? <ModelForm key={model?.id ?? "new"} original={model} models={models} readOnly={readOnly} onDone={onClose} /> : null}
    </Dialog>
  );
}

function ModelForm({
  original,
  models,
  readOnly,
  onDone,
}: {
  original: ModelOut | null;
  models: ModelOut[];
  readOnly: boolean;
  onDone: () => void;
}) {
  const queryClient = useQueryClient();
  const toast = useToast();
  const [draft, setDraft] = useState<ModelDraft>(() => modelDraft(original));
  /** What the server holds now: the original, or the model created by an earlier (partly failed) save. */
  const [base, setBase] = useState<ModelOut | null>(original);
  const [errors, setErrors] = useState<Errors>({});
  const [rowErrors, setRowErrors] = useState<Record<string, Errors>>({});

  const set = <K extends keyof ModelDraft>(field: K, value: ModelDraft[K]) => setDraft((d) => ({ ...d, [field]: value }));
  const setRow = (key: string, patch: Partial<DeploymentDraft>) =>
    setDraft((d) => ({ ...d, deployments: d.deployments.map((r) => (r.key === key ? { ...r, ...patch } : r)) }));

  const save = useMutation({
    mutationFn: async (current: ModelDraft) => {
      let saved = base;
      if (saved === null) {
        saved = await api.post<ModelOut>("models", modelBody(current).body);
        setBase(saved);
      } else {
        const { body } = modelChanges(current, saved);
        if (Object.keys(body).length > 0) saved = await api.patch<ModelOut>(modelPath(saved.id), body);
      }
      const modelId = saved.id;
      const kept = new Set(current.deployments.map((d) => d.id).filter(Boolean));
      let deployments: DeploymentOut[] = [...saved.deployments];
      for (const old of saved.deployments.filter((d) => !kept.has(d.id))) {
        await api.delete(`${modelPath(modelId)}/deployments/${encodeURIComponent(old.id)}`);
        deployments = deployments.filter((d) => d.id !== old.id);
      }
      for (const row of current.deployments) {
        try {
          const was = row.id ? deployments.find((d) => d.id === row.id) : undefined;
          if (!was) {
            const made = await api.post<DeploymentOut>(`${modelPath(modelId)}/deployments`, deploymentBody(row, {}));
            deployments.push(made);
            setRow(row.key, { id: made.id, api_key: "", has_api_key: made.has_api_key });
          } else {
            const body = deploymentChanges(row, was, {});
            if (Object.keys(body).length > 0) {
              const changed = await api.patch<DeploymentOut>(
                `${modelPath(modelId)}/deployments/${encodeURIComponent(was.id)}`,
                body,
              );
              deployments = deployments.map((d) => (d.id === changed.id ? changed : d));
            }
          }
        } catch (error) {
          setBase({ ...saved, deployments });
          throw new DeploymentError(row.key, error);
        }
      }
      return modelId;
    },
    gcTime: 0,
    onSettled: () => void queryClient.invalidateQueries({ queryKey: MODELS_KEY }),
    onSuccess: () => {
      toast({ title: original ? "Model saved" : "Model created", tone: "success" });
      onDone();
    },
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found = base ? modelChanges(draft, base).errors : modelBody(draft).errors;
    const foundRows: Record<string, Errors> = {};
    for (const row of draft.deployments) {
      const e: Errors = {};
      deploymentBody(row, e);
      if (Object.keys(e).length > 0) foundRows[row.key] = e;
    }
    setErrors(found);
    setRowErrors(foundRows);
    if (Object.keys(found).length > 0 || Object.keys(foundRows).length > 0) return;
    save.mutate(draft);
  };

  const failedRow = save.error instanceof DeploymentError ? save.error.rowKey : null;
  const modelApiError = save.error instanceof DeploymentError ? null : save.error;
  const fieldError = (field: string) => errors[field] ?? apiFieldError(modelApiError, field);
  const rowError = (row: DeploymentDraft, field: string) => {
    const local = rowErrors[row.key]?.[field];
    if (local) return local;
    const cause = failedRow === row.key && save.error instanceof DeploymentError ? save.error.failure : null;
    return apiFieldError(cause, field);
  };
  const fallbackOptions = models
    .filter((m) => m.id !== base?.id)
    .map((m) => ({ value: m.name, label: m.name }));
  if (draft.fallback_model_name && !fallbackOptions.some((o) => o.value === draft.fallback_model_name)) {
    fallbackOptions.push({ value: draft.fallback_model_name, label: draft.fallback_model_name });
  }
  const editing = base !== null;

  return (
    <form onSubmit={submit} noValidate className="flex flex-col gap-5">
      {readOnly ? (
        <p role="note" className="rounded-md border border-border bg-surface-2 px-3 py-2 text-sm">
          This model is read-only here. {CONFIG_REASON}
        </p>
      ) : null}
      <fieldset disabled={readOnly} className="flex flex-col gap-5">
        <Section title="Upstream">
          <Field label="Name" required error={fieldError("name")}>
            <Input value={draft.name} onChange={(e) => set("name", e.target.value)} maxLength={256} autoComplete="off" />
          </Field>
          <Field label="Type" error={fieldError("type")}>
            <NativeSelect value={draft.type} onChange={(e) => set("type", e.target.value)} options={TYPE_OPTIONS} />
          </Field>
          <Field label="Provider" error={fieldError("provider")}>
            <NativeSelect value={draft.provider} onChange={(e) => set("provider", e.target.value)} options={PROVIDER_OPTIONS} />
          </Field>
          <Field label="Base URL" required={draft.provider !== "mock"} error={fieldError("base_url")}>
            <Input
              type="url"
              value={draft.base_url}
              onChange={(e) => set("base_url", e.target.value)}
              placeholder={BASE_URL_EXAMPLES[draft.provider] ?? "https://…"}
              autoComplete="off"
            />
          </Field>
          <Field
            label="API key"
            error={fieldError("api_key")}
            hint={
              draft.has_api_key
                ? "A key is stored; it is never shown. Leave empty to keep it."
                : "Write-only: it is never shown again after saving."
            }
          >
            <Input
              type="password"
              value={draft.api_key}
              onChange={(e) => set("api_key", e.target.value)}
              autoComplete="new-password"
              spellCheck={false}
              disabled={draft.remove_api_key}
            />
          </Field>
          {draft.has_api_key && !readOnly ? (
            <label className="flex items-center gap-2 self-end text-sm">
              <input
                type="checkbox"
                className="h-4 w-4"
                checked={draft.remove_api_key}
                onChange={(e) => setDraft((d) => ({ ...d, remove_api_key: e.target.checked, api_key: "" }))}
              />
              Remove the stored API key
            </label>
          ) : null}
          {draft.provider === "azure" ? (
            <>
              <Field label="Azure deployment" error={fieldError("azure_deployment")}>
                <Input value={draft.azure_deployment} onChange={(e) => set("azure_deployment", e.target.value)} />
              </Field>
              <Field label="Azure API version" error={fieldError("azure_api_version")} hint="For example 2024-10-21.">
                <Input value={draft.azure_api_version} onChange={(e) => set("azure_api_version", e.target.value)} />
              </Field>
            </>
          ) : null}
          {draft.provider === "vertex" ? (
            <>
              <Field label="GCP project" error={fieldError("gcp_project")}>
                <Input value={draft.gcp_project} onChange={(e) => set("gcp_project", e.target.value)} />
              </Field>
              <Field label="GCP location" error={fieldError("gcp_location")} hint="For example us-central1.">
                <Input value={draft.gcp_location} onChange={(e) => set("gcp_location", e.target.value)} />
              </Field>
            </>
          ) : null}
          {!readOnly ? (
            <div className="sm:col-span-2">
              <ConnectionTest
                provider={draft.provider}
                baseUrl={draft.base_url}
                apiKey={draft.api_key}
                keyStored={draft.has_api_key && !draft.remove_api_key}
              />
            </div>
          ) : null}
        </Section>

        <Section title="Routing">
          <Field label="Aliases" hint="Comma-separated, e.g. gpt4, default." error={fieldError("aliases")}>
            <Input value={draft.aliases} onChange={(e) => set("aliases", e.target.value)} autoComplete="off" />
          </Field>
          <Field label="Timeout" hint="A duration such as 30s or 2m; empty for the gateway's default." error={fieldError("timeout")}>
            <Input value={draft.timeout} onChange={(e) => set("timeout", e.target.value)} autoComplete="off" />
          </Field>
          <Field label="Strategy" hint="How requests are spread over the deployments." error={fieldError("strategy")}>
            <NativeSelect
              value={draft.strategy}
              onChange={(e) => set("strategy", e.target.value)}
              options={[{ value: "", label: "Default" }, ...STRATEGIES.map((s) => ({ value: s, label: s }))]}
            />
          </Field>
          <Field label="Max retries" error={fieldError("max_retries")}>
            <Input type="number" min={0} max={100} value={draft.max_retries} onChange={(e) => set("max_retries", e.target.value)} />
          </Field>
          <Field label="Fallback model" hint="Used when this model fails." error={fieldError("fallback_model_name")}>
            <NativeSelect
              value={draft.fallback_model_name}
              onChange={(e) => set("fallback_model_name", e.target.value)}
              placeholder="None"
              options={fallbackOptions}
            />
          </Field>
          <Field label="Max context tokens" hint="0 = not set." error={fieldError("max_context_tokens")}>
            <Input
              type="number"
              min={0}
              value={draft.max_context_tokens}
              onChange={(e) => set("max_context_tokens", e.target.value)}
            />
          </Field>
          <Field label="PII filter" error={fieldError("pii_filter")}>
            <NativeSelect
              value={draft.pii_filter}
              onChange={(e) => set("pii_filter", e.target.value)}
              options={[
                { value: "", label: "Gateway default" },
                { value: "on", label: "On" },
                { value: "off", label: "Off" },
              ]}
            />
          </Field>
        </Section>

        <Section title="Pricing (USD per 1M tokens)">
          <Field label="Input price per 1M tokens" error={fieldError("input_price_per_1m")}>
            <Input
              type="number"
              min={0}
              step="any"
              value={draft.input_price_per_1m}
              onChange={(e) => set("input_price_per_1m", e.target.value)}
            />
          </Field>
          <Field label="Output price per 1M tokens" error={fieldError("output_price_per_1m")}>
            <Input
              type="number"
              min={0}
              step="any"
              value={draft.output_price_per_1m}
              onChange={(e) => set("output_price_per_1m", e.target.value)}
            />
          </Field>
        </Section>

        <section aria-labelledby="deployments-heading" className="flex flex-col gap-3">
          <div className="flex flex-wrap items-center justify-between gap-2">
            <h3 id="deployments-heading" className="text-sm font-semibold">
              Deployments
            </h3>
            {!readOnly ? (
              <Button
                variant="secondary"
                size="sm"
                onClick={() => set("deployments", [...draft.deployments, emptyDeployment(draft.provider)])}
              >
                Add deployment
              </Button>
            ) : null}
          </div>
          {draft.deployments.length === 0 ? (
            <p className="text-sm text-muted">
              None: requests go to the upstream above. Add deployments to spread a model over several upstreams.
            </p>
          ) : null}
          {draft.deployments.map((row, index) => (
            <DeploymentRow
              key={row.key}
              row={row}
              index={index}
              readOnly={readOnly}
              onChange={(patch) => setRow(row.key, patch)}
              onRemove={() => set("deployments", draft.deployments.filter((r) => r.key !== row.key))}
              error={(field) => rowError(row, field)}
              failure={failedRow === row.key ? rowFailure(save.error) : null}
            />
          ))}
        </section>
      </fieldset>

      {modelApiError && !MODEL_FIELDS.includes(errorField(modelApiError) ?? "") ? (
        <InlineError error={modelApiError} />
      ) : null}
      {failedRow ? (
        <p role="alert" className="text-sm text-danger">
          The model was saved, but a deployment was not: fix it and save again.
        </p>
      ) : null}
      <div className="flex flex-wrap justify-end gap-2">
        <DialogClose>
          <Button variant="secondary">{readOnly ? "Close" : "Cancel"}</Button>
        </DialogClose>
        {!readOnly ? (
          <Button type="submit" loading={save.isPending}>
            {editing ? "Save" : "Create"}
          </Button>
        ) : null}
      </div>
    </form>
  );
}

/** A deployment's error not shown at one of its fields. */
function rowFailure(error: unknown): unknown {
  if (!(error instanceof DeploymentError)) return null;
  const failure = error.failure;
  const field = errorField(failure);
  return field && ROW_FIELDS.includes(field) ? null : failure;
}

function Section({ title, children }: { title: string; children: ReactNode }) {
  return (
    <fieldset className="grid grid-cols-1 gap-3 sm:grid-cols-2">
      <legend className="mb-2 text-sm font-semibold">{title}</legend>
      {children}
    </fieldset>
  );
}

function DeploymentRow({
  row,
  index,
  readOnly,
  onChange,
  onRemove,
  error,
  failure,
}: {
  row: DeploymentDraft;
  index: number;
  readOnly: boolean;
  onChange: (patch: Partial<DeploymentDraft>) => void;
  onRemove: () => void;
  error: (field: string) => string | undefined;
  failure: unknown;
}) {
  const title = `Deployment ${index + 1}${row.name ? `: ${row.name}` : ""}`;
  return (
    <fieldset className="grid grid-cols-1 gap-3 rounded-md border border-border p-3 sm:grid-cols-2">
      <legend className="px-1 text-sm font-medium">{title}</legend>
      <Field label="Deployment name" required error={error("name")}>
        <Input value={row.name} onChange={(e) => onChange({ name: e.target.value })} autoComplete="off" />
      </Field>
      <Field label="Deployment provider" error={error("provider")}>
        <NativeSelect value={row.provider} onChange={(e) => onChange({ provider: e.target.value })} options={PROVIDER_OPTIONS} />
      </Field>
      <Field label="Deployment base URL" required={row.provider !== "mock"} error={error("base_url")}>
        <Input
          type="url"
          value={row.base_url}
          onChange={(e) => onChange({ base_url: e.target.value })}
          placeholder={BASE_URL_EXAMPLES[row.provider] ?? "https://…"}
          autoComplete="off"
        />
      </Field>
      <Field
        label="Deployment API key"
        error={error("api_key")}
        hint={row.has_api_key ? "A key is stored; it is never shown. Leave empty to keep it." : "Write-only."}
      >
        <Input
          type="password"
          value={row.api_key}
          onChange={(e) => onChange({ api_key: e.target.value })}
          autoComplete="new-password"
          spellCheck={false}
        />
      </Field>
      <Field label="Priority" hint="Lower is tried first (priority strategy)." error={error("priority")}>
        <Input type="number" min={0} max={1000} value={row.priority} onChange={(e) => onChange({ priority: e.target.value })} />
      </Field>
      <Field label="Weight" hint="Share of requests (weighted strategy)." error={error("weight")}>
        <Input type="number" min={0} max={10000} value={row.weight} onChange={(e) => onChange({ weight: e.target.value })} />
      </Field>
      {row.provider === "azure" ? (
        <>
          <Field label="Deployment Azure deployment" error={error("azure_deployment")}>
            <Input value={row.azure_deployment} onChange={(e) => onChange({ azure_deployment: e.target.value })} />
          </Field>
          <Field label="Deployment Azure API version" error={error("azure_api_version")}>
            <Input value={row.azure_api_version} onChange={(e) => onChange({ azure_api_version: e.target.value })} />
          </Field>
        </>
      ) : null}
      {row.provider === "vertex" ? (
        <>
          <Field label="Deployment GCP project" error={error("gcp_project")}>
            <Input value={row.gcp_project} onChange={(e) => onChange({ gcp_project: e.target.value })} />
          </Field>
          <Field label="Deployment GCP location" error={error("gcp_location")}>
            <Input value={row.gcp_location} onChange={(e) => onChange({ gcp_location: e.target.value })} />
          </Field>
        </>
      ) : null}
      {failure ? (
        <div className="sm:col-span-2">
          <InlineError error={failure} />
        </div>
      ) : null}
      {!readOnly ? (
        <div className="flex flex-wrap items-start justify-between gap-2 sm:col-span-2">
          <ConnectionTest
            provider={row.provider}
            baseUrl={row.base_url}
            apiKey={row.api_key}
            keyStored={row.has_api_key}
            label={`Test connection of ${title}`}
          />
          <Button variant="ghost" size="sm" className="text-danger" aria-label={`Remove ${title}`} onClick={onRemove}>
            Remove
          </Button>
        </div>
      ) : null}
    </fieldset>
  );
}
