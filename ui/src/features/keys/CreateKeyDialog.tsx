import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { useCurrentUser } from "../../lib/auth";
import { useViewedOrg } from "../../lib/viewedOrg";
import type { Me } from "../../lib/types";
import { Button, Dialog, DialogFormActions, Field, InlineError, Input, NativeSelect, useToast } from "../../components/ui";
import {
  canChooseKeyType,
  canRestrictModels,
  keysKey,
  keysPath,
  keyPath,
  useAvailableModels,
  useServiceAccounts,
  useTeams,
} from "./data";
import {
  apiFieldError,
  ExpiryInput,
  expiryToIso,
  isFieldError,
  LimitInputs,
  ModelChoice,
  NO_LIMITS,
  parseLimits,
  type ExpiryValue,
  type FieldErrors,
  type LimitValues,
} from "./form";
import { KeyReveal } from "./KeyReveal";
import type { KeyCreate, KeyCreated, KeyType } from "./types";

const FORM_FIELDS = [
  "name",
  "key_type",
  "team_id",
  "service_account_id",
  "user_id",
  "expires_at",
  "requests_per_minute",
  "requests_per_day",
  "daily_token_limit",
  "monthly_token_limit",
] as const;

export interface CreateKeyDialogProps {
  open: boolean;
  onOpenChange: (open: boolean) => void;
}

/** The "Create key" dialog: the form, then the new key shown once. Closing it forgets the key. */
export function CreateKeyDialog({ open, onOpenChange }: CreateKeyDialogProps) {
  const [created, setCreated] = useState<{ name: string; plaintext: string; restrictError: unknown } | null>(null);
  const change = (next: boolean) => {
    if (!next) setCreated(null);
    onOpenChange(next);
  };
  return (
    <Dialog
      open={open}
      onOpenChange={change}
      title={created ? "Key created" : "Create key"}
      description={created ? `The key “${created.name}” is ready.` : "A new API key for the OpenAI-compatible endpoints."}
      size="lg"
      footer={created ? <Button onClick={() => change(false)}>Done</Button> : undefined}
    >
      {created ? (
        <>
          <KeyReveal plaintext={created.plaintext} />
          {created.restrictError ? (
            <div className="flex flex-col gap-1">
              <p className="text-sm">The key was created, but its model restriction could not be saved:</p>
              <InlineError error={created.restrictError} />
            </div>
          ) : null}
        </>
      ) : open ? (
        <CreateKeyForm onCreated={setCreated} />
      ) : null}
    </Dialog>
  );
}

