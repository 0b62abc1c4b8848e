/** Dashboard data: the stats, model health, and the caller-scoped usage for the charts. */
import { useQuery } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { hasRole } from "../../lib/roles";
import type { DashboardStats, HealthList, Me, UsageGroupBy, UsageReport } from "../../lib/types";

const HOUR = 3_600_000;

/** The last 24 whole hours plus the current one's start: [from, to) with `to` the next hour boundary. */
export function last24Hours(now: number = Date.now()): { from: string; to: string } {
  const to = Math.floor(now / HOUR) * HOUR + HOUR;
  return { from: new Date(to - 24 * HOUR).toISOString(), to: new Date(to).toISOString() };
}

/** The hour keys the API uses for group_by=hour (`YYYY-MM-DDTHH:00:00Z`), one per hour of [from, to). */
export function hourKeys(from: string, to: string): string[] {
  const keys: string[] = [];
  for (let t = Date.parse(from); t < Date.parse(to); t += HOUR) keys.push(`${new Date(t).toISOString().slice(0, 13)}:00:00Z`);
  return keys;
}

/** Which usage the caller may read: every organisation, their organisation, or their own. */
export function usageScope(me: Me): { path: string; label: string } {
  if (hasRole(me, "system_admin")) return { path: "usage", label: "All organizations" };
  if (hasRole(me, "org_admin")) return { path: `orgs/${encodeURIComponent(me.org_id)}/usage`, label: "Your organization" };
  return { path: "usage/me", label: "Your requests" };
}

export function useDashboardStats() {
  return useQuery({
    queryKey: ["dashboard", "stats"],
    queryFn: ({ signal }) => api.get<DashboardStats>("dashboard/stats", { signal }),
    // Live numbers: fetched again on every visit and every minute while shown.
    staleTime: 0,
    refetchInterval: 60_000,
  });
}

export function useModelHealth(enabled: boolean) {
  return useQuery({
    queryKey: ["health"],
    queryFn: ({ signal }) => api.get<HealthList>("models/health", { signal }),
    enabled,
    refetchInterval: 60_000,
  });
}

export function useDashboardUsage(me: Me, groupBy: UsageGroupBy, range: { from: string; to: string }) {
  const scope = usageScope(me);
  return useQuery({
    queryKey: ["dashboard", "usage", scope.path, groupBy, range.from, range.to],
    queryFn: ({ signal }) =>
      api.get<UsageReport>(scope.path, { query: { from: range.from, to: range.to, group_by: groupBy }, signal }),
    staleTime: 0,
    refetchInterval: 60_000,
  });
}
