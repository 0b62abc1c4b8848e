import { useMemo, useState } from "react";
import { Link, useParams } from "react-router";
import { useCurrentUser } from "../lib/auth";
import { formatNumber } from "../lib/format";
import { Button, Card, CardContent, CardHeader, EmptyState, InlineError, PageHeader, QueryView } from "../components/ui";
import { canSeeMcp } from "../features/usage/params";
import { creatableScopes, useHealth, useServers } from "../features/mcp/data";
import { McpServerDialog, type McpServerDialogState } from "../features/mcp/McpServerDialog";
import { McpServersTable } from "../features/mcp/McpServersTable";
import { ServerDetail } from "../features/mcp/ServerDetail";

/**
 * MCP Servers: `/mcp-servers` lists every server the caller can see (global, the organization's, their
 * teams') with health and tool count; `/mcp-servers/<id>` is one server.
 */
export default function McpServersPage() {
  const sub = (useParams()["*"] ?? "").replace(/\/+$/, "");
  if (sub) return <ServerDetail key={sub} id={decodeURIComponent(sub)} />;
  return <ServerList />;
}

const serverCount = (n: number) => (n === 1 ? "1 server" : `${formatNumber(n)} servers`);

function ServerList() {
  const me = useCurrentUser();
  const servers = useServers();
  const health = useHealth();
  const [dialog, setDialog] = useState<McpServerDialogState>(null);
  const healthMap = useMemo(() => new Map((health.data ?? []).map((h) => [h.server_id, h])), [health.data]);
  const teams = useMemo(() => new Map((servers.data?.teams ?? []).map((t) => [t.id, t.name])), [servers.data]);
  const canCreate = creatableScopes(me).length > 0;
  const addButton = canCreate ? <Button onClick={() => setDialog({ kind: "create" })}>Add MCP server</Button> : null;

  return (
    <>
      <PageHeader
        title="MCP Servers"
        description="MCP servers reached through the gateway at /api/v1/mcp/<alias>, and from Code Mode scripts. Their credentials are write-only."
        actions={
          <>
            {canSeeMcp(me) ? (
              <Button asChild variant="secondary">
                <Link to="/usage/mcp">MCP usage</Link>
              </Button>
            ) : null}
            {addButton}
          </>
        }
      />
      <Card>
        <CardHeader
          title="Servers"
          description={servers.data ? serverCount(servers.data.servers.length) : undefined}
          actions={
            <Button variant="secondary" size="sm" loading={health.isFetching} onClick={() => void health.refetch()}>
              Refresh health
            </Button>
          }
        />
        <CardContent className="flex flex-col gap-3">
          {health.isError ? <InlineError error={health.error} /> : null}
          <QueryView
            query={servers}
            loadingLabel="Loading MCP servers"
            errorTitle="Could not load the MCP servers"
            isEmpty={(data) => data.servers.length === 0}
            empty={
              <EmptyState
                title="No MCP servers yet"
                description={canCreate ? "Add a server to call its tools through the gateway." : "An admin can add servers for you."}
                action={addButton}
              />
            }
          >
            {(data) => (
              <>
                <McpServersTable
                  servers={data.servers}
                  health={healthMap}
                  healthState={health.isPending ? "loading" : health.isError ? "error" : "ready"}
                  teams={teams}
                />
                {data.truncated ? <p className="text-sm text-muted">Not every server could be loaded.</p> : null}
              </>
            )}
          </QueryView>
        </CardContent>
      </Card>
      <McpServerDialog state={dialog} teams={servers.data?.teams ?? []} onClose={() => setDialog(null)} />
    </>
  );
}
