import { useOrgId } from "../../lib/viewedOrg";
import { Card, CardContent, CardHeader, InlineError, QueryView } from "../../components/ui";
import { AccessForm, IdChecklist } from "../access/AccessForm";
import { teamKey, teamPath, useGrantableMcpServers, useTeamMcpAccess } from "./data";
import type { McpAccess } from "./types";

/** Which global and organisation MCP servers the team's keys may call (team admins). */
export function TeamMcpAccess({ teamId }: { teamId: string }) {
  const orgId = useOrgId();
  const access = useTeamMcpAccess(teamId);
  const servers = useGrantableMcpServers(teamId);
  return (
    <Card>
      <CardHeader
        title="MCP access"
        description="The global and organization MCP servers the team's keys may call. None checked: no restriction at team level. The team's own servers are always allowed."
      />
      <CardContent>
        <QueryView query={access} loadingLabel="Loading MCP access" errorTitle="Could not load the MCP access">
          {(data) => (
            <AccessForm<McpAccess>
              key={data.servers.join("\n")}
              saved={data.servers}
              path={`${teamPath(orgId, teamId)}/mcp-access`}
              body={(ids) => ({ servers: ids })}
              queryKey={[...teamKey(orgId, teamId), "mcp-access"]}
              what="MCP access"
              submitLabel="Save MCP access"
            >
              {(selected, setSelected) => (
                <IdChecklist
                  legend="Allowed MCP servers"
                  selected={selected}
                  onChange={setSelected}
                  items={(servers.data ?? []).map((s) => ({
                    id: s.id,
                    label: (
                      <>
                        {s.name} <span className="text-muted">({s.alias}, {s.scope === "global" ? "global" : "organization"})</span>
                      </>
                    ),
                  }))}
                >
                  {servers.isError ? <InlineError error={servers.error} /> : null}
                  {servers.isPending ? <p className="text-sm text-muted">Loading servers…</p> : null}
                  {servers.data?.length === 0 ? <p className="text-sm text-muted">No MCP servers can be granted.</p> : null}
                </IdChecklist>
              )}
            </AccessForm>
          )}
        </QueryView>
      </CardContent>
    </Card>
  );
}
