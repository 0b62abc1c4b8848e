/** Queries and helpers of the MCP Servers pages. */
import { useQuery } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { appUrl } from "../../lib/base";
import { hasRole } from "../../lib/roles";
import type { Me } from "../../lib/types";
import { useOrgId } from "../../lib/viewedOrg";
import { fetchAllPages } from "../keys/data";
import type { TeamOut } from "../keys/types";
import type { BlockedTool, McpHealth, McpServerOut, McpTool } from "./types";

export const MCP_KEY = ["mcp-servers"] as const;

export const serverPath = (id: string) => `mcp-servers/${encodeURIComponent(id)}`;
const orgPath = (orgId: string) => `orgs/${encodeURIComponent(orgId)}`;

/** Where a new server of a scope is registered (POST). */
export function createPath(scope: "global" | "org" | "team", orgId: string, teamId: string): string {
  if (scope === "global") return "mcp-servers";
  if (scope === "org") return `${orgPath(orgId)}/mcp-servers`;
  return `${orgPath(orgId)}/teams/${encodeURIComponent(teamId)}/mcp-servers`;
}

export interface McpServerList {
  servers: McpServerOut[];
  /** The teams whose servers were asked for (their names label the team scope). */
  teams: TeamOut[];
  truncated: boolean;
}

/**
 * Every server the caller can see: the organisation's list (its servers and the global ones), then each of
 * the caller's teams' lists (which add that team's servers). Below org admin the teams are the caller's own.
 */
export async function fetchServers(orgId: string, signal?: AbortSignal): Promise<McpServerList> {
  const [org, teams] = await Promise.all([
    fetchAllPages<McpServerOut>(`${orgPath(orgId)}/mcp-servers`, signal),
    fetchAllPages<TeamOut>(`${orgPath(orgId)}/teams`, signal),
  ]);
  const byId = new Map(org.items.map((s) => [s.id, s]));
  let truncated = org.truncated || teams.truncated;
  const lists = await Promise.all(
    teams.items.map((team) =>
      fetchAllPages<McpServerOut>(createPath("team", orgId, team.id), signal),
    ),
  );
  for (const list of lists) {
    truncated ||= list.truncated;
    for (const server of list.items) byId.set(server.id, server);
  }
  const order: Record<string, number> = { global: 0, org: 1, team: 2 };
  const servers = [...byId.values()].sort(
    (a, b) => (order[a.scope] ?? 3) - (order[b.scope] ?? 3) || a.alias.localeCompare(b.alias),
  );
  return { servers, teams: teams.items, truncated };
}

/** The servers of the organisation being viewed (lib/viewedOrg.tsx) and the global ones. */
export function useServers() {
  const orgId = useOrgId();
  return useQuery({
    queryKey: [...MCP_KEY, orgId, "list"],
    queryFn: ({ signal }) => fetchServers(orgId, signal),
  });
}

export function useServer(id: string) {
  return useQuery({
    queryKey: [...MCP_KEY, "one", id],
    queryFn: ({ signal }) => api.get<McpServerOut>(serverPath(id), { signal }),
  });
}

export function useHealth() {
  return useQuery({
    queryKey: [...MCP_KEY, "health"],
    queryFn: ({ signal }) => api.get<McpHealth[]>("mcp-servers/health", { signal }),
  });
}

export function useTools(id: string) {
  return useQuery({
    queryKey: [...MCP_KEY, "tools", id],
    queryFn: ({ signal }) => api.get<McpTool[]>(`${serverPath(id)}/tools`, { signal }),
  });
}

export function useBlocklist(id: string) {
  return useQuery({
    queryKey: [...MCP_KEY, "blocklist", id],
    queryFn: ({ signal }) => api.get<BlockedTool[]>(`${serverPath(id)}/blocklist`, { signal }),
  });
}

export const SCOPE_LABELS = { global: "Global", org: "Organization", team: "Team" } as const;

/** "Team: Platform" for a team's server when the team is known. */
export function scopeText(server: McpServerOut, teams: Map<string, string>): string {
  if (server.scope === "team" && server.team_id) {
    const name = teams.get(server.team_id);
    return name ? `Team: ${name}` : "Team";
  }
  return SCOPE_LABELS[server.scope] ?? server.scope;
}

export const AUTH_LABELS: Record<string, string> = {
  none: "None",
  bearer: "Bearer token",
  header: "Custom header",
  oauth: "OAuth client credentials",
};

/** Servers of voidllm.yaml and the built-in one are changed elsewhere (their blocklist is still editable here). */
export const isManaged = (server: Pick<McpServerOut, "source">) => server.source === "api";

export function managedReason(server: Pick<McpServerOut, "source">): string {
  return server.source === "builtin"
    ? "The gateway's built-in server; it cannot be changed."
    : "Defined in voidllm.yaml; change it there.";
}

// -- what the caller may do (mirrors the API's rules; the server still decides) -------------------------

/** Whether the caller administers a team: org admins every team; below that, a team key (role `team_admin`)
 * or a user whose team role there is `team_admin` (GET /me `team_admin_of`; a user key's role is its org role). */
export function administersTeam(me: Me, teamId: string | null): boolean {
  if (hasRole(me, "team_admin")) return true;
  return teamId !== null && (me.team_admin_of ?? []).includes(teamId);
}

/** Who administers a server's scope: system admins the global ones, org admins their org's, team admins their team's. */
export function canAdminister(me: Me, server: Pick<McpServerOut, "scope" | "team_id">): boolean {
  if (server.scope === "global") return hasRole(me, "system_admin");
  if (server.scope === "org") return hasRole(me, "org_admin");
  return administersTeam(me, server.team_id);
}

/** The scopes the caller may register a server in. */
export function creatableScopes(me: Me): ("global" | "org" | "team")[] {
  if (hasRole(me, "system_admin")) return ["global", "org", "team"];
  if (hasRole(me, "org_admin")) return ["org", "team"];
  if (hasRole(me, "team_admin") || (me.team_admin_of ?? []).length > 0) return ["team"];
  return [];
}

/** The teams the caller may register a team server for (below org admin, those they administer). */
export function creatableTeams(me: Me, teams: TeamOut[]): TeamOut[] {
  return hasRole(me, "org_admin") ? teams : teams.filter((t) => administersTeam(me, t.id));
}

// -- IDE configuration ------------------------------------------------------------------------------------

export const API_KEY_PLACEHOLDER = "${VOIDLLM_API_KEY}";
export const CODE_MODE_ENTRY = "voidllm-code-mode";

function entry(path: string) {
  return {
    type: "http",
    url: appUrl(path).href,
    headers: { Authorization: `Bearer ${API_KEY_PLACEHOLDER}` },
  };
}

/**
 * A ready MCP client configuration (the shape of examples/mcp/ide-config.json): the server through the gateway
 * (`<origin>/api/v1/mcp/<alias>`) and, with `codeMode`, the Code Mode endpoint (`<origin>/api/v1/mcp`). The key
 * stays a placeholder the IDE fills from its environment: a key is never put on the clipboard.
 */
export function ideConfig(alias: string, codeMode: boolean): string {
  const servers: Record<string, ReturnType<typeof entry>> = {
    [alias]: entry(`api/v1/mcp/${encodeURIComponent(alias)}`),
  };
  if (codeMode) servers[CODE_MODE_ENTRY] = entry("api/v1/mcp");
  return `${JSON.stringify({ mcpServers: servers }, null, 2)}\n`;
}
