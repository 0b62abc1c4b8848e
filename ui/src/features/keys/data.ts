/** Queries and helpers of the API Keys page. */
import { useQuery } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { hasRole } from "../../lib/roles";
import { canAdministerTeams } from "../teams/access";
import type { Me, Page } from "../../lib/types";
import type { AvailableModels, KeyOut, ServiceAccountOut, TeamOut } from "./types";

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

export function useKeys(me: Me) {
  return useQuery({
    queryKey: ["keys", me.org_id, "list"],
    queryFn: ({ signal }) => fetchAllPages<KeyOut>(keysPath(me.org_id), signal),
  });
}

/** The teams the caller may bind a key to (below org admin the API lists only the caller's own). */
export function useTeams(me: Me) {
  return useQuery({
    queryKey: ["keys", me.org_id, "teams"],
    queryFn: ({ signal }) => fetchAllPages<TeamOut>(`orgs/${encodeURIComponent(me.org_id)}/teams`, signal),
  });
}

/** Service accounts the caller manages (only team admins and above manage any). */
export function useServiceAccounts(me: Me) {
  return useQuery({
    queryKey: ["keys", me.org_id, "service-accounts"],
    queryFn: ({ signal }) =>
      fetchAllPages<ServiceAccountOut>(`orgs/${encodeURIComponent(me.org_id)}/service-accounts`, signal),
    enabled: canAdministerTeams(me),
  });
}

/** The models this session may use: the choices for a key's model allowlist. */
export function useAvailableModels(enabled: boolean) {
  return useQuery({
    queryKey: ["keys", "available-models"],
    queryFn: ({ signal }) => api.get<AvailableModels>("me/available-models", { signal }),
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
