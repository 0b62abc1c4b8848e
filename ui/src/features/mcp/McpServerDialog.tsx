import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { useCurrentUser } from "../../lib/auth";
import { useOrgId } from "../../lib/viewedOrg";
import { Dialog, DialogFormActions, Field, InlineError, Input, NativeSelect, useToast } from "../../components/ui";
import type { TeamOut } from "../keys/types";
import { apiFieldError, errorField } from "../keys/form";
import { AUTH_LABELS, creatableScopes, creatableTeams, createPath, MCP_KEY, SCOPE_LABELS, serverPath } from "./data";
import { AUTH_TYPES, type AuthType, type McpServerOut, type McpServerWrite } from "./types";

const FIELDS = [
  "name", "alias", "url", "auth_type", "auth_header", "auth_token", "oauth_token_url", "oauth_client_id",
  "oauth_client_secret", "oauth_scopes",
];
const ALIAS = /^[a-z0-9][a-z0-9-]{0,62}$/;

export type McpServerDialogState = { kind: "create" } | { kind: "edit"; server: McpServerOut } | null;

interface Draft {
  scope: "global" | "org" | "team";
  team_id: string;
  name: string;
  alias: string;
  url: string;
  auth_type: AuthType;
  auth_header: string;
  auth_token: string;
  oauth_token_url: string;
  oauth_client_id: string;
  oauth_client_secret: string;
  oauth_scopes: string;
}

type Errors = Partial<Record<string, string>>;

function draftOf(server: McpServerOut | null, scope: Draft["scope"], teamId: string): Draft {
  return {
    scope: server?.scope ?? scope,
    team_id: server?.team_id ?? teamId,
    name: server?.name ?? "",
    alias: server?.alias ?? "",
    url: server?.url ?? "",
    auth_type: server?.auth_type ?? "none",
    auth_header: server?.auth_header ?? "",
    auth_token: "",
    oauth_token_url: server?.oauth_token_url ?? "",
    oauth_client_id: server?.oauth_client_id ?? "",
    oauth_client_secret: "",
    oauth_scopes: server?.oauth_scopes ?? "",
  };
}

/** The body to send (all fields on create, the changed ones on edit) and what cannot be sent as it is. */
export function serverBody(draft: Draft, original: McpServerOut | null): { body: McpServerWrite; errors: Errors } {
  const errors: Errors = {};
  const kind = draft.auth_type;
  if (!draft.name.trim()) errors.name = "Enter a name.";
  if (!ALIAS.test(draft.alias.trim())) {
    errors.alias = "1-63 lowercase letters, digits or '-', starting with a letter or digit.";
  }
  if (!/^https?:\/\/\S+$/.test(draft.url.trim())) errors.url = "Enter an http(s) URL.";
  if (draft.scope === "team" && !draft.team_id && !original) errors.team_id = "Choose a team.";
  const tokenStored = original?.auth_type === kind && original.has_auth_token;
  if ((kind === "bearer" || kind === "header") && !draft.auth_token && !tokenStored) {
    errors.auth_token = kind === "bearer" ? "Enter the bearer token." : "Enter the header's value.";
  }
  if (kind === "header" && !draft.auth_header.trim()) errors.auth_header = "Enter the header's name.";
  if (kind === "oauth") {
    if (!draft.oauth_client_id.trim()) errors.oauth_client_id = "Enter the client ID.";
    const secretStored = original?.auth_type === "oauth" && original.has_oauth_client_secret;
    if (!draft.oauth_client_secret && !secretStored) errors.oauth_client_secret = "Enter the client secret.";
  }
  const full: McpServerWrite = {
    name: draft.name.trim(),
    alias: draft.alias.trim(),
    url: draft.url.trim(),
    auth_type: kind,
    auth_header: kind === "header" ? draft.auth_header.trim() : "",
    oauth_token_url: kind === "oauth" ? draft.oauth_token_url.trim() : "",
    oauth_client_id: kind === "oauth" ? draft.oauth_client_id.trim() : "",
    oauth_scopes: kind === "oauth" ? draft.oauth_scopes.trim() : "",
  };
  let body: McpServerWrite = full;
  if (original) {
    body = {};
    for (const field of Object.keys(full) as (keyof McpServerWrite)[]) {
      if (full[field] !== original[field as keyof McpServerOut]) (body as Record<string, unknown>)[field] = full[field];
    }
  }
  if ((kind === "bearer" || kind === "header") && draft.auth_token) body.auth_token = draft.auth_token;
  if (kind === "oauth" && draft.oauth_client_secret) body.oauth_client_secret = draft.oauth_client_secret;
  return { body, errors };
}

