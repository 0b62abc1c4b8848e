import { useState, type ReactNode } from "react";
import { Link, useNavigate } from "react-router";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { useCurrentUser } from "../../lib/auth";
import { formatDuration, formatNumber } from "../../lib/format";
import {
  Badge,
  Button,
  Card,
  CardContent,
  CardHeader,
  ConfirmDialog,
  CopyButton,
  DateTime,
  Field,
  InlineError,
  PageHeader,
  QueryView,
  Switch,
  useToast,
} from "../../components/ui";
import { canSeeMcp } from "../usage/params";
import {
  AUTH_LABELS,
  canAdminister,
  ideConfig,
  isManaged,
  managedReason,
  MCP_KEY,
  scopeText,
  serverPath,
  useHealth,
  useServer,
  useServers,
} from "./data";
import { McpServerDialog } from "./McpServerDialog";
import { HealthBadge, SourceBadge } from "./McpServersTable";
import { ToolsCard } from "./ToolsCard";
import type { McpServerOut, McpTestResult } from "./types";

/** `/mcp-servers/<id>`: one server, its connection test, Code Mode, tools and blocklist, IDE configuration. */
export function ServerDetail({ id }: { id: string }) {
  const server = useServer(id);
  return (
    <QueryView
      query={server}
      loadingLabel="Loading the MCP server"
      errorTitle="Could not load the MCP server"
    >
      {(data) => <Loaded server={data} />}
    </QueryView>
  );
}

