import { useEffect, useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { useCurrentUser } from "../../lib/auth";
import { Button, Card, CardContent, CardHeader, InlineError, QueryView, useToast } from "../../components/ui";
import { teamKey, teamPath, useGrantableMcpServers, useTeamMcpAccess } from "./data";
import type { McpAccess } from "./types";

/** Which global and organisation MCP servers the team's keys may call (team admins). */
export function TeamMcpAccess({ teamId }: { teamId: string }) {
  const me = useCurrentUser();
  const access = useTeamMcpAccess(me, teamId);
  const servers = useGrantableMcpServers(me, teamId);
  const queryClient = useQueryClient();
  const toast = useToast();
  const [selected, setSelected] = useState<string[]>([]);
  useEffect(() => {
    if (access.data) setSelected(access.data.servers);
  }, [access.data]);
  const save = useMutation({
    mutationFn: (ids: string[]) => api.put<McpAccess>(`${teamPath(me.org_id, teamId)}/mcp-access`, { servers: ids }),
    onSuccess: (saved) => {
      queryClient.setQueryData([...teamKey(me.org_id, teamId), "mcp-access"], saved);
      toast({ title: "MCP access saved", tone: "success" });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate(selected);
  };
  const toggle = (id: string, on: boolean) => setSelected((s) => (on ? [...s, id] : s.filter((x) => x !== id)));

  return (
    <Card>
      <CardHeader
        title="MCP access"
        description="The global and organization MCP servers the team's keys may call. None checked: no restriction at team level. The team's own servers are always allowed."
      />
      <CardContent>
        <QueryView query={access} loadingLabel="Loading MCP access" errorTitle="Could not load the MCP access">
          {() => (
            <form onSubmit={submit} className="flex flex-col gap-4">
              <fieldset className="flex flex-col gap-2">
                <legend className="text-sm font-medium">Allowed MCP servers</legend>
                {servers.isError ? <InlineError error={servers.error} /> : null}
                {servers.isPending ? <p className="text-sm text-muted">Loading servers…</p> : null}
                {servers.data?.length === 0 ? <p className="text-sm text-muted">No MCP servers can be granted.</p> : null}
                {(servers.data ?? []).map((s) => (
                  <label key={s.id} className="flex items-center gap-2 text-sm">
                    <input
                      type="checkbox"
                      className="h-4 w-4"
                      checked={selected.includes(s.id)}
                      onChange={(e) => toggle(s.id, e.target.checked)}
                    />
                    <span>
                      {s.name} <span className="text-muted">({s.alias}, {s.scope === "global" ? "global" : "organization"})</span>
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
          )}
        </QueryView>
      </CardContent>
    </Card>
  );
}