export function McpServerDialog({
  state,
  teams,
  onClose,
}: {
  state: McpServerDialogState;
  /** The teams a team server can belong to. */
  teams: TeamOut[];
  onClose: () => void;
}) {
  const server = state?.kind === "edit" ? state.server : null;
  return (
    <Dialog
      open={state !== null}
      onOpenChange={(open) => (open ? undefined : onClose())}
      title={server ? `Edit ${server.name}` : "Add MCP server"}
      description="The gateway calls the server with the credentials given here; clients call it through the gateway with their own API keys."
      size="lg"
    >
      {state ? <ServerForm key={server?.id ?? "new"} original={server} teams={teams} onDone={onClose} /> : null}
    </Dialog>
  );
}

function ServerForm({ original, teams: allTeams, onDone }: { original: McpServerOut | null; teams: TeamOut[]; onDone: () => void }) {
  const me = useCurrentUser();
  const orgId = useOrgId();
  const teams = creatableTeams(me, allTeams);
  const queryClient = useQueryClient();
  const toast = useToast();
  const scopes = creatableScopes(me);
  const [draft, setDraft] = useState<Draft>(() => draftOf(original, scopes[0] ?? "team", teams[0]?.id ?? ""));
  const [errors, setErrors] = useState<Errors>({});
  const set = <K extends keyof Draft>(field: K, value: Draft[K]) => setDraft((d) => ({ ...d, [field]: value }));

  const save = useMutation({
    mutationFn: (body: McpServerWrite) =>
      original
        ? api.patch<McpServerOut>(serverPath(original.id), body)
        : api.post<McpServerOut>(createPath(draft.scope, orgId, draft.team_id), body),
    gcTime: 0,
    onSuccess: (saved) => {
      void queryClient.invalidateQueries({ queryKey: MCP_KEY });
      toast({ title: original ? `${saved.name} saved` : `${saved.name} added`, tone: "success" });
      onDone();
    },
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const { body, errors: found } = serverBody(draft, original);
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    if (original && Object.keys(body).length === 0) {
      onDone();
      return;
    }
    save.mutate(body);
  };

  const fieldError = (field: string) => errors[field] ?? apiFieldError(save.error, field);
  const kind = draft.auth_type;
  const tokenStored = original?.auth_type === kind && original.has_auth_token;
  const secretStored = original?.auth_type === "oauth" && original.has_oauth_client_secret;
  const keepHint = "A value is stored; it is never shown. Leave empty to keep it.";
  const writeOnly = "Write-only: it is never shown again after saving.";

  return (
    <form onSubmit={submit} noValidate className="flex flex-col gap-4">
      <div className="grid grid-cols-1 gap-3 sm:grid-cols-2">
        {!original ? (
          <Field label="Scope" hint="Who can use it: everyone (with their organization's grant), an organization, or a team.">
            <NativeSelect
              value={draft.scope}
              onChange={(e) => set("scope", e.target.value as Draft["scope"])}
              options={scopes.map((s) => ({ value: s, label: SCOPE_LABELS[s] }))}
            />
          </Field>
        ) : null}
        {!original && draft.scope === "team" ? (
          <Field label="Team" required error={fieldError("team_id")}>
            <NativeSelect
              value={draft.team_id}
              onChange={(e) => set("team_id", e.target.value)}
              placeholder="Choose a team"
              options={teams.map((t) => ({ value: t.id, label: t.name }))}
            />
          </Field>
        ) : null}
        <Field label="Name" required error={fieldError("name")}>
          <Input value={draft.name} onChange={(e) => set("name", e.target.value)} maxLength={256} autoComplete="off" />
        </Field>
        <Field
          label="Alias"
          required
          error={fieldError("alias")}
          hint="Clients call it at /api/v1/mcp/<alias> and scripts as tools.<alias>."
        >
          <Input
            value={draft.alias}
            onChange={(e) => set("alias", e.target.value)}
            maxLength={63}
            autoComplete="off"
            spellCheck={false}
          />
        </Field>
        <Field label="URL" required error={fieldError("url")} hint="The server's Streamable HTTP endpoint." className="sm:col-span-2">
          <Input
            type="url"
            value={draft.url}
            onChange={(e) => set("url", e.target.value)}
            placeholder="https://mcp.example.com/mcp"
            autoComplete="off"
          />
        </Field>
        <Field label="Authentication" error={fieldError("auth_type")}>
          <NativeSelect
            value={kind}
            onChange={(e) => set("auth_type", e.target.value as AuthType)}
            options={AUTH_TYPES.map((a) => ({ value: a, label: AUTH_LABELS[a] ?? a }))}
          />
        </Field>
        {kind === "header" ? (
          <Field label="Header name" required error={fieldError("auth_header")} hint="For example X-API-Key.">
            <Input value={draft.auth_header} onChange={(e) => set("auth_header", e.target.value)} autoComplete="off" spellCheck={false} />
          </Field>
        ) : null}
        {kind === "bearer" || kind === "header" ? (
          <Field
            label={kind === "bearer" ? "Bearer token" : "Header value"}
            required={!tokenStored}
            error={fieldError("auth_token")}
            hint={tokenStored ? keepHint : writeOnly}
          >
            <Input
              type="password"
              value={draft.auth_token}
              onChange={(e) => set("auth_token", e.target.value)}
              autoComplete="new-password"
              spellCheck={false}
            />
          </Field>
        ) : null}
        {kind === "oauth" ? (
          <>
            <Field label="Client ID" required error={fieldError("oauth_client_id")}>
              <Input value={draft.oauth_client_id} onChange={(e) => set("oauth_client_id", e.target.value)} autoComplete="off" spellCheck={false} />
            </Field>
            <Field
              label="Client secret"
              required={!secretStored}
              error={fieldError("oauth_client_secret")}
              hint={secretStored ? keepHint : writeOnly}
            >
              <Input
                type="password"
                value={draft.oauth_client_secret}
                onChange={(e) => set("oauth_client_secret", e.target.value)}
                autoComplete="new-password"
                spellCheck={false}
              />
            </Field>
            <Field
              label="Token URL"
              error={fieldError("oauth_token_url")}
              hint="Empty: discovered from the server's /.well-known/oauth-authorization-server."
            >
              <Input type="url" value={draft.oauth_token_url} onChange={(e) => set("oauth_token_url", e.target.value)} autoComplete="off" />
            </Field>
            <Field label="Scopes" error={fieldError("oauth_scopes")} hint="Space-separated, as the provider expects.">
              <Input value={draft.oauth_scopes} onChange={(e) => set("oauth_scopes", e.target.value)} autoComplete="off" />
            </Field>
          </>
        ) : null}
      </div>
      {kind !== "none" ? (
        <p role="note" className="rounded-md border border-warning/40 px-3 py-2 text-sm">
          <strong>Shared credentials:</strong> everyone who may use this server through the gateway calls it with
          these credentials, and sees what they can see. Use an account with only the rights all of them may have.
        </p>
      ) : null}
      {save.error && !FIELDS.includes(errorField(save.error) ?? "") ? <InlineError error={save.error} /> : null}
      <DialogFormActions submitLabel={original ? "Save" : "Add server"} pending={save.isPending} />
    </form>
  );
}
