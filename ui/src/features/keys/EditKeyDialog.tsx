import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { useCurrentUser } from "../../lib/auth";
import { useOrgId } from "../../lib/viewedOrg";
import { formatDateTime } from "../../lib/format";
import { DialogFormActions, Dialog, Field, InlineError, Input, LoadingState, useToast } from "../../components/ui";
import { canRestrictModels, canSetLimits, keyPath, useAvailableModels } from "./data";
import {
  apiFieldError,
  ExpiryInput,
  expiryToIso,
  isFieldError,
  LimitInputs,
  ModelChoice,
  parseLimits,
  type ExpiryValue,
  type FieldErrors,
  type LimitValues,
} from "./form";
import { LIMIT_FIELDS, type KeyOut, type KeyUpdate, type ModelAccess } from "./types";

const FORM_FIELDS = ["name", "expires_at", ...LIMIT_FIELDS.map((l) => l.field)];

export function EditKeyDialog({ apiKey, onClose }: { apiKey: KeyOut | null; onClose: () => void }) {
  return (
    <Dialog
      open={apiKey !== null}
      onOpenChange={(open) => (open ? undefined : onClose())}
      title={apiKey ? `Edit ${apiKey.name}` : "Edit key"}
      size="lg"
    >
      {apiKey ? <EditKeyForm apiKey={apiKey} onDone={onClose} /> : null}
    </Dialog>
  );
}

function limitsOf(key: KeyOut): LimitValues {
  return {
    requests_per_minute: String(key.requests_per_minute),
    requests_per_day: String(key.requests_per_day),
    daily_token_limit: String(key.daily_token_limit),
    monthly_token_limit: String(key.monthly_token_limit),
  };
}

function sameSet(a: string[], b: string[]) {
  return a.length === b.length && a.every((x) => b.includes(x));
}

function EditKeyForm({ apiKey, onDone }: { apiKey: KeyOut; onDone: () => void }) {
  const me = useCurrentUser();
  const orgId = useOrgId();
  const queryClient = useQueryClient();
  const toast = useToast();
  const limitsAllowed = canSetLimits(me, apiKey);
  const restrict = canRestrictModels(me);
  const path = keyPath(orgId, apiKey.id);

  const access = useQuery({
    queryKey: ["keys", orgId, "model-access", apiKey.id],
    queryFn: ({ signal }) => api.get<ModelAccess>(`${path}/model-access`, { signal }),
    enabled: restrict,
  });
  const available = useAvailableModels(restrict);

  const [name, setName] = useState(apiKey.name);
  const [limits, setLimits] = useState<LimitValues>(limitsOf(apiKey));
  const [expiry, setExpiry] = useState<ExpiryValue>({ choice: "", date: "" });
  const [models, setModels] = useState<string[] | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});
  const chosenModels = models ?? access.data?.models ?? [];

  const save = useMutation({
    mutationFn: async ({ body, access: nextAccess }: { body: KeyUpdate; access: string[] | null }) => {
      if (Object.keys(body).length > 0) await api.patch<KeyOut>(path, body);
      if (nextAccess) await api.put<ModelAccess>(`${path}/model-access`, { models: nextAccess });
    },
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: ["keys", orgId] });
      toast({ title: "Key saved", tone: "success" });
      onDone();
    },
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found: FieldErrors = {};
    const body: KeyUpdate = {};
    if (!name.trim()) found.name = "Enter a name.";
    else if (name.trim() !== apiKey.name) body.name = name.trim();
    if (limitsAllowed) {
      const parsed = parseLimits(limits);
      Object.assign(found, parsed.errors);
      for (const { field } of LIMIT_FIELDS) {
        const value = parsed.limits[field];
        if (value !== undefined && value !== apiKey[field]) body[field] = value;
      }
      const expiresAt = expiryToIso(expiry);
      if (expiresAt === "invalid") found.expires_at = "Enter a date and time.";
      else if (expiresAt) body.expires_at = expiresAt;
    }
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    const nextAccess = restrict && models !== null && !sameSet(models, access.data?.models ?? []) ? models : null;
    if (Object.keys(body).length === 0 && !nextAccess) {
      onDone();
      return;
    }
    save.mutate({ body, access: nextAccess });
  };

  const fieldError = (field: string) => errors[field] ?? apiFieldError(save.error, field);
  const limitErrors: FieldErrors = {};
  for (const { field } of LIMIT_FIELDS) limitErrors[field] = fieldError(field);

  return (
    <form onSubmit={submit} noValidate className="flex flex-col gap-4">
      <Field label="Name" required error={fieldError("name")}>
        <Input value={name} onChange={(e) => setName(e.target.value)} maxLength={256} autoComplete="off" />
      </Field>
      {limitsAllowed ? (
        <>
          <LimitInputs values={limits} onChange={setLimits} errors={limitErrors} />
          <ExpiryInput
            value={expiry}
            onChange={setExpiry}
            emptyLabel="Keep the current expiry"
            hint={`Currently: ${apiKey.expires_at ? formatDateTime(apiKey.expires_at) : "never expires"}. An expiry can be moved, not removed.`}
            error={fieldError("expires_at")}
          />
        </>
      ) : (
        <p className="text-sm text-muted">Limits and expiry of this key are set by an administrator.</p>
      )}
      {restrict ? (
        access.isPending || available.isPending ? (
          <LoadingState label="Loading the key's models" />
        ) : access.isError || available.isError ? (
          <InlineError error={access.error ?? available.error} />
        ) : (
          <ModelChoice
            models={mergeNames(available.data.models.map((m) => m.name), access.data.models)}
            selected={chosenModels}
            onChange={setModels}
          />
        )
      ) : null}
      {save.isError && !isFieldError(save.error, FORM_FIELDS) ? <InlineError error={save.error} /> : null}
      <DialogFormActions submitLabel="Save" pending={save.isPending} />
    </form>
  );
}

/** The available models plus any the key already lists (so a current restriction can be seen and removed). */
function mergeNames(available: string[], current: string[]) {
  return [...available, ...current.filter((name) => !available.includes(name))];
}
