import { useCurrentUser } from "../../lib/auth";
import { Card, CardContent, CardHeader, EmptyState, QueryView } from "../../components/ui";
import { AccessForm, IdChecklist } from "../access/AccessForm";
import { ModelAliases } from "../access/ModelAliases";
import { ModelChoice } from "../keys/form";
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
import type { McpAccess } from "./types";

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
  const all = [...new Set([...choices, ...saved])].sort();
  return (
    <AccessForm<ModelAccess>
      saved={saved}
      path={`${orgPath(orgId)}/model-access`}
      body={(models) => ({ models })}
      queryKey={orgKey(orgId, "model-access")}
      what="Model access"
      submitLabel="Save model access"
    >
      {(selected, setSelected) => <ModelChoice models={all} selected={selected} onChange={setSelected} />}
    </AccessForm>
  );
}

function Aliases({ orgId }: { orgId: string }) {
  const me = useCurrentUser();
  const aliases = useOrgAliases(orgId);
  const names = useModelNames(me);
  return (
    <ModelAliases
      path={`${orgPath(orgId)}/model-aliases`}
      aliases={aliases}
      queryKey={orgKey(orgId, "model-aliases")}
      modelNames={names.data}
      description="Names this organization's keys may use for a model."
      caption="Model aliases"
    />
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
  const known = new Set(servers.map((s) => s.id));
  const rows = [...servers, ...saved.filter((id) => !known.has(id)).map((id) => ({ id, name: "Unknown server", alias: id }))];
  return (
    <AccessForm<McpAccess>
      saved={saved}
      path={`${orgPath(orgId)}/mcp-access`}
      body={(ids) => ({ servers: ids })}
      queryKey={orgKey(orgId, "mcp-access")}
      what="MCP access"
      submitLabel="Save MCP access"
    >
      {(selected, setSelected) => (
        <IdChecklist
          legend="Granted servers"
          selected={selected}
          onChange={setSelected}
          items={rows.map((s) => ({
            id: s.id,
            label: (
              <>
                {s.name} <span className="font-mono text-xs text-muted">({s.alias})</span>
              </>
            ),
          }))}
        />
      )}
    </AccessForm>
  );
}
