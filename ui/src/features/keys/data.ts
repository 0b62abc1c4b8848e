/** Queries and helpers of the API Keys page. */
import { useQuery } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { hasRole } from "../../lib/roles";
import { useViewedOrg } from "../../lib/viewedOrg";
import { canAdministerTeams } from "../teams/access";
import type { Me, Page } from "../../lib/types";
import type { AvailableModels, KeyOut, ModelAccess, ServiceAccountOut, TeamOut } from "./types";

/** Pages fetched at most by {@link fetchAllPages} (100 items each). */
export const MAX_PAGES = 50;

export interface AllPages<T> {
  items: T[];
  /** True when more items exist than were fetched (MAX_PAGES reached). */
  truncated: boolean;
}

/** Every item of a cursor-paged list route (`?limit=100&cursor=`), page after page, up to MAX_PAGES. */
export async function fetchAllPages<T>(path: string, signal?: AbortSignal): Promise<AllPages<T>> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let n = 0; n < MAX_PAGES; n++) {
    const page = await api.get<Page<T>>(path, { query: { limit: 100, cursor }, signal });
    items.push(...page.data);
    if (!page.has_more || !page.next_cursor) return { items, truncated: false };
    cursor = page.next_cursor;
  }
  return { items, truncated: true };
}

export const keysPath = (orgId: string) => `orgs/${encodeURIComponent(orgId)}/keys`;
export const keyPath = (orgId: string, keyId: string) => `${keysPath(orgId)}/${encodeURIComponent(keyId)}`;

/** Query keys of the keys page: everything under the organisation's id (`keysKey(orgId)`). */
export const keysKey = (orgId: string) => ["keys", orgId] as const;

/** The keys of `orgId` (the organisation being viewed, lib/viewedOrg.tsx). */
export function useKeys(orgId: string) {
  return useQuery({
    queryKey: [...keysKey(orgId), "list"],
    queryFn: ({ signal }) => fetchAllPages<KeyOut>(keysPath(orgId), signal),
  });
}

/** The teams the caller may bind a key to (below org admin the API lists only the caller's own). */
export function useTeams(orgId: string) {
  return useQuery({
    queryKey: [...keysKey(orgId), "teams"],
    queryFn: ({ signal }) => fetchAllPages<TeamOut>(`orgs/${encodeURIComponent(orgId)}/teams`, signal),
  });
}

/** Service accounts the caller manages (only team admins and above manage any). */
export function useServiceAccounts(me: Me, orgId: string) {
  return useQuery({
    queryKey: [...keysKey(orgId), "service-accounts"],
    queryFn: ({ signal }) =>
      fetchAllPages<ServiceAccountOut>(`orgs/${encodeURIComponent(orgId)}/service-accounts`, signal),
    enabled: canAdministerTeams(me),
  });
}

/**
 * The models a key's or team's model allowlist may name. In the session's own organisation: the models this
 * session may use (GET /me/available-models). A system admin viewing another organisation: that
 * organisation's allowlist (GET /orgs/{id}/model-access), or every model of the registry (GET /models) when
 * it allows all.
 */
export function useAvailableModels(enabled: boolean) {
  const { orgId, isOwn } = useViewedOrg();
  return useQuery({
    queryKey: isOwn ? ["keys", "available-models"] : [...keysKey(orgId), "available-models"],
    queryFn: async ({ signal }): Promise<AvailableModels> => {
      if (isOwn) return api.get<AvailableModels>("me/available-models", { signal });
      const access = await api.get<ModelAccess>(`orgs/${encodeURIComponent(orgId)}/model-access`, { signal });
      const names =
        access.models.length > 0
          ? access.models
          : (await fetchAllPages<{ name: string }>("models", signal)).items.map((m) => m.name);
      return { models: names.map((name) => ({ name, type: "" })) };
    },
    enabled,
  });
}

// -- what the caller may do (mirrors the API's rules; the server still decides) -------------------------

/** Org admins may restrict a key's models (PUT .../keys/{id}/model-access). */
export const canRestrictModels = (me: Me) => hasRole(me, "org_admin");

/** Org admins create any key type; below that only own user keys. */
export const canChooseKeyType = (me: Me) => hasRole(me, "org_admin");

/** Limits and expiry are set by the admins above a key, never by its holder. */
export function canSetLimits(me: Me, key: KeyOut): boolean {
  if (hasRole(me, "org_admin")) return true;
  return hasRole(me, "team_admin") && key.team_id !== null && key.user_id !== me.id && key.service_account_id === null;
}

/** Below org admin nobody rotates another user's key. */
export const canRotate = (me: Me, key: KeyOut) =>
  hasRole(me, "org_admin") || key.user_id === null || key.user_id === me.id;

// -- status ---------------------------------------------------------------------------------------------

export const EXPIRING_SOON_DAYS = 7;
const DAY_MS = 24 * 3600 * 1000;

export type KeyStatus = "active" | "expiring" | "expired";

export function keyStatus(key: Pick<KeyOut, "expires_at">, now: Date = new Date()): KeyStatus {
  if (!key.expires_at) return "active";
  const left = new Date(key.expires_at).getTime() - now.getTime();
  if (left <= 0) return "expired";
  return left <= EXPIRING_SOON_DAYS * DAY_MS ? "expiring" : "active";
}

export interface KeyCounts {
  total: number;
  active: number;
  expiring: number;
}

/** Total / active (not expired, including expiring) / expiring within EXPIRING_SOON_DAYS. */
export function countKeys(keys: KeyOut[], now: Date = new Date()): KeyCounts {
  let active = 0;
  let expiring = 0;
  for (const key of keys) {
    const status = keyStatus(key, now);
    if (status !== "expired") active++;
    if (status === "expiring") expiring++;
  }
  return { total: keys.length, active, expiring };
}

export const KEY_TYPE_LABELS: Record<string, string> = {
  user_key: "User key",
  team_key: "Team key",
  sa_key: "Service account key",
};
