import { useState, type FormEvent } from "react";
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
import { apiFieldError, isFieldError, ModelChoice } from "../keys/form";
import type { ModelAccess } from "../keys/types";
import {
  canManageOrgLimits,
  orgKey,
  orgPath,
  useAvailableMcpServers,
  useModelNames,
  useOrgAliases,
  useOrgMcpAccess,
  useOrgModelAccess,
} from "./data";
import type { AliasOut, McpAccess } from "./types";

/** Organization model access (the allowlist: system admins change it) and the organization's model aliases. */
export function OrgModels({ orgId }: { orgId: string }) {
  return (
    <div className="flex flex-col gap-6">
      <ModelAllowlist orgId={orgId} />
      <Aliases orgId={orgId} />
    </div>
  );
}

function ModelAllowlist({ orgId }: { orgId: string }) {
  const me = useCurrentUser();
  const access = useOrgModelAccess(orgId);
  const names = useModelNames(me);
  const editable = canManageOrgLimits(me);
  return (
    <Card>
      <CardHeader
        title="Model access"
        description="The models keys of this organization may use. None checked allows every model."
      />
      <CardContent>
        <QueryView query={access} loadingLabel="Loading model access" errorTitle="Could not load the model access">
          {(data) =>
            editable ? (
              <AllowlistForm key={data.models.join("\n")} orgId={orgId} saved={data.models} choices={names.data ?? []} />
            ) : data.models.length === 0 ? (
              <p className="text-sm">Every model is allowed.</p>
            ) : (
              <div className="flex flex-col gap-2">
                <ul aria-label="Allowed models" className="flex flex-wrap gap-2">
                  {data.models.map((m) => (
                    <li key={m} className="rounded-md border border-border px-2 py-1 font-mono text-xs">
                      {m}
                    </li>
                  ))}
                </ul>
                <p className="text-xs text-muted">Only a system admin changes the organization's model access.</p>
              </div>
            )
          }
        </QueryView>
      </CardContent>
    </Card>
  );
}

function AllowlistForm({ orgId, saved, choices }: { orgId: string; saved: string[]; choices: string[] }) {
  const queryClient = useQueryClient();
  const toast = useToast();
  const [selected, setSelected] = useState(saved);
  const save = useMutation({
    mutationFn: (models: string[]) => api.put<ModelAccess>(`${orgPath(orgId)}/model-access`, { models }),
    onSuccess: (result) => {
      queryClient.setQueryData(orgKey(orgId, "model-access"), result);
      toast({ title: "Model access saved", tone: "success" });
    },
  });
  const all = [...new Set([...choices, ...saved])].sort();
  return (
    <form
      className="flex flex-col gap-3"
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate(selected);
      }}
    >
      <ModelChoice models={all} selected={selected} onChange={setSelected} />
      {save.isError ? <InlineError error={save.error} /> : null}
      <div>
        <Button type="submit" loading={save.isPending}>
          Save model access
        </Button>
      </div>
    </form>
  );
}

