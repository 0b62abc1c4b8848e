/** Queries, paths and permission checks of the Teams pages (the server still decides every request). */
import { useQuery } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { useOrgId } from "../../lib/viewedOrg";
import { fetchAllPages } from "../keys/data";
import type { ModelAccess } from "../keys/types";
import type { McpAccess, McpServerBrief, Member, ModelAlias, Team, UsageRow } from "./types";

export { administers, canAdministerTeams, canManageOrgTeams } from "./access";

const enc = encodeURIComponent;
export const teamsPath = (orgId: string) => `orgs/${enc(orgId)}/teams`;
export const teamPath = (orgId: string, teamId: string) => `${teamsPath(orgId)}/${enc(teamId)}`;

/** Query keys: everything of one team sits under `teamKey(...)`, so one invalidation refreshes it. */
export const teamsKey = (orgId: string) => ["teams", orgId] as const;
export const teamKey = (orgId: string, teamId: string) => ["teams", orgId, teamId] as const;

/** The teams of the organisation being viewed (lib/viewedOrg.tsx). */
export function useTeamList() {
  return useOrgTeams(useOrgId());
}

/** Every team of an organization (the session's own, or any for a system admin). */
export function useOrgTeams(orgId: string) {
  return useQuery({
    queryKey: [...teamsKey(orgId), "list"],
    queryFn: ({ signal }) => fetchAllPages<Team>(teamsPath(orgId), signal),
  });
}

export function useTeam(teamId: string) {
  const orgId = useOrgId();
  return useQuery({
    queryKey: [...teamKey(orgId, teamId), "team"],
    queryFn: ({ signal }) => api.get<Team>(teamPath(orgId, teamId), { signal }),
  });
}

export function useTeamMembers(teamId: string) {
  const orgId = useOrgId();
  return useQuery({
    queryKey: [...teamKey(orgId, teamId), "members"],
    queryFn: ({ signal }) => fetchAllPages<Member>(`${teamPath(orgId, teamId)}/members`, signal),
  });
}

/** The organisation's members (org admins only): who can be added to a team. */
export function useOrgMembers(enabled: boolean) {
  const orgId = useOrgId();
  return useQuery({
    queryKey: ["org-members", orgId],
    queryFn: ({ signal }) => fetchAllPages<Member>(`orgs/${enc(orgId)}/members`, signal),
    enabled,
  });
}

export function useTeamModelAccess(teamId: string) {
  const orgId = useOrgId();
  return useQuery({
    queryKey: [...teamKey(orgId, teamId), "model-access"],
    queryFn: ({ signal }) => api.get<ModelAccess>(`${teamPath(orgId, teamId)}/model-access`, { signal }),
  });
}

export function useTeamAliases(teamId: string, enabled: boolean) {
  const orgId = useOrgId();
  return useQuery({
    queryKey: [...teamKey(orgId, teamId), "aliases"],
    queryFn: ({ signal }) => fetchAllPages<ModelAlias>(`${teamPath(orgId, teamId)}/model-aliases`, signal),
    enabled,
  });
}

export function useTeamMcpAccess(teamId: string) {
  const orgId = useOrgId();
  return useQuery({
    queryKey: [...teamKey(orgId, teamId), "mcp-access"],
    queryFn: ({ signal }) => api.get<McpAccess>(`${teamPath(orgId, teamId)}/mcp-access`, { signal }),
  });
}

/** The servers a team can be granted: the global and organisation servers the team sees (built-ins are
 * always there and never listed). */
export function useGrantableMcpServers(teamId: string) {
  const orgId = useOrgId();
  return useQuery({
    queryKey: [...teamKey(orgId, teamId), "mcp-servers"],
    queryFn: async ({ signal }) => {
      const all = await fetchAllPages<McpServerBrief>(`${teamPath(orgId, teamId)}/mcp-servers`, signal);
      return all.items.filter((s) => (s.scope === "global" || s.scope === "org") && s.source !== "builtin");
    },
  });
}

/** Start of the current UTC day and month: the windows the limiter counts budgets in. */
export function budgetWindows(now: Date = new Date()): { day: Date; month: Date } {
  return {
    day: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())),
    month: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)),
  };
}

export interface TeamUse {
  requestsToday: number;
  tokensToday: number;
  tokensThisMonth: number;
}

/** The team's requests and tokens in the current UTC day and month, from the org usage report (org admins). */
export function useTeamUse(teamId: string, enabled: boolean) {
  const orgId = useOrgId();
  return useQuery({
    queryKey: [...teamKey(orgId, teamId), "use"],
    queryFn: async ({ signal }): Promise<TeamUse> => {
      const now = new Date();
      const { day, month } = budgetWindows(now);
      const report = (from: Date) =>
        api.get<{ data: UsageRow[] }>(`orgs/${enc(orgId)}/usage`, {
          query: { from: from.toISOString(), to: new Date(now.getTime() + 1000).toISOString(), group_by: "team" },
          signal,
        });
      const [today, thisMonth] = await Promise.all([report(day), report(month)]);
      const row = (r: { data: UsageRow[] }) => r.data.find((p) => p.group_key === teamId);
      return {
        requestsToday: row(today)?.total_requests ?? 0,
        tokensToday: row(today)?.total_tokens ?? 0,
        tokensThisMonth: row(thisMonth)?.total_tokens ?? 0,
      };
    },
    enabled,
  });
}
