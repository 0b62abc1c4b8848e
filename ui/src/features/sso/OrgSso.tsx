import { useState, type FormEvent, type ReactNode } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, isApiError } from "../../lib/api";
import { PROVIDERS_KEY } from "../../lib/auth";
import {
  Badge,
  Button,
  Card,
  CardContent,
  CardHeader,
  ConfirmDialog,
  CopyButton,
  Field,
  InlineError,
  Input,
  NativeSelect,
  QueryView,
  Switch,
  useToast,
} from "../../components/ui";
import {
  callbackUrl,
  GROUP_SYNC_OPTIONS,
  parseDomains,
  parseScopes,
  ROLE_OPTIONS,
  ssoKey,
  ssoPath,
  useOrgSso,
} from "./data";
import { SsoTest } from "./SsoTest";
import type { DefaultRole, GroupSync, OrgSsoOut, OrgSsoWrite } from "./types";

const FIELDS = [
  "enabled", "issuer", "client_id", "client_secret", "redirect_url", "scopes", "allowed_domains", "auto_provision",
  "default_role", "group_sync", "group_claim", "local_login",
];
const URL_PATTERN = /^https?:\/\/\S+$/;
const CLAIM = /^[A-Za-z0-9_:./-]{1,128}$/;

interface Draft {
  enabled: boolean;
  issuer: string;
  client_id: string;
  client_secret: string;
  redirect_url: string;
  scopes: string;
  allowed_domains: string;
  auto_provision: boolean;
  default_role: DefaultRole;
  group_sync: GroupSync;
  group_claim: string;
  local_login: boolean;
}

type Errors = Partial<Record<string, string>>;

function draftOf(sso: OrgSsoOut | null): Draft {
  return {
    enabled: sso?.enabled ?? true,
    issuer: sso?.issuer ?? "",
    client_id: sso?.client_id ?? "",
    client_secret: "",
    redirect_url: sso?.redirect_url ?? "",
    scopes: (sso?.scopes ?? ["openid", "email", "profile"]).join(" "),
    allowed_domains: (sso?.allowed_domains ?? []).join(", "),
    auto_provision: sso?.auto_provision ?? true,
    default_role: sso?.default_role ?? "member",
    group_sync: sso?.group_sync ?? "additive",
    group_claim: sso?.group_claim ?? "groups",
    local_login: sso?.local_login ?? true,
  };
}

/** The PUT body of a draft, and what cannot be sent as it is. */
export function ssoBody(draft: Draft, stored: OrgSsoOut | null): { body: OrgSsoWrite; errors: Errors } {
  const errors: Errors = {};
  if (!URL_PATTERN.test(draft.issuer.trim())) errors.issuer = "Enter the issuer's http(s) URL.";
  if (!draft.client_id.trim()) errors.client_id = "Enter the client ID.";
  if (!draft.client_secret && !stored?.client_secret_set) errors.client_secret = "Enter the client secret.";
  const redirect = draft.redirect_url.trim();
  if (redirect && !URL_PATTERN.test(redirect)) errors.redirect_url = "Enter an http(s) URL, or leave it empty.";
  const scopes = parseScopes(draft.scopes);
  if (scopes.error) errors.scopes = scopes.error;
  const domains = parseDomains(draft.allowed_domains);
  if (domains.error) errors.allowed_domains = domains.error;
  if (!CLAIM.test(draft.group_claim.trim()) && (draft.group_sync !== "off" || draft.group_claim.trim())) {
    errors.group_claim = "Enter the claim's name, e.g. groups (letters, digits and _ : . / -).";
  }
  const body: OrgSsoWrite = {
    enabled: draft.enabled,
    issuer: draft.issuer.trim(),
    client_id: draft.client_id.trim(),
    redirect_url: redirect || null,
    scopes: scopes.scopes,
    allowed_domains: domains.domains,
    auto_provision: draft.auto_provision,
    default_role: draft.default_role,
    group_sync: draft.group_sync,
    group_claim: draft.group_claim.trim() || "groups",
    local_login: draft.local_login,
  };
  if (draft.client_secret) body.client_secret = draft.client_secret;
  return { body, errors };
}

