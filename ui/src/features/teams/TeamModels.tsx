import { useEffect, useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { useCurrentUser } from "../../lib/auth";
import {
  Button,
  Card,
  CardContent,
  CardHeader,
  ConfirmDialog,
  EmptyState,
  Field,
  InlineError,
  Input,
  NativeSelect,
  QueryView,
  Table,
  TBody,
  TD,
  TH,
  THead,
  TR,
  useToast,
} from "../../components/ui";
import { useAvailableModels } from "../keys/data";
import { apiFieldError, ModelChoice } from "../keys/form";
import type { ModelAccess } from "../keys/types";
import { canManageOrgTeams, teamKey, teamPath, useTeamAliases, useTeamModelAccess } from "./data";
import type { ModelAlias } from "./types";

/** A team's model allowlist (org admins change it, team admins read it) and its model aliases (org admins). */
export function TeamModels({ teamId, teamName }: { teamId: string; teamName: string }) {
  const me = useCurrentUser();
  const orgAdmin = canManageOrgTeams(me);
  return (
    <div className="flex flex-col gap-6">
      <ModelAllowlist teamId={teamId} editable={orgAdmin} />
      {orgAdmin ? (
        <TeamAliases teamId={teamId} teamName={teamName} />
      ) : (
        <Card>
          <CardHeader title="Model aliases" description="Team model aliases are managed by organization admins." />
        </Card>
      )}
    </div>
  );
}

function ModelAllowlist({ teamId, editable }: { teamId: string; editable: boolean }) {
  const me = useCurrentUser();
  const access = useTeamModelAccess(me, teamId);
  const available = useAvailableModels(editable);
  const queryClient = useQueryClient();
  const toast = useToast();
  const [selected, setSelected] = useState<string[]>([]);
  useEffect(() => {
    if (access.data) setSelected(access.data.models);
  }, [access.data]);
  const save = useMutation({
    mutationFn: (models: string[]) => api.put<ModelAccess>(`${teamPath(me.org_id, teamId)}/model-access`, { models }),
    onSuccess: (saved) => {
      queryClient.setQueryData([...teamKey(me.org_id, teamId), "model-access"], saved);
      toast({ title: "Model access saved", tone: "success" });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate(selected);
  };
  return (
    <Card>
      <CardHeader
        title="Model access"
        description="The models the team's keys may use, within what the organization allows. None checked: every model the organization allows."
      />
      <CardContent>
        <QueryView query={access} loadingLabel="Loading model access" errorTitle="Could not load the model access">
          {(data) =>
            editable ? (
              <form onSubmit={submit} className="flex flex-col gap-4">
                {available.isError ? <InlineError error={available.error} /> : null}
                <ModelChoice
                  models={[...new Set([...(available.data?.models ?? []).map((m) => m.name), ...data.models])]}
                  selected={selected}
                  onChange={setSelected}
                />
                {save.isError ? <InlineError error={save.error} /> : null}
                <div>
                  <Button type="submit" loading={save.isPending}>
                    Save model access
                  </Button>
                </div>
              </form>
            ) : data.models.length === 0 ? (
              <p className="text-sm">Every model the organization allows.</p>
            ) : (
              <ul aria-label="Allowed models" className="list-inside list-disc text-sm">
                {data.models.map((m) => (
                  <li key={m}>{m}</li>
                ))}
              </ul>
            )
          }
        </QueryView>
      </CardContent>
    </Card>
  );
}

function TeamAliases({ teamId, teamName }: { teamId: string; teamName: string }) {
  const me = useCurrentUser();
  const aliases = useTeamAliases(me, teamId, true);
  const available = useAvailableModels(true);
  const queryClient = useQueryClient();
  const toast = useToast();
  const [alias, setAlias] = useState("");
  const [model, setModel] = useState("");
  const [errors, setErrors] = useState<{ alias?: string; model_name?: string }>({});
  const [deleting, setDeleting] = useState<ModelAlias | null>(null);
  const path = `${teamPath(me.org_id, teamId)}/model-aliases`;
  const refresh = () => queryClient.invalidateQueries({ queryKey: [...teamKey(me.org_id, teamId), "aliases"] });

  const create = useMutation({
    mutationFn: () => api.post<ModelAlias>(path, { alias: alias.trim(), model_name: model }),
    onSuccess: (created) => {
      setAlias("");
      setModel("");
      void refresh();
      toast({ title: `Alias “${created.alias}” created`, tone: "success" });
    },
  });
  const remove = useMutation({
    mutationFn: (a: ModelAlias) => api.delete(`${path}/${encodeURIComponent(a.id)}`),
    onSuccess: (_, a) => {
      setDeleting(null);
      void refresh();
      toast({ title: `Alias “${a.alias}” deleted`, tone: "success" });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found: typeof errors = {};
    if (!alias.trim()) found.alias = "Enter an alias.";
    if (!model) found.model_name = "Choose a model.";
    setErrors(found);
    if (Object.keys(found).length === 0) create.mutate();
  };
  const fieldError = (field: "alias" | "model_name") => errors[field] ?? apiFieldError(create.error, field);
  const models = (available.data?.models ?? []).map((m) => ({ value: m.name, label: m.name }));

  return (
    <Card>
      <CardHeader title="Model aliases" description="Names the team's keys can use for a model (they take precedence over the organization's)." />
      <CardContent className="flex flex-col gap-4">
        <form onSubmit={submit} noValidate aria-label="New alias" className="grid grid-cols-1 items-start gap-3 sm:grid-cols-3">
          <Field label="Alias" required error={fieldError("alias")}>
            <Input value={alias} onChange={(e) => setAlias(e.target.value)} maxLength={256} autoComplete="off" />
          </Field>
          <Field label="Model" required error={fieldError("model_name")}>
            <NativeSelect value={model} onChange={(e) => setModel(e.target.value)} placeholder="Choose a model" options={models} />
          </Field>
          <div className="sm:pt-6">
            <Button type="submit" loading={create.isPending}>
              Add alias
            </Button>
          </div>
        </form>
        {create.isError && !apiFieldError(create.error, "alias") && !apiFieldError(create.error, "model_name") ? (
          <InlineError error={create.error} />
        ) : null}
        <QueryView
          query={aliases}
          loadingLabel="Loading aliases"
          errorTitle="Could not load the aliases"
          isEmpty={(data) => data.items.length === 0}
          empty={<EmptyState title="No aliases" />}
        >
          {(data) => (
            <Table caption={`Model aliases of ${teamName}`}>
              <THead>
                <TR>
                  <TH>Alias</TH>
                  <TH>Model</TH>
                  <TH>
                    <span className="sr-only">Actions</span>
                  </TH>
                </TR>
              </THead>
              <TBody>
                {data.items.map((a) => (
                  <TR key={a.id}>
                    <TD className="font-medium">{a.alias}</TD>
                    <TD>{a.model_name}</TD>
                    <TD className="text-right">
                      <Button variant="ghost" size="sm" aria-label={`Delete alias ${a.alias}`} onClick={() => setDeleting(a)}>
                        Delete
                      </Button>
                    </TD>
                  </TR>
                ))}
              </TBody>
            </Table>
          )}
        </QueryView>
      </CardContent>
      <ConfirmDialog
        open={deleting !== null}
        onOpenChange={(open) => {
          if (!open) {
            setDeleting(null);
            remove.reset();
          }
        }}
        title="Delete alias"
        description={deleting ? `Delete the alias “${deleting.alias}”? Requests using it stop resolving.` : ""}
        confirmLabel="Delete"
        destructive
        pending={remove.isPending}
        onConfirm={() => deleting && remove.mutate(deleting)}
      >
        {remove.isError ? <InlineError error={remove.error} /> : null}
      </ConfirmDialog>
    </Card>
  );
}