function CreateKeyForm({
  onCreated,
}: {
  onCreated: (created: { name: string; plaintext: string; restrictError: unknown }) => void;
}) {
  const me = useCurrentUser();
  const { orgId, isOwn } = useViewedOrg();
  const queryClient = useQueryClient();
  const toast = useToast();
  const chooseType = canChooseKeyType(me);
  const restrict = canRestrictModels(me);
  const teams = useTeams(orgId);
  const accounts = useServiceAccounts(me, orgId);
  const available = useAvailableModels(restrict);

  const [name, setName] = useState("");
  // A personal key acts as its holder in the key's organisation, of which the holder must be a member: a
  // system admin viewing another organisation creates team and service-account keys there.
  const [keyType, setKeyType] = useState<KeyType>(isOwn ? "user_key" : "team_key");
  const [teamId, setTeamId] = useState("");
  const [accountId, setAccountId] = useState("");
  const [limits, setLimits] = useState<LimitValues>(NO_LIMITS);
  const [expiry, setExpiry] = useState<ExpiryValue>({ choice: "", date: "" });
  const [models, setModels] = useState<string[]>([]);
  const [errors, setErrors] = useState<FieldErrors>({});

  const create = useMutation({
    // The plaintext goes straight to the dialog's state: the mutation (and so the query client) keeps only the id.
    mutationFn: async (body: KeyCreate) => {
      const key = await api.post<KeyCreated>(keysPath(orgId), body);
      let restrictError: unknown = null;
      if (models.length > 0) {
        try {
          await api.put(`${keyPath(orgId, key.id)}/model-access`, { models });
        } catch (error) {
          restrictError = error;
        }
      }
      onCreated({ name: key.name, plaintext: key.key, restrictError });
      return key.id;
    },
    gcTime: 0,
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: [...keysKey(orgId), "list"] });
      toast({ title: "Key created", tone: "success" });
    },
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found: FieldErrors = {};
    if (!name.trim()) found.name = "Enter a name.";
    if (keyType === "team_key" && !teamId) found.team_id = "Choose a team.";
    if (keyType === "sa_key" && !accountId) found.service_account_id = "Choose a service account.";
    const parsed = parseLimits(limits);
    Object.assign(found, parsed.errors);
    const expiresAt = expiryToIso(expiry);
    if (expiresAt === "invalid") found.expires_at = "Enter a date and time.";
    setErrors(found);
    if (Object.keys(found).length > 0 || expiresAt === "invalid") return;
    create.mutate(buildBody(me, { name: name.trim(), keyType, teamId, accountId, expiresAt, limits: parsed.limits }));
  };

  const fieldError = (field: string) => errors[field] ?? apiFieldError(create.error, field);
  const teamOptions = (teams.data?.items ?? []).map((t) => ({ value: t.id, label: t.name }));
  const accountOptions = (accounts.data?.items ?? []).map((a) => ({ value: a.id, label: a.name }));

  return (
    <form id="create-key" onSubmit={submit} noValidate className="flex flex-col gap-4">
      <Field label="Name" required error={fieldError("name")}>
        <Input value={name} onChange={(e) => setName(e.target.value)} maxLength={256} autoComplete="off" />
      </Field>
      {chooseType ? (
        <Field label="Key type" error={fieldError("key_type")}>
          <NativeSelect
            value={keyType}
            onChange={(e) => setKeyType(e.target.value as KeyType)}
            options={[
              ...(isOwn ? [{ value: "user_key", label: "Personal key (acts as you)" }] : []),
              { value: "team_key", label: "Team key" },
              { value: "sa_key", label: "Service account key" },
            ]}
          />
        </Field>
      ) : null}
      {keyType === "sa_key" ? (
        <Field
          label="Service account"
          required
          error={fieldError("service_account_id")}
          hint={accounts.isError ? "Could not load the service accounts." : undefined}
        >
          <NativeSelect
            value={accountId}
            onChange={(e) => setAccountId(e.target.value)}
            placeholder={accounts.isPending ? "Loading…" : "Choose a service account"}
            options={accountOptions}
          />
        </Field>
      ) : (
        <Field
          label="Team"
          required={keyType === "team_key"}
          error={fieldError("team_id")}
          hint={
            teams.isError
              ? "Could not load the teams."
              : keyType === "user_key"
                ? "Optional: the key then also counts against the team's limits."
                : undefined
          }
        >
          <NativeSelect
            value={teamId}
            onChange={(e) => setTeamId(e.target.value)}
            placeholder={teams.isPending ? "Loading…" : keyType === "team_key" ? "Choose a team" : "No team"}
            options={teamOptions}
          />
        </Field>
      )}
      <LimitInputs values={limits} onChange={setLimits} errors={{ ...pickApiLimitErrors(create.error), ...errors }} />
      <ExpiryInput value={expiry} onChange={setExpiry} emptyLabel="Never" error={fieldError("expires_at")} />
      {restrict ? (
        available.isError ? (
          <InlineError error={available.error} />
        ) : (
          <ModelChoice models={(available.data?.models ?? []).map((m) => m.name)} selected={models} onChange={setModels} />
        )
      ) : null}
      {create.isError && !isFieldError(create.error, FORM_FIELDS) ? <InlineError error={create.error} /> : null}
      <DialogFormActions submitLabel="Create" pending={create.isPending} />
    </form>
  );
}

function pickApiLimitErrors(error: unknown): FieldErrors {
  const out: FieldErrors = {};
  for (const field of ["requests_per_minute", "requests_per_day", "daily_token_limit", "monthly_token_limit"]) {
    const message = apiFieldError(error, field);
    if (message) out[field] = message;
  }
  return out;
}

function buildBody(
  me: Me,
  form: {
    name: string;
    keyType: KeyType;
    teamId: string;
    accountId: string;
    expiresAt: string | null;
    limits: ReturnType<typeof parseLimits>["limits"];
  },
): KeyCreate {
  const body: KeyCreate = { name: form.name, key_type: form.keyType, ...form.limits };
  if (form.keyType === "user_key") {
    body.user_id = me.id;
    if (form.teamId) body.team_id = form.teamId;
  } else if (form.keyType === "team_key") {
    body.team_id = form.teamId;
  } else {
    body.service_account_id = form.accountId;
  }
  if (form.expiresAt) body.expires_at = form.expiresAt;
  return body;
}