/** The field a 400 names (`scopes[1]` and `scopes.1` are about `scopes`). */
function errorFieldOf(error: unknown): string | null {
  if (!isApiError(error) || error.status !== 400) return null;
  const field = error.field ?? /^([a-z][a-z0-9_]*) /.exec(error.message)?.[1] ?? null;
  return field ? field.split(/[.[]/)[0]! : null;
}

/** An organisation's OpenID Connect provider: load it (none yet = a blank form), edit, test, remove. */
export function OrgSso({ orgId, orgName, picker }: { orgId: string; orgName?: string; picker?: ReactNode }) {
  const sso = useOrgSso(orgId);
  return (
    <Card>
      <CardHeader
        title="Organization provider"
        description={
          orgName
            ? `The OpenID Connect provider members of ${orgName} sign in with. It wins over the global provider for them.`
            : "The OpenID Connect provider your organization's members sign in with. It wins over the global provider for them."
        }
        actions={
          sso.data ? (
            <Badge tone={sso.data.enabled ? "success" : "neutral"}>{sso.data.enabled ? "Enabled" : "Disabled"}</Badge>
          ) : sso.data === null ? (
            <Badge>Not configured</Badge>
          ) : undefined
        }
      />
      <CardContent className="flex flex-col gap-4">
        {picker}
        <QueryView query={sso} loadingLabel="Loading the provider" errorTitle="Could not load the provider">
          {(data) => <SsoForm key={`${orgId}:${data?.updated_at ?? "new"}`} orgId={orgId} stored={data} />}
        </QueryView>
      </CardContent>
    </Card>
  );
}

function SsoForm({ orgId, stored }: { orgId: string; stored: OrgSsoOut | null }) {
  const queryClient = useQueryClient();
  const toast = useToast();
  const [draft, setDraft] = useState<Draft>(() => draftOf(stored));
  const [errors, setErrors] = useState<Errors>({});
  const [removing, setRemoving] = useState(false);
  const set = <K extends keyof Draft>(field: K, value: Draft[K]) => setDraft((d) => ({ ...d, [field]: value }));

  const save = useMutation({
    mutationFn: (body: OrgSsoWrite) => api.put<OrgSsoOut>(ssoPath(orgId), body),
    onSuccess: (saved) => {
      queryClient.setQueryData(ssoKey(orgId), saved);
      void queryClient.invalidateQueries({ queryKey: PROVIDERS_KEY });
      toast({ title: "Single sign-on saved", tone: "success" });
    },
  });
  const remove = useMutation({
    mutationFn: () => api.delete(ssoPath(orgId)),
    onSuccess: () => {
      setRemoving(false);
      queryClient.setQueryData(ssoKey(orgId), null);
      void queryClient.invalidateQueries({ queryKey: PROVIDERS_KEY });
      toast({ title: "Single sign-on removed", tone: "success" });
    },
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const { body, errors: found } = ssoBody(draft, stored);
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    save.mutate(body);
  };

  const apiField = errorFieldOf(save.error);
  const fieldError = (field: string) =>
    errors[field] ?? (apiField === field && isApiError(save.error) ? save.error.message : undefined);
  const secretStored = stored?.client_secret_set ?? false;
  const callback = draft.redirect_url.trim() || callbackUrl();

  return (
    <>
    <form onSubmit={submit} noValidate aria-label="Organization provider" className="flex flex-col gap-5">
      {stored === null ? (
        <p className="text-sm text-muted">
          No provider is set up for this organization yet: its members sign in with the global provider if there is one,
          or with their passwords.
        </p>
      ) : null}
      <Field label="Enabled" hint="Off: the settings are kept, but nobody signs in with this provider.">
        <Switch checked={draft.enabled} onCheckedChange={(v) => set("enabled", v)} />
      </Field>
      <div className="grid grid-cols-1 gap-3 sm:grid-cols-2">
        <Field
          label="Issuer URL"
          required
          error={fieldError("issuer")}
          hint="Its /.well-known/openid-configuration is read for the endpoints and keys."
          className="sm:col-span-2"
        >
          <Input
            type="url"
            value={draft.issuer}
            onChange={(e) => set("issuer", e.target.value)}
            placeholder="https://login.example.com/realms/acme"
            autoComplete="off"
            spellCheck={false}
          />
        </Field>
        <Field label="Client ID" required error={fieldError("client_id")}>
          <Input value={draft.client_id} onChange={(e) => set("client_id", e.target.value)} autoComplete="off" spellCheck={false} />
        </Field>
        <Field
          label="Client secret"
          required={!secretStored}
          error={fieldError("client_secret")}
          hint={
            secretStored
              ? "A secret is stored; it is never shown. Leave empty to keep it, or type a new one to replace it."
              : "Write-only: it is stored encrypted and never shown again after saving."
          }
        >
          <Input
            type="password"
            value={draft.client_secret}
            onChange={(e) => set("client_secret", e.target.value)}
            placeholder={secretStored ? "•••••••• (stored)" : undefined}
            autoComplete="new-password"
            spellCheck={false}
          />
        </Field>
        <Field
          label="Redirect URL"
          error={fieldError("redirect_url")}
          hint="Empty: the gateway's own callback URL (below). Set it only behind a proxy that changes the address."
          className="sm:col-span-2"
        >
          <Input
            type="url"
            value={draft.redirect_url}
            onChange={(e) => set("redirect_url", e.target.value)}
            placeholder={callbackUrl()}
            autoComplete="off"
            spellCheck={false}
          />
        </Field>
      </div>
      <div className="flex flex-col gap-1.5 rounded-md border border-border bg-surface-2 px-3 py-2">
        <p className="text-sm font-medium" id={`callback-${orgId}`}>
          Callback URL to register at your provider
        </p>
        <div className="flex flex-wrap items-center gap-2">
          <code className="break-all text-sm select-all" aria-labelledby={`callback-${orgId}`}>
            {callback}
          </code>
          <CopyButton value={callback} label="Copy callback URL" />
        </div>
      </div>
      <div className="grid grid-cols-1 gap-3 sm:grid-cols-2">
        <Field label="Scopes" error={fieldError("scopes")} hint="Separated by spaces or commas; openid is required.">
          <Input value={draft.scopes} onChange={(e) => set("scopes", e.target.value)} autoComplete="off" spellCheck={false} />
        </Field>
        <Field
          label="Allowed email domains"
          error={fieldError("allowed_domains")}
          hint="Separated by commas, e.g. acme.com, acme.de. New users get an account only with a verified email of these domains; empty: no new accounts."
        >
          <Input
            value={draft.allowed_domains}
            onChange={(e) => set("allowed_domains", e.target.value)}
            placeholder="acme.com"
            autoComplete="off"
            spellCheck={false}
          />
        </Field>
      </div>
      <fieldset className="flex flex-col gap-3">
        <legend className="mb-2 text-sm font-medium">New users</legend>
        <Field
          label="Create accounts at first sign-in"
          hint="On: a user without an account becomes a member of this organization at their first sign-in. Off: only existing users sign in."
        >
          <Switch checked={draft.auto_provision} onCheckedChange={(v) => set("auto_provision", v)} />
        </Field>
      </fieldset>
      <fieldset className="flex flex-col gap-3">
        <legend className="mb-2 text-sm font-medium">Teams from groups</legend>
        <div className="grid grid-cols-1 gap-3 sm:grid-cols-2">
          <Field
            label="Group sync"
            error={fieldError("group_sync")}
            hint="At each sign-in, the user joins the team of each group in the claim; missing teams are created."
          >
            <NativeSelect
              value={draft.group_sync}
              onChange={(e) => set("group_sync", e.target.value as GroupSync)}
              options={GROUP_SYNC_OPTIONS}
            />
          </Field>
          <Field label="Groups claim" error={fieldError("group_claim")} hint="The ID token claim with the group names.">
            <Input
              value={draft.group_claim}
              onChange={(e) => set("group_claim", e.target.value)}
              disabled={draft.group_sync === "off"}
              autoComplete="off"
              spellCheck={false}
            />
          </Field>
          <Field
            label="Role in those teams"
            error={fieldError("default_role")}
            hint="What a user becomes in a team they join through a group; an existing membership keeps its role."
          >
            <NativeSelect
              value={draft.default_role}
              onChange={(e) => set("default_role", e.target.value as DefaultRole)}
              options={ROLE_OPTIONS}
              disabled={draft.group_sync === "off"}
            />
          </Field>
        </div>
        {draft.group_sync === "exact" ? (
          <p role="note" className="rounded-md border border-warning/40 px-3 py-2 text-sm">
            <strong className="text-warning">Exact mode removes memberships:</strong> at each sign-in the user also leaves
            every team made from a group they no longer have. Teams made by hand are never touched.
          </p>
        ) : null}
      </fieldset>
      <div className="flex flex-col gap-3">
        <Field
          label="Password sign-in"
          hint="Off: members of this organization must sign in with SSO. System admins keep their password sign-in."
        >
          <Switch checked={draft.local_login} onCheckedChange={(v) => set("local_login", v)} />
        </Field>
        {!draft.local_login ? (
          <p role="note" className="rounded-md border border-warning/40 px-3 py-2 text-sm">
            <strong className="text-warning">Members then need SSO to sign in.</strong> Their passwords stop working for
            this organization; test the connection first. System admins keep their password sign-in (break-glass).
          </p>
        ) : null}
      </div>
      {save.isError && !FIELDS.includes(apiField ?? "") ? <InlineError error={save.error} /> : null}
      <SsoTest
        path={`${ssoPath(orgId)}/test`}
        disabled={!draft.issuer.trim()}
        body={() => {
          const { body } = ssoBody(draft, stored);
          return body;
        }}
      />
      <div className="flex flex-wrap gap-2 border-t border-border pt-4">
        <Button type="submit" loading={save.isPending}>
          {stored ? "Save" : "Set up single sign-on"}
        </Button>
        {stored ? (
          <Button variant="danger" onClick={() => setRemoving(true)}>
            Remove
          </Button>
        ) : null}
      </div>
    </form>
      <ConfirmDialog
        open={removing}
        onOpenChange={setRemoving}
        title="Remove this organization's provider?"
        description="Its members can no longer sign in with it (the global provider applies again, if there is one), and password sign-in is allowed again. The client secret is deleted."
        confirmLabel="Remove"
        destructive
        mutation={remove}
        onConfirm={() => remove.mutate()}
      />
    </>
  );
}