function Aliases({ orgId }: { orgId: string }) {
  const me = useCurrentUser();
  const aliases = useOrgAliases(orgId);
  const names = useModelNames(me);
  const queryClient = useQueryClient();
  const toast = useToast();
  const [alias, setAlias] = useState("");
  const [model, setModel] = useState("");
  const [errors, setErrors] = useState<Record<string, string | undefined>>({});
  const [deleting, setDeleting] = useState<AliasOut | null>(null);
  const create = useMutation({
    mutationFn: (body: { alias: string; model_name: string }) => api.post<AliasOut>(`${orgPath(orgId)}/model-aliases`, body),
    onSuccess: (created) => {
      void queryClient.invalidateQueries({ queryKey: orgKey(orgId, "model-aliases") });
      toast({ title: `Alias ${created.alias} added`, tone: "success" });
      setAlias("");
      setModel("");
    },
  });
  const remove = useMutation({
    mutationFn: (a: AliasOut) => api.delete(`${orgPath(orgId)}/model-aliases/${encodeURIComponent(a.id)}`),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: orgKey(orgId, "model-aliases") });
      toast({ title: "Alias deleted", tone: "success" });
      closeDelete();
    },
  });
  const closeDelete = () => {
    setDeleting(null);
    remove.reset();
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found = {
      alias: alias.trim() ? undefined : "Enter an alias.",
      model_name: model ? undefined : "Choose a model.",
    };
    setErrors(found);
    if (found.alias || found.model_name) return;
    create.mutate({ alias: alias.trim(), model_name: model });
  };
  return (
    <Card>
      <CardHeader title="Model aliases" description="Names this organization's keys may use for a model." />
      <CardContent className="flex flex-col gap-4">
        <form onSubmit={submit} noValidate aria-label="Add an alias" className="grid grid-cols-1 items-start gap-3 sm:grid-cols-3">
          <Field label="Alias" error={errors.alias ?? apiFieldError(create.error, "alias")}>
            <Input value={alias} onChange={(e) => setAlias(e.target.value)} maxLength={256} autoComplete="off" />
          </Field>
          <Field label="Model" error={errors.model_name ?? apiFieldError(create.error, "model_name")}>
            <NativeSelect
              value={model}
              onChange={(e) => setModel(e.target.value)}
              placeholder={names.isPending ? "Loading…" : "Choose a model"}
              options={(names.data ?? []).map((n) => ({ value: n, label: n }))}
            />
          </Field>
          <div className="sm:pt-6">
            <Button type="submit" loading={create.isPending}>
              Add alias
            </Button>
          </div>
        </form>
        {create.isError && !isFieldError(create.error, ["alias", "model_name"]) ? <InlineError error={create.error} /> : null}
        <QueryView
          query={aliases}
          loadingLabel="Loading aliases"
          errorTitle="Could not load the aliases"
          isEmpty={(data) => data.items.length === 0}
          empty={<EmptyState title="No aliases yet" />}
        >
          {(data) => (
            <Table caption="Model aliases">
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
                    <TD className="font-mono">{a.alias}</TD>
                    <TD className="font-mono">{a.model_name}</TD>
                    <TD>
                      <div className="flex justify-end">
                        <Button size="sm" variant="ghost" className="text-danger" aria-label={`Delete alias ${a.alias}`} onClick={() => setDeleting(a)}>
                          Delete
                        </Button>
                      </div>
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
        onOpenChange={(open) => (open ? undefined : closeDelete())}
        title={deleting ? `Delete alias ${deleting.alias}?` : "Delete alias?"}
        description="Requests that name this alias stop finding the model."
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

/** MCP access: which global MCP servers the organization is granted (none checked grants every one). */
export function OrgMcpAccess({ orgId }: { orgId: string }) {
  const access = useOrgMcpAccess(orgId);
  const servers = useAvailableMcpServers(orgId);
  return (
    <Card>
      <CardHeader
        title="MCP access"
        description="The global MCP servers this organization may use. None checked grants every one."
      />
      <CardContent>
        <QueryView query={access} loadingLabel="Loading MCP access" errorTitle="Could not load the MCP access">
          {(data) => (
            <QueryView
              query={servers}
              loadingLabel="Loading MCP servers"
              errorTitle="Could not load the MCP servers"
              isEmpty={(list) => list.length === 0 && data.servers.length === 0}
              empty={<EmptyState title="No global MCP servers" description="A system admin registers them on the MCP servers page." />}
            >
              {(list) => <McpAccessForm key={data.servers.join("\n")} orgId={orgId} saved={data.servers} servers={list} />}
            </QueryView>
          )}
        </QueryView>
      </CardContent>
    </Card>
  );
}

function McpAccessForm({ orgId, saved, servers }: { orgId: string; saved: string[]; servers: { id: string; name: string; alias: string }[] }) {
  const queryClient = useQueryClient();
  const toast = useToast();
  const [selected, setSelected] = useState(saved);
  const save = useMutation({
    mutationFn: (ids: string[]) => api.put<McpAccess>(`${orgPath(orgId)}/mcp-access`, { servers: ids }),
    onSuccess: (result) => {
      queryClient.setQueryData(orgKey(orgId, "mcp-access"), result);
      toast({ title: "MCP access saved", tone: "success" });
    },
  });
  const known = new Set(servers.map((s) => s.id));
  const rows = [...servers, ...saved.filter((id) => !known.has(id)).map((id) => ({ id, name: "Unknown server", alias: id }))];
  return (
    <form
      className="flex flex-col gap-3"
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate(selected);
      }}
    >
      <fieldset className="flex flex-col gap-2">
        <legend className="text-sm font-medium">Granted servers</legend>
        {rows.map((s) => (
          <label key={s.id} className="flex items-center gap-2 text-sm">
            <input
              type="checkbox"
              className="h-4 w-4"
              checked={selected.includes(s.id)}
              onChange={(e) => setSelected(e.target.checked ? [...selected, s.id] : selected.filter((id) => id !== s.id))}
            />
            <span>
              {s.name} <span className="font-mono text-xs text-muted">({s.alias})</span>
            </span>
          </label>
        ))}
      </fieldset>
      {save.isError ? <InlineError error={save.error} /> : null}
      <div>
        <Button type="submit" loading={save.isPending}>
          Save MCP access
        </Button>
      </div>
    </form>
  );
}
