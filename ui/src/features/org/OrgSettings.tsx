import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { useCurrentUser } from "../../lib/auth";
import { formatNumber } from "../../lib/format";
import {
  Badge,
  Button,
  Card,
  CardContent,
  CardHeader,
  ConfirmDialog,
  Field,
  InlineError,
  Input,
  QueryView,
  useToast,
} from "../../components/ui";
import { apiFieldError, isFieldError, LimitInputs, parseLimits, type FieldErrors, type LimitValues } from "../keys/form";
import { LIMIT_FIELDS } from "../keys/types";
import { canManageOrgLimits, orgKey, orgPath, useOrg } from "./data";
import type { OrgOut, OrgUpdate } from "./types";

const FORM_FIELDS = ["name", "slug", ...LIMIT_FIELDS.map((l) => l.field)];
export const SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$/;

/** Organization settings: name, slug and the four limits; activation for system admins. */
export function OrgSettings({ orgId }: { orgId: string }) {
  const org = useOrg(orgId);
  return (
    <QueryView query={org} loadingLabel="Loading the organization" errorTitle="Could not load the organization">
      {(data) => (
        <div className="flex flex-col gap-6">
          <SettingsForm key={data.updated_at} org={data} />
          <Activation org={data} />
        </div>
      )}
    </QueryView>
  );
}

function limitsOf(org: OrgOut): LimitValues {
  return {
    requests_per_minute: String(org.requests_per_minute),
    requests_per_day: String(org.requests_per_day),
    daily_token_limit: String(org.daily_token_limit),
    monthly_token_limit: String(org.monthly_token_limit),
  };
}

function SettingsForm({ org }: { org: OrgOut }) {
  const me = useCurrentUser();
  const queryClient = useQueryClient();
  const toast = useToast();
  const limitsEditable = canManageOrgLimits(me);
  const [name, setName] = useState(org.name);
  const [slug, setSlug] = useState(org.slug);
  const [limits, setLimits] = useState<LimitValues>(limitsOf(org));
  const [errors, setErrors] = useState<FieldErrors>({});
  const save = useMutation({
    mutationFn: (body: OrgUpdate) => api.patch<OrgOut>(orgPath(org.id), body),
    onSuccess: (saved) => {
      queryClient.setQueryData(orgKey(org.id, "settings"), saved);
      void queryClient.invalidateQueries({ queryKey: ["orgs"] });
      toast({ title: "Organization saved", tone: "success" });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found: FieldErrors = {};
    if (!name.trim()) found.name = "Enter a name.";
    if (!SLUG_PATTERN.test(slug)) found.slug = "2 to 63 lowercase letters, digits and hyphens.";
    const parsed = parseLimits(limits);
    if (limitsEditable) Object.assign(found, parsed.errors);
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    const body: OrgUpdate = { name: name.trim(), slug };
    save.mutate(limitsEditable ? { ...body, ...parsed.limits } : body);
  };
  const fieldError = (field: string) => errors[field] ?? apiFieldError(save.error, field);
  const apiLimitErrors: FieldErrors = {};
  for (const { field } of LIMIT_FIELDS) apiLimitErrors[field] = apiFieldError(save.error, field);
  return (
    <Card>
      <CardHeader title="Settings" description="The organization's name, its slug and its limits." />
      <CardContent>
        <form onSubmit={submit} noValidate aria-label="Organization settings" className="flex flex-col gap-4">
          <div className="grid grid-cols-1 gap-3 sm:grid-cols-2">
            <Field label="Name" required error={fieldError("name")}>
              <Input value={name} onChange={(e) => setName(e.target.value)} maxLength={256} autoComplete="off" />
            </Field>
            <Field label="Slug" required hint="Lowercase letters, digits and hyphens." error={fieldError("slug")}>
              <Input value={slug} onChange={(e) => setSlug(e.target.value)} maxLength={63} autoComplete="off" />
            </Field>
          </div>
          {limitsEditable ? (
            <LimitInputs values={limits} onChange={setLimits} errors={{ ...apiLimitErrors, ...errors }} />
          ) : (
            <section aria-label="Limits" className="flex flex-col gap-2">
              <h3 className="text-sm font-medium">Limits</h3>
              <dl className="grid grid-cols-1 gap-2 text-sm sm:grid-cols-2">
                {LIMIT_FIELDS.map(({ field, label }) => (
                  <div key={field} className="flex justify-between gap-2 rounded-md border border-border px-3 py-2">
                    <dt className="text-muted">{label}</dt>
                    <dd className="tabular-nums">{org[field] === 0 ? "Unlimited" : formatNumber(org[field])}</dd>
                  </div>
                ))}
              </dl>
              <p className="text-xs text-muted">Only a system admin changes the organization's limits.</p>
            </section>
          )}
          {save.isError && !isFieldError(save.error, FORM_FIELDS) ? <InlineError error={save.error} /> : null}
          <div>
            <Button type="submit" loading={save.isPending}>
              Save settings
            </Button>
          </div>
        </form>
      </CardContent>
    </Card>
  );
}

/** Deactivate (typing the slug to confirm) or reactivate: system admins only. */
function Activation({ org }: { org: OrgOut }) {
  const me = useCurrentUser();
  const queryClient = useQueryClient();
  const toast = useToast();
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState("");
  const change = useMutation({
    mutationFn: (action: "deactivate" | "reactivate") => api.post<OrgOut>(`${orgPath(org.id)}/${action}`),
    onSuccess: (saved, action) => {
      queryClient.setQueryData(orgKey(org.id, "settings"), saved);
      void queryClient.invalidateQueries({ queryKey: ["orgs"] });
      toast({ title: action === "deactivate" ? "Organization deactivated" : "Organization reactivated", tone: "success" });
      close();
    },
  });
  const close = () => {
    setOpen(false);
    setTyped("");
    change.reset();
  };
  if (!canManageOrgLimits(me)) return null;
  return (
    <Card>
      <CardHeader
        title="Status"
        description={
          org.is_active
            ? "Deactivating stops every key of the organization at once; its data stays."
            : "This organization is deactivated: its keys do not work."
        }
        actions={
          org.is_active ? (
            <Button variant="danger" onClick={() => setOpen(true)}>
              Deactivate organization
            </Button>
          ) : (
            <Button loading={change.isPending} onClick={() => change.mutate("reactivate")}>
              Reactivate organization
            </Button>
          )
        }
      />
      <CardContent>
        <Badge tone={org.is_active ? "success" : "danger"}>{org.is_active ? "Active" : "Deactivated"}</Badge>
        {!open && change.isError ? <InlineError error={change.error} /> : null}
      </CardContent>
      <ConfirmDialog
        open={open}
        onOpenChange={(next) => (next ? setOpen(true) : close())}
        title={`Deactivate ${org.name}?`}
        description="Every key of this organization stops working at once, until it is reactivated."
        confirmLabel="Deactivate"
        destructive
        pending={change.isPending}
        confirmDisabled={typed !== org.slug}
        onConfirm={() => {
          if (typed === org.slug) change.mutate("deactivate");
        }}
      >
        <Field label={`Type the slug “${org.slug}” to confirm`} error={typed && typed !== org.slug ? "The slug does not match." : undefined}>
          <Input value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" spellCheck={false} />
        </Field>
        {change.isError ? <InlineError error={change.error} /> : null}
      </ConfirmDialog>
    </Card>
  );
}
