import { useEffect, useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, isApiError } from "../../lib/api";
import { formatNumber, formatWait } from "../../lib/format";
import {
  Badge,
  Button,
  Card,
  CardContent,
  CardHeader,
  Dialog,
  DialogClose,
  EmptyState,
  Field,
  InlineError,
  Input,
  LoadingState,
  ErrorState,
  Table,
  TBody,
  TD,
  TH,
  THead,
  TR,
  useToast,
} from "../../components/ui";
import { MCP_KEY, serverPath, useBlocklist, useTools } from "./data";
import type { McpServerOut } from "./types";

interface Row {
  name: string;
  description: string;
  blocked: boolean;
  reason: string;
  /** Blocked before the server listed it. */
  unlisted: boolean;
}

/** Seconds left until `until` (epoch ms), ticking once a second; 0 when passed. */
function useCountdown(until: number | null): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (until === null) return;
    setNow(Date.now());
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, [until]);
  return until === null ? 0 : Math.max(0, Math.ceil((until - now) / 1000));
}

/**
 * The server's cached tools with their Code Mode block status: refresh the list from the server (once a
 * minute: the API answers 429 with Retry-After), block a tool with a reason, unblock it.
 */
export function ToolsCard({ server, canManage }: { server: McpServerOut; canManage: boolean }) {
  const tools = useTools(server.id);
  const blocklist = useBlocklist(server.id);
  const queryClient = useQueryClient();
  const toast = useToast();
  const [blocking, setBlocking] = useState<string | null>(null);
  const [coolUntil, setCoolUntil] = useState<number | null>(null);
  const wait = useCountdown(coolUntil);

  const invalidate = () => void queryClient.invalidateQueries({ queryKey: MCP_KEY });
  const refresh = useMutation({
    mutationFn: () => api.post<{ tool_count: number }>(`${serverPath(server.id)}/refresh-tools`),
    onSuccess: (result) => {
      invalidate();
      setCoolUntil(Date.now() + 60_000);
      toast({ title: `Tool list refreshed: ${formatNumber(result.tool_count)} tools`, tone: "success" });
    },
    onError: (error) => {
      if (isApiError(error) && error.status === 429) setCoolUntil(Date.now() + (error.retryAfter ?? 60) * 1000);
    },
  });
  const unblock = useMutation({
    mutationFn: (name: string) => api.delete(`${serverPath(server.id)}/blocklist`, { query: { tool_name: name } }),
    onSuccess: (_, name) => {
      invalidate();
      toast({ title: `${name} unblocked`, tone: "success" });
    },
  });

  const reasons = new Map((blocklist.data ?? []).map((b) => [b.tool_name, b.reason]));
  const rows: Row[] = (tools.data ?? []).map((t) => ({
    name: t.name,
    description: t.description,
    blocked: t.blocked || reasons.has(t.name),
    reason: reasons.get(t.name) ?? "",
    unlisted: false,
  }));
  const listed = new Set(rows.map((r) => r.name));
  for (const b of blocklist.data ?? []) {
    if (!listed.has(b.tool_name)) rows.push({ name: b.tool_name, description: "", blocked: true, reason: b.reason, unlisted: true });
  }
  const blockedCount = rows.filter((r) => r.blocked).length;
  const cooling = wait > 0;
  const refreshError = refresh.error && !(isApiError(refresh.error) && refresh.error.status === 429) ? refresh.error : null;

  return (
    <Card>
      <CardHeader
        title="Tools"
        description={
          tools.data
            ? `${formatNumber(tools.data.length)} tools, ${formatNumber(blockedCount)} blocked for Code Mode`
            : "The server's tool list as the gateway last fetched it."
        }
        actions={
          canManage ? (
            <Button
              variant="secondary"
              size="sm"
              loading={refresh.isPending}
              disabled={cooling}
              onClick={() => refresh.mutate()}
            >
              Refresh tools
            </Button>
          ) : undefined
        }
      />
      <CardContent className="flex flex-col gap-3">
        <div role="status" aria-live="polite" className="text-sm text-muted empty:hidden">
          {cooling ? `The tool list can be refreshed once a minute: try again in ${formatWait(wait)}.` : ""}
        </div>
        {refreshError ? <InlineError error={refreshError} /> : null}
        {unblock.isError ? <InlineError error={unblock.error} /> : null}
        {blocklist.isError ? <InlineError error={blocklist.error} /> : null}
        {tools.isPending ? (
          <LoadingState label="Loading tools" />
        ) : tools.isError ? (
          <ErrorState error={tools.error} title="Could not load the tools" onRetry={() => void tools.refetch()} />
        ) : rows.length === 0 ? (
          <EmptyState
            title="No tools known yet"
            description="The list is fetched by the health probe, a connection test or a refresh."
          />
        ) : (
          <Table caption={`Tools of ${server.name}`}>
            <THead>
              <TR>
                <TH>Tool</TH>
                <TH>Description</TH>
                <TH>Code Mode</TH>
                {canManage ? (
                  <TH>
                    <span className="sr-only">Actions</span>
                  </TH>
                ) : null}
              </TR>
            </THead>
            <TBody>
              {rows.map((row) => (
                <TR key={row.name}>
                  <TD className="font-mono text-xs">{row.name}</TD>
                  <TD className="text-muted">
                    {row.unlisted ? "Not in the server's current tool list." : row.description || "—"}
                  </TD>
                  <TD>
                    {row.blocked ? (
                      <div className="flex flex-col gap-1">
                        <Badge tone="danger" className="self-start">Blocked</Badge>
                        {row.reason ? <span className="text-xs text-muted">{row.reason}</span> : null}
                      </div>
                    ) : (
                      <Badge tone="success">Allowed</Badge>
                    )}
                  </TD>
                  {canManage ? (
                    <TD>
                      <div className="flex justify-end">
                        {row.blocked ? (
                          <Button
                            size="sm"
                            variant="ghost"
                            aria-label={`Unblock ${row.name}`}
                            loading={unblock.isPending && unblock.variables === row.name}
                            onClick={() => unblock.mutate(row.name)}
                          >
                            Unblock
                          </Button>
                        ) : (
                          <Button
                            size="sm"
                            variant="ghost"
                            className="text-danger"
                            aria-label={`Block ${row.name}`}
                            onClick={() => setBlocking(row.name)}
                          >
                            Block
                          </Button>
                        )}
                      </div>
                    </TD>
                  ) : null}
                </TR>
              ))}
            </TBody>
          </Table>
        )}
      </CardContent>
      <BlockDialog server={server} tool={blocking} onClose={() => setBlocking(null)} />
    </Card>
  );
}

