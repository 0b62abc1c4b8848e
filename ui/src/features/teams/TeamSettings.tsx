import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "react-router";
import { api } from "../../lib/api";
import { useCurrentUser } from "../../lib/auth";
import { useOrgId } from "../../lib/viewedOrg";
import { formatNumber } from "../../lib/format";
import {
  Button,
  Card,
  CardContent,
  CardHeader,
  ConfirmDialog,
  Field,
  InlineError,
  Input,
  Progress,
  useToast,
} from "../../components/ui";
import { apiFieldError, isFieldError, LimitInputs, parseLimits, type FieldErrors, type LimitValues } from "../keys/form";
import { LIMIT_FIELDS, type LimitField } from "../keys/types";
import { canManageOrgTeams, teamPath, teamsKey, useTeamUse, type TeamUse } from "./data";
import type { Team, TeamUpdate } from "./types";

const limitValues = (team: Team): LimitValues =>
  Object.fromEntries(LIMIT_FIELDS.map(({ field }) => [field, String(team[field])])) as LimitValues;

/** A team's settings: budget use, name and slug (team admins), limits (org admins), deletion (org admins). */
export function TeamSettings({ team }: { team: Team }) {
  const me = useCurrentUser();
  const orgAdmin = canManageOrgTeams(me);
  return (
    <div className="flex flex-col gap-6">
      <BudgetUse team={team} />
      <SettingsForm key={team.updated_at} team={team} limitsEditable={orgAdmin} />
      {orgAdmin ? <DeleteTeam team={team} /> : null}
    </div>
  );
}

const BARS: { label: string; field: LimitField; use: keyof TeamUse; window: string }[] = [
  { label: "Requests today", field: "requests_per_day", use: "requestsToday", window: "UTC day" },
  { label: "Tokens today", field: "daily_token_limit", use: "tokensToday", window: "UTC day" },
  { label: "Tokens this month", field: "monthly_token_limit", use: "tokensThisMonth", window: "UTC month" },
];

function BudgetUse({ team }: { team: Team }) {
  const me = useCurrentUser();
  const orgAdmin = canManageOrgTeams(me);
  const use = useTeamUse(team.id, orgAdmin);
  return (
    <Card>
      <CardHeader title="Limits and budget use" description="0 = unlimited. Windows are UTC days and months." />
      <CardContent className="flex flex-col gap-4">
        <p className="text-sm">
          Requests per minute:{" "}
          <strong>{team.requests_per_minute === 0 ? "unlimited" : formatNumber(team.requests_per_minute)}</strong>
        </p>
        {!orgAdmin ? <p className="text-sm text-muted">Budget use is shown to organization admins.</p> : null}
        {use.isError ? <InlineError error={use.error} /> : null}
        <ul aria-label="Budget use" className="flex flex-col gap-3">
          {BARS.map(({ label, field, use: key }) => {
            const limit = team[field];
            const used = use.data?.[key];
            return (
              <li key={field} className="flex flex-col gap-1">
                <div className="flex justify-between gap-2 text-sm">
                  <span>{label}</span>
                  <span className="text-muted">
                    {used === undefined ? "" : `${formatNumber(used)} of `}
                    {limit === 0 ? "unlimited" : formatNumber(limit)}
                  </span>
                </div>
                {limit > 0 && used !== undefined ? (
                  <Progress value={used} max={limit} label={`${label} of ${team.name}`} valueText={`${formatNumber(used)} of ${formatNumber(limit)}`} />
                ) : null}
              </li>
            );
          })}
        </ul>
      </CardContent>
    </Card>
  );
}

const FORM_FIELDS = ["name", "slug", ...LIMIT_FIELDS.map((l) => l.field)];

function SettingsForm({ team, limitsEditable }: { team: Team; limitsEditable: boolean }) {
  const orgId = useOrgId();
  const queryClient = useQueryClient();
  const toast = useToast();
  const [name, setName] = useState(team.name);
  const [slug, setSlug] = useState(team.slug);
  const [limits, setLimits] = useState<LimitValues>(limitValues(team));
  const [errors, setErrors] = useState<FieldErrors>({});
  const save = useMutation({
    mutationFn: (body: TeamUpdate) => api.patch<Team>(teamPath(orgId, team.id), body),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: teamsKey(orgId) });
      toast({ title: "Team saved", tone: "success" });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found: FieldErrors = {};
    if (!name.trim()) found.name = "Enter a name.";
    if (!slug.trim()) found.slug = "Enter a slug.";
    const parsed = parseLimits(limits);
    if (limitsEditable) Object.assign(found, parsed.errors);
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    const body: TeamUpdate = {};
    if (name.trim() !== team.name) body.name = name.trim();
    if (slug.trim() !== team.slug) body.slug = slug.trim();
    if (limitsEditable) {
      for (const { field } of LIMIT_FIELDS) if (parsed.limits[field] !== team[field]) body[field] = parsed.limits[field];
    }
    save.mutate(body);
  };
  const fieldError = (field: string) => errors[field] ?? apiFieldError(save.error, field);
  const limitErrors: FieldErrors = {};
  for (const { field } of LIMIT_FIELDS) limitErrors[field] = fieldError(field);

  return (
    <Card>
      <CardHeader title="Settings" />
      <CardContent>
        <form onSubmit={submit} noValidate className="flex flex-col gap-4">
          <div className="grid grid-cols-1 gap-3 sm:grid-cols-2">
            <Field label="Name" required error={fieldError("name")}>
              <Input value={name} onChange={(e) => setName(e.target.value)} maxLength={256} autoComplete="off" />
            </Field>
            <Field label="Slug" required error={fieldError("slug")}>
              <Input value={slug} onChange={(e) => setSlug(e.target.value)} maxLength={63} autoComplete="off" />
            </Field>
          </div>
          {limitsEditable ? (
            <LimitInputs values={limits} onChange={setLimits} errors={limitErrors} />
          ) : (
            <p className="text-sm text-muted">The team's limits are set by organization admins.</p>
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

function DeleteTeam({ team }: { team: Team }) {
  const orgId = useOrgId();
  const queryClient = useQueryClient();
  const toast = useToast();
  const navigate = useNavigate();
  const [open, setOpen] = useState(false);
  const remove = useMutation({
    mutationFn: () => api.delete(teamPath(orgId, team.id)),
    onSuccess: () => {
      setOpen(false);
      queryClient.removeQueries({ queryKey: [...teamsKey(orgId), team.id] });
      void queryClient.invalidateQueries({ queryKey: teamsKey(orgId) });
      toast({ title: `Team “${team.name}” deleted`, tone: "success" });
      void navigate("/teams");
    },
  });
  return (
    <Card>
      <CardHeader
        title="Delete team"
        description="Deleting the team revokes its keys and its service accounts' keys at once."
        actions={
          <Button variant="danger" onClick={() => setOpen(true)}>
            Delete team
          </Button>
        }
      />
      <ConfirmDialog
        open={open}
        onOpenChange={(next) => {
          setOpen(next);
          if (!next) remove.reset();
        }}
        title="Delete team"
        description={`Delete ${team.name}? Its ${formatNumber(team.key_count)} keys stop working at once.`}
        confirmLabel="Delete team"
        destructive
        pending={remove.isPending}
        onConfirm={() => remove.mutate()}
      >
        {remove.isError ? <InlineError error={remove.error} /> : null}
      </ConfirmDialog>
    </Card>
  );
}
