import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "react-router";
import { api } from "../../lib/api";
import { useOrgId } from "../../lib/viewedOrg";
import { Dialog, DialogFormActions, Field, InlineError, Input, useToast } from "../../components/ui";
import { apiFieldError, isFieldError, LimitInputs, NO_LIMITS, parseLimits, type FieldErrors, type LimitValues } from "../keys/form";
import { teamsKey, teamsPath } from "./data";
import type { Team, TeamCreate } from "./types";

const FORM_FIELDS = ["name", "slug", "requests_per_minute", "requests_per_day", "daily_token_limit", "monthly_token_limit"];

/** "Create team" (org admins): name, optional slug, the four limits; then the new team's page. */
export function CreateTeamDialog({ open, onOpenChange }: { open: boolean; onOpenChange: (open: boolean) => void }) {
  return (
    <Dialog open={open} onOpenChange={onOpenChange} title="Create team" description="A team shares limits, models and MCP servers." size="lg">
      {open ? <CreateTeamForm onDone={() => onOpenChange(false)} /> : null}
    </Dialog>
  );
}

function CreateTeamForm({ onDone }: { onDone: () => void }) {
  const orgId = useOrgId();
  const queryClient = useQueryClient();
  const toast = useToast();
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const [limits, setLimits] = useState<LimitValues>(NO_LIMITS);
  const [errors, setErrors] = useState<FieldErrors>({});

  const create = useMutation({
    mutationFn: (body: TeamCreate) => api.post<Team>(teamsPath(orgId), body),
    onSuccess: (team) => {
      void queryClient.invalidateQueries({ queryKey: teamsKey(orgId) });
      toast({ title: `Team “${team.name}” created`, tone: "success" });
      onDone();
      void navigate(`/teams/${encodeURIComponent(team.id)}/members`);
    },
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const parsed = parseLimits(limits);
    const found: FieldErrors = { ...parsed.errors };
    if (!name.trim()) found.name = "Enter a name.";
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    const body: TeamCreate = { name: name.trim(), ...parsed.limits };
    if (slug.trim()) body.slug = slug.trim();
    create.mutate(body);
  };
  const fieldError = (field: string) => errors[field] ?? apiFieldError(create.error, field);
  const limitErrors: FieldErrors = {};
  for (const field of FORM_FIELDS.slice(2)) limitErrors[field] = fieldError(field);

  return (
    <form onSubmit={submit} noValidate className="flex flex-col gap-4">
      <Field label="Name" required error={fieldError("name")}>
        <Input value={name} onChange={(e) => setName(e.target.value)} maxLength={256} autoComplete="off" />
      </Field>
      <Field label="Slug" hint="Lowercase letters, digits and hyphens; derived from the name when empty." error={fieldError("slug")}>
        <Input value={slug} onChange={(e) => setSlug(e.target.value)} maxLength={63} autoComplete="off" />
      </Field>
      <LimitInputs values={limits} onChange={setLimits} errors={limitErrors} />
      {create.isError && !isFieldError(create.error, FORM_FIELDS) ? <InlineError error={create.error} /> : null}
      <DialogFormActions submitLabel="Create" pending={create.isPending} />
    </form>
  );
}