function Loaded({ server }: { server: McpServerOut }) {
  const me = useCurrentUser();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const toast = useToast();
  const health = useHealth();
  const list = useServers();
  const [editing, setEditing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const admin = canAdminister(me, server);
  const managed = isManaged(server);
  const canEdit = admin && managed;
  const h = health.data?.find((x) => x.server_id === server.id);
  const teams = new Map((list.data?.teams ?? []).map((t) => [t.id, t.name]));
  const invalidate = () => void queryClient.invalidateQueries({ queryKey: MCP_KEY });

  const test = useMutation({
    mutationFn: () => api.post<McpTestResult>(`${serverPath(server.id)}/test`),
    gcTime: 0,
    onSuccess: invalidate,
  });
  const toggle = useMutation({
    mutationFn: () => api.patch<McpServerOut>(`${serverPath(server.id)}/${server.is_active ? "deactivate" : "activate"}`),
    onSuccess: (saved) => {
      invalidate();
      toast({ title: `${saved.name} ${saved.is_active ? "activated" : "deactivated"}`, tone: "success" });
    },
  });
  const codeMode = useMutation({
    mutationFn: (enabled: boolean) => api.patch<McpServerOut>(serverPath(server.id), { code_mode_enabled: enabled }),
    onSuccess: (saved) => {
      invalidate();
      toast({ title: `Code Mode ${saved.code_mode_enabled ? "on" : "off"} for ${saved.name}`, tone: "success" });
    },
  });
  const remove = useMutation({
    mutationFn: () => api.delete(serverPath(server.id)),
    onSuccess: () => {
      invalidate();
      toast({ title: `${server.name} deleted`, tone: "success" });
      void navigate("/mcp-servers");
    },
  });

  return (
    <>
      <PageHeader
        title={server.name}
        description={`MCP server ${server.alias} · ${scopeText(server, teams)}`}
        actions={
          <Button asChild variant="secondary">
            <Link to="/mcp-servers">All MCP servers</Link>
          </Button>
        }
      />
      <div className="flex flex-col gap-6">
        <Card>
          <CardHeader
            title="Connection"
            actions={
              admin ? (
                <>
                  <Button variant="secondary" size="sm" loading={test.isPending} onClick={() => test.mutate()}>
                    Test connection
                  </Button>
                  {canEdit ? (
                    <>
                      <Button variant="secondary" size="sm" onClick={() => setEditing(true)}>
                        Edit
                      </Button>
                      <Button variant="secondary" size="sm" loading={toggle.isPending} onClick={() => toggle.mutate()}>
                        {server.is_active ? "Deactivate" : "Activate"}
                      </Button>
                      <Button variant="danger" size="sm" onClick={() => setDeleting(true)}>
                        Delete
                      </Button>
                    </>
                  ) : null}
                </>
              ) : undefined
            }
          />
          <CardContent className="flex flex-col gap-4">
            {!managed ? (
              <p role="note" className="rounded-md border border-border bg-surface-2 px-3 py-2 text-sm">
                {managedReason(server)} Its Code Mode blocklist can still be changed here.
              </p>
            ) : null}
            <dl className="grid grid-cols-1 gap-x-6 gap-y-3 text-sm sm:grid-cols-2">
              <Item label="Alias">
                <code>{server.alias}</code>
              </Item>
              <Item label="URL">
                <span className="break-all">{server.url}</span>
              </Item>
              <Item label="Scope">{scopeText(server, teams)}</Item>
              <Item label="Authentication">
                {AUTH_LABELS[server.auth_type] ?? server.auth_type}
                {server.auth_type === "header" ? ` (${server.auth_header})` : ""}
                {server.auth_type === "oauth" ? ` (client ${server.oauth_client_id})` : ""}
                {server.auth_type === "bearer" || server.auth_type === "header"
                  ? server.has_auth_token
                    ? " · secret stored"
                    : " · no secret stored"
                  : ""}
                {server.auth_type === "oauth"
                  ? server.has_oauth_client_secret
                    ? " · secret stored"
                    : " · no secret stored"
                  : ""}
              </Item>
              <Item label="Status">
                <Badge tone={server.is_active ? "success" : "neutral"}>{server.is_active ? "Active" : "Inactive"}</Badge>
              </Item>
              <Item label="Health">
                {!server.is_active ? (
                  <span className="text-muted">Not probed while inactive</span>
                ) : health.isPending ? (
                  <span className="text-muted">Loading health…</span>
                ) : (
                  <span className="flex flex-wrap items-center gap-2">
                    <HealthBadge health={h} />
                    {h?.latency_ms !== null && h?.latency_ms !== undefined ? <span>{formatDuration(h.latency_ms)}</span> : null}
                    {h?.tool_count !== null && h?.tool_count !== undefined ? <span>{formatNumber(h.tool_count)} tools</span> : null}
                    {h?.checked_at ? (
                      <span className="text-muted">
                        checked <DateTime value={h.checked_at} relative />
                      </span>
                    ) : null}
                    {h?.last_error ? <span className="text-danger">{h.last_error}</span> : null}
                  </span>
                )}
              </Item>
              <Item label="Source">
                <SourceBadge source={server.source} />
              </Item>
              <Item label="Updated">
                <DateTime value={server.updated_at} />
              </Item>
            </dl>
            <div role="status" aria-live="polite">
              {test.data ? <TestOutcome result={test.data} /> : null}
            </div>
            {test.isError ? <InlineError error={test.error} /> : null}
            {toggle.isError ? <InlineError error={toggle.error} /> : null}
            {canSeeMcp(me) ? (
              <p className="text-sm">
                <Link
                  to={`/usage/mcp?group=server&q=${encodeURIComponent(server.alias)}`}
                  className="text-primary underline underline-offset-2"
                >
                  MCP usage of this server
                </Link>
              </p>
            ) : null}
          </CardContent>
        </Card>

        <Card>
          <CardHeader
            title="Code Mode"
            description="Scripts run through /api/v1/mcp may call this server's tools, except the blocked ones below."
          />
          <CardContent className="flex flex-col gap-3">
            <Field
              label="Available in Code Mode"
              hint={!canEdit ? (managed ? "Only an admin of the server's scope can change this." : managedReason(server)) : undefined}
            >
              <Switch
                checked={server.code_mode_enabled}
                disabled={!canEdit || codeMode.isPending}
                onCheckedChange={(enabled) => codeMode.mutate(enabled)}
              />
            </Field>
            {codeMode.isError ? <InlineError error={codeMode.error} /> : null}
          </CardContent>
        </Card>

        <ToolsCard server={server} canManage={admin} />

        <IdeConfigCard server={server} />
      </div>
      <McpServerDialog
        state={editing ? { kind: "edit", server } : null}
        teams={list.data?.teams ?? []}
        onClose={() => setEditing(false)}
      />
      <ConfirmDialog
        open={deleting}
        onOpenChange={setDeleting}
        title={`Delete ${server.name}?`}
        description="Clients and Code Mode scripts can no longer call it; its access grants and cached tools go with it."
        confirmLabel="Delete"
        destructive
        mutation={remove}
        onConfirm={() => remove.mutate()}
      />
    </>
  );
}

function Item({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="flex flex-col gap-0.5">
      <dt className="text-xs text-muted">{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function TestOutcome({ result }: { result: McpTestResult }) {
  if (result.success) {
    const tools = result.tools ?? [];
    return (
      <p className="text-sm text-success">
        Connection works: {formatNumber(tools.length)} tools{tools.length > 0 ? ` (${tools.join(", ")})` : ""}.
      </p>
    );
  }
  return (
    <div className="flex flex-wrap items-center gap-2 text-sm text-danger">
      {result.legacy_sse ? <Badge tone="warning">Legacy SSE server</Badge> : null}
      <span>Connection failed: {result.error ?? "no answer"}</span>
    </div>
  );
}

/** The MCP client configuration for an IDE: this server through the gateway, and the Code Mode endpoint. */
function IdeConfigCard({ server }: { server: McpServerOut }) {
  const [withCodeMode, setWithCodeMode] = useState(true);
  const config = ideConfig(server.alias, withCodeMode);
  return (
    <Card>
      <CardHeader
        title="Use it from an IDE"
        description="An MCP client configuration (Claude Code, Cursor, VS Code...). The client sends your API key from the VOIDLLM_API_KEY environment variable."
        actions={<CopyButton value={config} label="Copy IDE config" variant="primary" />}
      />
      <CardContent className="flex flex-col gap-3">
        <label className="flex items-center gap-2 text-sm">
          <input
            type="checkbox"
            className="h-4 w-4"
            checked={withCodeMode}
            onChange={(e) => setWithCodeMode(e.target.checked)}
          />
          Include the Code Mode endpoint (/api/v1/mcp)
        </label>
        <pre aria-label="IDE configuration" tabIndex={0} className="overflow-x-auto rounded-md border border-border bg-surface-2 p-3 text-xs">
          {config}
        </pre>
      </CardContent>
    </Card>
  );
}
