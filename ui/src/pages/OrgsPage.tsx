import { useState, type FormEvent } from "react";
import { Link } from "react-router";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../lib/api";
import { useCurrentUser } from "../lib/auth";
import { formatNumber } from "../lib/format";
import {
  Badge,
  Button,
  buttonClass,
  Card,
  CardContent,
  ConfirmDialog,
  Dialog,
  DialogFormActions,
  ItemsTable,
  Field,
  InlineError,
  Input,
  PageHeader,
  TD,
  TR,
  useToast,
} from "../components/ui";
import { apiFieldError, isFieldError, LimitInputs, NO_LIMITS, parseLimits, type FieldErrors, type LimitValues } from "../features/keys/form";
import { LIMIT_FIELDS } from "../features/keys/types";
import { orgPath, useOrgs } from "../features/org/data";
import { SLUG_PATTERN } from "../features/org/OrgSettings";
import type { OrgCreate, OrgOut } from "../features/org/types";

/** Organizations (system admins): create, deactivate, reactivate, and open one to view and manage it. */
export default function OrgsPage() {
  const me = useCurrentUser();
  const orgs = useOrgs();
  const queryClient = useQueryClient();
  const toast = useToast();
  const [creating, setCreating] = useState(false);
  const [deactivating, setDeactivating] = useState<OrgOut | null>(null);
  const [typed, setTyped] = useState("");
  const change = useMutation({
    mutationFn: ({ org, action }: { org: OrgOut; action: "deactivate" | "reactivate" }) =>
      api.post<OrgOut>(`${orgPath(org.id)}/${action}`),
    onSuccess: (saved, { action }) => {
      void queryClient.invalidateQueries({ queryKey: ["orgs"] });
      void queryClient.invalidateQueries({ queryKey: ["org", saved.id] });
      toast({ title: `${saved.name} ${action === "deactivate" ? "deactivated" : "reactivated"}`, tone: "success" });
      closeDeactivate();
    },
  });
  const closeDeactivate = () => {
    setDeactivating(null);
    setTyped("");
    change.reset();
  };
  const createButton = <Button onClick={() => setCreating(true)}>Create organization</Button>;
  return (
    <>
      <PageHeader title="Organizations" description="Every organization of this gateway. Open one to manage it." actions={createButton} />
      {!deactivating && change.isError ? <InlineError error={change.error} /> : null}
      <Card>
        <CardContent>
          <ItemsTable
            query={orgs}
            noun="organizations"
            caption="Organizations"
            headers={["Name", "Slug", "Members", "Teams", "Status"]}
            emptyAction={createButton}
          >
            {(org) => (
              <TR key={org.id}>
                <TD className="font-medium">
                  {org.name}
                  {org.id === me.org_id ? <span className="text-muted"> (yours)</span> : null}
                </TD>
                <TD className="font-mono text-xs">{org.slug}</TD>
                <TD className="tabular-nums">{formatNumber(org.member_count)}</TD>
                <TD className="tabular-nums">{formatNumber(org.team_count)}</TD>
                <TD>
                  <Badge tone={org.is_active ? "success" : "danger"}>{org.is_active ? "Active" : "Deactivated"}</Badge>
                </TD>
                <TD>
                  <div className="flex justify-end gap-1 whitespace-nowrap">
                    <Link
                      to={`/orgs/${encodeURIComponent(org.id)}/settings`}
                      aria-label={`View ${org.name}`}
                      className={buttonClass("ghost", "sm")}
                    >
                      View
                    </Link>
                    {org.is_active ? (
                      <Button size="sm" variant="ghost" className="text-danger" aria-label={`Deactivate ${org.name}`} onClick={() => setDeactivating(org)}>
                        Deactivate
                      </Button>
                    ) : (
                      <Button
                        size="sm"
                        variant="ghost"
                        aria-label={`Reactivate ${org.name}`}
                        disabled={change.isPending}
                        onClick={() => change.mutate({ org, action: "reactivate" })}
                      >
                        Reactivate
                      </Button>
                    )}
                  </div>
                </TD>
              </TR>
            )}
          </ItemsTable>
        </CardContent>
      </Card>
      <CreateOrgDialog open={creating} onOpenChange={setCreating} />
      <ConfirmDialog
        open={deactivating !== null}
        onOpenChange={(open) => (open ? undefined : closeDeactivate())}
        title={deactivating ? `Deactivate ${deactivating.name}?` : "Deactivate organization?"}
        description="Every key of this organization stops working at once, until it is reactivated."
        confirmLabel="Deactivate"
        destructive
        pending={change.isPending}
        confirmDisabled={!deactivating || typed !== deactivating.slug}
        onConfirm={() => deactivating && typed === deactivating.slug && change.mutate({ org: deactivating, action: "deactivate" })}
      >
        {deactivating ? (
          <Field label={`Type the slug “${deactivating.slug}” to confirm`}>
            <Input value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" spellCheck={false} />
          </Field>
        ) : null}
        {change.isError ? <InlineError error={change.error} /> : null}
      </ConfirmDialog>
    </>
  );
}

function CreateOrgDialog({ open, onOpenChange }: { open: boolean; onOpenChange: (open: boolean) => void }) {
  return (
    <Dialog open={open} onOpenChange={onOpenChange} title="Create organization" size="lg">
      {open ? <CreateOrgForm onDone={() => onOpenChange(false)} /> : null}
    </Dialog>
  );
}

function slugOf(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63);
}

function CreateOrgForm({ onDone }: { onDone: () => void }) {
  const queryClient = useQueryClient();
  const toast = useToast();
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const [slugTouched, setSlugTouched] = useState(false);
  const [limits, setLimits] = useState<LimitValues>(NO_LIMITS);
  const [errors, setErrors] = useState<FieldErrors>({});
  const create = useMutation({
    mutationFn: (body: OrgCreate) => api.post<OrgOut>("orgs", body),
    onSuccess: (org) => {
      void queryClient.invalidateQueries({ queryKey: ["orgs"] });
      toast({ title: `Organization ${org.name} created`, tone: "success" });
      onDone();
    },
  });
  const shownSlug = slugTouched ? slug : slugOf(name);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found: FieldErrors = {};
    if (!name.trim()) found.name = "Enter a name.";
    if (!SLUG_PATTERN.test(shownSlug)) found.slug = "2 to 63 lowercase letters, digits and hyphens.";
    const parsed = parseLimits(limits);
    Object.assign(found, parsed.errors);
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    create.mutate({ name: name.trim(), slug: shownSlug, ...parsed.limits });
  };
  const fieldError = (field: string) => errors[field] ?? apiFieldError(create.error, field);
  const fields = ["name", "slug", ...LIMIT_FIELDS.map((l) => l.field)];
  return (
    <form onSubmit={submit} noValidate className="flex flex-col gap-4">
      <div className="grid grid-cols-1 gap-3 sm:grid-cols-2">
        <Field label="Name" required error={fieldError("name")}>
          <Input value={name} onChange={(e) => setName(e.target.value)} maxLength={256} autoComplete="off" />
        </Field>
        <Field label="Slug" required hint="Lowercase letters, digits and hyphens." error={fieldError("slug")}>
          <Input
            value={shownSlug}
            onChange={(e) => {
              setSlugTouched(true);
              setSlug(e.target.value);
            }}
            maxLength={63}
            autoComplete="off"
          />
        </Field>
      </div>
      <LimitInputs values={limits} onChange={setLimits} errors={errors} />
      {create.isError && !isFieldError(create.error, fields) ? <InlineError error={create.error} /> : null}
      <DialogFormActions submitLabel="Create" pending={create.isPending} />
    </form>
  );
}