function BlockDialog({ server, tool, onClose }: { server: McpServerOut; tool: string | null; onClose: () => void }) {
  return (
    <Dialog
      open={tool !== null}
      onOpenChange={(open) => (open ? undefined : onClose())}
      title={tool ? `Block ${tool}?` : "Block tool?"}
      description="Code Mode scripts can no longer call it on this server, whoever runs them, and search_tools stops showing it. Direct MCP calls are not affected."
    >
      {tool ? <BlockForm key={tool} server={server} tool={tool} onDone={onClose} /> : null}
    </Dialog>
  );
}

function BlockForm({ server, tool, onDone }: { server: McpServerOut; tool: string; onDone: () => void }) {
  const queryClient = useQueryClient();
  const toast = useToast();
  const [reason, setReason] = useState("");
  const block = useMutation({
    mutationFn: () => api.post(`${serverPath(server.id)}/blocklist`, { tool_name: tool, reason: reason.trim() }),
    gcTime: 0,
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: MCP_KEY });
      toast({ title: `${tool} blocked for Code Mode`, tone: "success" });
      onDone();
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    block.mutate();
  };
  return (
    <form onSubmit={submit} noValidate className="flex flex-col gap-4">
      <Field label="Reason" hint="Shown to the admins of this server, e.g. “writes to production”.">
        <Input value={reason} onChange={(e) => setReason(e.target.value)} maxLength={1024} autoComplete="off" />
      </Field>
      {block.isError ? <InlineError error={block.error} /> : null}
      <div className="flex flex-wrap justify-end gap-2">
        <DialogClose>
          <Button variant="secondary">Cancel</Button>
        </DialogClose>
        <Button type="submit" variant="danger" loading={block.isPending}>
          Block
        </Button>
      </div>
    </form>
  );
}
